/**
 * Checkpoints of the audit log: a C2SP `tlog-checkpoint` body (origin, tree size, base64 root
 * hash, optional extension lines) inside a C2SP `signed-note` with Ed25519 note signatures
 * (signature type 0x01), byte-compatible with Go's `golang.org/x/mod/sumdb/note`.
 *
 *     example.com/log
 *     20852163
 *     CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
 *
 *     — example.com/log Az3grlgt…
 *
 * Parsing is strict and bounded; every refusal is a `MandateError` with an
 * `ERR_CHECKPOINT_…` code. Signing goes through a vault handle ({@link noteSignerFromVault}).
 */
import { invalid, unauthorized, unsupported } from '../core/internal.js';
import { sha256, verifyEd25519 } from '../crypto/index.js';
import {
  bytesEqual,
  concatBytes,
  decodeBase64Strict,
  hasControlCharacters,
  toBase64,
  toHex,
} from '../encoding/index.js';
import type { SigningKeyHandle, SigningVault } from '../vault/index.js';
import { MERKLE_HASH_BYTES } from './merkle.js';

/** The signed-note signature type byte of Ed25519 (C2SP signed-note, "Signature types"). */
export const NOTE_SIGNATURE_TYPE_ED25519 = 0x01;
/** Bound on a whole signed note (text and signature lines), in UTF-8 bytes. */
export const MAX_NOTE_BYTES = 256 * 1024;
/** Bound on signature lines in a note (C2SP: at least 16 must be accepted; Go allows 100). */
export const MAX_NOTE_SIGNATURES = 100;
/** Bound on a checkpoint's extension lines. */
export const MAX_CHECKPOINT_EXTENSIONS = 64;
/** Bound on an origin or key name, in UTF-8 bytes. */
export const MAX_NOTE_NAME_BYTES = 1024;

const EM_DASH_PREFIX = '\u2014 ';
const ED25519_SIGNATURE_BYTES = 64;
const ED25519_PUBLIC_KEY_BYTES = 32;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const malformed = (message: string): never => {
  throw invalid('ERR_CHECKPOINT_MALFORMED', message);
};

// --- names, key ids and verifier keys ---------------------------------------------------------

/** Non-empty, no Unicode space, no `+`, no control character, bounded (C2SP signed-note). */
function isValidName(name: string): boolean {
  return (
    name.length > 0 &&
    utf8.encode(name).byteLength <= MAX_NOTE_NAME_BYTES &&
    !/[\s+]/u.test(name) &&
    !hasControlCharacters(name)
  );
}

function checkName(name: string): void {
  if (typeof name !== 'string' || !isValidName(name)) {
    throw invalid(
      'ERR_CHECKPOINT_KEY_INVALID',
      'a note key name must be non-empty, without spaces or `+`',
    );
  }
}

/**
 * The key ID of an Ed25519 note key: the first four bytes, big-endian, of
 * `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)` (C2SP signed-note, "Ed25519 signatures").
 */
export function noteKeyId(name: string, publicKey: Uint8Array): number {
  checkName(name);
  if (publicKey.byteLength !== ED25519_PUBLIC_KEY_BYTES) {
    throw invalid('ERR_CHECKPOINT_KEY_INVALID', 'an Ed25519 note key is 32 bytes');
  }
  const digest = sha256(
    concatBytes(utf8.encode(name), Uint8Array.of(0x0a, NOTE_SIGNATURE_TYPE_ED25519), publicKey),
  );
  return new DataView(digest.buffer, digest.byteOffset, 4).getUint32(0, false);
}

/** A trusted Ed25519 note key: what a verifier needs to check a checkpoint's signature. */
export interface NoteVerifierKey {
  readonly name: string;
  /** uint32, {@link noteKeyId} of the name and key. */
  readonly keyId: number;
  /** 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
}

/** A {@link NoteVerifierKey} for an Ed25519 public key under `name`. */
export function noteVerifierKey(name: string, publicKey: Uint8Array): NoteVerifierKey {
  return { name, keyId: noteKeyId(name, publicKey), publicKey: publicKey.slice() };
}

const hex8 = (keyId: number): string => keyId.toString(16).padStart(8, '0');

/** A verifier key as text, `NAME+KEYID+base64(0x01 ‖ public key)`, as Go's `note` package. */
export function formatNoteVerifierKey(key: NoteVerifierKey): string {
  const keyId = noteKeyId(key.name, key.publicKey);
  const encoded = concatBytes(Uint8Array.of(NOTE_SIGNATURE_TYPE_ED25519), key.publicKey);
  return `${key.name}+${hex8(keyId)}+${toBase64(encoded)}`;
}

/**
 * Parses `NAME+KEYID+base64(type ‖ key)`; the key ID must be 8 lower-case hex digits and match
 * the name and key. Throws `ERR_CHECKPOINT_KEY_INVALID`, or `ERR_CHECKPOINT_KEY_UNSUPPORTED` for
 * a signature type other than Ed25519.
 */
export function parseNoteVerifierKey(text: string): NoteVerifierKey {
  const bad = (): never => {
    throw invalid('ERR_CHECKPOINT_KEY_INVALID', 'a note verifier key is `NAME+KEYID+KEY`');
  };
  if (typeof text !== 'string' || text.length > MAX_NOTE_NAME_BYTES + 64) bad();
  // The name holds no `+`, the key ID is 8 hex digits; base64 may hold `+`.
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  if (second < 0) bad();
  const name = text.slice(0, first);
  const id = text.slice(first + 1, second);
  const key = text.slice(second + 1);
  if (!isValidName(name) || !/^[0-9a-f]{8}$/.test(id)) bad();
  const decoded = decodeBase64(key);
  if (decoded === undefined || decoded.byteLength === 0) bad();
  if (decoded![0] !== NOTE_SIGNATURE_TYPE_ED25519) {
    throw unsupported('ERR_CHECKPOINT_KEY_UNSUPPORTED', 'only Ed25519 note keys are supported');
  }
  const publicKey = decoded!.subarray(1);
  if (publicKey.byteLength !== ED25519_PUBLIC_KEY_BYTES) bad();
  const keyId = noteKeyId(name, publicKey);
  if (hex8(keyId) !== id) bad();
  return { name, keyId, publicKey: publicKey.slice() };
}

/** Strict standard base64 (RFC 4648 §4, padded): only the canonical encoding of its bytes. */
const decodeBase64 = (text: string): Uint8Array | undefined => decodeBase64Strict(text, 'base64');

// --- signers -----------------------------------------------------------------------------------

/** Signs note texts under one key name: its {@link noteKeyId} and a 64-byte Ed25519 signature. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  /** The Ed25519 public key, to publish as a {@link NoteVerifierKey}. */
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/**
 * A note signer over a vault's Ed25519 signing key: the secret stays in the vault. Throws
 * `ERR_CHECKPOINT_KEY_UNSUPPORTED` for a P-256 key and `ERR_CHECKPOINT_KEY_INVALID` for a bad name.
 */
export function noteSignerFromVault(
  vault: SigningVault,
  key: SigningKeyHandle,
  name: string,
): NoteSigner {
  if (key.keyType !== 'ed25519') {
    throw unsupported('ERR_CHECKPOINT_KEY_UNSUPPORTED', 'checkpoints are signed with Ed25519 keys');
  }
  const keyId = noteKeyId(name, key.publicKey);
  return {
    name,
    keyId,
    publicKey: key.publicKey,
    sign: (message) => vault.sign(key.keyId, message),
  };
}

// --- signed notes ------------------------------------------------------------------------------

/** One signature line of a note. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** The signature proper (without the 4-byte key ID). */
  readonly signature: Uint8Array;
}

/** A note whose text was checked against at least one trusted key. */
export interface OpenedNote {
  /** The signed text, ending in a newline. */
  readonly text: string;
  /** Signatures by trusted keys, each verified (duplicates dropped). */
  readonly verified: readonly NoteSignature[];
  /** Signatures by keys the verifier does not know, ignored as C2SP requires. */
  readonly unverified: readonly NoteSignature[];
}

function checkNoteText(text: string): void {
  if (text.length === 0 || !text.endsWith('\n')) malformed('a note text must end with a newline');
  if (hasControlCharacters(text.replaceAll('\n', ''))) {
    malformed('a note may hold no control character but newline');
  }
}

/**
 * Signs `text` (which must end in a newline) with every signer: the text, a blank line, one
 * `— NAME base64(keyID ‖ signature)` line per signer.
 */
export async function signNote(text: string, signers: readonly NoteSigner[]): Promise<string> {
  checkNoteText(text);
  if (signers.length === 0 || signers.length > MAX_NOTE_SIGNATURES) {
    throw invalid('ERR_ARGUMENT_INVALID', 'a note takes 1 to 100 signers');
  }
  const message = utf8.encode(text);
  let lines = '';
  for (const signer of signers) {
    checkName(signer.name);
    const signature = await signer.sign(message);
    if (signature.byteLength !== ED25519_SIGNATURE_BYTES) {
      throw invalid('ERR_CHECKPOINT_KEY_INVALID', 'a note signer returned no Ed25519 signature');
    }
    const id = new Uint8Array(4);
    new DataView(id.buffer).setUint32(0, signer.keyId >>> 0, false);
    lines += `${EM_DASH_PREFIX}${signer.name} ${toBase64(concatBytes(id, signature))}\n`;
  }
  const note = `${text}\n${lines}`;
  if (utf8.encode(note).byteLength > MAX_NOTE_BYTES) {
    throw invalid('ERR_CHECKPOINT_TOO_LARGE', `a note is over ${MAX_NOTE_BYTES} bytes`);
  }
  return note;
}

function noteString(note: string | Uint8Array): string {
  if (typeof note === 'string') {
    if (note.length > MAX_NOTE_BYTES || utf8.encode(note).byteLength > MAX_NOTE_BYTES) {
      throw invalid('ERR_CHECKPOINT_TOO_LARGE', `a note is over ${MAX_NOTE_BYTES} bytes`);
    }
    if (/\p{Surrogate}/u.test(note)) malformed('a note is not UTF-8');
    return note;
  }
  if (!(note instanceof Uint8Array)) malformed('a note is text or UTF-8 bytes');
  if (note.byteLength > MAX_NOTE_BYTES) {
    throw invalid('ERR_CHECKPOINT_TOO_LARGE', `a note is over ${MAX_NOTE_BYTES} bytes`);
  }
  try {
    return strictUtf8.decode(note);
  } catch {
    return malformed('a note is not UTF-8');
  }
}

/** Splits a note into its text and signature lines, without checking any signature. */
export function parseNote(note: string | Uint8Array): {
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
} {
  const s = noteString(note);
  if (hasControlCharacters(s.replaceAll('\n', ''))) {
    malformed('a note may hold no control character but newline');
  }
  // The text is separated from the signatures by the last blank line.
  const split = s.lastIndexOf('\n\n');
  if (split < 0) malformed('a note has no blank line before its signatures');
  const text = s.slice(0, split + 1);
  const block = s.slice(split + 2);
  if (text.length === 0) malformed('a note has an empty text');
  if (!block.endsWith('\n')) malformed('a note signature line must end with a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) malformed('a note has too many signatures');
  const signatures = lines.map((line): NoteSignature => {
    if (!line.startsWith(EM_DASH_PREFIX)) malformed('a note signature line starts with `— `');
    const rest = line.slice(EM_DASH_PREFIX.length);
    const space = rest.indexOf(' ');
    if (space <= 0) malformed('a note signature line is `— NAME SIGNATURE`');
    const name = rest.slice(0, space);
    if (!isValidName(name)) malformed('a note signature names an invalid key');
    const decoded = decodeBase64(rest.slice(space + 1));
    if (decoded === undefined || decoded.byteLength < 5) {
      malformed('a note signature is not base64 of a key ID and a signature');
    }
    const view = new DataView(decoded!.buffer, decoded!.byteOffset, decoded!.byteLength);
    return { name, keyId: view.getUint32(0, false), signature: decoded!.slice(4) };
  });
  return { text, signatures };
}

/**
 * Opens a signed note against trusted keys (C2SP signed-note, "Signatures"): signatures of
 * unknown keys (name and key ID not both known) are ignored; a known key's signature must
 * verify (`ERR_CHECKPOINT_SIGNATURE_INVALID`); at least one must come from a known key
 * (`ERR_CHECKPOINT_UNVERIFIED`). Malformed notes throw `ERR_CHECKPOINT_MALFORMED`.
 */
export function openNote(
  note: string | Uint8Array,
  verifiers: readonly NoteVerifierKey[],
): OpenedNote {
  const { text, signatures } = parseNote(note);
  const message = utf8.encode(text);
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<string>();
  for (const sig of signatures) {
    const known = verifiers.filter((v) => v.name === sig.name && v.keyId === sig.keyId);
    const distinct = known.filter(
      (v, i) => known.findIndex((w) => bytesEqual(w.publicKey, v.publicKey)) === i,
    );
    if (distinct.length > 1) {
      throw invalid(
        'ERR_CHECKPOINT_KEY_INVALID',
        `two trusted keys share the name and key ID \`${sig.name}+${hex8(sig.keyId)}\``,
      );
    }
    const tag = `${sig.name}+${hex8(sig.keyId)}+${toHex(sig.signature)}`;
    const key = distinct[0];
    if (key === undefined) {
      if (!seen.has(tag)) unverified.push(sig);
      seen.add(tag);
      continue;
    }
    if (!verifyEd25519(key.publicKey, message, sig.signature)) {
      throw unauthorized(
        'ERR_CHECKPOINT_SIGNATURE_INVALID',
        `the signature of \`${sig.name}+${hex8(sig.keyId)}\` does not verify`,
      );
    }
    if (!seen.has(tag)) verified.push(sig);
    seen.add(tag);
  }
  if (verified.length === 0) {
    throw unauthorized('ERR_CHECKPOINT_UNVERIFIED', 'no signature of a trusted key on the note');
  }
  return { text, verified, unverified };
}

// --- checkpoints -------------------------------------------------------------------------------

/** A checkpoint body: a log's Merkle tree head at one size (C2SP tlog-checkpoint). */
export interface Checkpoint {
  /** The log's identity, e.g. `example.com/log42`. */
  readonly origin: string;
  readonly treeSize: number;
  /** 32-byte RFC 6962 root of the first `treeSize` entries. */
  readonly rootHash: Uint8Array;
  /** Opaque, non-empty extra lines (NOT RECOMMENDED by the spec). */
  readonly extensions: readonly string[];
}

/**
 * The extension line a checkpoint is dated with: `mandate-time ` and the Unix seconds at which
 * it was signed (decimal, no leading zero). Signed with the rest, it is a time by which the
 * records the checkpoint covers were in the log: an auditor judges their signers' keys by the
 * histories as they stood then (docs/spec/audit.md, "Keys judged at the time the log vouches
 * for"). At most one; optional (checkpoints without it are judged by the newest histories).
 */
export const CHECKPOINT_TIME_PREFIX = 'mandate-time ';

/** The time a checkpoint's extension lines date it with ({@link CHECKPOINT_TIME_PREFIX}), if any. */
export function checkpointTime(extensions: readonly string[]): number | undefined {
  let time: number | undefined;
  for (const line of extensions) {
    // (`mandate-time` alone is a time line without a time: malformed, not opaque.)
    if (!line.startsWith(CHECKPOINT_TIME_PREFIX) && line !== CHECKPOINT_TIME_PREFIX.trimEnd())
      continue;
    const digits = line.slice(CHECKPOINT_TIME_PREFIX.length);
    if (time !== undefined) malformed('a checkpoint has two time lines');
    if (!/^(?:0|[1-9][0-9]{0,15})$/.test(digits) || !Number.isSafeInteger(Number(digits)))
      malformed('a checkpoint time is Unix seconds: a decimal without leading zeros');
    time = Number(digits);
  }
  return time;
}

/** A checkpoint whose note carried a verified signature of a trusted key. */
export interface VerifiedCheckpoint extends Checkpoint {
  /** The time its signer dated it with ({@link checkpointTime}), if it did. */
  readonly time?: number;
  /** The signed note, as received. */
  readonly note: string;
  /** The trusted keys' signatures that verified. */
  readonly signatures: readonly NoteSignature[];
}

function checkLine(line: string, what: string): void {
  if (line.length === 0 || line.includes('\n') || hasControlCharacters(line)) {
    malformed(`a checkpoint's ${what} must be one non-empty line`);
  }
}

/** The note text of a checkpoint: origin, decimal size, base64 root, extension lines. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  checkLine(checkpoint.origin, 'origin');
  if (utf8.encode(checkpoint.origin).byteLength > MAX_NOTE_NAME_BYTES) {
    malformed('a checkpoint origin is too long');
  }
  if (!Number.isSafeInteger(checkpoint.treeSize) || checkpoint.treeSize < 0) {
    malformed('a checkpoint tree size is a non-negative safe integer');
  }
  if (checkpoint.rootHash.byteLength !== MERKLE_HASH_BYTES) {
    malformed('a checkpoint root hash is 32 bytes');
  }
  if (checkpoint.extensions.length > MAX_CHECKPOINT_EXTENSIONS) {
    malformed('a checkpoint has too many extension lines');
  }
  for (const line of checkpoint.extensions) checkLine(line, 'extension line');
  checkpointTime(checkpoint.extensions);
  return [
    checkpoint.origin,
    String(checkpoint.treeSize),
    toBase64(checkpoint.rootHash),
    ...checkpoint.extensions,
    '',
  ].join('\n');
}

/** Parses a checkpoint note text strictly (no leading zeros, canonical base64, 32-byte root). */
export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== 'string' || !text.endsWith('\n')) {
    malformed('a checkpoint text ends with a newline');
  }
  if (text.length > MAX_NOTE_BYTES) {
    throw invalid('ERR_CHECKPOINT_TOO_LARGE', `a checkpoint is over ${MAX_NOTE_BYTES} bytes`);
  }
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) malformed('a checkpoint has an origin, a tree size and a root hash');
  if (lines.length > 3 + MAX_CHECKPOINT_EXTENSIONS) {
    malformed('a checkpoint has too many extension lines');
  }
  const [origin, size, root, ...extensions] = lines as [string, string, string, ...string[]];
  checkLine(origin, 'origin');
  if (utf8.encode(origin).byteLength > MAX_NOTE_NAME_BYTES)
    malformed('a checkpoint origin is too long');
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(size) || !Number.isSafeInteger(Number(size))) {
    malformed('a checkpoint tree size is a decimal without leading zeros, below 2^53');
  }
  const rootHash = decodeBase64(root);
  if (rootHash === undefined || rootHash.byteLength !== MERKLE_HASH_BYTES) {
    malformed('a checkpoint root hash is the base64 of 32 bytes');
  }
  for (const line of extensions) checkLine(line, 'extension line');
  checkpointTime(extensions);
  return { origin, treeSize: Number(size), rootHash: rootHash!, extensions };
}

/** Formats and signs a checkpoint: the signed note text. */
export async function signCheckpoint(
  checkpoint: Checkpoint,
  signers: readonly NoteSigner[],
): Promise<string> {
  return signNote(formatCheckpoint(checkpoint), signers);
}

/** Options of {@link verifyCheckpoint}. */
export interface VerifyCheckpointOptions {
  /** The origin the checkpoint must name (`ERR_CHECKPOINT_ORIGIN_MISMATCH` otherwise). */
  readonly origin?: string;
}

/**
 * Verifies a signed checkpoint against trusted note keys and parses its body: the only way to a
 * {@link VerifiedCheckpoint}. Throws the `ERR_CHECKPOINT_…` codes of {@link openNote} and
 * {@link parseCheckpoint}, and `ERR_CHECKPOINT_ORIGIN_MISMATCH`.
 */
export function verifyCheckpoint(
  note: string | Uint8Array,
  verifiers: readonly NoteVerifierKey[],
  options: VerifyCheckpointOptions = {},
): VerifiedCheckpoint {
  const opened = openNote(note, verifiers);
  // A note may repeat a signature (it counts once); a checkpoint, which one log signs, may not.
  const { signatures } = parseNote(note);
  const lines = new Set(
    signatures.map((sig) => `${sig.name} ${sig.keyId} ${toHex(sig.signature)}`),
  );
  if (lines.size !== signatures.length)
    throw invalid('ERR_CHECKPOINT_MALFORMED', 'the checkpoint repeats a signature line');
  const checkpoint = parseCheckpoint(opened.text);
  if (options.origin !== undefined && checkpoint.origin !== options.origin) {
    throw invalid(
      'ERR_CHECKPOINT_ORIGIN_MISMATCH',
      `the checkpoint is of \`${checkpoint.origin}\`, not \`${options.origin}\``,
    );
  }
  const time = checkpointTime(checkpoint.extensions);
  return {
    ...checkpoint,
    ...(time === undefined ? {} : { time }),
    note: typeof note === 'string' ? note : strictUtf8.decode(note),
    signatures: opened.verified,
  };
}
