/**
 * Raw crypto floors that more than one benchmark compares with: each is what an operation's
 * primitives cost alone, timed by the benchmark that uses it in its own run. identity.bench.ts,
 * credentials.bench.ts and up.bench.ts take them from here, so a floor means the same thing in
 * every table.
 */
import { hashChildren, hashLeaf } from '../src/audit/index.js';
import {
  generateEd25519KeyPairInto,
  generateX25519KeyPairInto,
  randomBytes,
  sha256,
  signEd25519,
  verifyEd25519,
} from '../src/crypto/index.js';
import { toHex } from '../src/encoding/index.js';
import { verifyChangeHistory, type VerifiedIdentity } from '../src/identity/index.js';
import { decodePurposeKeyAttestation } from '../src/identity/internal.js';

/** What one Ed25519 check costs at its floor: SHA-256 of the signed bytes, then the verify. */
export interface Signed {
  readonly publicKey: Uint8Array;
  readonly data: Uint8Array;
  readonly signature: Uint8Array;
}

/** The bytes an agent's first change signs, about (identity.bench.ts's measure). */
export const CHANGE_DATA_BYTES = 110;

/**
 * An audit record's bytes, at the least: the demo's invocation, decision, outcome and lease
 * records are 700–910 bytes (chain records about 2,900), so a floor over 700 bytes is below
 * every one of them.
 */
export const RECORD_BYTES = 700;

/**
 * The floor of checking `signed`: for each, SHA-256 of its data and one Ed25519 verify. Throws
 * at once if one of them does not verify (the floor must do the work the real check does).
 */
export function floorOf(signed: readonly Signed[]): () => boolean {
  for (const s of signed)
    if (!verifyEd25519(s.publicKey, sha256(s.data), s.signature))
      throw new Error('benchmark setup: a floor signature fails');
  return () => {
    let ok = true;
    for (let i = 0; i < signed.length; i++) {
      const s = signed[i]!;
      ok = verifyEd25519(s.publicKey, sha256(s.data), s.signature) && ok;
    }
    return ok;
  };
}

/** A purpose-key attestation's signature, under the attesting identity's primary key. */
export function attestationSigned(identity: VerifiedIdentity, attestation: Uint8Array): Signed {
  const decoded = decodePurposeKeyAttestation(attestation);
  const change = identity.changes.find((c) => toHex(c.changeHash) === toHex(decoded.changeHash));
  if (change === undefined) throw new Error('benchmark setup: attestation names an unknown change');
  return {
    publicKey: change.primaryPublicKey.bytes,
    data: decoded.dataBytes,
    signature: decoded.signature.bytes,
  };
}

/** The signature over `data` (a credential's, a link's, an audit record's signing bytes) under the credential key `attestation` attests. */
export function attestedKeySigned(
  attestation: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
): Signed {
  const key = decodePurposeKeyAttestation(attestation).key;
  if (!('signingKey' in key))
    throw new Error('benchmark setup: attestation is not of a signing key');
  return { publicKey: key.signingKey.bytes, data, signature };
}

/** Each change's own signature in a 1-change history. */
export function historySigned(history: Uint8Array): Signed[] {
  const identity = verifyChangeHistory(history);
  if (identity.changes.length !== 1)
    throw new Error('benchmark setup: the benchmark assumes 1-change histories');
  return identity.changes.map((c) => ({
    publicKey: c.primaryPublicKey.bytes,
    data: c.data,
    signature: c.signature,
  }));
}

/** `dataBytes` random bytes signed (over their SHA-256) by a fresh Ed25519 key: a floor's input. */
export function signedSample(dataBytes: number): Signed {
  const publicKey = new Uint8Array(32);
  const secretKey = new Uint8Array(64);
  generateEd25519KeyPairInto(publicKey, secretKey);
  const data = randomBytes(dataBytes);
  return { publicKey, data, signature: signEd25519(secretKey, sha256(data)) };
}

/**
 * The floor of creating `perCall` agent identities: per identity two Ed25519 keygens (primary,
 * credential key), one X25519 keygen (secure-channel key), three Ed25519 signatures (the change,
 * two purpose-key attestations) and three SHA-256 of ~110 bytes.
 */
export function identityCreationFloor(perCall: number): () => void {
  const pk = new Uint8Array(32);
  const sk = new Uint8Array(64);
  const xpk = new Uint8Array(32);
  const xsk = new Uint8Array(32);
  const data = randomBytes(CHANGE_DATA_BYTES);
  return () => {
    for (let i = 0; i < perCall; i++) {
      generateEd25519KeyPairInto(pk, sk);
      signEd25519(sk, sha256(data));
      generateEd25519KeyPairInto(pk, sk);
      generateX25519KeyPairInto(xpk, xsk);
      signEd25519(sk, sha256(data));
      signEd25519(sk, sha256(data));
    }
  };
}

/**
 * The floor of an authority redeeming an enrollment ticket for an agent that already exists: the
 * redeemer's 1-change history checked (SHA-256 + Ed25519 verify) and its credential signed
 * (SHA-256 of `credentialData` + Ed25519 sign).
 */
export function redemptionFloor(history: Signed, credentialData: Uint8Array): () => boolean {
  const check = floorOf([history]);
  const pk = new Uint8Array(32);
  const sk = new Uint8Array(64);
  generateEd25519KeyPairInto(pk, sk);
  return () => {
    const ok = check();
    signEd25519(sk, sha256(credentialData));
    return ok;
  };
}

/** The floor of signing `dataBytes` of data as Mandate signs: SHA-256 of the data, then one Ed25519 signature over the digest. */
export function signFloor(dataBytes: number): () => Uint8Array {
  const pk = new Uint8Array(32);
  const sk = new Uint8Array(64);
  generateEd25519KeyPairInto(pk, sk);
  const data = randomBytes(dataBytes);
  return () => signEd25519(sk, sha256(data));
}

/**
 * The floor of one audit record signed and appended to the log: {@link signFloor} over its
 * `recordBytes`, its Merkle leaf hash, and one interior node hash (a tree of n entries has n − 1
 * nodes, and the log keeps every completed one: RFC 9162 §2.1.1). The SQLite write is not in it.
 */
export function loggedRecordFloor(recordBytes: number): () => Uint8Array {
  const sign = signFloor(recordBytes);
  const record = randomBytes(recordBytes);
  const sibling = sha256(record);
  return () => {
    sign();
    return hashChildren(sibling, hashLeaf(record));
  };
}

/**
 * The floor of rotating an agent's primary key (Identities.rotate, create-identity.ts's
 * rotateIdentity): one Ed25519 keygen (the new primary key); the new change's SHA-256, signed by
 * the new key and by the old one; the two purpose keys re-attested under the new change (SHA-256
 * and a signature each) — 1 keygen, 3 SHA-256 and 4 signatures of about {@link CHANGE_DATA_BYTES}.
 * What the code checks besides (the stored history when it reads it, the vault's two signatures,
 * the new history in full: 6 Ed25519 verifies) is its own caution, and unsealing and sealing keys
 * and the SQLite write are not crypto of the rotation itself: neither is in the floor.
 */
export function rotationFloor(): () => void {
  const oldPk = new Uint8Array(32);
  const oldSk = new Uint8Array(64);
  generateEd25519KeyPairInto(oldPk, oldSk);
  const pk = new Uint8Array(32);
  const sk = new Uint8Array(64);
  const change = randomBytes(CHANGE_DATA_BYTES);
  const attestation = randomBytes(CHANGE_DATA_BYTES);
  return () => {
    generateEd25519KeyPairInto(pk, sk);
    const changeHash = sha256(change);
    signEd25519(sk, changeHash);
    signEd25519(oldSk, changeHash);
    signEd25519(sk, sha256(attestation));
    signEd25519(sk, sha256(attestation));
  };
}
