import { describe, expect, it } from 'vitest';
import { codeOf } from '../../test/helpers/errors.js';
import { freshDenySet, revoke } from '../../test/helpers/deny-set.js';
import { sha256 } from '../crypto/index.js';
import {
  Identities,
  MemoryIdentityRepository,
  Purpose,
  type Identifier,
} from '../identity/index.js';
import { MemoryVault, SigningKeyType } from '../vault/index.js';
import { decodeChain, encodeChain } from './chain-codec.js';
import { constraintsToAttributes, parseConstraint } from './constraints.js';
import { decodeCredential, encodeCredentialAndPurposeKey } from './credential-codec.js';
import { issueCredential, type CredentialIssuer } from './credential.js';
import {
  authorize,
  chainFromCredential,
  delegate,
  verifyChain,
  type VerifiedChain,
} from './delegation.js';
import type { DenySet } from './deny-set.js';
import type { VerifiedIdentity } from '../identity/index.js';

// Issue 8, vulnerability 1: a revocation id used to be a hash of the signature, and a P-256
// signature (r, s) has a twin (r, n − s) that OpenSSL accepts. Whoever held a revoked chain could
// rewrite s without any key and present the chain again under fresh revocation ids.

const NOW = 1_800_000_000;

/** Order n of the P-256 group (SEC 2 §2.4.2). */
const P256_N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
/** Order L of the Ed25519 prime-order subgroup (RFC 8032 §5.1). */
const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n;

const toBigInt = (bytes: Uint8Array): bigint => bytes.reduce((n, b) => (n << 8n) | BigInt(b), 0n);
const fromBigInt = (n: bigint, length: number): Uint8Array => {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
};

/** (r, s) → (r, n − s): the other signature OpenSSL accepts for the same message and key. */
function malleateP256(signature: Uint8Array): Uint8Array {
  const s = toBigInt(signature.subarray(32));
  return Uint8Array.of(...signature.subarray(0, 32), ...fromBigInt(P256_N - s, 32));
}

/** (R, S) → (R, S + L): equivalent to a lax verifier, a non-canonical S to a strict one. */
function malleateEd25519(signature: Uint8Array): Uint8Array {
  const s = toBigInt(signature.slice(32).reverse()); // S is little-endian
  return Uint8Array.of(...signature.subarray(0, 32), ...fromBigInt(s + ED25519_L, 32).reverse());
}

/** `bytes` with the single occurrence of `needle` replaced by `replacement` of the same length. */
function replaceOnce(bytes: Uint8Array, needle: Uint8Array, replacement: Uint8Array): Uint8Array {
  const at = Buffer.from(bytes).indexOf(needle);
  if (at < 0 || Buffer.from(bytes).indexOf(needle, at + 1) >= 0)
    throw new Error('the signature must occur exactly once');
  if (needle.length !== replacement.length) throw new Error('same length only');
  const out = Uint8Array.from(bytes);
  out.set(replacement, at);
  return out;
}

const rootSignature = (chain: Uint8Array): Uint8Array =>
  decodeCredential(decodeChain(chain).root).signature.bytes;
const linkSignature = (chain: Uint8Array, index: number): Uint8Array =>
  decodeChain(chain).links[index]!.signature.bytes;

const request = { action: 'read_orders', args: new Map<string, string>(), nowSeconds: NOW + 10 };

/**
 * The two ways a verifier meets a chain: verifyChain with the deny-set, or verifyChain without it
 * and authorize with it (what `chain check` does). Returns the code of the refusal, or `allowed`.
 */
function decide(
  bytes: Uint8Array,
  authorities: ReadonlyMap<Identifier, VerifiedIdentity>,
  denySet: DenySet,
): string {
  const options = { nowSeconds: NOW + 10, authorities };
  let chain: VerifiedChain;
  try {
    chain = verifyChain(bytes, options);
  } catch {
    return codeOf(() => verifyChain(bytes, options));
  }
  const withDenySet = codeOf(() => verifyChain(bytes, { ...options, denySet }));
  const decision = authorize(chain, request, { denySet });
  if (withDenySet === 'accepted' || decision.decision === 'allow') return 'allowed';
  return withDenySet;
}

/** An authority and two agents whose primary and credential keys are all of `keyType`. */
async function world(keyType: SigningKeyType) {
  const vault = new MemoryVault();
  const identities = new Identities({
    vault,
    repository: new MemoryIdentityRepository(),
    clock: { nowSeconds: () => NOW },
  });
  const make = async (name: string) => {
    const local = await identities.create({ name, keyType, credentialKeyType: keyType });
    const { verified, keyId } = await identities.purposeKey(name, Purpose.credentials);
    const issuer: CredentialIssuer = {
      identity: local.identity,
      credentialKeyId: keyId,
      credentialKeyAttestation: verified.attestation,
    };
    return { identity: local.identity, issuer };
  };
  const authority = await make('authority');
  const alice = await make('alice');
  const bob = await make('bob');
  const authorities = new Map([[authority.identity.identifier, authority.identity]]);
  const root = await issueCredential(
    vault,
    authority.issuer,
    alice.identity,
    constraintsToAttributes(new Map([parseConstraint('tools=read_orders')])),
    { nowSeconds: NOW, ttlSeconds: 3600 },
  );
  const chain0 = chainFromCredential(root, alice.identity);
  const verified0 = verifyChain(chain0, { nowSeconds: NOW, authorities });
  const chain1 = await delegate(vault, alice.issuer, verified0, {
    nowSeconds: NOW,
    subject: bob.identity,
    constraints: new Map(),
  });
  const verified1 = verifyChain(chain1, { nowSeconds: NOW, authorities });
  const denySet = (id: string): DenySet => {
    const set = freshDenySet(NOW);
    revoke(set, id, { expiresAt: NOW + 3600, nowSeconds: NOW });
    return set;
  };
  return { vault, authority, alice, authorities, chain0, verified0, chain1, verified1, denySet };
}

describe('regression: a malleated P-256 signature does not escape a revocation', () => {
  it('a revoked root credential stays revoked when its s is rewritten to n − s', async () => {
    const w = await world(SigningKeyType.p256);
    const denySet = w.denySet(w.verified0.root.revocationId);
    expect(decide(w.chain0, w.authorities, denySet)).toBe('ERR_REVOKED');

    const signature = rootSignature(w.chain0);
    const malleated = replaceOnce(w.chain0, signature, malleateP256(signature));
    expect(decide(malleated, w.authorities, denySet)).toBe('ERR_CREDENTIAL_SIGNATURE_INVALID');
  });

  it('a revoked link stays revoked when its s is rewritten to n − s', async () => {
    const w = await world(SigningKeyType.p256);
    const denySet = w.denySet(w.verified1.links[0]!.revocationId);
    expect(decide(w.chain1, w.authorities, denySet)).toBe('ERR_REVOKED');

    const signature = linkSignature(w.chain1, 0);
    const malleated = replaceOnce(w.chain1, signature, malleateP256(signature));
    expect(decide(malleated, w.authorities, denySet)).toBe('ERR_DELEGATION_SIGNATURE_INVALID');
  });

  it('a second valid signature over the same data keeps the revocation id', async () => {
    // Defence in depth: even a signature the verifier accepts cannot move the revocation id.
    // P-256 signing is randomised, so the issuer's own vault gives a second valid signature.
    const w = await world(SigningKeyType.p256);
    const decoded = decodeCredential(w.verified0.root.bytes);
    const resigned = encodeCredentialAndPurposeKey(
      decoded.data,
      {
        keyType: SigningKeyType.p256,
        bytes: await w.vault.sign(w.authority.issuer.credentialKeyId, sha256(decoded.data)),
      },
      decoded.attestation,
    );
    expect(decodeCredential(resigned).signature.bytes).not.toEqual(decoded.signature.bytes);
    const chain = encodeChain(resigned, [], decodeChain(w.chain0).histories);
    const denySet = w.denySet(w.verified0.root.revocationId);
    expect(
      verifyChain(chain, { nowSeconds: NOW, authorities: w.authorities }).root.revocationId,
    ).toBe(w.verified0.root.revocationId);
    expect(decide(chain, w.authorities, denySet)).toBe('ERR_REVOKED');
  });
});

describe('Ed25519 (libsodium) refuses a malleated signature: S + L', () => {
  it('on a root credential', async () => {
    const w = await world(SigningKeyType.ed25519);
    const denySet = w.denySet(w.verified0.root.revocationId);
    const signature = rootSignature(w.chain0);
    const malleated = replaceOnce(w.chain0, signature, malleateEd25519(signature));
    expect(decide(malleated, w.authorities, denySet)).toBe('ERR_CREDENTIAL_SIGNATURE_INVALID');
  });

  it('on a link', async () => {
    const w = await world(SigningKeyType.ed25519);
    const denySet = w.denySet(w.verified1.links[0]!.revocationId);
    const signature = linkSignature(w.chain1, 0);
    const malleated = replaceOnce(w.chain1, signature, malleateEd25519(signature));
    expect(decide(malleated, w.authorities, denySet)).toBe('ERR_DELEGATION_SIGNATURE_INVALID');
  });
});
