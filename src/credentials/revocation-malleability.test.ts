import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
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
 * Both places a deny-set is consulted: verifyChain with it (what `chain check` does before it
 * authorizes), and authorize with it on a chain verified earlier (a cached chain). Returns the
 * code of the refusal, or `allowed` when either lets the chain through.
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

/** A vault, and identities in it that can issue: primary and credential keys of the given types. */
function issuers() {
  const vault = new MemoryVault();
  const identities = new Identities({
    vault,
    repository: new MemoryIdentityRepository(),
    clock: { nowSeconds: () => NOW },
  });
  const make = async (
    name: string,
    keyType: SigningKeyType,
    credentialKeyType: SigningKeyType = keyType,
  ) => {
    const local = await identities.create({ name, keyType, credentialKeyType });
    const { verified, keyId } = await identities.purposeKey(name, Purpose.credentials);
    const issuer: CredentialIssuer = {
      identity: local.identity,
      credentialKeyId: keyId,
      credentialKeyAttestation: verified.attestation,
    };
    return { identity: local.identity, issuer };
  };
  return { vault, make };
}

/** An authority and two agents whose primary and credential keys are all of `keyType`. */
async function world(keyType: SigningKeyType) {
  const { vault, make } = issuers();
  const authority = await make('authority', keyType);
  const alice = await make('alice', keyType);
  const bob = await make('bob', keyType);
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

// --- property: no mutation of a revoked chain is ever allowed -----------------------------------

/**
 * A CBOR item as parsed from Mandate's own (canonical) bytes, so it can be written back in other
 * ways. A byte string whose content is itself canonical CBOR keeps the parsed content in `inner`
 * (the signed data, embedded credentials, links, histories), so mutations reach every level.
 */
type Item =
  | { t: 'uint' | 'nint'; v: bigint; style?: Style }
  | { t: 'bytes'; v: Uint8Array; inner?: Item; style?: Style }
  | { t: 'text'; v: Uint8Array; style?: Style }
  | { t: 'array'; v: Item[]; style?: Style }
  | { t: 'map'; v: [Item, Item][]; style?: Style }
  | { t: 'simple'; v: number };
/** How an item's head is written: canonical unless a mutation says otherwise. */
type Style = 'long-head' | 'indefinite';

function parseItem(bytes: Uint8Array, at: number, depth: number): [Item, number] {
  if (depth > 16 || at >= bytes.length) throw new Error('not CBOR');
  const initial = bytes[at]!;
  const major = initial >> 5;
  const info = initial & 0x1f;
  let p = at + 1;
  let n: bigint;
  if (info < 24) n = BigInt(info);
  else if (info <= 27) {
    const size = 1 << (info - 24);
    if (p + size > bytes.length) throw new Error('not CBOR');
    n = toBigInt(bytes.subarray(p, p + size));
    p += size;
  } else throw new Error('not canonical CBOR');
  switch (major) {
    case 0:
    case 1:
      return [{ t: major === 0 ? 'uint' : 'nint', v: n }, p];
    case 2:
    case 3: {
      const end = p + Number(n);
      if (end > bytes.length) throw new Error('not CBOR');
      const v = bytes.slice(p, end);
      if (major === 3) return [{ t: 'text', v }, end];
      return [{ t: 'bytes', v, ...embedded(v, depth) }, end];
    }
    case 4: {
      const v: Item[] = [];
      for (let i = 0n; i < n; i++) {
        const [item, next] = parseItem(bytes, p, depth + 1);
        v.push(item);
        p = next;
      }
      return [{ t: 'array', v }, p];
    }
    case 5: {
      const v: [Item, Item][] = [];
      for (let i = 0n; i < n; i++) {
        const [key, afterKey] = parseItem(bytes, p, depth + 1);
        const [value, next] = parseItem(bytes, afterKey, depth + 1);
        v.push([key, value]);
        p = next;
      }
      return [{ t: 'map', v }, p];
    }
    case 7:
      if (info >= 20 && info <= 22) return [{ t: 'simple', v: info }, p];
      throw new Error('unsupported simple value');
    default:
      throw new Error('unsupported major type');
  }
}

/** `{ inner }` when `bytes` is exactly one canonical CBOR item (so writing it back is exact). */
function embedded(bytes: Uint8Array, depth: number): { inner?: Item } {
  try {
    const [inner, end] = parseItem(bytes, 0, depth + 1);
    if (end === bytes.length && Buffer.from(writeItem(inner)).equals(Buffer.from(bytes)))
      return { inner };
  } catch {
    // not CBOR: a key, a hash, a nonce, a signature
  }
  return {};
}

function head(major: number, n: bigint, long: boolean): number[] {
  const sizes: [bigint, number, number][] = [
    [24n, 0, 0],
    [0x100n, 24, 1],
    [0x10000n, 25, 2],
    [0x100000000n, 26, 4],
    [2n ** 64n, 27, 8],
  ];
  let k = sizes.findIndex(([limit]) => n < limit);
  if (long) k = Math.min(k + 1, sizes.length - 1); // one size longer than needed
  const [, info, size] = sizes[k]!;
  if (size === 0) return [(major << 5) | Number(n)];
  return [(major << 5) | info, ...fromBigInt(n, size)];
}

function writeItem(item: Item): Uint8Array {
  const out: number[] = [];
  const write = (x: Item): void => {
    if (x.t === 'simple') {
      out.push(0xe0 | x.v);
      return;
    }
    const long = x.style === 'long-head';
    const indefinite = x.style === 'indefinite';
    switch (x.t) {
      case 'uint':
      case 'nint':
        out.push(...head(x.t === 'uint' ? 0 : 1, x.v, long));
        return;
      case 'bytes':
      case 'text': {
        const major = x.t === 'bytes' ? 2 : 3;
        const v = x.t === 'bytes' && x.inner !== undefined ? writeItem(x.inner) : x.v;
        if (indefinite) {
          // Two definite chunks between an indefinite head and the break.
          const half = v.length >> 1;
          out.push((major << 5) | 31);
          for (const chunk of [v.subarray(0, half), v.subarray(half)])
            out.push(...head(major, BigInt(chunk.length), false), ...chunk);
          out.push(0xff);
        } else out.push(...head(major, BigInt(v.length), long), ...v);
        return;
      }
      case 'array':
        out.push(...(indefinite ? [0x9f] : head(4, BigInt(x.v.length), long)));
        x.v.forEach(write);
        if (indefinite) out.push(0xff);
        return;
      case 'map':
        out.push(...(indefinite ? [0xbf] : head(5, BigInt(x.v.length), long)));
        for (const [k, v] of x.v) {
          write(k);
          write(v);
        }
        if (indefinite) out.push(0xff);
        return;
    }
  };
  write(item);
  return Uint8Array.from(out);
}

/** Every item, depth first, embedded ones included. */
function itemsOf(root: Item): Item[] {
  const all: Item[] = [];
  const walk = (x: Item): void => {
    all.push(x);
    if (x.t === 'array') x.v.forEach(walk);
    else if (x.t === 'map') x.v.flat().forEach(walk);
    else if (x.t === 'bytes' && x.inner !== undefined) walk(x.inner);
  };
  walk(root);
  return all;
}

/** `[0 | 1, [bstr64]]`: a signature (0 Ed25519, 1 P-256) on a change, attestation, credential or link. */
function signatureBytes(
  x: Item,
):
  | { variant: Extract<Item, { t: 'uint' | 'nint' }>; bytes: Extract<Item, { t: 'bytes' }> }
  | undefined {
  if (x.t !== 'array' || x.v.length !== 2) return undefined;
  const [variant, fields] = x.v;
  if (variant?.t !== 'uint' || variant.v > 1n || fields?.t !== 'array' || fields.v.length !== 1)
    return undefined;
  const bytes = fields.v[0]!;
  if (bytes.t !== 'bytes' || bytes.v.length !== 64) return undefined;
  return { variant, bytes };
}

/** New content for a byte string (a signature that happened to parse as CBOR is one no more). */
function setBytes(item: Extract<Item, { t: 'bytes' }>, bytes: Uint8Array): void {
  item.v = bytes;
  delete item.inner;
}

/** DER `SEQUENCE { INTEGER r, INTEGER s }` of a raw r ‖ s: what ASN.1-minded signers emit. */
function derOf(raw: Uint8Array): Uint8Array {
  const integer = (scalar: Uint8Array): number[] => {
    let i = 0;
    while (i < scalar.length - 1 && scalar[i] === 0) i++;
    const digits = [...scalar.subarray(i)];
    if (digits[0]! >= 0x80) digits.unshift(0);
    return [0x02, digits.length, ...digits];
  };
  const body = [...integer(raw.subarray(0, 32)), ...integer(raw.subarray(32))];
  return Uint8Array.of(0x30, body.length, ...body);
}

const MutationKind = {
  malleateRevoked: 'malleate-revoked', // the attack: the revoked element's own signature
  malleate: 'malleate', // P-256 s → n − s, Ed25519 S → S + L, on any signature
  der: 'der', // raw r ‖ s → DER
  pad: 'pad', // a zero byte before the signature (65 bytes)
  variant: 'variant', // the signature claims the other key type
  longHead: 'long-head', // a non-shortest integer or length
  indefinite: 'indefinite', // an indefinite-length byte string, text, array or map
  reorderMap: 'reorder-map', // map keys in reverse order
  swapFields: 'swap-fields', // two fields of an array (a struct) exchanged
  reorderHistories: 'reorder-histories', // the chain's histories in another order: still valid
} as const;
type MutationKind = (typeof MutationKind)[keyof typeof MutationKind];
interface Mutation {
  readonly kind: MutationKind;
  readonly target: number;
}

/**
 * Applies each mutation to one of the items it fits (`target` modulo their number); a mutation
 * with nothing to apply to does nothing. Returns whether a P-256 signature was malleated.
 */
function mutate(
  root: Item,
  mutations: readonly Mutation[],
  revokedSignature: Uint8Array | undefined,
): { malleatedP256: boolean } {
  let malleatedP256 = false;
  for (const { kind, target } of mutations) {
    const items = itemsOf(root);
    const signatures = items.map(signatureBytes).filter((s) => s !== undefined);
    const pick = <T>(candidates: readonly T[]): T | undefined =>
      candidates.length === 0 ? undefined : candidates[target % candidates.length];
    switch (kind) {
      case MutationKind.malleateRevoked:
      case MutationKind.malleate: {
        const s = pick(
          kind === MutationKind.malleate || revokedSignature === undefined
            ? signatures
            : signatures.filter((x) => Buffer.from(x.bytes.v).equals(revokedSignature)),
        );
        if (s === undefined) break;
        const p256 = s.variant.v === 1n;
        setBytes(s.bytes, p256 ? malleateP256(s.bytes.v) : malleateEd25519(s.bytes.v));
        malleatedP256 ||= p256;
        break;
      }
      case MutationKind.der: {
        const s = pick(signatures);
        if (s !== undefined) setBytes(s.bytes, derOf(s.bytes.v));
        break;
      }
      case MutationKind.pad: {
        const s = pick(signatures);
        if (s !== undefined) setBytes(s.bytes, Uint8Array.of(0, ...s.bytes.v));
        break;
      }
      case MutationKind.variant: {
        const s = pick(signatures);
        if (s !== undefined) s.variant.v = 1n - s.variant.v;
        break;
      }
      case MutationKind.longHead:
      case MutationKind.indefinite: {
        const fits = items.filter(
          (x) =>
            x.t !== 'simple' &&
            (kind === MutationKind.longHead || !(x.t === 'uint' || x.t === 'nint')),
        );
        const x = pick(fits);
        if (x !== undefined && x.t !== 'simple') x.style = kind;
        break;
      }
      case MutationKind.reorderMap: {
        const x = pick(items.filter((i) => i.t === 'map' && i.v.length >= 2));
        if (x?.t === 'map') x.v.reverse();
        break;
      }
      case MutationKind.swapFields: {
        const x = pick(items.filter((i) => i.t === 'array' && i.v.length >= 2));
        if (x?.t === 'array') {
          const i = target % x.v.length;
          const j = (i + 1 + ((target >> 4) % (x.v.length - 1))) % x.v.length;
          [x.v[i], x.v[j]] = [x.v[j]!, x.v[i]!];
        }
        break;
      }
      case MutationKind.reorderHistories: {
        // Chain = [1, root, links, histories]
        const histories = root.t === 'array' ? root.v[3] : undefined;
        if (histories?.t === 'array' && histories.v.length >= 2) {
          const first = histories.v.splice(target % histories.v.length, 1)[0]!;
          histories.v.push(first);
        }
        break;
      }
    }
  }
  return { malleatedP256 };
}

const mutationArbitrary: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.oneof(
    { arbitrary: fc.constant(MutationKind.malleateRevoked), weight: 6 },
    { arbitrary: fc.constant(MutationKind.reorderHistories), weight: 3 },
    { arbitrary: fc.constantFrom(...Object.values(MutationKind)), weight: 9 },
  ),
  target: fc.nat(),
});

describe('property: a revoked chain is never allowed, however its bytes are rewritten', () => {
  // Issuers of every key mix: Ed25519 and P-256 primary keys, Ed25519 and P-256 credential keys.
  const KEY_MIXES = [
    [SigningKeyType.ed25519, SigningKeyType.ed25519],
    [SigningKeyType.p256, SigningKeyType.p256],
    [SigningKeyType.ed25519, SigningKeyType.p256],
    [SigningKeyType.p256, SigningKeyType.ed25519],
  ] as const;

  async function pool() {
    const { vault, make } = issuers();
    const authorities = [
      await make('authority-ed25519', ...KEY_MIXES[0]),
      await make('authority-p256', ...KEY_MIXES[1]),
    ];
    const agents = await Promise.all(KEY_MIXES.map((mix, i) => make(`agent-${i}`, mix[0], mix[1])));
    const trusted = new Map(authorities.map((a) => [a.identity.identifier, a.identity]));
    return { vault, authorities, agents, trusted };
  }

  it('rejects at verification or denies at authorize: never allows', async () => {
    const w = await pool();
    const seen = { runs: 0, malleatedP256: 0, verifiedAfterMutation: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.nat(1),
        fc.array(fc.nat(KEY_MIXES.length - 1), { minLength: 1, maxLength: 4 }),
        // Mostly a credential's or link's revocation id; sometimes any subject, identities too.
        fc.record({ element: fc.boolean(), index: fc.nat() }),
        fc.array(mutationArbitrary, { minLength: 1, maxLength: 3 }),
        async (authorityIndex, path, revokedChoice, mutations) => {
          // Root credential to path[0], then links to the next agents (never to oneself).
          const subjects = [path[0]!];
          for (const next of path.slice(1))
            subjects.push(next === subjects.at(-1) ? (next + 1) % KEY_MIXES.length : next);
          const authority = w.authorities[authorityIndex]!;
          const root = await issueCredential(
            w.vault,
            authority.issuer,
            w.agents[subjects[0]!]!.identity,
            constraintsToAttributes(new Map([parseConstraint('tools=read_orders')])),
            { nowSeconds: NOW, ttlSeconds: 3600 },
          );
          let bytes = chainFromCredential(root, w.agents[subjects[0]!]!.identity);
          let chain = verifyChain(bytes, { nowSeconds: NOW, authorities: w.trusted });
          for (let i = 1; i < subjects.length; i++) {
            bytes = await delegate(w.vault, w.agents[subjects[i - 1]!]!.issuer, chain, {
              nowSeconds: NOW,
              subject: w.agents[subjects[i]!]!.identity,
              constraints: new Map(),
            });
            chain = verifyChain(bytes, { nowSeconds: NOW, authorities: w.trusted });
          }
          // Not vacuous: unrevoked and unmutated, the chain is allowed.
          expect(authorize(chain, request).decision).toBe('allow');

          // Revoke one element: the root's or a link's revocation id, or an identity in it.
          const decoded = decodeChain(bytes);
          const element = revokedChoice.index % (chain.links.length + 1);
          const revoked = revokedChoice.element
            ? element === 0
              ? chain.root.revocationId
              : chain.links[element - 1]!.revocationId
            : chain.revocationSubjects[revokedChoice.index % chain.revocationSubjects.length]!;
          const revokedSignature = !revokedChoice.element
            ? undefined
            : element === 0
              ? decodeCredential(decoded.root).signature.bytes
              : decoded.links[element - 1]!.signature.bytes;
          const denySet = freshDenySet(NOW);
          revoke(denySet, revoked, {
            expiresAt: NOW + 3600,
            nowSeconds: NOW,
            identity: revoked.startsWith('I'),
          });

          const [tree, end] = parseItem(bytes, 0, 0);
          expect(end).toBe(bytes.length);
          expect(writeItem(tree)).toEqual(bytes); // the model writes back exactly what it read
          const { malleatedP256 } = mutate(tree, mutations, revokedSignature);
          const mutated = writeItem(tree);

          const outcome = decide(mutated, w.trusted, denySet);
          expect(outcome, `revoked ${revoked}, mutations ${JSON.stringify(mutations)}`).not.toBe(
            'allowed',
          );
          seen.runs++;
          if (malleatedP256) seen.malleatedP256++;
          if (outcome === 'ERR_REVOKED') seen.verifiedAfterMutation++;
        },
      ),
      { numRuns: 200 },
    );
    // The interesting cases did happen: P-256 signatures malleated, and mutated chains that still
    // verified (reordered histories, no-op mutations) and were refused only by the deny-set.
    expect(seen.malleatedP256).toBeGreaterThan(20);
    expect(seen.verifiedAfterMutation).toBeGreaterThan(5);
  });
});
