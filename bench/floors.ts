/**
 * Raw crypto floors that more than one benchmark compares with: each is what an operation's
 * primitives cost alone, timed by the benchmark that uses it in its own run. identity.bench.ts,
 * credentials.bench.ts and up.bench.ts take them from here, so a floor means the same thing in
 * every table.
 */
import {
  generateEd25519KeyPairInto,
  generateX25519KeyPairInto,
  randomBytes,
  sha256,
  signEd25519,
  verifyEd25519,
} from '../src/crypto/index.js';

/** What one Ed25519 check costs at its floor: SHA-256 of the signed bytes, then the verify. */
export interface Signed {
  readonly publicKey: Uint8Array;
  readonly data: Uint8Array;
  readonly signature: Uint8Array;
}

/** The bytes an agent's first change signs, about (identity.bench.ts's measure). */
export const CHANGE_DATA_BYTES = 110;

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
