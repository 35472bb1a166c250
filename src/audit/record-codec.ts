// Strict reading and writing of audit records (docs/spec/audit.md, "Records"): the entry bytes are
// the record's JCS text exactly; every member is checked for type and bound; unknown members are
// refused. What a signature covers is JCS of the record without its `signature` member.
import { invalid, unauthorized } from '../core/internal.js';
import {
  canonicalizeJson,
  decodeBase64Strict,
  hasControlCharacters,
  toBase64Url,
  toHex,
  utf8Bytes,
} from '../encoding/index.js';
import { jcsSha256, sha256, sha256Hex } from '../crypto/index.js';
import type { Identifier } from '../identity/index.js';
import {
  AUDIT_RECORD_TYPES,
  CHAIN_RECORD_TYPE,
  CHAIN_REF_INVOCATION_RECORD_TYPE,
  DECISION_RECORD_TYPE,
  INVOCATION_RECORD_TYPE,
  LEASE_RECORD_TYPE,
  OUTCOME_RECORD_TYPE,
  TRACE_RECORD_TYPE,
  type AuditRecord,
  type ChainRecord,
  type DecisionApproval,
  type DecisionRecord,
  type InvocationRecord,
  type InvocationReport,
  type LeaseRecord,
  type OutcomeRecord,
  type RecordHash,
  type RecordSignature,
  type TraceRecord,
} from './records.js';
import { MAX_AUDIT_RECORD_BYTES } from './repository.js';

const MALFORMED = 'ERR_AUDIT_RECORD_MALFORMED';
/** Bound on a tool, server, lock, code, lease id or resource name (characters). */
export const MAX_RECORD_NAME_CHARS = 256;
/** Bound on one reason or the agent's reasoning (characters). */
export const MAX_RECORD_TEXT_CHARS = 16_384;
/** Bound on list members (reasons, policies, leases, reported inputs). */
export const MAX_RECORD_LIST_ITEMS = 256;
/** Bound on a delegation chain or attestation carried in a record (bytes, before base64url). */
const MAX_BLOB_BYTES = 256 * 1024;

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function fail(why: string): never {
  throw invalid(MALFORMED, `audit record: ${why}`);
}

export { toBase64Url };

// The last signature text signatureText wrote: Node's base64url encoder writes the one canonical
// unpadded text of its bytes, and 86 characters are 64 bytes — what `signature` accepts and
// signatureMember writes as it is. So the record this process just signed is not tested by
// regex again (one such test of a fresh string costs about 0.27 µs, measured); any other value
// still is.
let writtenSignature = '';

/** A signature's bytes as a record's `signature.value`: base64url without padding. */
export function signatureText(bytes: Uint8Array): string {
  const text = toBase64Url(bytes);
  if (text.length === 86) writtenSignature = text;
  return text;
}

// The last nonce text nonceText wrote: lower-case hex of 16 bytes by construction (Node's hex
// encoder), what an invocation's `nonce` must be; the record just built is not tested by regex.
let writtenNonce = '';

/** An invocation's 16-byte nonce as its `nonce` member: 32 lower-case hex digits. */
export function nonceText(nonce: Uint8Array): string {
  const text = toHex(nonce);
  if (text.length === 32) writtenNonce = text;
  return text;
}

/** Strict base64url without padding: the canonical spelling of its bytes only. */
export function fromBase64Url(text: string, what: string, maxBytes = MAX_BLOB_BYTES): Uint8Array {
  if (typeof text !== 'string') fail(`\`${what}\` is not base64url`);
  if ((text.length * 3) / 4 > maxBytes + 3) fail(`\`${what}\` is over ${maxBytes} bytes`);
  const bytes = decodeBase64Strict(text, 'base64url');
  if (bytes === undefined) fail(`\`${what}\` is not canonical base64url (unpadded)`);
  return bytes;
}

// An agent presents the same chain call after call: its hex SHA-256 is kept by the bytes object.
const chainHashes = new WeakMap<Uint8Array, { readonly copy: Uint8Array; readonly text: string }>();

/** Hex SHA-256 of a delegation chain's bytes: what a `mandate/invocation/v2` record names. */
export function chainHashOf(chain: Uint8Array): string {
  return keptText(chainHashes, chain, sha256Hex);
}

/** `make(bytes)`, kept by the bytes object (checked equal to a copy) for bytes of 96 or more. */
export function keptText(
  kept: WeakMap<Uint8Array, { readonly copy: Uint8Array; readonly text: string }>,
  bytes: Uint8Array,
  make: (bytes: Uint8Array) => string,
): string {
  const known = kept.get(bytes);
  // Buffer.compare takes the Uint8Array itself: no Buffer view of it made.
  if (known !== undefined && Buffer.compare(bytes, known.copy) === 0) return known.text;
  const text = make(bytes);
  if (bytes.length >= 96) kept.set(bytes, { copy: bytes.slice(), text });
  return text;
}

/** Hex SHA-256 of a record's exact bytes. */
export function auditRecordHash(bytes: Uint8Array): RecordHash {
  return wroteDigest(sha256Hex(bytes));
}

/**
 * Hex SHA-256 of a record's text's UTF-8 bytes: {@link auditRecordHash} of the bytes
 * {@link signedBytes} writes for that text (a string, which no caller can change afterwards).
 */
export function auditRecordHashOfText(text: string): RecordHash {
  return wroteDigest(sha256Hex(text));
}

// The digests auditRecordHash and jsonDigest write are 64 lower-case hex digits by
// construction, as `hash` checks: kept among the accepted ones ({@link Accepted}), so that a
// record this process builds, naming them (the arguments' digest, the previous invocation), finds
// them there before the regex.
function wroteDigest(digest: string): string {
  ACCEPTED_HEX64.remember(digest);
  return digest;
}

/**
 * Hex SHA-256 of the JCS text of a JSON value (arguments, results, reported inputs): crypto's
 * `jcsSha256`, the digest approvals bind too (gates' `argumentsDigest`).
 */
export function jsonDigest(value: unknown): string {
  return wroteDigest(jcsSha256(value).digest);
}

// Long strings repeat from record to record (an agent's chain and attestation): their JCS text
// is kept, keyed by the string itself.
const longStrings = new Map<string, string>();
const LONG_STRING_CHARS = 128;
const LONG_STRINGS_KEPT = 256;

/** canonicalizeJson's default depth bound (64) for a record, less the record's own level. */
const MEMBER_MAX_DEPTH = 63;

// Member names are the records' own few: their JCS text is kept.
const memberNames = new Map<string, string>();

function canonicalName(key: string): string {
  let text = memberNames.get(key);
  if (text === undefined) {
    text = canonicalizeJson(key);
    if (memberNames.size < 256) memberNames.set(key, text);
  }
  return text;
}

function canonicalMember(key: string, value: unknown): string {
  return `${canonicalName(key)}:${canonicalValue(value)}`;
}

/** A member's value as JCS text (see {@link canonicalMember}). */
function canonicalValue(value: unknown): string {
  if (typeof value === 'string' && value.length >= LONG_STRING_CHARS) {
    let text = longStrings.get(value);
    if (text === undefined) {
      text = canonicalizeJson(value);
      if (longStrings.size >= LONG_STRINGS_KEPT) longStrings.clear();
      longStrings.set(value, text);
    }
    return text;
  }
  // A member sits one level below the record: canonicalizeJson's depth bound, counted from it.
  return canonicalizeJson(value, MEMBER_MAX_DEPTH);
}

type SignatureValue = { keyType: 'ed25519' | 'p256'; value: string };

/**
 * A record's JCS text without its `signature` member, in the two parts that member goes
 * between: JCS sorts an object's members by name (UTF-16 code units, RFC 8785 §3.2.3), so the
 * signed text is the signing text with one member spliced in, and both come from one pass.
 */
export interface UnsignedText {
  /** The members that sort before `signature`, JCS, comma-separated. */
  readonly before: string;
  /** The members that sort after it (`''` when none). */
  readonly after: string;
  /** `{before,after}`: the text the signature covers (its UTF-8 bytes). */
  readonly signingText: string;
}

// A writer builds records of a few shapes: the sorted member names of the last ones seen are
// kept with their names in Object.keys order (member names are internalized strings: comparing
// two lists is comparing pointers), so a body of a known shape is not sorted again — and with
// each name's JCS text and colon (`"name":`), and whether it sorts before `signature`.
const SHAPES_KEPT = 16;

interface Shape {
  readonly names: readonly string[];
  /** The names but `signature`, sorted by UTF-16 code units (as JCS asks, and as sort() compares). */
  readonly sorted: readonly string[];
  /** `"name":` of each sorted name. */
  readonly prefixes: readonly string[];
  /** How many sorted names come before `signature`. */
  readonly before: number;
}

const shapes: Shape[] = [];

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The shape of Object.keys(body). */
function shapeOf(body: object): Shape {
  const names = Object.keys(body);
  for (const shape of shapes) if (sameNames(shape.names, names)) return shape;
  const sorted = names.filter((name) => name !== 'signature').sort();
  const shape: Shape = {
    names,
    sorted,
    prefixes: sorted.map((name) => `${canonicalName(name)}:`),
    before: sorted.filter((name) => name < 'signature').length,
  };
  if (shapes.length >= SHAPES_KEPT) shapes.shift();
  shapes.push(shape);
  return shape;
}

/** The signing text of a record body (its members, JCS-sorted, without `signature`). */
export function unsignedText(body: object): UnsignedText {
  const { sorted, prefixes, before: count } = shapeOf(body);
  let before = '';
  let after = '';
  for (let i = 0; i < sorted.length; i++) {
    const member = prefixes[i]! + canonicalValue((body as Json)[sorted[i]!]);
    if (i < count) before = before === '' ? member : `${before},${member}`;
    else after = after === '' ? member : `${after},${member}`;
  }
  const signingText =
    before === '' || after === '' ? `{${before}${after}}` : `{${before},${after}}`;
  // The parts are cut from the signing text (slicing flattens it once, as hashing it would): the
  // signed text is then put together from two slices of one flat string, not from the trees of
  // pieces the members were joined from again (0.44 µs less per record, measured).
  return {
    before: signingText.slice(1, 1 + before.length),
    after: signingText.slice(signingText.length - 1 - after.length, signingText.length - 1),
    signingText,
  };
}

/** The `signature` member's JCS text (its key type and value are plain ASCII once checked). */
function signatureMember(signature: SignatureValue): string {
  const { keyType, value } = signature;
  // Key types and base64url are plain ASCII, written as they are; anything else goes through JCS.
  return (keyType === 'ed25519' || keyType === 'p256') &&
    typeof value === 'string' &&
    (value === writtenSignature || BASE64URL_TEXT.test(value))
    ? `"signature":{"keyType":"${keyType}","value":"${value}"}`
    : `"signature":${canonicalizeJson({ keyType, value })}`;
}

const BASE64URL_TEXT = /^[A-Za-z0-9_-]*$/;

/** The signed record's JCS text: the signing text with the `signature` member in its place. */
export function signedText(unsigned: UnsignedText, signature: SignatureValue): string {
  const { before, after } = unsigned;
  const member = signatureMember(signature);
  const head = before === '' ? member : `${before},${member}`;
  return after === '' ? `{${head}}` : `{${head},${after}}`;
}

/** {@link signedText}'s UTF-8 bytes. */
export function signedBytes(unsigned: UnsignedText, signature: SignatureValue): Uint8Array {
  return utf8Bytes(signedText(unsigned, signature));
}

/**
 * A record's JCS text without and with its `signature` member, from one pass over its members
 * (see {@link UnsignedText}); `signature` is given the signing text's UTF-8 bytes.
 */
export function encodeSignedRecord(
  body: object,
  signature: (signingBytes: Uint8Array) => Promise<SignatureValue>,
): Promise<{
  readonly text: string;
  readonly bytes: Uint8Array;
  readonly signature: SignatureValue;
}> {
  const unsigned = unsignedText(body);
  return signature(utf8.encode(unsigned.signingText)).then((sig) => {
    const text = signedText(unsigned, sig);
    return { text, bytes: utf8.encode(text), signature: sig };
  });
}

/** The bytes a record's signature covers: JCS of the record without `signature`. */
export function recordSigningBytes(record: object): Uint8Array {
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) if (key !== 'signature') body[key] = value;
  return utf8.encode(canonicalizeJson(body));
}

/** A record's entry bytes: its JCS text. */
export function encodeAuditRecord(record: AuditRecord): Uint8Array {
  return utf8.encode(canonicalizeJson(record));
}

// ---- member checks ----

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function exactKeys(
  o: Json,
  required: readonly string[],
  optional: readonly string[],
  what: string,
) {
  for (const k of required) if (!Object.hasOwn(o, k)) fail(`${what} has no \`${k}\``);
  // Every required member is there: the object has no other member exactly when its count is
  // theirs plus the optional ones it holds (own keys are distinct). Only then look for the odd one.
  let expected = required.length;
  for (const k of optional) if (Object.hasOwn(o, k)) expected++;
  const keys = Object.keys(o);
  if (keys.length === expected) return;
  for (const k of keys)
    if (!required.includes(k) && !optional.includes(k))
      fail(`${what} has an unknown member \`${k.slice(0, 64)}\``);
}

// The last names that passed (1 to MAX_RECORD_NAME_CHARS characters, no control character;
// strings do not change): tools, servers, policies recur from record to record, and comparing
// with them costs less than the control-character regex. Filled with a name to start with.
const passedNames: string[] = new Array<string>(8).fill('-');
let passedNameAt = 0;

function text(v: unknown, what: string, max = MAX_RECORD_NAME_CHARS, empty = false): string {
  if (max === MAX_RECORD_NAME_CHARS && passedNames.includes(v as string)) return v as string;
  if (typeof v !== 'string' || v.length > max || (!empty && v.length === 0))
    fail(`\`${what}\` must be a string of ${empty ? 0 : 1} to ${max} characters`);
  if (max <= MAX_RECORD_NAME_CHARS && hasControlCharacters(v))
    fail(`\`${what}\` holds a control character`);
  if (max === MAX_RECORD_NAME_CHARS && v.length > 0) {
    passedNames[passedNameAt] = v;
    passedNameAt = (passedNameAt + 1) % passedNames.length;
  }
  return v;
}

function nullableText(v: unknown, what: string): string | null {
  return v === null ? null : text(v, what);
}

function seconds(v: unknown, what: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) fail(`\`${what}\` must be Unix seconds`);
  return v as number;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const HEX = /^(?:[0-9a-f]{2})*$/;
const SIGNATURE_64 = /^[A-Za-z0-9_-]{85}[AQgw]$/;

/**
 * A slot among `SLOTS` for a string of 32 characters or more, from three of its characters
 * (where hashes, identifiers, chains and attestations differ: near the start, the middle and
 * the end). A slot holds one string, compared whole: finding a string there costs no hash of it.
 */
const SLOTS = 64;

function slotOf(t: string): number {
  const n = t.length;
  return (t.charCodeAt(24) + 7 * t.charCodeAt(n >> 1) + 31 * t.charCodeAt(n - 2) + n) & (SLOTS - 1);
}

/**
 * `pattern.test`, with the strings it accepted kept in slots ({@link slotOf}): records repeat
 * identifiers and hashes (an agent, its chain's hash, a bundle), and a string equal to one it
 * accepted is accepted again without running it.
 */
class Accepted {
  readonly #slots: (string | undefined)[] = Array.from({ length: SLOTS }, () => undefined);

  constructor(readonly pattern: RegExp) {}

  test(v: string): boolean {
    if (v.length < 32) return this.pattern.test(v);
    const at = slotOf(v);
    if (this.#slots[at] === v) return true;
    if (!this.pattern.test(v)) return false;
    this.#slots[at] = v;
    return true;
  }

  /** Keeps `v`, which its writer made to match the pattern (a digest it just computed). */
  remember(v: string): void {
    if (v.length >= 32) this.#slots[slotOf(v)] = v;
  }
}

const ACCEPTED_HEX64 = new Accepted(HEX64);

function hash(v: unknown, what: string): string {
  if (typeof v !== 'string' || !ACCEPTED_HEX64.test(v))
    fail(`\`${what}\` must be 64 lower-case hex digits`);
  return v;
}

function nullableHash(v: unknown, what: string): string | null {
  return v === null ? null : hash(v, what);
}

const IDENTIFIER = new Accepted(/^I[0-9a-f]{64}$/);

function identifier(v: unknown, what: string): Identifier {
  if (typeof v !== 'string' || !IDENTIFIER.test(v)) fail(`\`${what}\` is not an identifier`);
  return v as Identifier;
}

function oneOf<T extends string>(v: unknown, values: readonly T[], what: string): T {
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v))
    fail(`\`${what}\` must be one of ${values.join(', ')}`);
  return v as T;
}

function list<T>(v: unknown, what: string, item: (x: unknown, w: string) => T): T[] {
  if (!Array.isArray(v) || v.length > MAX_RECORD_LIST_ITEMS)
    fail(`\`${what}\` must be a list of at most ${MAX_RECORD_LIST_ITEMS}`);
  return v.map((x, i) => item(x, `${what}[${i}]`));
}

const SIGNATURE_KEYS = ['keyType', 'value'] as const;
const NO_KEYS = [] as const;

function signature(v: unknown): RecordSignature {
  if (!isObject(v)) fail('`signature` must be an object');
  exactKeys(v, SIGNATURE_KEYS, NO_KEYS, '`signature`');
  const keyType = oneOf(v.keyType, ['ed25519', 'p256'] as const, 'signature.keyType');
  // Canonical unpadded base64url of exactly 64 bytes, checked without decoding: 86 characters
  // of the alphabet, the last one's 4 spare bits zero (what fromBase64Url would accept).
  if (typeof v.value !== 'string' || (v.value !== writtenSignature && !SIGNATURE_64.test(v.value)))
    fail('`signature.value` must be 64 bytes in canonical base64url');
  return { keyType, value: v.value };
}

// Chains and attestations repeat from record to record: a string checked once as canonical
// base64url of at most MAX_BLOB_BYTES is not decoded again (the check and the bytes are a
// function of the string); its bytes are kept for blobBytes.
const checkedBlobs = new Map<string, Uint8Array>();

/**
 * The bytes of a record's base64url member (a chain, an attestation), checked as fromBase64Url
 * does: a long string seen before is not decoded again. A fresh copy each call.
 */
export function blobBytes(v: unknown, what: string): Uint8Array {
  const known = typeof v === 'string' ? checkedBlob(v) : undefined;
  if (known !== undefined) return known.slice();
  const t = text(v, what, Math.ceil((MAX_BLOB_BYTES * 4) / 3) + 4);
  const bytes = fromBase64Url(t, what);
  if (t.length >= LONG_STRING_CHARS) {
    if (checkedBlobs.size >= LONG_STRINGS_KEPT) checkedBlobs.clear();
    checkedBlobs.set(t, bytes.slice());
  }
  return bytes;
}

function blob(v: unknown, what: string): string {
  if (typeof v === 'string' && checkedBlob(v) !== undefined) return v;
  blobBytes(v, what);
  return v as string;
}

// In front of checkedBlobs, slots ({@link slotOf}): a record's chain or attestation is a fresh
// string (JSON.parse makes one per record) hundreds of characters long, which a Map lookup
// hashes whole. A slot answers only for the very string it holds (compared whole): as strict as
// the Map, which answers otherwise.
const blobSlots: ({ readonly text: string; readonly bytes: Uint8Array } | undefined)[] = Array.from(
  { length: SLOTS },
  () => undefined,
);

/** The bytes kept for a string checked before (not a copy), if it was. */
function checkedBlob(v: string): Uint8Array | undefined {
  // (Only long strings are kept.)
  if (v.length < LONG_STRING_CHARS) return undefined;
  const at = slotOf(v);
  const slot = blobSlots[at];
  if (slot !== undefined && slot.text === v) return slot.bytes;
  const known = checkedBlobs.get(v);
  if (known !== undefined) blobSlots[at] = { text: v, bytes: known };
  return known;
}

function report(v: unknown): InvocationReport {
  if (!isObject(v)) fail('`report` must be an object');
  exactKeys(v, ['inputs', 'reasoning'], [], '`report`');
  const inputs = list(v.inputs, 'report.inputs', (x, w) => {
    if (!isObject(x)) fail(`\`${w}\` must be an object`);
    exactKeys(x, ['name', 'digest'], ['value'], `\`${w}\``);
    const name = text(x.name, `${w}.name`);
    const digest = hash(x.digest, `${w}.digest`);
    if (!Object.hasOwn(x, 'value')) return { name, digest };
    if (jsonDigest(x.value) !== digest) fail(`\`${w}.value\` does not match its digest`);
    return { name, digest, value: x.value };
  });
  return { inputs, reasoning: text(v.reasoning, 'report.reasoning', MAX_RECORD_TEXT_CHARS, true) };
}

function strings(v: unknown, what: string, max = MAX_RECORD_NAME_CHARS): string[] {
  return list(v, what, (x, w) => text(x, w, max, max > MAX_RECORD_NAME_CHARS));
}

const ENFORCER_KEYS = ['enforcer', 'attestation', 'signature'] as const;

const INVOCATION_KEYS = [
  'type',
  'agent',
  'tool',
  'server',
  'argumentsDigest',
  'nonce',
  'issuedAt',
  'previous',
  'attestation',
  'signature',
] as const;

const DECISION_KEYS = [
  'type',
  'invocation',
  'agent',
  'decision',
  'lock',
  'code',
  'reasons',
  'policies',
  'bundle',
  'escalation',
  'approval',
  'decidedAt',
  ...ENFORCER_KEYS,
] as const;

const DECISION_OPTIONAL_KEYS = ['arguments'] as const;

const OUTCOME_KEYS = [
  'type',
  'invocation',
  'agent',
  'status',
  'resultDigest',
  'error',
  'leases',
  'completedAt',
  ...ENFORCER_KEYS,
] as const;

const LEASE_KEYS = [
  'type',
  'invocation',
  'agent',
  'lease',
  'resource',
  'event',
  'at',
  'expiresAt',
  ...ENFORCER_KEYS,
] as const;

const TRACE_KEYS = [
  'type',
  'escalation',
  'resolvedBy',
  'agent',
  'chainHash',
  'approval',
  'policies',
  'report',
  'resolution',
  'recordedAt',
  ...ENFORCER_KEYS,
] as const;

const CHAIN_RECORD_KEYS = ['type', 'chain', 'chainHash', 'loggedAt', ...ENFORCER_KEYS] as const;

const INVOCATION_OPTIONAL_KEYS = ['report'] as const;
const VERBATIM_INVOCATION_KEYS = [...INVOCATION_KEYS, 'chain'] as const;
const CHAIN_REF_INVOCATION_KEYS = [...INVOCATION_KEYS, 'chainHash'] as const;

function invocation(o: Json): InvocationRecord {
  // v1 carries the chain verbatim, v2 names it by hash: otherwise the same members, assigned
  // onto the form's own (spreads into a literal made V8 build slow objects, measured).
  const verbatim = o.type === INVOCATION_RECORD_TYPE;
  exactKeys(
    o,
    verbatim ? VERBATIM_INVOCATION_KEYS : CHAIN_REF_INVOCATION_KEYS,
    INVOCATION_OPTIONAL_KEYS,
    'an invocation',
  );
  if (typeof o.nonce !== 'string' || (o.nonce !== writtenNonce && !HEX32.test(o.nonce)))
    fail('`nonce` must be 32 lower-case hex digits');
  const members = {
    agent: identifier(o.agent, 'agent'),
    tool: text(o.tool, 'tool'),
    server: nullableText(o.server, 'server'),
    argumentsDigest: hash(o.argumentsDigest, 'argumentsDigest'),
    nonce: o.nonce,
    issuedAt: seconds(o.issuedAt, 'issuedAt'),
    previous: nullableHash(o.previous, 'previous'),
    attestation: blob(o.attestation, 'attestation'),
    signature: signature(o.signature),
  };
  const record: InvocationRecord = verbatim
    ? Object.assign(
        { type: INVOCATION_RECORD_TYPE, chain: blob(o.chain, 'chain') } as const,
        members,
      )
    : Object.assign(
        {
          type: CHAIN_REF_INVOCATION_RECORD_TYPE,
          chainHash: hash(o.chainHash, 'chainHash'),
        } as const,
        members,
      );
  if (Object.hasOwn(o, 'report'))
    (record as { report?: InvocationReport }).report = report(o.report);
  return record;
}

function chainRecord(o: Json): ChainRecord {
  exactKeys(o, CHAIN_RECORD_KEYS, NO_KEYS, 'a chain record');
  // Whether `chainHash` is the chain's hash is the verifier's check (ERR_AUDIT_CHAIN_MISMATCH).
  return {
    type: CHAIN_RECORD_TYPE,
    chain: blob(o.chain, 'chain'),
    chainHash: hash(o.chainHash, 'chainHash'),
    loggedAt: seconds(o.loggedAt, 'loggedAt'),
    enforcer: identifier(o.enforcer, 'enforcer'),
    attestation: blob(o.attestation, 'attestation'),
    signature: signature(o.signature),
  };
}

function hexText(v: unknown, what: string, maxChars: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > maxChars || !HEX.test(v))
    fail(`\`${what}\` must be lower-case hex`);
  return v;
}

function approval(v: unknown): DecisionApproval | null {
  if (v === null) return null;
  if (!isObject(v)) fail('`approval` must be an object or null');
  exactKeys(
    v,
    [
      'id',
      'approver',
      'decision',
      'reason',
      'answeredAt',
      'shown',
      'signed',
      'signatureKeyType',
      'signature',
      'attestation',
      'approverChain',
    ],
    [],
    '`approval`',
  );
  const shown = v.shown;
  if (!isObject(shown)) fail('`approval.shown` must be an object');
  // `argumentsDigest` (always written now) or the disclosed `arguments` (records written before
  // the digest was added carry only the text): at least one.
  exactKeys(
    shown,
    ['tool', 'reason', 'policies', 'bundleHash'],
    ['argumentsDigest', 'arguments'],
    '`approval.shown`',
  );
  if (shown.argumentsDigest === undefined && shown.arguments === undefined)
    fail('`approval.shown` must carry `argumentsDigest` or `arguments`');
  return {
    id: text(v.id, 'approval.id'),
    approver: identifier(v.approver, 'approval.approver'),
    decision: oneOf(v.decision, ['approve', 'deny'] as const, 'approval.decision'),
    reason: text(v.reason, 'approval.reason', MAX_RECORD_TEXT_CHARS),
    answeredAt: seconds(v.answeredAt, 'approval.answeredAt'),
    shown: {
      tool: text(shown.tool, 'approval.shown.tool'),
      ...(shown.argumentsDigest === undefined
        ? {}
        : { argumentsDigest: hash(shown.argumentsDigest, 'approval.shown.argumentsDigest') }),
      ...(shown.arguments === undefined
        ? {}
        : {
            arguments: text(
              shown.arguments,
              'approval.shown.arguments',
              MAX_AUDIT_RECORD_BYTES,
              true,
            ),
          }),
      reason: text(shown.reason, 'approval.shown.reason', MAX_RECORD_TEXT_CHARS, true),
      policies: strings(shown.policies, 'approval.shown.policies'),
      bundleHash: text(shown.bundleHash, 'approval.shown.bundleHash'),
    },
    signed: text(v.signed, 'approval.signed', MAX_AUDIT_RECORD_BYTES),
    signatureKeyType: oneOf(
      v.signatureKeyType,
      ['ed25519', 'p256'] as const,
      'approval.signatureKeyType',
    ),
    signature: hexText(v.signature, 'approval.signature', 128),
    attestation: hexText(v.attestation, 'approval.attestation', MAX_BLOB_BYTES * 2),
    approverChain: hexText(v.approverChain, 'approval.approverChain', MAX_BLOB_BYTES * 2),
  };
}

function decision(o: Json): DecisionRecord {
  exactKeys(o, DECISION_KEYS, DECISION_OPTIONAL_KEYS, 'a decision');
  let escalation: DecisionRecord['escalation'] = null;
  if (o.escalation !== null) {
    const e = o.escalation;
    if (!isObject(e)) fail('`escalation` must be an object or null');
    exactKeys(e, ['id', 'reason', 'policies'], [], '`escalation`');
    escalation = {
      id: text(e.id, 'escalation.id'),
      reason: text(e.reason, 'escalation.reason', MAX_RECORD_TEXT_CHARS, true),
      policies: strings(e.policies, 'escalation.policies'),
    };
  }
  const record: DecisionRecord = {
    type: DECISION_RECORD_TYPE,
    invocation: hash(o.invocation, 'invocation'),
    agent: identifier(o.agent, 'agent'),
    decision: oneOf(o.decision, ['allow', 'deny', 'approval_required'] as const, 'decision'),
    lock: nullableText(o.lock, 'lock'),
    code: nullableText(o.code, 'code'),
    reasons: strings(o.reasons, 'reasons', MAX_RECORD_TEXT_CHARS),
    policies: strings(o.policies, 'policies'),
    bundle: nullableText(o.bundle, 'bundle'),
    escalation,
    approval: approval(o.approval),
    decidedAt: seconds(o.decidedAt, 'decidedAt'),
    enforcer: identifier(o.enforcer, 'enforcer'),
    attestation: blob(o.attestation, 'attestation'),
    signature: signature(o.signature),
  };
  if (Object.hasOwn(o, 'arguments')) (record as { arguments?: unknown }).arguments = o.arguments;
  return record;
}

function outcome(o: Json): OutcomeRecord {
  exactKeys(o, OUTCOME_KEYS, NO_KEYS, 'an outcome');
  const status = oneOf(o.status, ['ok', 'error'] as const, 'status');
  const resultDigest = nullableHash(o.resultDigest, 'resultDigest');
  const error = nullableText(o.error, 'error');
  if ((status === 'ok') !== (error === null) || (status === 'error' && resultDigest !== null))
    fail('an `ok` outcome has no `error`, an `error` outcome has an `error` and no `resultDigest`');
  return {
    type: OUTCOME_RECORD_TYPE,
    invocation: hash(o.invocation, 'invocation'),
    agent: identifier(o.agent, 'agent'),
    status,
    resultDigest,
    error,
    leases: strings(o.leases, 'leases'),
    completedAt: seconds(o.completedAt, 'completedAt'),
    enforcer: identifier(o.enforcer, 'enforcer'),
    attestation: blob(o.attestation, 'attestation'),
    signature: signature(o.signature),
  };
}

function lease(o: Json): LeaseRecord {
  exactKeys(o, LEASE_KEYS, NO_KEYS, 'a lease');
  return {
    type: LEASE_RECORD_TYPE,
    invocation: nullableHash(o.invocation, 'invocation'),
    agent: identifier(o.agent, 'agent'),
    lease: text(o.lease, 'lease'),
    resource: text(o.resource, 'resource'),
    event: oneOf(o.event, ['granted', 'renewed', 'used', 'revoked', 'expired'] as const, 'event'),
    at: seconds(o.at, 'at'),
    expiresAt: o.expiresAt === null ? null : seconds(o.expiresAt, 'expiresAt'),
    enforcer: identifier(o.enforcer, 'enforcer'),
    attestation: blob(o.attestation, 'attestation'),
    signature: signature(o.signature),
  };
}

function trace(o: Json): TraceRecord {
  exactKeys(o, TRACE_KEYS, NO_KEYS, 'a trace');
  const r = o.resolution;
  if (!isObject(r)) fail('`resolution` must be an object');
  exactKeys(r, ['decision', 'approver', 'reason', 'answeredAt'], [], '`resolution`');
  return {
    type: TRACE_RECORD_TYPE,
    escalation: hash(o.escalation, 'escalation'),
    resolvedBy: hash(o.resolvedBy, 'resolvedBy'),
    agent: identifier(o.agent, 'agent'),
    chainHash: hash(o.chainHash, 'chainHash'),
    approval: text(o.approval, 'approval'),
    policies: strings(o.policies, 'policies'),
    report: o.report === null ? null : report(o.report),
    resolution: {
      decision: oneOf(r.decision, ['approve', 'deny'] as const, 'resolution.decision'),
      approver: identifier(r.approver, 'resolution.approver'),
      reason: text(r.reason, 'resolution.reason', MAX_RECORD_TEXT_CHARS),
      answeredAt: seconds(r.answeredAt, 'resolution.answeredAt'),
    },
    recordedAt: seconds(o.recordedAt, 'recordedAt'),
    enforcer: identifier(o.enforcer, 'enforcer'),
    attestation: blob(o.attestation, 'attestation'),
    signature: signature(o.signature),
  };
}

/**
 * Reads one audit record from its entry bytes, strictly: UTF-8, at most 1 MiB, JSON whose JCS
 * text is exactly these bytes (no other spelling, no duplicate member), a known `type`, every
 * member present, typed and bounded, none unknown. A record without `signature` is
 * `ERR_AUDIT_SIGNATURE_MISSING`; anything else wrong is `ERR_AUDIT_RECORD_MALFORMED`. Checks no
 * signature (see verifyInvocation, verifyEnforcerRecord).
 */
export function parseAuditRecord(bytes: Uint8Array): AuditRecord {
  return readAuditRecord(bytes).record;
}

/**
 * {@link parseAuditRecord}, plus the bytes its signature covers, cut from the text itself: the
 * text is JCS, `signature` is never its first member (`agent` always sorts before it) and what
 * follows it at the top level holds no unescaped quote-comma sequence, so the last occurrence of
 * `,"signature":{…}` is the member.
 */
export function readAuditRecord(bytes: Uint8Array): {
  readonly record: AuditRecord;
  readonly signingBytes: Uint8Array;
} {
  const read = readSignedRecord(bytes);
  return { record: read.record, signingBytes: signingBytesOf(read) };
}

/**
 * A record read by {@link readSignedRecord}: the record, and where its `signature` member lies in
 * its entry bytes (`bytes[offset, offset + length)`), which the signature does not cover.
 */
export interface SignedRecordRead {
  readonly record: AuditRecord;
  readonly bytes: Uint8Array;
  readonly offset: number;
  readonly length: number;
}

/**
 * {@link readAuditRecord} without copying the signing bytes out: where the `signature` member
 * is, for {@link signingBytesOf} or {@link signingHashOf}. `text`, when given, must be the
 * strict UTF-8 decoding of `bytes` (a caller that encoded well-formed text into them): it is not
 * decoded again.
 */
export function readSignedRecord(bytes: Uint8Array, text?: string): SignedRecordRead {
  const read = decodeAuditRecord(bytes, text);
  const record = read.record;
  const textForm = read.text;
  // The member's JCS text, `,"signature":{"keyType":"K","value":"V"}`: its key type is
  // `ed25519` or `p256` and its value canonical base64url (checkAuditRecord's `signature`),
  // plain ASCII written as it is; `keyType` sorts before `value`. What
  // `,"signature":${canonicalizeJson(record.signature)}` writes. Its last occurrence is cut.
  const { keyType, value } = record.signature;
  const length = SIGNATURE_MEMBER_CHARS + keyType.length + value.length;
  // Where the JCS check walked to the member, the text there is `,"signature":` and the JCS of
  // the member's value, the object checkAuditRecord read K and V from (exactly those two
  // members): the member itself. It is the last occurrence when no `"signature":` follows (the
  // member holds one comma, before `"value"`, so no occurrence begins inside it). Else the text
  // is searched.
  const from = read.signatureFrom;
  const at =
    from !== -1 &&
    read.signatureTo - from === length &&
    textForm.indexOf('"signature":', read.signatureTo) === -1
      ? from
      : textForm.lastIndexOf(`,"signature":{"keyType":"${keyType}","value":"${value}"}`);
  if (at === -1) fail('the signature member is not where JCS puts it');
  // The member is ASCII: its bytes are cut out of the entry bytes (the UTF-8 offset of `at` is
  // `at` when the text is ASCII, as nearly every record is).
  const offset =
    textForm.length === bytes.length ? at : Buffer.byteLength(textForm.slice(0, at), 'utf8');
  return { record, bytes, offset, length };
}

/** The characters of `,"signature":{"keyType":"","value":""}`: the member without K and V. */
const SIGNATURE_MEMBER_CHARS = ',"signature":{"keyType":"","value":""}'.length;

/** The bytes a read record's signature covers: its entry bytes without the `signature` member. */
export function signingBytesOf(read: SignedRecordRead): Uint8Array {
  const { bytes, offset, length } = read;
  const signingBytes = new Uint8Array(bytes.length - length);
  signingBytes.set(bytes.subarray(0, offset), 0);
  signingBytes.set(bytes.subarray(offset + length), offset);
  return signingBytes;
}

// The signing bytes are put together in one reused buffer to be hashed (hashing is synchronous:
// no two uses overlap); records past its size get their own.
const SCRATCH_BYTES = 16 * 1024;
const scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);

/** SHA-256 of {@link signingBytesOf} (a fresh array), without copying them out. */
export function signingHashOf(read: SignedRecordRead): Uint8Array {
  const { bytes, offset, length } = read;
  const size = bytes.length - length;
  if (size > SCRATCH_BYTES) return sha256(signingBytesOf(read));
  scratch.set(bytes.subarray(0, offset), 0);
  scratch.set(bytes.subarray(offset + length), offset);
  return sha256(scratch.subarray(0, size));
}

/**
 * canonicalizeJson of a parsed record: a top-level object is written member by member, so the
 * long strings records repeat (a chain, an attestation) come from the cache canonicalMember
 * keeps instead of being escaped again. The same text (JCS of an object is its members' JCS,
 * sorted by name, in braces); anything else goes to canonicalizeJson.
 */
function canonicalRecordText(value: unknown): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return canonicalizeJson(value);
  const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const members = keys.map((key) => canonicalMember(key, (value as Json)[key]));
  return `{${members.join(',')}}`;
}

// Where the last isCanonicalText found its object's `signature` member, when not its first:
// `text[from, to)` is `,"signature":` and the member's value (from is -1 when not found).
let walkedSignatureFrom = -1;
let walkedSignatureTo = -1;

/** Nesting the fast check follows (a container deeper is left to canonicalRecordText). */
const FAST_CHECK_DEPTH = 16;
const QUOTE = 0x22;

/**
 * Whether `text` is `canonicalRecordText(value)`, without writing it: true only when it is (and
 * writing it would not throw); false when it is not or when unsure (then the writer decides).
 * `text` must hold no backslash and no lone surrogate: then no string in `value` (member names
 * included) holds a character JCS escapes (JSON writes `"`, `\` and controls only escaped) or a
 * lone surrogate, so JCS writes each string as it is between quotes. Numbers are written as
 * JSON.stringify writes finite ones (String does the same); an object's members in the order
 * Object.keys gives, which must already be JCS's (strictly ascending UTF-16 code units), else
 * unsure. The text is compared piece by piece, in order, to the end.
 */
export function isCanonicalText(value: unknown, text: string): boolean {
  walkedSignatureFrom = -1;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  if (text.indexOf('\\') !== -1) return false;
  return matchJcs(value, text, 0, 0) === text.length;
}

// String.prototype.startsWith is slower here than comparing a slice (measured, Node 20).

/** The position after the string `s` written as JCS `"s"` at `at` in `text`; -1 when not. */
function matchString(s: string, text: string, at: number): number {
  if (text.charCodeAt(at) !== QUOTE) return -1;
  const end = at + 1 + s.length;
  return text.charCodeAt(end) === QUOTE && text.slice(at + 1, end) === s ? end + 1 : -1;
}

/** The position after `written` at `at` in `text`; -1 when it is not there. */
function matchWritten(written: string, text: string, at: number): number {
  return text.slice(at, at + written.length) === written ? at + written.length : -1;
}

/** The position after `value`'s JCS text when `text` holds it at `at`; -1 when not (or unsure). */
function matchJcs(value: unknown, text: string, at: number, depth: number): number {
  if (typeof value === 'string') return matchString(value, text, at);
  if (typeof value === 'number')
    return Number.isFinite(value) ? matchWritten(String(value), text, at) : -1;
  if (value === null) return matchWritten('null', text, at);
  if (value === true) return matchWritten('true', text, at);
  if (value === false) return matchWritten('false', text, at);
  if (typeof value !== 'object' || depth >= FAST_CHECK_DEPTH) return -1;
  return Array.isArray(value)
    ? matchArray(value as unknown[], text, at, depth)
    : matchObject(value as Json, text, at, depth);
}

function matchArray(value: readonly unknown[], text: string, at: number, depth: number): number {
  if (text.charCodeAt(at) !== 0x5b) return -1; // [
  let i = at + 1;
  for (let k = 0; k < value.length; k++) {
    if (k > 0) {
      if (text.charCodeAt(i) !== 0x2c) return -1; // ,
      i++;
    }
    i = matchJcs(value[k], text, i, depth + 1);
    if (i === -1) return -1;
  }
  return text.charCodeAt(i) === 0x5d ? i + 1 : -1; // ]
}

function matchObject(value: Json, text: string, at: number, depth: number): number {
  if (Object.getPrototypeOf(value) !== Object.prototype || text.charCodeAt(at) !== 0x7b) return -1; // {
  const keys = Object.keys(value);
  let i = at + 1;
  let previous = '';
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k]!;
    const member = i;
    if (k > 0) {
      // JCS's order: strictly ascending UTF-16 code units (else unsure: integer-like names are
      // listed first by Object.keys).
      if (!(previous < key) || text.charCodeAt(i) !== 0x2c) return -1; // ,
      i++;
    }
    previous = key;
    // `"key":`, then the value; a string or null (most members) without a call.
    const end = i + 1 + key.length;
    if (
      text.charCodeAt(i) !== QUOTE ||
      text.charCodeAt(end) !== QUOTE ||
      text.charCodeAt(end + 1) !== 0x3a || // :
      text.slice(i + 1, end) !== key
    )
      return -1;
    i = end + 2;
    const v = value[key];
    if (typeof v === 'string') {
      const close = i + 1 + v.length;
      if (
        text.charCodeAt(i) !== QUOTE ||
        text.charCodeAt(close) !== QUOTE ||
        text.slice(i + 1, close) !== v
      )
        return -1;
      i = close + 1;
    } else if (v === null) {
      if (text.slice(i, i + 4) !== 'null') return -1;
      i += 4;
    } else {
      i = matchJcs(v, text, i, depth + 1);
      if (i === -1) return -1;
    }
    if (depth === 0 && k > 0 && key === 'signature') {
      walkedSignatureFrom = member;
      walkedSignatureTo = i;
    }
  }
  return text.charCodeAt(i) === 0x7d ? i + 1 : -1; // }
}

function decodeAuditRecord(
  bytes: Uint8Array,
  text?: string,
): { record: AuditRecord; text: string; signatureFrom: number; signatureTo: number } {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength > MAX_AUDIT_RECORD_BYTES)
    fail(`a record is at most ${MAX_AUDIT_RECORD_BYTES} bytes`);
  let textForm: string;
  let value: unknown;
  try {
    textForm = text ?? strictUtf8.decode(bytes);
    value = JSON.parse(textForm);
  } catch {
    fail('not UTF-8 JSON');
  }
  let signatureFrom = -1;
  let signatureTo = -1;
  if (isCanonicalText(value, textForm)) {
    signatureFrom = walkedSignatureFrom;
    signatureTo = walkedSignatureTo;
  } else {
    let canonical: string;
    try {
      canonical = canonicalRecordText(value);
    } catch {
      fail('not I-JSON');
    }
    if (canonical !== textForm) fail('not in JCS (RFC 8785) form');
  }
  return { record: checkAuditRecord(value), text: textForm, signatureFrom, signatureTo };
}

/**
 * Checks a record value as {@link parseAuditRecord} does after decoding (types, bounds, members)
 * and returns it as a typed record. For records this process builds before signing them.
 */
export function checkAuditRecord(value: unknown): AuditRecord {
  if (!isObject(value)) fail('not an object');
  if (!Object.hasOwn(value, 'signature'))
    throw unauthorized('ERR_AUDIT_SIGNATURE_MISSING', 'the audit record is not signed');
  const type = oneOf(value.type, AUDIT_RECORD_TYPES, 'type');
  switch (type) {
    case INVOCATION_RECORD_TYPE:
    case CHAIN_REF_INVOCATION_RECORD_TYPE:
      return invocation(value);
    case CHAIN_RECORD_TYPE:
      return chainRecord(value);
    case DECISION_RECORD_TYPE:
      return decision(value);
    case OUTCOME_RECORD_TYPE:
      return outcome(value);
    case LEASE_RECORD_TYPE:
      return lease(value);
    case TRACE_RECORD_TYPE:
      return trace(value);
  }
}
