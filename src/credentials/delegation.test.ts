import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { codeOf } from '../../test/helpers/errors.js';
import { randomBytes, sha256 } from '../crypto/index.js';
import {
  Identities,
  MemoryIdentityRepository,
  Purpose,
  type VerifiedIdentity,
} from '../identity/index.js';
import { encodeSignature } from '../identity/internal.js';
import { MemoryVault } from '../vault/index.js';
import {
  decodeChain,
  encodeChain,
  encodeLink,
  encodeLinkData,
  LINK_NONCE_BYTES,
} from './chain-codec.js';
import { ChainVerifier } from './chain-verifier.js';
import { constraintsToAttributes, parseConstraint, type Constraint } from './constraints.js';
import { decodeCredential, issueCredential, type CredentialIssuer } from './credential.js';
import { encodeCredentialAndPurposeKey } from './credential-codec.js';
import {
  authorize,
  chainFromCredential,
  delegate,
  verifyChain,
  type VerifiedChain,
} from './delegation.js';
import { DenySet } from './deny-set.js';

const NOW = 1_800_000_000;

/** Text that would repaint a terminal: escape sequences, C0, DEL, C1, bidi overrides. */
const UNSAFE_PURPOSES = [
  '\x1b[2K\rALLOW: alice read_orders',
  'ok\rALLOW',
  'line\nbreak',
  'nul\x00',
  'bell\x07',
  'tab\there',
  'del\x7f',
  'csi\x9b31m',
  'nel\x85',
  ...['\u202a', '\u202b', '\u202c', '\u202d', '\u202e'].map((c) => `bidi ${c}WOLLA`),
  ...['\u2066', '\u2067', '\u2068', '\u2069'].map((c) => `isolate ${c}x`),
];

const constraints = (...texts: string[]): Map<string, Constraint> =>
  new Map(texts.map((t) => parseConstraint(t)));
const request = (action: string, args: Record<string, string> = {}, nowSeconds = NOW + 10) => ({
  action,
  args: new Map(Object.entries(args)),
  nowSeconds,
});

async function world(
  rootConstraints: readonly string[] = [
    'tools=read_orders,issue_refund',
    'refund<=1000',
    'order=/orders/**',
  ],
) {
  const vault = new MemoryVault();
  const identities = new Identities({
    vault,
    repository: new MemoryIdentityRepository(),
    clock: { nowSeconds: () => NOW },
  });
  const make = async (name: string) => {
    const local = await identities.create({ name });
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
  const carol = await make('carol');
  const authorities = new Map([[authority.identity.identifier, authority.identity]]);
  const root = await issueCredential(
    vault,
    authority.issuer,
    alice.identity,
    constraintsToAttributes(constraints(...rootConstraints)),
    { nowSeconds: NOW, ttlSeconds: 3600 },
  );
  const chain0 = chainFromCredential(root, alice.identity);
  const verify = (
    bytes: Uint8Array,
    extra: { presenter?: `I${string}`; denySet?: DenySet; nowSeconds?: number } = {},
  ): VerifiedChain =>
    verifyChain(bytes, { nowSeconds: extra.nowSeconds ?? NOW + 10, authorities, ...extra });
  return { vault, identities, authority, alice, bob, carol, authorities, root, chain0, verify };
}

describe('delegation chains', () => {
  it('delegates narrower, verifies offline and decides by the conjunction of every level', async () => {
    const w = await world();
    const c0 = w.verify(w.chain0, { presenter: w.alice.identity.identifier });
    expect(c0.actor).toBe(w.alice.identity.identifier);
    expect(c0.remainingDepth).toBe(3);
    const chain1 = await delegate(w.vault, w.alice.issuer, c0, {
      nowSeconds: NOW,
      subject: w.bob.identity,
      constraints: constraints('tools=read_orders', 'refund<=100', 'order=/orders/4471/**'),
      purpose: 'resolve complaint #4471',
      ttlSeconds: 600,
    });
    const c1 = w.verify(chain1, { presenter: w.bob.identity.identifier });
    expect(c1.actor).toBe(w.bob.identity.identifier);
    expect(c1.links[0]!.purpose).toBe('resolve complaint #4471');
    expect(c1.expiresAt).toBe(NOW + 600);
    expect(c1.remainingDepth).toBe(2);

    expect(
      authorize(c1, request('read_orders', { refund: '50', order: '/orders/4471/items' })).decision,
    ).toBe('allow');
    const deniedTool = authorize(
      c1,
      request('issue_refund', { refund: '50', order: '/orders/4471' }),
    );
    expect(deniedTool).toMatchObject({
      decision: 'deny',
      actor: w.bob.identity.identifier,
      failed: { link: 1, constraint: 'tools' },
    });
    expect(
      authorize(c1, request('read_orders', { refund: '500', order: '/orders/4471' })),
    ).toMatchObject({ failed: { link: 1, constraint: 'refund' } });
    expect(
      authorize(c1, request('read_orders', { refund: '50', order: '/orders/9' })),
    ).toMatchObject({ failed: { link: 1, constraint: 'order' } });
    // A missing argument denies.
    expect(authorize(c1, request('read_orders', { order: '/orders/4471' }))).toMatchObject({
      decision: 'deny',
      failed: { constraint: 'refund' },
    });
    // Expired by the time of the call.
    expect(
      authorize(c1, request('read_orders', { refund: '1', order: '/orders/4471' }, NOW + 700)),
    ).toMatchObject({ decision: 'deny', failed: { link: 0, constraint: null } });
    // The explanation names every step.
    expect(deniedTool.chain.map((s) => [s.issuer, s.subject])).toEqual([
      [w.authority.identity.identifier, w.alice.identity.identifier],
      [w.alice.identity.identifier, w.bob.identity.identifier],
    ]);
  });

  it('refuses amplification at issue, naming the constraint', async () => {
    const w = await world();
    const c0 = w.verify(w.chain0);
    const attempt = (texts: string[], extra: { ttlSeconds?: number; depth?: number } = {}) =>
      delegate(w.vault, w.alice.issuer, c0, {
        nowSeconds: NOW,
        subject: w.bob.identity,
        constraints: constraints(...texts),
        ...extra,
      });
    await expect(attempt(['tools=read_orders,delete_orders'])).rejects.toThrow(
      /constraint `tools`/,
    );
    await expect(attempt(['refund<=5000'])).rejects.toThrow(/constraint `refund`/);
    await expect(attempt(['refund<=5000'])).rejects.toMatchObject({
      code: 'ERR_DELEGATION_AMPLIFIES',
    });
    await expect(attempt(['order=/**'])).rejects.toMatchObject({
      code: 'ERR_DELEGATION_AMPLIFIES',
    });
    await expect(attempt(['tools=*'])).rejects.toMatchObject({ code: 'ERR_DELEGATION_AMPLIFIES' });
    await expect(attempt([], { ttlSeconds: 7200 })).rejects.toMatchObject({
      code: 'ERR_DELEGATION_AMPLIFIES',
    });
    await expect(attempt([], { depth: 3 })).rejects.toMatchObject({ code: 'ERR_DELEGATION_DEPTH' });
    await expect(attempt(['mandate.max-depth=9'])).rejects.toMatchObject({
      code: 'ERR_DELEGATION_MALFORMED',
    });
    // Only the chain's last subject may extend it.
    await expect(
      delegate(w.vault, w.carol.issuer, c0, {
        nowSeconds: NOW,
        subject: w.bob.identity,
        constraints: new Map(),
      }),
    ).rejects.toMatchObject({ code: 'ERR_DELEGATION_PRINCIPAL_MISMATCH' });
  });

  it('enforces depth down to zero', async () => {
    const w = await world();
    let chain = w.verify(w.chain0);
    const people = [w.bob, w.carol, w.alice];
    for (const [i, next] of people.entries()) {
      const from = [w.alice, w.bob, w.carol][i]!;
      chain = w.verify(
        await delegate(w.vault, from.issuer, chain, {
          nowSeconds: NOW,
          subject: next.identity,
          constraints: new Map(),
        }),
      );
    }
    expect(chain.remainingDepth).toBe(0);
    await expect(
      delegate(w.vault, w.alice.issuer, chain, {
        nowSeconds: NOW,
        subject: w.bob.identity,
        constraints: new Map(),
      }),
    ).rejects.toMatchObject({ code: 'ERR_DELEGATION_DEPTH' });
  });

  /** Signs a link without delegate()'s checks: what an attacker holding a key could produce. */
  async function forge(
    w: Awaited<ReturnType<typeof world>>,
    parent: VerifiedChain,
    by: { identity: VerifiedIdentity; issuer: CredentialIssuer },
    subject: VerifiedIdentity,
    fields: {
      constraints?: Map<string, Constraint>;
      expiresAt?: number | null;
      notBefore?: number;
      depth?: number;
      parentHash?: Uint8Array;
      purpose?: string;
    },
  ): Promise<Uint8Array> {
    const data = encodeLinkData({
      issuer: by.identity.changes[0]!.changeHash,
      subject: subject.changes[0]!.changeHash,
      parent: fields.parentHash ?? parent.hash,
      constraints: constraintsToAttributes(fields.constraints ?? new Map()),
      notBefore: fields.notBefore ?? NOW,
      expiresAt: fields.expiresAt === undefined ? null : fields.expiresAt,
      depth: fields.depth ?? parent.remainingDepth - 1,
      purpose: fields.purpose ?? 'forged',
      nonce: randomBytes(LINK_NONCE_BYTES),
    });
    const signature = await w.vault.sign(by.issuer.credentialKeyId, sha256(data));
    const link = encodeLink(
      data,
      encodeSignature('ed25519', signature),
      by.issuer.credentialKeyAttestation,
    );
    const decoded = decodeChain(parent.bytes);
    return encodeChain(
      decoded.root,
      [...decoded.linkBytes, link],
      [...decoded.histories, by.identity.changeHistory, subject.changeHistory],
    );
  }

  it('refuses forged links at verification, each with its code', async () => {
    const w = await world();
    const c0 = w.verify(w.chain0);
    const cases: [string, Uint8Array][] = [
      [
        'ERR_DELEGATION_AMPLIFIES',
        await forge(w, c0, w.alice, w.bob.identity, { constraints: constraints('refund<=2000') }),
      ],
      [
        'ERR_DELEGATION_AMPLIFIES',
        await forge(w, c0, w.alice, w.bob.identity, {
          constraints: constraints('tools=read_orders,drop_tables'),
        }),
      ],
      [
        'ERR_DELEGATION_AMPLIFIES',
        await forge(w, c0, w.alice, w.bob.identity, { expiresAt: NOW + 999_999 }),
      ],
      [
        'ERR_DELEGATION_AMPLIFIES',
        await forge(w, c0, w.alice, w.bob.identity, { notBefore: NOW - 100 }),
      ],
      ['ERR_DELEGATION_DEPTH', await forge(w, c0, w.alice, w.bob.identity, { depth: 3 })],
      ['ERR_DELEGATION_PRINCIPAL_MISMATCH', await forge(w, c0, w.carol, w.bob.identity, {})],
      [
        'ERR_DELEGATION_PARENT_MISMATCH',
        await forge(w, c0, w.alice, w.bob.identity, { parentHash: new Uint8Array(32) }),
      ],
      [
        'ERR_DELEGATION_EXPIRED',
        await forge(w, c0, w.alice, w.bob.identity, { expiresAt: NOW + 5 }),
      ],
      [
        'ERR_DELEGATION_NOT_YET_VALID',
        await forge(w, c0, w.alice, w.bob.identity, { notBefore: NOW + 500 }),
      ],
    ];
    for (const [code, bytes] of cases)
      expect(
        codeOf(() => w.verify(bytes)),
        code,
      ).toBe(code);
    // The amplification message names the link and the constraint.
    expect(() => w.verify(cases[0]![1])).toThrow(/link 1 widens constraint `refund`/);
  });

  it('refuses a purpose with control or bidi characters, when delegating and when verifying', async () => {
    const w = await world();
    const c0 = w.verify(w.chain0);
    for (const purpose of UNSAFE_PURPOSES) {
      const shown = JSON.stringify(purpose);
      await expect(
        delegate(w.vault, w.alice.issuer, c0, {
          nowSeconds: NOW,
          subject: w.bob.identity,
          constraints: new Map(),
          purpose,
        }),
        shown,
      ).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
      // Signed properly, past delegate()'s check: a verifier refuses it all the same.
      const forged = await forge(w, c0, w.alice, w.bob.identity, { purpose });
      expect(
        codeOf(() => w.verify(forged)),
        shown,
      ).toBe('ERR_DELEGATION_MALFORMED');
    }
    // Printable text of any script stays welcome.
    const kept = await forge(w, c0, w.alice, w.bob.identity, {
      purpose: 'résoudre la plainte n° 4471 — 顧客 🙂 (ok)',
    });
    expect(w.verify(kept).links[0]!.purpose).toBe('résoudre la plainte n° 4471 — 顧客 🙂 (ok)');
  });

  it('refuses a skipped link, a link reused under another parent, and the wrong presenter', async () => {
    const w = await world();
    const c0 = w.verify(w.chain0);
    const c1 = w.verify(
      await delegate(w.vault, w.alice.issuer, c0, {
        nowSeconds: NOW,
        subject: w.bob.identity,
        constraints: new Map(),
      }),
    );
    const c2 = w.verify(
      await delegate(w.vault, w.bob.issuer, c1, {
        nowSeconds: NOW,
        subject: w.carol.identity,
        constraints: new Map(),
      }),
    );
    const d2 = decodeChain(c2.bytes);
    // Skip link 1: bob's link to carol directly under alice's credential.
    const skipped = encodeChain(d2.root, [d2.linkBytes[1]!], d2.histories);
    expect(codeOf(() => w.verify(skipped))).toBe('ERR_DELEGATION_PRINCIPAL_MISMATCH');
    // Reuse alice's link under another credential of alice's (another parent).
    const otherRoot = await issueCredential(
      w.vault,
      w.authority.issuer,
      w.alice.identity,
      constraintsToAttributes(constraints('tools=read_orders')),
      { nowSeconds: NOW, ttlSeconds: 3600 },
    );
    const reused = encodeChain(otherRoot, [d2.linkBytes[0]!], d2.histories);
    expect(codeOf(() => w.verify(reused))).toBe('ERR_DELEGATION_PARENT_MISMATCH');
    expect(codeOf(() => w.verify(c2.bytes, { presenter: w.bob.identity.identifier }))).toBe(
      'ERR_CHAIN_PRESENTER_MISMATCH',
    );
    // A chain without the histories it needs.
    expect(codeOf(() => w.verify(encodeChain(d2.root, d2.linkBytes, [])))).toBe(
      'ERR_CHAIN_HISTORY_MISSING',
    );
    // An untrusted authority.
    expect(
      codeOf(() => verifyChain(c2.bytes, { nowSeconds: NOW + 10, authorities: new Map() })),
    ).toBe('ERR_CREDENTIAL_UNTRUSTED_ISSUER');
  });

  it('revokes every descendant: a link, the root credential, or an identity in the chain', async () => {
    const w = await world();
    const c0 = w.verify(w.chain0);
    const c1 = w.verify(
      await delegate(w.vault, w.alice.issuer, c0, {
        nowSeconds: NOW,
        subject: w.bob.identity,
        constraints: new Map(),
      }),
    );
    const c2 = w.verify(
      await delegate(w.vault, w.bob.issuer, c1, {
        nowSeconds: NOW,
        subject: w.carol.identity,
        constraints: new Map(),
      }),
    );
    const denySetWith = (kind: 'revocation-id' | 'identity', id: string): DenySet =>
      DenySet.fromSnapshot(
        {
          sequence: 1,
          issuedAt: NOW,
          entries: [{ kind, id, expiresAt: NOW + 86_400, revokedAt: NOW }],
        },
        { maxStalenessSeconds: 60 },
      );
    for (const [kind, id] of [
      ['revocation-id', c1.links[0]!.revocationId],
      ['revocation-id', c0.root.revocationId],
      ['identity', w.bob.identity.identifier],
      ['identity', w.authority.identity.identifier],
    ] as const) {
      const denySet = denySetWith(kind, id);
      expect(
        codeOf(() => w.verify(c2.bytes, { denySet })),
        id,
      ).toBe('ERR_REVOKED');
      expect(
        authorize(c2, request('read_orders', { refund: '1', order: '/orders/1' }), { denySet })
          .decision,
      ).toBe('deny');
    }
    // An unrelated revocation changes nothing; a stale deny-set fails closed.
    expect(
      w.verify(c2.bytes, { denySet: denySetWith('revocation-id', '0'.repeat(32)) }).actor,
    ).toBe(w.carol.identity.identifier);
    expect(
      codeOf(() =>
        w.verify(c2.bytes, {
          denySet: denySetWith('revocation-id', '0'.repeat(32)),
          nowSeconds: NOW + 100,
        }),
      ),
    ).toBe('ERR_DENY_SET_STALE');
  });

  it('caches verified chains but re-checks expiry, presenter and revocation on every call', async () => {
    const w = await world();
    let denySet = DenySet.fromSnapshot(
      { sequence: 0, issuedAt: NOW, entries: [] },
      { maxStalenessSeconds: 10_000 },
    );
    const verifier = new ChainVerifier({ authorities: w.authorities, denySet });
    const first = verifier.verify(w.chain0, { nowSeconds: NOW + 1 });
    expect(verifier.verify(w.chain0, { nowSeconds: NOW + 2 })).toBe(first);
    expect(verifier.cached).toBe(1);
    expect(
      codeOf(() =>
        verifier.verify(w.chain0, { nowSeconds: NOW + 3, presenter: w.bob.identity.identifier }),
      ),
    ).toBe('ERR_CHAIN_PRESENTER_MISMATCH');
    denySet.apply({
      fromSequence: 0,
      toSequence: 1,
      issuedAt: NOW + 4,
      entries: [
        {
          kind: 'revocation-id',
          id: first.root.revocationId,
          expiresAt: NOW + 86_400,
          revokedAt: NOW + 4,
        },
      ],
    });
    expect(codeOf(() => verifier.verify(w.chain0, { nowSeconds: NOW + 5 }))).toBe('ERR_REVOKED');
    denySet = DenySet.fromSnapshot(
      { sequence: 0, issuedAt: NOW, entries: [] },
      { maxStalenessSeconds: 100_000 },
    );
    const fresh = new ChainVerifier({ authorities: w.authorities, denySet });
    fresh.verify(w.chain0, { nowSeconds: NOW + 1 });
    expect(codeOf(() => fresh.verify(w.chain0, { nowSeconds: NOW + 3600 }))).toMatch(
      /^ERR_(DELEGATION|CREDENTIAL)_EXPIRED$/,
    );
  });

  it('a ChainVerifier verifies an authority attestation once across chains, never a forged one', async () => {
    const w = await world();
    const verifier = new ChainVerifier({ authorities: w.authorities });
    const first = verifier.verify(w.chain0, { nowSeconds: NOW + 1 });
    const toBob = chainFromCredential(
      await issueCredential(
        w.vault,
        w.authority.issuer,
        w.bob.identity,
        constraintsToAttributes(constraints('tools=read_orders')),
        { nowSeconds: NOW, ttlSeconds: 3600 },
      ),
      w.bob.identity,
    );
    // Another chain rooted at the same authority: its attestation is the one verified before.
    expect(verifier.verify(toBob, { nowSeconds: NOW + 2 }).root.issuerKey).toBe(
      first.root.issuerKey,
    );
    // The same credential carrying the authority's attestation with its signature altered.
    const decoded = decodeCredential(w.root);
    const attestation = decoded.attestation.slice();
    attestation[attestation.length - 1]! ^= 0x01;
    const forged = chainFromCredential(
      encodeCredentialAndPurposeKey(decoded.data, decoded.signature, attestation),
      w.alice.identity,
    );
    const expected = codeOf(() => w.verify(forged));
    expect(expected).toBe('ERR_PURPOSE_KEY_SIGNATURE_INVALID');
    expect(codeOf(() => verifier.verify(forged, { nowSeconds: NOW + 3 }))).toBe(expected);
  });

  it('a ChainVerifier does not reuse a chain verified under an authority’s rotation grace after the window closes', async () => {
    const w = await world();
    // The verifier knows the authority rotated (at NOW): its old attestation holds for the grace
    // window (300 s) only.
    const rotated = await w.identities.rotate('authority');
    const authorities = new Map([[w.authority.identity.identifier, rotated.identity]]);
    const fresh = () => new ChainVerifier({ authorities });
    // No age bound, as an offline trail verifier sets it: only the keys' own times limit reuse.
    const verifier = new ChainVerifier({
      authorities,
      maxCacheAgeSeconds: Number.MAX_SAFE_INTEGER,
    });
    expect(verifier.verify(w.chain0, { nowSeconds: NOW + 10 }).root.issuerKey.inRotationGrace).toBe(
      true,
    );
    const later = NOW + 400;
    expect(codeOf(() => fresh().verify(w.chain0, { nowSeconds: later }))).toBe(
      'ERR_PURPOSE_KEY_STALE',
    );
    expect(codeOf(() => verifier.verify(w.chain0, { nowSeconds: later }))).toBe(
      'ERR_PURPOSE_KEY_STALE',
    );
    // A chain under the authority's current key is reused, up to its keys' expiry.
    const current = await w.identities.purposeKey('authority', Purpose.credentials);
    const issuer: CredentialIssuer = {
      identity: rotated.identity,
      credentialKeyId: current.keyId,
      credentialKeyAttestation: current.verified.attestation,
    };
    const chain = chainFromCredential(
      await issueCredential(
        w.vault,
        issuer,
        w.alice.identity,
        constraintsToAttributes(constraints('tools=read_orders')),
        {
          nowSeconds: NOW,
          ttlSeconds: 3600,
        },
      ),
      w.alice.identity,
    );
    const first = verifier.verify(chain, { nowSeconds: NOW + 10 });
    expect(first.root.issuerKey.inRotationGrace).toBe(false);
    expect(verifier.verify(chain, { nowSeconds: later })).toBe(first);
  });

  it('rejects any one-bit change of a chain (property)', async () => {
    const w = await world();
    const bytes = await delegate(w.vault, w.alice.issuer, w.verify(w.chain0), {
      nowSeconds: NOW,
      subject: w.bob.identity,
      constraints: constraints('refund<=10'),
    });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), (bit) => {
        const mutated = bytes.slice();
        mutated[bit >> 3]! ^= 1 << (bit & 7);
        expect(codeOf(() => w.verify(mutated))).toMatch(/^ERR_/);
      }),
      { numRuns: 400 },
    );
  });

  it('never accepts a random amplification attempt, and never allows what the root would deny (property)', async () => {
    const w = await world();
    const c0 = w.verify(w.chain0);
    const limit = fc.integer({ min: -5, max: 2000 });
    const tools = fc.subarray(['read_orders', 'issue_refund', 'delete_orders', 'export_data'], {
      minLength: 1,
    });
    await fc.assert(
      fc.asyncProperty(
        limit,
        tools,
        fc.integer({ min: -10, max: 3000 }),
        fc.constantFrom('read_orders', 'issue_refund', 'delete_orders'),
        async (max, toolList, amount, action) => {
          const child = constraints(`refund<=${max}`, `tools=${toolList.join(',')}`);
          const widens =
            max > 1000 || toolList.some((t) => t !== 'read_orders' && t !== 'issue_refund');
          const forged = await forge(w, c0, w.alice, w.bob.identity, { constraints: child });
          const code = codeOf(() => w.verify(forged));
          expect(code).toBe(widens ? 'ERR_DELEGATION_AMPLIFIES' : 'accepted');
          if (code !== 'accepted') return;
          const decision = authorize(
            w.verify(forged),
            request(action, { refund: String(amount), order: '/orders/1' }),
          );
          const rootAllows =
            authorize(c0, request(action, { refund: String(amount), order: '/orders/1' }))
              .decision === 'allow';
          if (decision.decision === 'allow') expect(rootAllows).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('uses the newer history a verifier knows: a rotation that revokes purpose keys cannot be undone by carrying the old one', async () => {
    const w = await world();
    const c1 = w.verify(
      await delegate(w.vault, w.alice.issuer, w.verify(w.chain0), {
        nowSeconds: NOW,
        subject: w.bob.identity,
        constraints: new Map(),
      }),
    );
    const c2bytes = await delegate(w.vault, w.bob.issuer, c1, {
      nowSeconds: NOW,
      subject: w.carol.identity,
      constraints: new Map(),
    });
    // Bob's credential key is compromised: he rotates, voiding every purpose key at once.
    const rotated = await w.identities.rotate('bob', { revokeAllPurposeKeys: true });
    const known = new Map([[w.bob.identity.identifier, rotated.identity]]);
    // Carrying bob's old history still verifies for a verifier that knows nothing newer…
    expect(w.verify(c2bytes).actor).toBe(w.carol.identity.identifier);
    // …but not for one that knows the rotation.
    expect(
      codeOf(() =>
        verifyChain(c2bytes, {
          nowSeconds: NOW + 10,
          authorities: w.authorities,
          knownIdentities: known,
        }),
      ),
    ).toBe('ERR_PURPOSE_KEY_REVOKED');
    // A known history that diverges from the carried one is a fork.
    const other = await w.identities.create({ name: 'other' });
    const forked = new Map([[w.bob.identity.identifier, other.identity]]);
    expect(
      codeOf(() =>
        verifyChain(c2bytes, {
          nowSeconds: NOW + 10,
          authorities: w.authorities,
          knownIdentities: forked,
        }),
      ),
    ).toBe('ERR_IDENTITY_HISTORY_FORK');
  });

  it('takes a carried history byte-identical to a known verified one as that identity, and verifies any other', async () => {
    const w = await world();
    const c1bytes = await delegate(w.vault, w.alice.issuer, w.verify(w.chain0), {
      nowSeconds: NOW,
      subject: w.bob.identity,
      constraints: new Map(),
    });
    const first = w.verify(c1bytes);
    const known = new Map(first.identities);
    const again = verifyChain(c1bytes, {
      nowSeconds: NOW,
      authorities: w.authorities,
      knownIdentities: known,
    });
    for (const [id, identity] of again.identities) expect(identity).toBe(known.get(id));
    // Without them, every history is verified afresh (new objects, same identifiers).
    const fresh = verifyChain(c1bytes, { nowSeconds: NOW, authorities: w.authorities });
    for (const [id, identity] of fresh.identities) {
      expect(identity).not.toBe(known.get(id));
      expect(identity.identifier).toBe(id);
    }
  });

  // Issue 8, vulnerability 3: a scoped constraint on a dotted tool name was silently skipped.
  it('applies a scoped constraint to a tool whose name holds dots, slashes and colons', async () => {
    const w = await world([
      'tools=orders.refund,github/create_issue,db:query',
      'orders.refund#amount<=100',
      'github/create_issue#repo=mandate',
      'db:query#table=orders',
    ]);
    const c0 = w.verify(w.chain0);
    expect(authorize(c0, request('orders.refund', { amount: '1000000' }))).toMatchObject({
      decision: 'deny',
      failed: { link: 0, constraint: 'orders.refund#amount' },
    });
    expect(authorize(c0, request('orders.refund', { amount: '100' })).decision).toBe('allow');
    expect(authorize(c0, request('github/create_issue', { repo: 'other' }))).toMatchObject({
      decision: 'deny',
      failed: { constraint: 'github/create_issue#repo' },
    });
    expect(authorize(c0, request('db:query', { table: 'orders' })).decision).toBe('allow');
    expect(authorize(c0, request('db:query', { table: 'users' })).decision).toBe('deny');
  });

  it('reads the old dotted form `TOOL.ARG` as one argument name: it can only fail closed', async () => {
    const w = await world(['tools=orders.refund', 'orders.refund.amount<=100']);
    const c0 = w.verify(w.chain0);
    expect(authorize(c0, request('orders.refund', { amount: '1000000' }))).toMatchObject({
      decision: 'deny',
      failed: { constraint: 'orders.refund.amount' },
    });
  });

  it('never skips a scoped constraint in a decision, whatever the tool name (property)', async () => {
    const w = await world();
    const toolName = fc.oneof(
      fc.constantFrom('orders', 'orders.refund', 'orders.refund.amount', 'github/create_issue'),
      fc.stringMatching(/^[A-Za-z0-9_.:-][A-Za-z0-9_.:@/-]{0,40}$/),
    );
    await fc.assert(
      fc.asyncProperty(
        toolName,
        toolName,
        fc.integer({ min: -50, max: 50 }),
        fc.integer({ min: -100, max: 100 }),
        async (tool, other, limit, amount) => {
          fc.pre(tool !== other);
          const root = await issueCredential(
            w.vault,
            w.authority.issuer,
            w.alice.identity,
            constraintsToAttributes(
              constraints(`tools=${tool},${other}`, `${tool}#amount<=${limit}`),
            ),
            { nowSeconds: NOW, ttlSeconds: 3600 },
          );
          const chain = w.verify(chainFromCredential(root, w.alice.identity));
          const own = authorize(chain, request(tool, { amount: String(amount) }));
          expect(own.decision).toBe(amount <= limit ? 'allow' : 'deny');
          expect(authorize(chain, request(tool)).decision).toBe('deny');
          expect(authorize(chain, request(other, { amount: String(amount) })).decision).toBe(
            'allow',
          );
          expect(authorize(chain, request(other)).decision).toBe('allow');
        },
      ),
      { numRuns: 60 },
    );
  });

  it('refuses a scoped constraint on a tool no `tools` constraint grants, at issue and at verify', async () => {
    const ungranted = await world(['tools=read_orders', 'issue_refund#amount<=100']);
    expect(codeOf(() => ungranted.verify(ungranted.chain0))).toBe(
      'ERR_CONSTRAINT_TOOL_NOT_GRANTED',
    );
    const toolless = await world(['issue_refund#amount<=100']);
    expect(codeOf(() => toolless.verify(toolless.chain0))).toBe('ERR_CONSTRAINT_TOOL_NOT_GRANTED');
    const any = await world(['tools=*', 'issue_refund#amount<=100']);
    expect(codeOf(() => any.verify(any.chain0))).toBe('accepted');

    const w = await world();
    const c0 = w.verify(w.chain0);
    const attempt = (...texts: string[]) =>
      delegate(w.vault, w.alice.issuer, c0, {
        nowSeconds: NOW,
        subject: w.bob.identity,
        constraints: constraints(...texts),
      });
    // Inherited `tools` grants issue_refund; the link's own `tools` narrows it away.
    await expect(attempt('issue_refund#refund<=10')).resolves.toBeInstanceOf(Uint8Array);
    await expect(attempt('drop_tables#refund<=10')).rejects.toMatchObject({
      code: 'ERR_CONSTRAINT_TOOL_NOT_GRANTED',
    });
    await expect(attempt('tools=read_orders', 'issue_refund#refund<=10')).rejects.toMatchObject({
      code: 'ERR_CONSTRAINT_TOOL_NOT_GRANTED',
    });
    const forged = await forge(w, c0, w.alice, w.bob.identity, {
      constraints: constraints('tools=read_orders', 'issue_refund#refund<=10'),
    });
    expect(codeOf(() => w.verify(forged))).toBe('ERR_CONSTRAINT_TOOL_NOT_GRANTED');
  });

  // Issue 8, vulnerability 4: no attribute meant no restriction.
  it('denies by default: a chain whose root carries no `tools` allows no action', async () => {
    const w = await world(['refund<=1000']);
    const c0 = w.verify(w.chain0);
    expect(authorize(c0, request('drop_all_tables', { refund: '1' }))).toMatchObject({
      decision: 'deny',
      failed: { link: 0, constraint: 'tools' },
    });
    const empty = await world([]);
    expect(authorize(empty.verify(empty.chain0), request('drop_all_tables')).decision).toBe('deny');
    // A link cannot grant what its root never had: adding `tools` below a tool-less root widens.
    await expect(
      delegate(w.vault, w.alice.issuer, c0, {
        nowSeconds: NOW,
        subject: w.bob.identity,
        constraints: constraints('tools=drop_all_tables'),
      }),
    ).rejects.toMatchObject({ code: 'ERR_DELEGATION_AMPLIFIES' });
    const forged = await forge(w, c0, w.alice, w.bob.identity, {
      constraints: constraints('tools=drop_all_tables'),
    });
    expect(codeOf(() => w.verify(forged))).toBe('ERR_DELEGATION_AMPLIFIES');
  });

  it('never reads an infrastructure attribute such as `relay` as a tool argument', async () => {
    const relayOnly = await world(['relay=bob']);
    expect(
      authorize(relayOnly.verify(relayOnly.chain0), request('anything', { relay: 'bob' })).decision,
    ).toBe('deny');
    const w = await world(['tools=read_orders', 'relay=bob', 'ockam-role=enroller']);
    const c0 = w.verify(w.chain0);
    // Neither refused for a missing argument nor satisfied by one.
    expect(authorize(c0, request('read_orders')).decision).toBe('allow');
    expect(authorize(c0, request('issue_refund', { relay: 'bob' })).decision).toBe('deny');
  });

  // Issue 8, vulnerability 7: a missing clock failed open.
  it.each([
    ['NaN', Number.NaN],
    ['undefined', undefined],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['1.5', 1.5],
    ['-1', -1],
  ])('treats a `nowSeconds` of %s as a failure everywhere', async (_, now) => {
    const w = await world();
    const c0 = w.verify(w.chain0);
    const at = now as number;
    expect(authorize(c0, { action: 'read_orders', args: new Map(), nowSeconds: at })).toMatchObject(
      { decision: 'deny', failed: { link: 0, constraint: null } },
    );
    // Every argument satisfied, no deny-set: the case that allowed, whatever the chain's window.
    expect(
      authorize(c0, {
        action: 'read_orders',
        args: new Map([
          ['refund', '1'],
          ['order', '/orders/1'],
        ]),
        nowSeconds: at,
      }).decision,
    ).toBe('deny');
    expect(
      codeOf(() => verifyChain(w.chain0, { nowSeconds: at, authorities: w.authorities })),
    ).toBe('ERR_ARGUMENT_INVALID');
    const verifier = new ChainVerifier({ authorities: w.authorities });
    verifier.verify(w.chain0, { nowSeconds: NOW + 1 });
    expect(codeOf(() => verifier.verify(w.chain0, { nowSeconds: at }))).toBe(
      'ERR_ARGUMENT_INVALID',
    );
    await expect(
      delegate(w.vault, w.alice.issuer, c0, {
        nowSeconds: at,
        subject: w.bob.identity,
        constraints: constraints('refund<=10'),
      }),
    ).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
  });
});
