import { invalid } from '../core/internal.js';
import {
  decodeCbor,
  encodeCbor,
  expectArray,
  expectBytes,
  expectUint,
  fromHex,
  toHex,
  type CborValue,
} from '../encoding/index.js';

/**
 * The content of a policy bundle (docs/spec/policy.md §2), in Mandate's minicbor conventions:
 *
 *   BundleContent = [ issuer: bstr32, version: uint, created_at: uint,
 *                     policies: tstr, schema: tstr, ? catalog: tstr ]
 *
 * `issuer` is the signing authority's identifier bytes (SHA-256 of its first change), `version`
 * is monotonic per issuer (from 1), `created_at` unix seconds, `policies` the Cedar policy set
 * and `schema` the Cedar schema (human-readable format) the policies were validated against, both
 * as their author wrote them; `catalog`, when present, the tool catalog the gates enforce (canonical
 * JSON, docs/spec/policy.md §2: the gates take their tools from it, so the call-time catalog
 * cannot change a tool's argument types or server). The signed envelope around it (VersionedData, signature,
 * attestation) is the gates' (src/gates/bundle.ts): this layer knows no identities.
 */

/** Bound on a whole signed bundle, so one input can only cost so much to decode. */
export const MAX_BUNDLE_BYTES = 2 * 1024 * 1024;
/** Bound on each of the two texts (the policy engine's own bound on a policy set). */
export const MAX_BUNDLE_TEXT_BYTES = 1024 * 1024;

const MALFORMED = 'ERR_BUNDLE_MALFORMED';
const IDENTIFIER_RE = /^I[0-9a-f]{64}$/;
const utf8 = new TextEncoder();

/** What an authority signs in a bundle. */
export interface BundleContent {
  /** The signing authority's identifier (`I` + 64 hex digits). */
  readonly issuer: string;
  /** Monotonic per issuer, from 1. */
  readonly version: number;
  /** Unix seconds. */
  readonly createdAt: number;
  /** The Cedar policy set, as written. */
  readonly policies: string;
  /** The Cedar schema the policies validate against, as written. */
  readonly schema: string;
  /** The tool catalog the gates enforce, as canonical JSON text (absent: none is bound). */
  readonly catalog?: string;
}

function checkText(text: unknown, what: string, code: `ERR_${string}`): string {
  if (typeof text !== 'string') throw invalid(code, `the bundle's ${what} must be text`);
  const bytes = utf8.encode(text).length;
  if (bytes > MAX_BUNDLE_TEXT_BYTES)
    throw invalid(
      'ERR_BUNDLE_TOO_LARGE',
      `the bundle's ${what} has ${bytes} bytes, at most ${MAX_BUNDLE_TEXT_BYTES} allowed`,
    );
  return text;
}

/** `ERR_BUNDLE_TOO_LARGE` past {@link MAX_BUNDLE_BYTES}: checked before anything is decoded. */
export function checkBundleSize(byteLength: number, what: string): void {
  if (byteLength > MAX_BUNDLE_BYTES)
    throw invalid(
      'ERR_BUNDLE_TOO_LARGE',
      `the ${what} has ${byteLength} bytes, at most ${MAX_BUNDLE_BYTES} allowed`,
    );
}

/** Checks the fields an authority is about to sign; returns them unchanged. */
export function checkBundleContent(content: BundleContent): BundleContent {
  if (typeof content.issuer !== 'string' || !IDENTIFIER_RE.test(content.issuer))
    throw invalid('ERR_ARGUMENT_INVALID', 'a bundle issuer is an identifier (`I` + 64 hex digits)');
  if (!Number.isSafeInteger(content.version) || content.version < 1)
    throw invalid('ERR_ARGUMENT_INVALID', '`version` must be a positive integer');
  if (!Number.isSafeInteger(content.createdAt) || content.createdAt < 0)
    throw invalid('ERR_ARGUMENT_INVALID', '`createdAt` must be unix seconds');
  checkText(content.policies, 'policy set', 'ERR_ARGUMENT_INVALID');
  checkText(content.schema, 'schema', 'ERR_ARGUMENT_INVALID');
  if (content.catalog !== undefined) checkText(content.catalog, 'catalog', 'ERR_ARGUMENT_INVALID');
  return content;
}

/** BundleContent → its CBOR bytes (what goes into the signed envelope). */
export function encodeBundleContent(content: BundleContent): Uint8Array {
  const c = checkBundleContent(content);
  return encodeCbor([
    fromHex(c.issuer.slice(1), 'bundle issuer'),
    c.version,
    c.createdAt,
    c.policies,
    c.schema,
    ...(c.catalog === undefined ? [] : [c.catalog]),
  ]);
}

/**
 * Strict decoding of BundleContent bytes (`ERR_BUNDLE_MALFORMED`, `ERR_BUNDLE_TOO_LARGE`);
 * nothing here is trusted until the envelope's signature is verified. Version 0 is refused:
 * versions start at 1, so "no bundle yet" and a bundle are never confused.
 */
export function decodeBundleContent(bytes: Uint8Array): BundleContent {
  checkBundleSize(bytes.byteLength, 'bundle content');
  const fields = expectArray(
    decodeCbor(bytes, {
      errorCode: MALFORMED,
      what: 'bundle content',
      maxDepth: 1,
      maxBytes: MAX_BUNDLE_BYTES,
    }),
    MALFORMED,
    'bundle content',
    5,
    6,
  );
  const issuer = `I${toHex(expectBytes(fields[0], MALFORMED, 'bundle issuer', 32))}`;
  const version = expectUint(fields[1], MALFORMED, 'bundle version');
  if (version < 1) throw invalid(MALFORMED, 'a bundle version starts at 1');
  const createdAt = expectUint(fields[2], MALFORMED, 'bundle created_at');
  const policies = checkText(fields[3] satisfies CborValue | undefined, 'policy set', MALFORMED);
  const schema = checkText(fields[4] satisfies CborValue | undefined, 'schema', MALFORMED);
  if (fields.length === 5) return { issuer, version, createdAt, policies, schema };
  const catalog = checkText(fields[5] satisfies CborValue | undefined, 'catalog', MALFORMED);
  return { issuer, version, createdAt, policies, schema, catalog };
}
