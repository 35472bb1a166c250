// Injection (gate 3, docs/spec/broker.md §6): an agent calls an upstream through the broker's
// egress proxy, which adds the upstream secret — as a header, or in place of a placeholder the
// agent was given — to requests for the bound host only, and scrubs the secret out of responses.
// This file is the pure part: the binding, the request rewrite, the response scrub, and the lease
// provider that says which holder may use which binding until when. The I/O (the channel
// service, the upstream client, the agent's local HTTP proxy) is in node/egress-proxy.ts.
import { systemClock, type Clock } from '../core/index.js';
import { forbidden, invalid, notFound } from '../core/internal.js';
import { wipe } from '../crypto/index.js';
import { bytesEqual, concatBytes } from '../encoding/index.js';
import type { Identifier } from '../identity/index.js';
import {
  LeaseKind,
  LeaseState,
  type IssuedLease,
  type Lease,
  type LeaseContext,
  type LeaseProvider,
  type SecretReader,
} from './types.js';

/** The marker every occurrence of an injected secret in a response is replaced with. */
export const SCRUB_MARKER = '[mandate-redacted]';

/** A secret shorter than this is refused: scrubbing its encoded forms would hit innocent bytes. */
export const MIN_INJECTED_SECRET_BYTES = 8;

const BINDING_INVALID = 'ERR_PROXY_BINDING_INVALID';
const REQUEST_INVALID = 'ERR_PROXY_REQUEST_INVALID';
const HOST_NOT_BOUND = 'ERR_PROXY_HOST_NOT_BOUND';
const SECRET_UNFIT = 'ERR_PROXY_SECRET_UNFIT';

const MAX_NAME_CHARS = 128;
const MAX_HOST_CHARS = 255;
const MAX_FORMAT_CHARS = 1024;
const MIN_PLACEHOLDER_CHARS = 8;
const MAX_PLACEHOLDER_CHARS = 256;
/** Bounds of a request as the proxy accepts it (the wire protocol has the same): the path. */
export const MAX_PROXY_PATH_CHARS = 8 * 1024;
/** How many headers a proxied request may have. */
export const MAX_PROXY_HEADERS = 128;
/** How many bytes of headers (names, values, 4 per pair) a proxied request may have. */
export const MAX_PROXY_HEADER_BYTES = 32 * 1024;

/** RFC 9110 §5.6.2 token: header names and methods. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Printable ASCII without spaces: placeholders (they must survive any header or URL). */
const PLACEHOLDER = /^[\x21-\x7e]+$/;
const HOSTNAME =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const IPV6 = /^\[[0-9a-f:.]+\]$/;

/** How the broker reaches an upstream. */
export type InjectionScheme = 'http' | 'https';

/**
 * A binding as configured (the broker's config file): which secret of the sealed store goes to
 * which upstream, and how. Exactly one of `header` and `placeholder`.
 */
export interface InjectionBindingConfig {
  /** The secret's name in the sealed store; also the `resource` of the leases that use it. */
  readonly secret: string;
  /** The only `host[:port]` the secret may go to (exact, case-insensitive; no wildcards). */
  readonly host: string;
  /** How the proxy reaches the upstream; default `https`. */
  readonly scheme?: InjectionScheme;
  /** Add the secret as this header, `format` with `{secret}` in it (e.g. `Bearer {secret}`). */
  readonly header?: { readonly name: string; readonly format: string };
  /**
   * A token the agent is given instead of the secret: replaced by the secret wherever it appears
   * in the headers of a request to `host` (and in its body with `placeholderInBody`).
   */
  readonly placeholder?: string;
  readonly placeholderInBody?: boolean;
}

/** A validated binding ({@link parseInjectionBinding}). */
export interface InjectionBinding {
  readonly secret: string;
  /** Canonical: lower case, without the scheme's default port. */
  readonly host: string;
  readonly hostname: string;
  readonly port: number;
  readonly scheme: InjectionScheme;
  /** The header name in lower case. */
  readonly header?: { readonly name: string; readonly format: string } | undefined;
  readonly placeholder?: string | undefined;
  readonly placeholderInBody: boolean;
}

const DEFAULT_PORT: Readonly<Record<InjectionScheme, number>> = { http: 80, https: 443 };

/**
 * Checks a binding from configuration (untrusted shape) and returns it canonical. Throws
 * `ERR_PROXY_BINDING_INVALID` naming the field.
 */
export function parseInjectionBinding(config: unknown): InjectionBinding {
  if (typeof config !== 'object' || config === null || Array.isArray(config))
    throw invalid(BINDING_INVALID, 'an injection binding must be an object');
  const known = new Set(['secret', 'host', 'scheme', 'header', 'placeholder', 'placeholderInBody']);
  for (const key of Object.keys(config))
    if (!known.has(key))
      throw invalid(BINDING_INVALID, `an injection binding has an unknown field \`${key}\``);
  const c = config as Record<string, unknown>;
  const secret = c['secret'];
  if (typeof secret !== 'string' || secret.length === 0 || secret.length > MAX_NAME_CHARS)
    throw invalid(BINDING_INVALID, '`secret` must be a secret name (1 to 128 characters)');
  const scheme = c['scheme'] ?? 'https';
  if (scheme !== 'http' && scheme !== 'https')
    throw invalid(BINDING_INVALID, '`scheme` must be `http` or `https`');
  const hostText = c['host'];
  if (typeof hostText !== 'string')
    throw invalid(BINDING_INVALID, '`host` must be a host name with an optional port');
  const parsed = parseAuthority(hostText, scheme);
  if (parsed === undefined)
    throw invalid(
      BINDING_INVALID,
      `\`host\` \`${printable(hostText)}\` is not a host name with an optional port`,
    );
  const header = c['header'];
  const placeholder = c['placeholder'];
  if ((header === undefined) === (placeholder === undefined))
    throw invalid(BINDING_INVALID, 'a binding has exactly one of `header` and `placeholder`');
  const inBody = c['placeholderInBody'] ?? false;
  if (typeof inBody !== 'boolean')
    throw invalid(BINDING_INVALID, '`placeholderInBody` must be a boolean');
  if (inBody && placeholder === undefined)
    throw invalid(BINDING_INVALID, '`placeholderInBody` needs a `placeholder`');
  let checkedHeader: InjectionBinding['header'];
  if (header !== undefined) {
    if (typeof header !== 'object' || header === null || Array.isArray(header))
      throw invalid(BINDING_INVALID, '`header` must be `{ name, format }`');
    for (const key of Object.keys(header))
      if (key !== 'name' && key !== 'format')
        throw invalid(BINDING_INVALID, `\`header\` has an unknown field \`${key}\``);
    const h = header as Record<string, unknown>;
    const name = h['name'];
    const format = h['format'] ?? '{secret}';
    if (typeof name !== 'string' || !TOKEN.test(name) || name.length > MAX_NAME_CHARS)
      throw invalid(BINDING_INVALID, '`header.name` must be an HTTP header name');
    if (HOP_BY_HOP.has(name.toLowerCase()))
      throw invalid(BINDING_INVALID, `\`header.name\` \`${name}\` is a hop-by-hop header`);
    if (
      typeof format !== 'string' ||
      format.length > MAX_FORMAT_CHARS ||
      format.split('{secret}').length !== 2 ||
      !/^[\x20-\x7e]*$/.test(format)
    )
      throw invalid(
        BINDING_INVALID,
        '`header.format` must be printable text with `{secret}` in it once',
      );
    checkedHeader = { name: name.toLowerCase(), format };
  }
  if (placeholder !== undefined) {
    if (
      typeof placeholder !== 'string' ||
      placeholder.length < MIN_PLACEHOLDER_CHARS ||
      placeholder.length > MAX_PLACEHOLDER_CHARS ||
      !PLACEHOLDER.test(placeholder)
    )
      throw invalid(
        BINDING_INVALID,
        '`placeholder` must be 8 to 256 printable characters without spaces',
      );
  }
  return {
    secret,
    ...parsed,
    scheme,
    header: checkedHeader,
    placeholder: placeholder,
    placeholderInBody: inBody,
  };
}

/**
 * `host[:port]` in canonical form for `scheme` (lower case, default port left out), or
 * undefined when it is not one (userinfo, path, bad port, bad name).
 */
function parseAuthority(
  text: string,
  scheme: InjectionScheme,
): { host: string; hostname: string; port: number } | undefined {
  if (text.length === 0 || text.length > MAX_HOST_CHARS) return undefined;
  const lower = text.toLowerCase();
  const match = /^(\[[^\]]*\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(lower);
  if (match === null) return undefined;
  const hostname = match[1]!;
  if (!HOSTNAME.test(hostname) && !IPV6.test(hostname)) return undefined;
  const port = match[2] === undefined ? DEFAULT_PORT[scheme] : Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return undefined;
  const host = port === DEFAULT_PORT[scheme] ? hostname : `${hostname}:${String(port)}`;
  return { host, hostname, port };
}

/**
 * Whether a request addressed to `authority` (the agent's `Host`, or the host of its
 * absolute-form target) is for `binding`'s host: the same name and port, after canonicalising
 * both for the binding's scheme.
 */
export function bindingMatches(binding: InjectionBinding, authority: string): boolean {
  return parseAuthority(authority, binding.scheme)?.host === binding.host;
}

/** A request as the agent sent it to its local proxy (and the proxy over the channel). */
export interface ProxyRequest {
  readonly method: string;
  /** `host[:port]` the agent addressed. */
  readonly authority: string;
  /** Origin-form: `/path?query`. */
  readonly path: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array;
}

/** The request the proxy sends upstream. Holds the secret: never log or keep it. */
export interface UpstreamRequest {
  readonly scheme: InjectionScheme;
  readonly hostname: string;
  readonly port: number;
  readonly method: string;
  readonly path: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array;
}

/** One binding to apply, with its secret's current value. */
export interface Injection {
  readonly binding: InjectionBinding;
  readonly secret: Uint8Array;
}

/** What {@link rewriteRequest} returns. */
export interface RewrittenRequest {
  readonly upstream: UpstreamRequest;
  /** The indices (into the injections given) that put their secret into the request. */
  readonly used: readonly number[];
}

/** RFC 9110 §7.6.1 connection-specific headers, plus those the proxy sets itself. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'accept-encoding',
]);

/**
 * Checks a request's shape (method, path, header names and values, bounds): throws
 * `ERR_PROXY_REQUEST_INVALID`.
 */
export function checkProxyRequest(request: ProxyRequest): void {
  if (!TOKEN.test(request.method) || request.method.length > 32)
    throw invalid(REQUEST_INVALID, 'the request method is not an HTTP method');
  if (
    !request.path.startsWith('/') ||
    request.path.length > MAX_PROXY_PATH_CHARS ||
    !/^[\x21-\x7e]*$/.test(request.path)
  )
    throw invalid(REQUEST_INVALID, 'the request target must be an origin-form path');
  if (request.headers.length > MAX_PROXY_HEADERS)
    throw invalid(REQUEST_INVALID, `a request has at most ${MAX_PROXY_HEADERS} headers`);
  let bytes = 0;
  for (const [name, value] of request.headers) {
    if (!TOKEN.test(name)) throw invalid(REQUEST_INVALID, 'a request header name is not a token');
    if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(value))
      throw invalid(REQUEST_INVALID, `the request header \`${name}\` has a control character`);
    bytes += name.length + value.length + 4;
  }
  if (bytes > MAX_PROXY_HEADER_BYTES)
    throw invalid(REQUEST_INVALID, `the request headers exceed ${MAX_PROXY_HEADER_BYTES} bytes`);
}

/**
 * Rewrites an agent's request for the upstream: drops hop-by-hop headers, sets `Host` to the
 * binding's host and `Accept-Encoding: identity` (a compressed response could not be scrubbed),
 * then applies each injection in order — a header binding removes every agent header of that
 * name and adds its own (a later binding for the same name wins); a placeholder binding replaces
 * its placeholder in header values (and the body, if bound so). Every injection must be for the
 * request's host, and there must be at least one: otherwise `ERR_PROXY_HOST_NOT_BOUND` and
 * nothing is to be sent anywhere. A secret unfit for a header (control characters, outside
 * printable ASCII) is `ERR_PROXY_SECRET_UNFIT`. The caller wipes the secrets, and the body
 * returned when it differs from the one given.
 */
export function rewriteRequest(
  request: ProxyRequest,
  injections: readonly Injection[],
): RewrittenRequest {
  checkProxyRequest(request);
  const first = injections[0];
  if (first === undefined || !injections.every((i) => bindingMatches(i.binding, request.authority)))
    throw forbidden(
      HOST_NOT_BOUND,
      `no live proxy lease binds the host \`${printable(request.authority)}\``,
    );
  const connectionListed = new Set<string>();
  for (const [name, value] of request.headers)
    if (name.toLowerCase() === 'connection')
      for (const token of value.split(',')) connectionListed.add(token.trim().toLowerCase());
  let headers: [string, string][] = request.headers
    .filter(([name]) => {
      const lower = name.toLowerCase();
      return !HOP_BY_HOP.has(lower) && !connectionListed.has(lower);
    })
    .map(([name, value]) => [name, value]);
  let body = request.body;
  const used: number[] = [];
  injections.forEach(({ binding, secret }, index) => {
    if (binding.header !== undefined) {
      const name = binding.header.name;
      const value = binding.header.format.replace('{secret}', () => headerText(secret));
      headers = headers.filter(([n]) => n.toLowerCase() !== name);
      headers.push([name, value]);
      used.push(index);
      return;
    }
    const placeholder = binding.placeholder!;
    let substituted = false;
    headers = headers.map(([name, value]) => {
      if (!value.includes(placeholder)) return [name, value];
      substituted = true;
      return [name, value.split(placeholder).join(headerText(secret))];
    });
    if (binding.placeholderInBody) {
      const replaced = replaceAll(body, latin1Bytes(placeholder), secret);
      if (replaced !== body) {
        substituted = true;
        if (body !== request.body) wipe(body);
        body = replaced;
      }
    }
    if (substituted) used.push(index);
  });
  headers.push(['host', first.binding.host], ['accept-encoding', 'identity']);
  return {
    upstream: {
      scheme: first.binding.scheme,
      hostname: first.binding.hostname.replace(/^\[|\]$/g, ''),
      port: first.binding.port,
      method: request.method,
      path: request.path,
      headers,
      body,
    },
    used,
  };
}

/** The secret as header text: printable ASCII only (a header cannot carry anything else safely). */
function headerText(secret: Uint8Array): string {
  for (const byte of secret)
    if (byte < 0x20 || byte > 0x7e)
      throw invalid(SECRET_UNFIT, 'the secret has bytes a header value cannot carry');
  return String.fromCharCode(...secret);
}

function latin1Bytes(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0xff;
  return bytes;
}

/** `haystack` with every `needle` replaced by `by`; the same array when there is none. */
function replaceAll(haystack: Uint8Array, needle: Uint8Array, by: Uint8Array): Uint8Array {
  const h = Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength);
  let at = h.indexOf(needle);
  if (at < 0) return haystack;
  const parts: Uint8Array[] = [];
  let from = 0;
  while (at >= 0) {
    parts.push(haystack.subarray(from, at), by);
    from = at + needle.length;
    at = h.indexOf(needle, from);
  }
  parts.push(haystack.subarray(from));
  return concatBytes(...parts);
}

/** A user value for an error message: printable, bounded. */
function printable(text: string): string {
  const shown = text.slice(0, 64).replace(/[^\x20-\x7e]/g, '?');
  return text.length > 64 ? `${shown}…` : shown;
}

// ---------------------------------------------------------------------------------------------
// The response scrub.

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * The byte strings a response must not carry for `secret`: the secret itself; its base64 and
 * base64url forms at each of the three alignments it can have inside a longer base64 text (only
 * the characters that depend on the secret's bytes alone, so `Basic base64(user:secret)` is
 * caught too); its URL-encoded (percent) forms with upper- and lower-case hex. Distinct, each at
 * least `MIN_INJECTED_SECRET_BYTES` long for a secret of that size.
 */
export function secretForms(secret: Uint8Array): Uint8Array[] {
  const forms: string[] = [];
  const n = secret.length;
  for (let k = 0; k < 3; k++) {
    const padded = new Uint8Array(k + n);
    padded.set(secret, k);
    const text = base64(padded);
    wipe(padded);
    const stable = text.slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + n)) / 6));
    forms.push(stable, stable.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  let upper = '';
  for (const byte of secret) {
    const char = String.fromCharCode(byte);
    upper += UNRESERVED.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  forms.push(
    upper,
    upper.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
  );
  const distinct = new Map<string, Uint8Array>();
  distinct.set(`raw`, Uint8Array.from(secret));
  for (const form of forms)
    if (form.length > 0 && !distinct.has(`t:${form}`)) distinct.set(`t:${form}`, latin1Bytes(form));
  // The raw secret may equal one of its text forms (an all-unreserved secret is its own URL form).
  const unique: Uint8Array[] = [];
  for (const bytes of distinct.values())
    if (!unique.some((u) => bytesEqual(u, bytes))) unique.push(bytes);
  return unique;
}

function base64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i]!;
    const b = bytes[i + 1];
    const c = bytes[i + 2];
    out += B64[a >> 2]!;
    out += B64[((a & 3) << 4) | ((b ?? 0) >> 4)]!;
    out += b === undefined ? '=' : B64[((b & 15) << 2) | ((c ?? 0) >> 6)]!;
    out += c === undefined ? '=' : B64[c & 63]!;
  }
  return out;
}

/**
 * Replaces every occurrence of a set of byte patterns with {@link SCRUB_MARKER}, leftmost first
 * and, at one position, the longest pattern first. `scrub` does a whole value; `stream` gives a
 * {@link ScrubStream} whose output, however the input is cut into chunks, equals `scrub` of the
 * whole (it holds back at most the longest pattern's length less one byte). `wipe` clears the
 * patterns (they are the secret and its encodings).
 */
export class Scrubber {
  readonly #patterns: Uint8Array[];
  readonly #marker = latin1Bytes(SCRUB_MARKER);

  constructor(patterns: readonly Uint8Array[]) {
    this.#patterns = patterns.filter((p) => p.length > 0).map((p) => Uint8Array.from(p));
  }

  /** A scrubber for the secrets' forms ({@link secretForms}). */
  static forSecrets(secrets: readonly Uint8Array[]): Scrubber {
    const forms = secrets.flatMap((s) => secretForms(s));
    const scrubber = new Scrubber(forms);
    for (const form of forms) wipe(form);
    return scrubber;
  }

  scrub(bytes: Uint8Array): Uint8Array {
    const { out } = this.scan(bytes, true);
    return out;
  }

  /** Header text (latin1, as HTTP carries it). */
  scrubText(text: string): string {
    const bytes = latin1Bytes(text);
    const out = this.scrub(bytes);
    return out === bytes ? text : String.fromCharCode(...out);
  }

  stream(): ScrubStream {
    return new ScrubStream(this);
  }

  /** @internal One pass over `data`: what can be emitted now, and where the held-back tail starts. */
  scan(data: Uint8Array, final: boolean): { out: Uint8Array; keepFrom: number } {
    const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const parts: Uint8Array[] = [];
    // Each pattern's next occurrence at or after `pos` (-1: none left; searched again only once
    // `pos` passes it), and where the tail of `data` could begin a pattern: linear in `data`.
    const next = this.#patterns.map(() => -2);
    const partials = final ? [] : this.#partialStarts(data);
    let pos = 0;
    let replaced = false;
    for (;;) {
      let best = -1;
      let bestLength = 0;
      this.#patterns.forEach((pattern, i) => {
        if (next[i]! !== -1 && next[i]! < pos) next[i] = view.indexOf(pattern, pos);
        const at = next[i]!;
        if (at >= 0 && (best < 0 || at < best || (at === best && pattern.length > bestLength))) {
          best = at;
          bestLength = pattern.length;
        }
      });
      // A pattern that starts at or before the earliest full match and runs past the end of
      // what we have could still win there: wait for more bytes.
      const partial = partials.find((q) => q >= pos) ?? -1;
      if (partial >= 0 && (best < 0 || partial <= best)) {
        parts.push(data.subarray(pos, partial));
        return {
          out: replaced ? concatBytes(...parts) : data.subarray(0, partial),
          keepFrom: partial,
        };
      }
      if (best < 0) {
        parts.push(data.subarray(pos));
        return { out: replaced ? concatBytes(...parts) : data, keepFrom: data.length };
      }
      parts.push(data.subarray(pos, best), this.#marker);
      replaced = true;
      pos = best + bestLength;
    }
  }

  /** The positions, ascending, where the rest of `data` is a proper prefix of a pattern. */
  #partialStarts(data: Uint8Array): number[] {
    const starts = new Set<number>();
    for (const pattern of this.#patterns)
      for (let q = Math.max(0, data.length - pattern.length + 1); q < data.length; q++) {
        let prefix = true;
        for (let j = 0; q + j < data.length; j++)
          if (data[q + j] !== pattern[j]) {
            prefix = false;
            break;
          }
        if (prefix) starts.add(q);
      }
    return [...starts].sort((x, y) => x - y);
  }

  wipe(): void {
    for (const pattern of this.#patterns) wipe(pattern);
  }
}

/** The streaming side of a {@link Scrubber}: `push` each chunk, then `end`. */
export class ScrubStream {
  readonly #scrubber: Scrubber;
  #carry: Uint8Array = new Uint8Array(0);

  constructor(scrubber: Scrubber) {
    this.#scrubber = scrubber;
  }

  /** Scrubbed bytes that are final now (possibly empty). */
  push(chunk: Uint8Array): Uint8Array {
    const data = this.#carry.length === 0 ? chunk : concatBytes(this.#carry, chunk);
    const { out, keepFrom } = this.#scrubber.scan(data, false);
    this.#carry = Uint8Array.from(data.subarray(keepFrom));
    return out;
  }

  /** The rest. */
  end(): Uint8Array {
    const { out } = this.#scrubber.scan(this.#carry, true);
    this.#carry = new Uint8Array(0);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// The lease provider.

/** What a proxy lease's holder gets: where to send its requests, never the secret. */
export interface ProxyLeaseValue {
  /** The bound `host[:port]`. */
  readonly host: string;
  readonly scheme: InjectionScheme;
  /** The header the proxy sets, for a header binding. */
  readonly header?: string;
  /** The token to put where the secret would go, for a placeholder binding. */
  readonly placeholder?: string;
}

/** A live proxy lease and its binding, as the egress service applies it. */
export interface ActiveInjection {
  readonly lease: Lease;
  readonly binding: InjectionBinding;
}

/** Options of {@link ProxyLeaseProvider}. */
export interface ProxyLeaseProviderOptions {
  /** The sealed store (or anything that reads it); the bytes read are wiped after use. */
  readonly secrets: SecretReader;
  /** The bindings, validated with {@link parseInjectionBinding}; one per secret name. */
  readonly bindings: readonly unknown[];
  readonly clock?: Clock;
}

/**
 * The `proxy` kind of lease: the lease's `resource` names a binding (by its secret), and while
 * the lease is live the egress service injects that secret into its holder's requests for the
 * binding's host. The registrations are in memory: revoke and reap remove them at once, and a
 * lease whose `expiresAt` has passed stops injecting on the next request, before the broker's
 * expiry sweep. After a broker restart, `restore` re-registers the live leases the broker kept.
 * Issuing reads the secret once (it must exist, be at least 8 bytes, and fit a header for a
 * header binding), then wipes it.
 */
export class ProxyLeaseProvider implements LeaseProvider<ProxyLeaseValue> {
  readonly kind = LeaseKind.proxy;
  readonly #secrets: SecretReader;
  readonly #bindings: ReadonlyMap<string, InjectionBinding>;
  readonly #clock: Clock;
  /** By handle (the lease id). */
  readonly #live = new Map<string, ActiveInjection>();

  constructor(options: ProxyLeaseProviderOptions) {
    this.#secrets = options.secrets;
    this.#clock = options.clock ?? systemClock;
    const bindings = new Map<string, InjectionBinding>();
    for (const config of options.bindings) {
      const binding = parseInjectionBinding(config);
      if (bindings.has(binding.secret))
        throw invalid(
          BINDING_INVALID,
          `the secret \`${binding.secret}\` has more than one injection binding`,
        );
      bindings.set(binding.secret, binding);
    }
    this.#bindings = bindings;
  }

  /** The configured bindings. */
  bindings(): readonly InjectionBinding[] {
    return [...this.#bindings.values()];
  }

  async issue(context: LeaseContext): Promise<IssuedLease<ProxyLeaseValue>> {
    const binding = this.#binding(context.resource);
    await this.#checkSecret(binding);
    const lease: Lease = {
      id: context.leaseId,
      kind: LeaseKind.proxy,
      holder: context.holder,
      chainIds: context.chain.revocationSubjects,
      resource: context.resource,
      scope: context.scope,
      createdAt: context.nowSeconds,
      expiresAt: context.expiresAt,
      maxExpiresAt: context.expiresAt,
      renewals: 0,
      state: LeaseState.active,
      handle: context.leaseId,
    };
    this.#live.set(lease.handle, { lease, binding });
    return { handle: lease.handle, value: leaseValue(binding) };
  }

  renew(lease: Lease, context: LeaseContext): Promise<undefined> {
    const active = this.#live.get(lease.handle);
    if (active !== undefined)
      this.#live.set(lease.handle, {
        lease: { ...lease, expiresAt: context.expiresAt },
        binding: active.binding,
      });
    return Promise.resolve(undefined);
  }

  revoke(lease: Lease): Promise<void> {
    this.#live.delete(lease.handle);
    return Promise.resolve();
  }

  reap(live: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    for (const handle of [...this.#live.keys()])
      if (!live.has(handle)) {
        this.#live.delete(handle);
        removed++;
      }
    return Promise.resolve(removed);
  }

  /**
   * Re-registers the broker's active proxy leases after a restart (the registrations are in
   * memory). Leases of other kinds, ended ones, and ones naming no binding are skipped. Returns
   * how many were restored.
   */
  restore(leases: readonly Lease[]): number {
    let restored = 0;
    for (const lease of leases) {
      if (lease.kind !== LeaseKind.proxy || lease.state !== LeaseState.active) continue;
      const binding = this.#bindings.get(lease.resource);
      if (binding === undefined) continue;
      this.#live.set(lease.handle, { lease, binding });
      restored++;
    }
    return restored;
  }

  /**
   * The holder's live leases whose binding is for `authority`, oldest first; leases past their
   * `expiresAt` are dropped on the way.
   */
  injectionsFor(
    holder: Identifier,
    authority: string,
    nowSeconds = this.#clock.nowSeconds(),
  ): readonly ActiveInjection[] {
    const found: ActiveInjection[] = [];
    for (const [handle, active] of this.#live) {
      if (active.lease.expiresAt <= nowSeconds) {
        this.#live.delete(handle);
        continue;
      }
      if (active.lease.holder === holder && bindingMatches(active.binding, authority))
        found.push(active);
    }
    return found.sort((a, b) => a.lease.createdAt - b.lease.createdAt);
  }

  /** The secret's current value; the caller wipes it. */
  readSecret(name: string): Promise<Uint8Array> {
    return this.#secrets.read(name);
  }

  #binding(resource: string): InjectionBinding {
    const binding = this.#bindings.get(resource);
    if (binding === undefined)
      throw notFound(
        'ERR_PROXY_BINDING_NOT_FOUND',
        `no injection binding is configured for the secret \`${printable(resource)}\``,
      );
    return binding;
  }

  async #checkSecret(binding: InjectionBinding): Promise<void> {
    const secret = await this.#secrets.read(binding.secret);
    try {
      if (secret.length < MIN_INJECTED_SECRET_BYTES)
        throw invalid(
          SECRET_UNFIT,
          `the secret \`${binding.secret}\` is shorter than ${MIN_INJECTED_SECRET_BYTES} bytes`,
        );
      if (binding.header !== undefined || !binding.placeholderInBody) headerText(secret);
    } finally {
      wipe(secret);
    }
  }
}

function leaseValue(binding: InjectionBinding): ProxyLeaseValue {
  return {
    host: binding.host,
    scheme: binding.scheme,
    ...(binding.header === undefined ? {} : { header: binding.header.name }),
    ...(binding.placeholder === undefined ? {} : { placeholder: binding.placeholder }),
  };
}
