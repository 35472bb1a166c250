// What the browser checks itself, with WebCrypto only, trusting neither the server's word nor
// its JavaScript verdicts: (1) the checkpoint is a C2SP signed note whose Ed25519 signature
// verifies under the pinned log key (`NAME+KEYID+KEY`, from the login link the node printed),
// and its origin is that key's name; (2) a record's RFC 9162 inclusion proof leads from
// SHA-256(0x00 ‖ record) to the checkpoint's root hash (§2.1.3.2).

const utf8 = new TextEncoder();

export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const all = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', all));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** RFC 9162 §2.1.1: the leaf hash of a record. */
export const leafHash = (record: Uint8Array): Promise<Uint8Array> =>
  sha256(Uint8Array.of(0), record);
const nodeHash = (left: Uint8Array, right: Uint8Array): Promise<Uint8Array> =>
  sha256(Uint8Array.of(1), left, right);

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or an error naming why not. */
export async function rootFromInclusionProof(
  index: number,
  treeSize: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Promise<Uint8Array> {
  if (!Number.isSafeInteger(index) || index < 0 || index >= treeSize)
    throw new Error('the index is not in the tree');
  let fn = index;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of proof) {
    if (p.length !== 32) throw new Error('a proof hash is not 32 bytes');
    if (sn === 0) throw new Error('the proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error('the proof is too short');
  return r;
}

/** A checkpoint whose note signature verified. */
export interface VerifiedCheckpoint {
  readonly origin: string;
  readonly treeSize: number;
  readonly rootHash: Uint8Array;
  readonly keyName: string;
}

/** A note verifier key `NAME+KEYID+base64(0x01 ‖ Ed25519 public key)`, checked. */
async function parseVerifierKey(text: string) {
  const first = text.indexOf('+');
  const second = text.indexOf('+', first + 1);
  if (first <= 0 || second < 0) throw new Error('the log key is not NAME+KEYID+KEY');
  const name = text.slice(0, first);
  const id = text.slice(first + 1, second);
  const encoded = fromBase64(text.slice(second + 1));
  if (encoded.length !== 33 || encoded[0] !== 1) throw new Error('the log key is not Ed25519');
  const publicKey = encoded.slice(1);
  const digest = await sha256(utf8.encode(name), Uint8Array.of(0x0a, 0x01), publicKey);
  const keyId = Array.from(digest.slice(0, 4), (b) => b.toString(16).padStart(2, '0')).join('');
  if (keyId !== id) throw new Error('the log key id does not match its key');
  return { name, keyId: digest.slice(0, 4), publicKey };
}

/**
 * Verifies a signed checkpoint note against the trusted key: a signature line by that key
 * (name and key id) verifies over the note text with WebCrypto Ed25519; the body parses.
 */
export async function verifyCheckpointNote(
  note: string,
  trustedKey: string,
): Promise<VerifiedCheckpoint> {
  const key = await parseVerifierKey(trustedKey);
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new Error('the note has no signatures');
  const text = note.slice(0, split + 1);
  const lines = note
    .slice(split + 2)
    .split('\n')
    .filter((l) => l !== '');
  const webKey = await crypto.subtle.importKey('raw', key.publicKey, { name: 'Ed25519' }, false, [
    'verify',
  ]);
  let verified = false;
  for (const line of lines) {
    if (!line.startsWith('\u2014 ')) throw new Error('a signature line is malformed');
    const [name, sig] = line.slice(2).split(' ');
    if (name !== key.name || sig === undefined) continue;
    const bytes = fromBase64(sig);
    if (bytes.length !== 68 || !equal(bytes.slice(0, 4), key.keyId)) continue;
    if (!(await crypto.subtle.verify('Ed25519', webKey, bytes.slice(4), utf8.encode(text))))
      throw new Error('the checkpoint signature does not verify');
    verified = true;
  }
  if (!verified) throw new Error('no signature by the trusted log key');
  const [origin, size, root] = text.slice(0, -1).split('\n');
  if (origin === undefined || size === undefined || root === undefined)
    throw new Error('the checkpoint is malformed');
  if (origin !== key.name) throw new Error('the checkpoint names another log');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(size)) throw new Error('the tree size is malformed');
  const rootHash = fromBase64(root);
  if (rootHash.length !== 32) throw new Error('the root hash is not 32 bytes');
  return { origin, treeSize: Number(size), rootHash, keyName: key.name };
}

/** An inclusion proof as the admin API sends it (base64 record and hashes). */
export interface InclusionProof {
  readonly index: number;
  readonly treeSize: number;
  readonly record: string;
  readonly hashes: readonly string[];
}

/** Checks that `proof` puts its record under the verified checkpoint's root. */
export async function verifyInclusion(
  proof: InclusionProof,
  checkpoint: VerifiedCheckpoint,
): Promise<void> {
  if (proof.treeSize !== checkpoint.treeSize)
    throw new Error('the proof is for another tree size than the checkpoint');
  const root = await rootFromInclusionProof(
    proof.index,
    proof.treeSize,
    await leafHash(fromBase64(proof.record)),
    proof.hashes.map(fromBase64),
  );
  if (!equal(root, checkpoint.rootHash))
    throw new Error('the proof does not lead to the checkpoint root');
}
