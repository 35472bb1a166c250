/**
 * Credential hot paths against their raw crypto floors, measured in the same run:
 *   node --import tsx bench/run.ts
 * The floor of a verification is its Ed25519 verifications, each with the SHA-256 of the bytes it
 * signs (the data sizes of the real objects). The floor of enrolling an agent is the identity
 * floor of identity.bench.ts plus the credential's signature and the redeemer-history check
 * (both from floors.ts).
 */
import { randomBytes, sha256 } from '../src/crypto/index.js';
import { toHex } from '../src/encoding/index.js';
import {
  Identities,
  MemoryIdentityRepository,
  Purpose,
  verifyChangeHistory,
  type Identifier,
  type VerifiedIdentity,
} from '../src/identity/index.js';
import { MemoryVault } from '../src/vault/index.js';
import {
  Authority,
  authorize,
  ChainVerifier,
  chainFromCredential,
  constraintsToAttributes,
  decodeChain,
  decodeCredential,
  delegate,
  DenyEntryKind,
  DenySet,
  issueCredential,
  MemoryAuthorityRepository,
  parseConstraint,
  parseEnrollmentTicket,
  verifyChain,
  verifyCredential,
  type AuthorizationRequest,
  type Constraint,
  type CredentialIssuer,
  type DenyEntry,
} from '../src/credentials/index.js';
import {
  attestationSigned,
  attestedKeySigned,
  floorOf,
  historySigned,
  identityCreationFloor,
  redemptionFloor,
  type Signed,
} from './floors.js';
import { group, median, type TableRow } from './harness.js';

const NOW = 1_800_000_000;
const AT = NOW + 10;
const DENY_SET_SIZE = 10_000;
/** Agents enrolled per benchmark call (one ticket with this many uses). */
const ENROLL_PER_CALL = 100;

const constraints = (...texts: string[]): Map<string, Constraint> =>
  new Map(texts.map((t) => parseConstraint(t)));

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`benchmark setup: ${what}`);
}

async function world() {
  const vault = new MemoryVault();
  const clock = { nowSeconds: () => NOW };
  const identities = new Identities({ vault, repository: new MemoryIdentityRepository(), clock });
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
  const dave = await make('dave');
  const authorities = new Map([[authority.identity.identifier, authority.identity]]);
  const rootAttributes = constraintsToAttributes(
    constraints('tools=read_orders,issue_refund', 'refund<=1000', 'order=/orders/**'),
  );
  const root = await issueCredential(vault, authority.issuer, alice.identity, rootAttributes, {
    nowSeconds: NOW,
    ttlSeconds: 3600,
  });
  return {
    vault,
    clock,
    identities,
    authority,
    alice,
    bob,
    carol,
    dave,
    authorities,
    rootAttributes,
    root,
  };
}

type World = Awaited<ReturnType<typeof world>>;

/** root (authority → alice) + alice → bob → carol → dave, each link narrower. */
async function depthThreeChain(w: World): Promise<Uint8Array> {
  const steps = [
    {
      from: w.alice,
      to: w.bob,
      constraints: constraints(
        'tools=read_orders,issue_refund',
        'refund<=500',
        'order=/orders/4471/**',
      ),
      purpose: 'resolve complaint #4471',
      ttlSeconds: 1800,
    },
    {
      from: w.bob,
      to: w.carol,
      constraints: constraints('tools=issue_refund', 'refund<=100', 'order=/orders/4471/**'),
      purpose: 'refund the damaged item',
      ttlSeconds: 900,
    },
    {
      from: w.carol,
      to: w.dave,
      constraints: constraints('tools=issue_refund', 'refund<=50', 'order=/orders/4471/refunds/**'),
      purpose: 'issue the refund',
      ttlSeconds: 600,
    },
  ];
  let bytes = chainFromCredential(w.root, w.alice.identity);
  for (const step of steps) {
    const chain = verifyChain(bytes, { nowSeconds: NOW, authorities: w.authorities });
    bytes = await delegate(w.vault, step.from.issuer, chain, {
      nowSeconds: NOW,
      subject: step.to.identity,
      constraints: step.constraints,
      purpose: step.purpose,
      ttlSeconds: step.ttlSeconds,
    });
  }
  return bytes;
}

function denySetOf(size: number): DenySet {
  const entries: DenyEntry[] = [];
  for (let i = 0; i < size; i++) {
    // Mostly revocation ids, some whole identities, as a real list would hold.
    entries.push(
      i % 10 === 0
        ? {
            kind: DenyEntryKind.identity,
            id: `I${toHex(randomBytes(32))}`,
            expiresAt: NOW + 86_400,
            revokedAt: NOW - 60,
          }
        : {
            kind: DenyEntryKind.revocationId,
            id: toHex(randomBytes(16)),
            expiresAt: NOW + 3600,
            revokedAt: NOW - 60,
          },
    );
  }
  return DenySet.fromSnapshot(
    { sequence: size, entries, issuedAt: NOW },
    { maxStalenessSeconds: 300 },
  );
}

export async function credentialBenchmarks(): Promise<TableRow[]> {
  const rows: TableRow[] = [];
  const w = await world();

  // --- 1. one credential ----------------------------------------------------------------------
  {
    const decoded = decodeCredential(w.root);
    const floor = floorOf([
      attestationSigned(w.authority.identity, decoded.attestation),
      attestedKeySigned(decoded.attestation, decoded.data, decoded.signature.bytes),
    ]);
    const options = { authorities: w.authorities, nowSeconds: AT };
    check(verifyCredential(w.root, options).subject === w.alice.identity.identifier, 'credential');
    const history = w.authority.identity.changeHistory;
    check(verifyChangeHistory(history).identifier === w.authority.identity.identifier, 'history');
    const historyFloor = floorOf(historySigned(history));
    const results = await group('credential-verify')
      .add('floor', floor, { label: 'raw floor: 2 Ed25519 verifies + 2 SHA-256' })
      .add('historyFloor', historyFloor, { label: 'raw floor: 1 Ed25519 verify + 1 SHA-256' })
      .add('verify', () => verifyCredential(w.root, options), {
        label: `verify a credential (${w.root.length} bytes, 3 constraints)`,
      })
      .add('history', () => verifyChangeHistory(history), {
        label: "verify the issuer's 1-change history (once per authority, not per credential)",
      })
      .run();
    rows.push(
      {
        what: results.get('verify').label,
        usPerOp: results.get('verify').usPerOp,
        baseline: results.get('floor').label,
        baselineUsPerOp: results.get('floor').usPerOp,
        ratio: results.ratio('verify', 'floor'),
        target: '≤ 1.2×',
      },
      {
        what: results.get('history').label,
        usPerOp: results.get('history').usPerOp,
        baseline: results.get('historyFloor').label,
        baselineUsPerOp: results.get('historyFloor').usPerOp,
        ratio: results.ratio('history', 'historyFloor'),
      },
    );
  }

  // --- 2. a depth-3 chain, verified from bytes --------------------------------------------------
  const chainBytes = await depthThreeChain(w);
  const presenter: Identifier = w.dave.identity.identifier;
  {
    const decoded = decodeChain(chainBytes);
    check(decoded.links.length === 3, 'the chain has 3 links');
    const rootCredential = decodeCredential(decoded.root);
    const identities = new Map<Identifier, VerifiedIdentity>(
      decoded.histories.map((h) => {
        const identity = verifyChangeHistory(h);
        return [identity.identifier, identity] as const;
      }),
    );
    const signed: Signed[] = [
      attestationSigned(w.authority.identity, rootCredential.attestation),
      attestedKeySigned(
        rootCredential.attestation,
        rootCredential.data,
        rootCredential.signature.bytes,
      ),
    ];
    for (const link of decoded.links) {
      const issuer = identities.get(`I${toHex(link.issuer)}`);
      check(issuer !== undefined, 'the chain carries every issuer history');
      signed.push(
        attestationSigned(issuer!, link.attestation),
        attestedKeySigned(link.attestation, link.data, link.signature.bytes),
      );
    }
    for (const h of decoded.histories) signed.push(...historySigned(h));
    const histories = decoded.histories.length;
    const linkSignatures = 2 + 2 * decoded.links.length;
    const floor = floorOf(signed);
    const options = { authorities: w.authorities, nowSeconds: AT, presenter };
    check(verifyChain(chainBytes, options).actor === presenter, 'the chain verifies');
    const results = await group('chain-verify')
      .add('floor', floor, {
        label: `raw floor: ${signed.length} Ed25519 verifies + ${signed.length} SHA-256 (root: attestation + credential; ${decoded.links.length} × (attestation + link); ${histories} × 1-change history carried in the chain)`,
      })
      .add('verify', () => verifyChain(chainBytes, options), {
        label: `verify a depth-3 chain from bytes (root + 3 links, ${histories} histories, ${chainBytes.length} bytes), fresh verifyChain`,
      })
      .run();
    check(signed.length === linkSignatures + histories, 'floor count');
    rows.push({
      what: results.get('verify').label,
      usPerOp: results.get('verify').usPerOp,
      baseline: results.get('floor').label,
      baselineUsPerOp: results.get('floor').usPerOp,
      ratio: results.ratio('verify', 'floor'),
      target: '≤ 1.2×',
    });
  }

  // --- 3. later calls: cache hit + authorize ----------------------------------------------------
  {
    const denySet = denySetOf(DENY_SET_SIZE);
    check(denySet.size === DENY_SET_SIZE, 'deny-set size');
    const verifier = new ChainVerifier({ authorities: w.authorities, denySet });
    const callOptions = { nowSeconds: AT, presenter };
    const chain = verifier.verify(chainBytes, callOptions); // the miss: verifies and caches
    check(verifier.cached === 1, 'the chain is cached');
    check(verifier.verify(chainBytes, callOptions) === chain, 'a later call hits the cache');
    const request: AuthorizationRequest = {
      action: 'issue_refund',
      args: new Map([
        ['refund', '25'],
        ['order', '/orders/4471/refunds/1'],
      ]),
      nowSeconds: AT,
    };
    check(authorize(chain, request, { denySet }).decision === 'allow', 'authorize allows');
    const over: AuthorizationRequest = {
      ...request,
      args: new Map([...request.args, ['refund', '75']]),
    };
    const denied = authorize(chain, over, { denySet });
    check(denied.decision === 'deny' && denied.failed.link === 3, 'authorize denies at link 3');
    const revocations = chain.revocationSubjects.length;
    const results = await group('chain-call')
      .add('authorize', () => authorize(chain, request, { denySet }), {
        label: `authorize alone (4 constraint levels, expiry, ${revocations} deny-set lookups in ${DENY_SET_SIZE.toLocaleString('en-US')})`,
      })
      .add('hit', () => verifier.verify(chainBytes, callOptions), {
        label: `ChainVerifier.verify cache hit (SHA-256 of the ${chainBytes.length}-byte chain + expiry + presenter + deny-set)`,
      })
      // What the cache hit spends on its key, to tell the hash from the checks.
      .add('key', () => toHex(sha256(chainBytes)), {
        label: `its cache key alone: SHA-256 + hex of the ${chainBytes.length}-byte chain`,
      })
      .add(
        'both',
        () => {
          const c = verifier.verify(chainBytes, callOptions);
          return authorize(c, request, { denySet });
        },
        { label: 'a later call: cache-hit verify + authorize' },
      )
      .run();
    const hit = results.get('hit');
    const key = results.get('key');
    // Per round, the cache hit less its key: the expiry, presenter, deny-set and LRU work.
    const checksUs = median(hit.roundsUsPerOp.map((v, i) => v - key.roundsUsPerOp[i]!));
    rows.push(
      {
        what: results.get('authorize').label,
        usPerOp: results.get('authorize').usPerOp,
        target: '< 2 µs',
      },
      { what: hit.label, usPerOp: hit.usPerOp, baseline: key.label, baselineUsPerOp: key.usPerOp },
      {
        what: 'cache hit less its SHA-256 key (expiry + presenter + deny-set + LRU), per-round difference',
        usPerOp: checksUs,
        target: '< 2 µs',
      },
      { what: results.get('both').label, usPerOp: results.get('both').usPerOp },
    );
  }

  // --- 4. enrolling agents: identity + ticket redemption ---------------------------------------
  {
    // The identity (identity.bench.ts's floor), then the redemption: the redeemer's 1-change
    // history checked, the credential signed.
    const identity = identityCreationFloor(1);
    const redemption = redemptionFloor(
      historySigned(w.alice.identity.changeHistory)[0]!,
      decodeCredential(w.root).data,
    );
    const floor = (): boolean => {
      let ok = true;
      for (let i = 0; i < ENROLL_PER_CALL; i++) {
        identity();
        ok = redemption() && ok;
      }
      return ok;
    };
    const authorityId = w.authority.identity.identifier;
    const attributes = w.rootAttributes;
    /** One ticket with `count` uses, redeemed by `count` new agents, into `authority`. */
    const enroll = async (authority: Authority, count: number): Promise<Uint8Array> => {
      const text = await authority.createTicket(authorityId, {
        attributes,
        uses: count,
        ttlSeconds: 3600,
        nowSeconds: NOW,
      });
      const { code } = parseEnrollmentTicket(text);
      let credential: Uint8Array = new Uint8Array(0);
      for (let i = 0; i < count; i++) {
        const agent = await w.identities.create();
        ({ credential } = await authority.redeem(
          { code, changeHistory: agent.identity.changeHistory },
          NOW,
        ));
      }
      return credential;
    };
    const newAuthority = (): Authority =>
      new Authority({
        identities: w.identities,
        vault: w.vault,
        repository: new MemoryAuthorityRepository(),
        authority: 'authority',
        clock: w.clock,
      });
    const sample = await enroll(newAuthority(), 2);
    check(
      verifyCredential(sample, { authorities: w.authorities, nowSeconds: AT }).issuer ===
        authorityId,
      'an enrolled credential verifies',
    );
    const results = await group('enroll')
      .add('floor', floor, {
        label:
          'raw floor: identity floor + 1 Ed25519 verify (redeemer history) + 1 sign (credential), with their SHA-256',
      })
      .add('enroll', () => enroll(newAuthority(), ENROLL_PER_CALL), {
        label: `enroll an agent: identities.create() + authority.redeem() (memory vault + MemoryAuthorityRepository, ${ENROLL_PER_CALL} per ticket)`,
      })
      .run();
    const floorUs = results.get('floor').usPerOp / ENROLL_PER_CALL;
    const enrollUs = results.get('enroll').usPerOp / ENROLL_PER_CALL;
    rows.push({
      what: results.get('enroll').label,
      usPerOp: enrollUs,
      baseline: `raw floor (${Math.round(1e6 / floorUs).toLocaleString('en-US')} agents/s)`,
      baselineUsPerOp: floorUs,
      ratio: results.ratio('enroll', 'floor'),
      target: `${Math.round(1e6 / enrollUs).toLocaleString('en-US')} agents/s`,
    });

    // Many agents into ONE authority (what a swarm's enrollment does, its member list growing)
    // against the same flow into a fresh authority, taking turns within each round so the ratio
    // compares runs moments apart.
    const count = process.env.MANDATE_BENCH_QUICK === '1' ? 1_000 : 10_000;
    const growing = newAuthority();
    const timed = async (authority: Authority): Promise<number> => {
      const started = performance.now();
      await enroll(authority, ENROLL_PER_CALL);
      return ((performance.now() - started) * 1000) / ENROLL_PER_CALL;
    };
    const growingUs: number[] = [];
    const freshUs: number[] = [];
    const ratios: number[] = [];
    for (let done = 0, round = 0; done < count; done += ENROLL_PER_CALL, round++) {
      const [g, f] =
        round % 2 === 0
          ? [await timed(growing), await timed(newAuthority())]
          : await (async () => {
              const fresh = await timed(newAuthority());
              return [await timed(growing), fresh] as const;
            })();
      growingUs.push(g);
      freshUs.push(f);
      ratios.push(g / f);
    }
    rows.push({
      what: `enroll ${count.toLocaleString('en-US')} agents into one authority (same flow, members accumulating)`,
      usPerOp: median(growingUs),
      baseline: 'per agent, fresh authority (same rounds)',
      baselineUsPerOp: median(freshUs),
      ratio: median(ratios),
      target: `${Math.round(1e6 / median(growingUs)).toLocaleString('en-US')} agents/s`,
    });
  }
  return rows;
}
