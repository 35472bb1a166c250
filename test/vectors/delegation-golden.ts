// Builds Mandate's golden delegation vectors (docs/spec/vectors/delegation-chain.json) from fixed
// seeds, nonces and times: Ed25519 signatures are deterministic, so anyone can reproduce every
// byte. Regenerate the file with
//
//   npx tsx -e "import('./test/vectors/delegation-golden.ts').then((m) => process.stdout.write(JSON.stringify(m.buildDelegationVectors(), null, 2) + '\n'))" > docs/spec/vectors/delegation-chain.json
//   npx prettier --write docs/spec/vectors/delegation-chain.json
//
// and review the diff: a changed byte is a wire-format change. Expected decisions and error codes
// are written here by hand, never computed with the code under test.
import { concatBytes, encodeCbor, toHex, type CborValue } from '../../src/encoding/index.js';
import { ed25519KeyPairFromSeed, sha256, signEd25519 } from '../../src/crypto/index.js';
import {
  encodeChangeData,
  encodeChangeHistory,
  encodeSignature,
  encodeVersionedData,
} from '../../src/identity/codec.js';
import { encodeChain, encodeLink, encodeLinkData } from '../../src/credentials/chain-codec.js';
import {
  encodeCredentialAndPurposeKey,
  encodeCredentialData,
} from '../../src/credentials/credential-codec.js';
import { encodeConstraintValue, parseConstraint } from '../../src/credentials/constraints.js';

const T0 = 1_767_225_600; // 2026-01-01T00:00:00Z
const TEN_YEARS = 315_360_000;
const ONE_YEAR = 31_536_000;
/** When the valid chains are verified, and the time of most authorization requests. */
const VERIFIED_AT = T0 + 600;

const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const utf8 = new TextEncoder();

/** One-change Ed25519 identity plus an attested Ed25519 credential key (as test/vectors/golden.ts). */
function buildIdentity(primarySeed: number, credentialSeed: number) {
  const primary = ed25519KeyPairFromSeed(seed(primarySeed));
  const credentialKey = ed25519KeyPairFromSeed(seed(credentialSeed));
  const data = encodeVersionedData(
    1,
    encodeChangeData({
      previousChange: null,
      primaryPublicKey: { keyType: 'ed25519', bytes: primary.publicKey },
      revokeAllPurposeKeys: false,
      attestationsValidFrom: T0,
      attestationsValidUntil: T0 + TEN_YEARS,
    }),
  );
  const changeHash = sha256(data);
  const history = encodeChangeHistory([
    {
      data,
      signature: { keyType: 'ed25519', bytes: signEd25519(primary.secretKey, changeHash) },
      previousSignature: null,
    },
  ]);
  // PurposeKeyAttestation: [ VersionedData [1, 2, AttestationData], Signature ].
  const purposePublicKey: CborValue = [1, [[0, [credentialKey.publicKey]]]];
  const attestationData = encodeVersionedData(
    2,
    encodeCbor([changeHash, changeHash, purposePublicKey, T0, T0 + ONE_YEAR]),
  );
  const attestation = encodeCbor([
    attestationData,
    [0, [signEd25519(primary.secretKey, sha256(attestationData))]],
  ]);
  return {
    id: changeHash,
    identifier: `I${toHex(changeHash)}`,
    history,
    attestation,
    credentialKey,
    json: {
      primarySeed: toHex(seed(primarySeed)),
      credentialKeySeed: toHex(seed(credentialSeed)),
      identifier: `I${toHex(changeHash)}`,
      changeHash: toHex(changeHash),
      changeHistory: toHex(history),
      credentialPublicKey: toHex(credentialKey.publicKey),
      credentialKeyAttestation: toHex(attestation),
      attestationWindow: [T0, T0 + ONE_YEAR],
    },
  };
}

type Identity = ReturnType<typeof buildIdentity>;

/** Constraint texts in the CLI grammar → attribute map of canonical value bytes. */
function constraintAttributes(texts: readonly string[]): Map<string, Uint8Array> {
  return new Map(
    texts.map((text) => {
      const [name, constraint] = parseConstraint(text);
      return [name, encodeConstraintValue(constraint)] as const;
    }),
  );
}

/** Attribute map → `{ name: value text }` in wire (byte) order, for reading. */
function summarise(attributes: ReadonlyMap<string, Uint8Array>): Record<string, string> {
  const names = [...attributes.keys()].sort();
  return Object.fromEntries(
    names.map((name) => [name, new TextDecoder().decode(attributes.get(name))]),
  );
}

/**
 * Recomputed here rather than imported:
 * `hex(SHA-256("mandate/revocation-id/v2" ‖ issuer identifier bytes ‖ SHA-256(data)))[0..32]`.
 */
function revocationId(issuer: Uint8Array, dataHash: Uint8Array): string {
  return toHex(
    sha256(concatBytes(utf8.encode('mandate/revocation-id/v2'), issuer, dataHash)).subarray(0, 16),
  );
}

/** Order L of the Ed25519 prime-order subgroup (RFC 8032 §5.1). */
const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n;

/** (R, S) → (R, S + L): what a lax verifier accepts as the same signature; S is little-endian. */
function malleateEd25519(signature: Uint8Array): Uint8Array {
  const s = BigInt(`0x${toHex(signature.slice(32).reverse())}`) + ED25519_L;
  const sBytes = Uint8Array.from(Buffer.from(s.toString(16).padStart(64, '0'), 'hex')).reverse();
  return concatBytes(signature.subarray(0, 32), sBytes);
}

interface LinkSpec {
  readonly issuer: Identity;
  readonly subject: Identity;
  readonly parent: Uint8Array;
  readonly parentIs: string;
  readonly constraints: readonly string[];
  readonly notBefore: number;
  readonly expiresAt: number | null;
  readonly effectiveExpiresAt: number;
  readonly depth: number;
  readonly purpose: string;
  readonly nonceByte: number;
}

function buildLink(spec: LinkSpec) {
  const constraints = constraintAttributes(spec.constraints);
  const nonce = new Uint8Array(16).fill(spec.nonceByte);
  const data = encodeLinkData({
    issuer: spec.issuer.id,
    subject: spec.subject.id,
    parent: spec.parent,
    constraints,
    notBefore: spec.notBefore,
    expiresAt: spec.expiresAt,
    depth: spec.depth,
    purpose: spec.purpose,
    nonce,
  });
  const hash = sha256(data);
  const signature = signEd25519(spec.issuer.credentialKey.secretKey, hash);
  const bytes = encodeLink(data, encodeSignature('ed25519', signature), spec.issuer.attestation);
  return {
    data,
    hash,
    signature,
    bytes,
    json: {
      summary: {
        issuer: spec.issuer.identifier,
        subject: spec.subject.identifier,
        parent: toHex(spec.parent),
        parentIs: spec.parentIs,
        constraints: summarise(constraints),
        notBefore: spec.notBefore,
        expiresAt: spec.expiresAt,
        effectiveExpiresAt: spec.effectiveExpiresAt,
        depth: spec.depth,
        purpose: spec.purpose,
        nonce: toHex(nonce),
      },
      data: toHex(data),
      hash: toHex(hash),
      signature: toHex(signature),
      revocationId: revocationId(spec.issuer.id, hash),
      link: toHex(bytes),
    },
  };
}

function buildCredential(
  issuer: Identity,
  subject: Identity,
  constraints: readonly string[],
  createdAt: number,
  expiresAt: number,
) {
  const attributes = constraintAttributes(constraints);
  const data = encodeCredentialData({
    subject: subject.id,
    subjectLatestChangeHash: subject.id,
    schema: 1,
    attributes,
    createdAt,
    expiresAt,
  });
  const hash = sha256(data);
  const signature = signEd25519(issuer.credentialKey.secretKey, hash);
  const bytes = encodeCredentialAndPurposeKey(
    data,
    { keyType: 'ed25519', bytes: signature },
    issuer.attestation,
  );
  return {
    hash,
    bytes,
    json: {
      summary: {
        issuer: issuer.identifier,
        subject: subject.identifier,
        schema: 1,
        attributes: summarise(attributes),
        createdAt,
        expiresAt,
        maxDepth: 3,
      },
      data: toHex(data),
      hash: toHex(hash),
      signature: toHex(signature),
      revocationId: revocationId(issuer.id, hash),
      credential: toHex(bytes),
    },
  };
}

export function buildDelegationVectors() {
  const authority = buildIdentity(0x11, 0x21);
  const alice = buildIdentity(0x12, 0x22);
  const bob = buildIdentity(0x13, 0x23);
  const carol = buildIdentity(0x14, 0x24);
  const rootExpiresAt = T0 + 3600;

  const rootConstraints = ['tools=issue_refund,read_orders', 'refund<=1000', 'order=/orders/**'];
  const root = buildCredential(authority, alice, rootConstraints, T0, rootExpiresAt);
  const link1Spec: LinkSpec = {
    issuer: alice,
    subject: bob,
    parent: root.hash,
    parentIs: 'root credential',
    constraints: ['tools=read_orders', 'refund<=100', 'order=/orders/4471/**'],
    notBefore: T0 + 60,
    expiresAt: null,
    effectiveExpiresAt: rootExpiresAt,
    depth: 2,
    purpose: 'resolve complaint #4471',
    nonceByte: 0xa1,
  };
  const link1 = buildLink(link1Spec);
  const link2Spec: LinkSpec = {
    issuer: bob,
    subject: carol,
    parent: link1.hash,
    parentIs: 'link 1',
    constraints: ['refund<=10'],
    notBefore: T0 + 120,
    expiresAt: T0 + 1800,
    effectiveExpiresAt: T0 + 1800,
    depth: 1,
    purpose: 'look up refunds of at most 10 on order #4471',
    nonceByte: 0xa2,
  };
  const link2 = buildLink(link2Spec);

  const histories = {
    0: [alice.history],
    1: [alice.history, bob.history],
    2: [alice.history, bob.history, carol.history],
  } as const;
  const chain0 = encodeChain(root.bytes, [], histories[0]);
  const chain1 = encodeChain(root.bytes, [link1.bytes], histories[1]);
  const chain2 = encodeChain(root.bytes, [link1.bytes, link2.bytes], histories[2]);
  const full = (links: readonly Uint8Array[]): string =>
    toHex(encodeChain(root.bytes, links, histories[2]));

  // --- must-fail chains: each signed correctly unless it says otherwise ---------------------
  const widening = buildLink({
    ...link1Spec,
    constraints: ['tools=read_orders', 'refund<=5000', 'order=/orders/4471/**'],
    nonceByte: 0xb1,
  });
  const toCarol = buildLink({ ...link1Spec, subject: carol, nonceByte: 0xb2 });
  // Link 1 with carol's identifier written over bob's after signing: the signature no longer holds.
  const tamperedData = encodeLinkData({
    issuer: alice.id,
    subject: carol.id,
    parent: root.hash,
    constraints: constraintAttributes(link1Spec.constraints),
    notBefore: link1Spec.notBefore,
    expiresAt: link1Spec.expiresAt,
    depth: link1Spec.depth,
    purpose: link1Spec.purpose,
    nonce: new Uint8Array(16).fill(link1Spec.nonceByte),
  });
  const tampered = encodeLink(
    tamperedData,
    encodeSignature('ed25519', link1.signature),
    alice.attestation,
  );
  // Link 1 with S rewritten to S + L: no key needed, and equivalent for a verifier that does not
  // insist on a canonical S (RFC 8032 §5.1.7 does).
  const malleated = encodeLink(
    link1.data,
    encodeSignature('ed25519', malleateEd25519(link1.signature)),
    alice.attestation,
  );
  // The same grant as link 1 issued twice: another nonce, so another hash and revocation id.
  const sibling = buildLink({ ...link1Spec, nonceByte: 0xb3 });
  const tooDeep = buildLink({ ...link2Spec, depth: 2, nonceByte: 0xb4 });
  const outlives = buildLink({ ...link2Spec, expiresAt: T0 + 7200, nonceByte: 0xb5 });
  const selfIssued = buildCredential(alice, alice, rootConstraints, T0, rootExpiresAt);

  const mustFail = [
    {
      name: 'widening-refund',
      description: 'link 1 declares refund<=5000 under the root refund<=1000 (correctly signed)',
      chain: full([widening.bytes]),
      nowSeconds: VERIFIED_AT,
      code: 'ERR_DELEGATION_AMPLIFIES',
    },
    {
      name: 'swapped-subject',
      description:
        'alice delegates to carol (correctly signed), but the next link is issued by bob, who holds nothing',
      chain: full([toCarol.bytes, link2.bytes]),
      nowSeconds: VERIFIED_AT,
      code: 'ERR_DELEGATION_PRINCIPAL_MISMATCH',
    },
    {
      name: 'tampered-subject',
      description: "link 1's subject replaced by carol's identifier after signing",
      chain: full([tampered]),
      nowSeconds: VERIFIED_AT,
      code: 'ERR_DELEGATION_SIGNATURE_INVALID',
    },
    {
      name: 'reused-under-another-parent',
      description:
        'link 2 (parent: link 1) presented under a second, valid alice → bob link with another nonce',
      chain: full([sibling.bytes, link2.bytes]),
      nowSeconds: VERIFIED_AT,
      code: 'ERR_DELEGATION_PARENT_MISMATCH',
    },
    {
      name: 'skipped-link',
      description: 'the root credential followed directly by link 2 (bob → carol)',
      chain: full([link2.bytes]),
      nowSeconds: VERIFIED_AT,
      code: 'ERR_DELEGATION_PRINCIPAL_MISMATCH',
    },
    {
      name: 'expired-link',
      description:
        'the valid two-link chain at link 2 expires_at (link 1 and the root still valid)',
      chain: toHex(chain2),
      nowSeconds: T0 + 1800,
      code: 'ERR_DELEGATION_EXPIRED',
    },
    {
      name: 'depth-not-decreasing',
      description: 'link 2 declares depth 2, equal to its parent link 1',
      chain: full([link1.bytes, tooDeep.bytes]),
      nowSeconds: VERIFIED_AT,
      code: 'ERR_DELEGATION_DEPTH',
    },
    {
      name: 'outlives-parent',
      description: 'link 2 expires at t0+7200, after the root credential (t0+3600)',
      chain: full([link1.bytes, outlives.bytes]),
      nowSeconds: VERIFIED_AT,
      code: 'ERR_DELEGATION_AMPLIFIES',
    },
    {
      name: 'presenter-mismatch',
      description: 'the valid two-link chain presented by bob instead of carol',
      chain: toHex(chain2),
      nowSeconds: VERIFIED_AT,
      presenter: bob.identifier,
      code: 'ERR_CHAIN_PRESENTER_MISMATCH',
    },
    {
      name: 'revoked-link',
      description: "the valid two-link chain, with link 1's revocation id on a fresh deny-set",
      chain: toHex(chain2),
      nowSeconds: VERIFIED_AT,
      revoked: [link1.json.revocationId],
      code: 'ERR_REVOKED',
    },
    {
      name: 'malleated-revoked-link',
      description:
        'link 1 revoked, then its Ed25519 signature rewritten from S to S + L (non-canonical): refused as a signature, and its revocation id would not have moved anyway',
      chain: full([malleated, link2.bytes]),
      nowSeconds: VERIFIED_AT,
      revoked: [link1.json.revocationId],
      code: 'ERR_DELEGATION_SIGNATURE_INVALID',
    },
    {
      name: 'untrusted-root-issuer',
      description: 'a root credential alice issued to herself: alice is not a trusted authority',
      chain: toHex(encodeChain(selfIssued.bytes, [], histories[0])),
      nowSeconds: VERIFIED_AT,
      code: 'ERR_CREDENTIAL_UNTRUSTED_ISSUER',
    },
  ];

  // --- authorization: (chain, request) → decision, on chains verified at VERIFIED_AT ---------
  const allow = (actor: Identity) => ({ decision: 'allow', actor: actor.identifier });
  const deny = (actor: Identity, level: number, constraint: string | null) => ({
    decision: 'deny',
    actor: actor.identifier,
    level,
    constraint,
  });
  const request = (
    action: string,
    args: Record<string, string>,
    nowSeconds: number = VERIFIED_AT,
  ) => ({ action, args, nowSeconds });
  const lookUp = { refund: '5', order: '/orders/4471/items/2' };
  const authorization = [
    {
      name: 'carol reads an order inside every level',
      links: 2,
      request: request('read_orders', lookUp),
      expected: allow(carol),
    },
    {
      name: 'carol at the bounds: refund 10, the subtree root /orders/4471',
      links: 2,
      request: request('read_orders', { refund: '10', order: '/orders/4471' }),
      expected: allow(carol),
    },
    {
      name: 'carol asks refund 50: within link 1 (<=100), beyond link 2 (<=10)',
      links: 2,
      request: request('read_orders', { refund: '50', order: '/orders/4471' }),
      expected: deny(carol, 2, 'refund'),
    },
    {
      name: 'carol calls issue_refund: the root allows it, link 1 does not',
      links: 2,
      request: request('issue_refund', lookUp),
      expected: deny(carol, 1, 'tools'),
    },
    {
      name: 'carol reads another order: /orders/4472 is outside link 1',
      links: 2,
      request: request('read_orders', { refund: '5', order: '/orders/4472' }),
      expected: deny(carol, 1, 'order'),
    },
    {
      name: '/orders/44710 is not below /orders/4471 (segments, not prefixes)',
      links: 2,
      request: request('read_orders', { refund: '5', order: '/orders/44710' }),
      expected: deny(carol, 1, 'order'),
    },
    {
      name: 'a missing argument denies at the first level that names it',
      links: 2,
      request: request('read_orders', { order: '/orders/4471' }),
      expected: deny(carol, 0, 'refund'),
    },
    {
      name: 'a non-integer amount denies',
      links: 2,
      request: request('read_orders', { refund: '1e1', order: '/orders/4471' }),
      expected: deny(carol, 0, 'refund'),
    },
    {
      name: 'before link 2 starts',
      links: 2,
      request: request('read_orders', lookUp, T0 + 119),
      expected: deny(carol, 0, null),
    },
    {
      name: 'at link 2 expiry',
      links: 2,
      request: request('read_orders', lookUp, T0 + 1800),
      expected: deny(carol, 0, null),
    },
    {
      name: 'bob calls issue_refund: link 1 allows only read_orders',
      links: 1,
      request: request('issue_refund', { refund: '100', order: '/orders/4471' }),
      expected: deny(bob, 1, 'tools'),
    },
    {
      name: 'bob reads with refund 100',
      links: 1,
      request: request('read_orders', { refund: '100', order: '/orders/4471/notes' }),
      expected: allow(bob),
    },
    {
      name: 'bob at link 2 expiry: link 1 inherits the root expiry',
      links: 1,
      request: request('read_orders', lookUp, T0 + 1800),
      expected: allow(bob),
    },
    {
      name: 'alice refunds 1000 on any order',
      links: 0,
      request: request('issue_refund', { refund: '1000', order: '/orders/9000' }),
      expected: allow(alice),
    },
    {
      name: 'alice refunds 1001',
      links: 0,
      request: request('issue_refund', { refund: '1001', order: '/orders/9000' }),
      expected: deny(alice, 0, 'refund'),
    },
    {
      name: 'alice calls a tool the root does not list',
      links: 0,
      request: request('delete_order', { refund: '0', order: '/orders/9000' }),
      expected: deny(alice, 0, 'tools'),
    },
    {
      name: 'alice at the root expiry',
      links: 0,
      request: request('read_orders', lookUp, rootExpiresAt),
      expected: deny(alice, 0, null),
    },
  ];

  const step = (
    issuer: Identity,
    subject: Identity,
    purpose: string,
    constraints: readonly string[],
  ) => ({
    issuer: issuer.identifier,
    subject: subject.identifier,
    purpose,
    constraints,
  });
  const steps = [
    step(authority, alice, 'root credential', [
      'order=/orders/**',
      'refund<=1000',
      'tools=issue_refund,read_orders',
    ]),
    step(alice, bob, link1Spec.purpose, [
      'order=/orders/4471/**',
      'refund<=100',
      'tools=read_orders',
    ]),
    step(bob, carol, link2Spec.purpose, ['refund<=10']),
  ];

  return {
    about:
      'Mandate delegation golden vectors (docs/spec/delegation.md): fixed seeds, nonces and times; rebuilt byte for byte by test/vectors/mandate-delegation-golden.test.ts. All identities are one-change Ed25519 histories created at t0 with an Ed25519 credential key attested for a year. Every byte string is hex. Test keys only: never use these seeds.',
    times: {
      t0: T0,
      t0Iso: '2026-01-01T00:00:00Z',
      verifiedAt: VERIFIED_AT,
    },
    identities: {
      authority: authority.json,
      alice: alice.json,
      bob: bob.json,
      carol: carol.json,
    },
    rootCredential: root.json,
    links: [link1.json, link2.json],
    chains: [
      {
        links: 0,
        actor: alice.identifier,
        histories: ['alice'] as const,
        notBefore: T0,
        expiresAt: rootExpiresAt,
        remainingDepth: 3,
        hash: toHex(root.hash),
        steps: steps.slice(0, 1),
        bytes: toHex(chain0),
      },
      {
        links: 1,
        actor: bob.identifier,
        histories: ['alice', 'bob'] as const,
        notBefore: link1Spec.notBefore,
        expiresAt: rootExpiresAt,
        remainingDepth: 2,
        hash: toHex(link1.hash),
        steps: steps.slice(0, 2),
        bytes: toHex(chain1),
      },
      {
        links: 2,
        actor: carol.identifier,
        histories: ['alice', 'bob', 'carol'] as const,
        notBefore: link2Spec.notBefore,
        expiresAt: T0 + 1800,
        remainingDepth: 1,
        hash: toHex(link2.hash),
        steps,
        bytes: toHex(chain2),
      },
    ],
    mustFail,
    authorization,
    enrollmentTicket: buildTicketVectors(authority),
  };
}

function buildTicketVectors(authority: Identity) {
  const code = Uint8Array.from({ length: 32 }, (_, i) => i);
  const route = '/dnsaddr/authority.example.com/tcp/4000/service/api';
  const expiresAt = T0 + 600;
  const text = (payload: Uint8Array): string =>
    `mandate1.${Buffer.from(payload).toString('base64url')}`;
  const payload = encodeCbor([1, authority.history, route, code, expiresAt]);
  const ticket = text(payload);
  // The authority history with the last byte of its signature flipped.
  const forged = Uint8Array.from(authority.history);
  forged[forged.length - 1]! ^= 0x01;
  return {
    code: toHex(code),
    codeHash: toHex(sha256(code)),
    authority: authority.identifier,
    route,
    expiresAt,
    payload: toHex(payload),
    text: ticket,
    mustFail: [
      {
        name: 'padded',
        text: `${ticket}=`,
        code: 'ERR_TICKET_MALFORMED',
      },
      {
        name: 'other-prefix',
        text: `mandate2.${ticket.slice('mandate1.'.length)}`,
        code: 'ERR_TICKET_MALFORMED',
      },
      {
        name: 'version-2',
        text: text(encodeCbor([2, authority.history, route, code, expiresAt])),
        code: 'ERR_TICKET_MALFORMED',
      },
      {
        name: 'short-code',
        text: text(encodeCbor([1, authority.history, route, code.subarray(0, 31), expiresAt])),
        code: 'ERR_TICKET_MALFORMED',
      },
      {
        name: 'control-character-in-route',
        text: text(encodeCbor([1, authority.history, `${route}\u001b[2J`, code, expiresAt])),
        code: 'ERR_TICKET_MALFORMED',
      },
      {
        name: 'forged-authority-history',
        text: text(encodeCbor([1, forged, route, code, expiresAt])),
        code: 'ERR_IDENTITY_SIGNATURE_INVALID',
      },
    ],
  };
}
