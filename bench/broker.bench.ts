/**
 * JWT leases (token exchange, docs/spec/broker.md §4) against their signing floor, measured in
 * the same run: `JwtLeaseProvider.issue` for a 3-link chain (audience and scope syntax checked —
 * the grant is the broker's decision, not the provider's —, claims with nested `act`, the JWS
 * built and signed through the vault) next to one raw Ed25519
 * signature over a message of the token's size (libsodium, no vault); the same with a P-256 key
 * next to one raw P-256 signature; and a whole exchange without HTTP (the agent's proof verified
 * — its chain from the verifier's cache, the attestation and the proof signature — and the token
 * minted), for scale. Target: a lease at least half the floor's rate (ratio ≤ 2).
 *
 * Revoke-by-identity: an agent holds 100 leases (50 JWT, 50 proxy, through the Broker over
 * SQLite, decided by the gate); the time from `revokeMatching([agent])` — and from the deny-set
 * hook's pass `revokeDenied` (scan of the active leases, then the same) — until all 100 are dead
 * at their providers (every `jti` on the JWT revocation list, no injection left), the median of
 * several rounds, next to granting those 100 leases. Run:
 * node --import tsx bench/run.ts --only broker
 */
import {
  generateEd25519KeyPair,
  generateP256KeyPair,
  importP256PrivateKey,
  signEd25519,
  signP256,
} from '../src/crypto/index.js';
import {
  MemoryProofNonceStore,
  signExchangeProof,
  verifyExchangeProof,
  type ProofNonceStore,
} from '../src/broker/index.js';
import { MemoryVault } from '../src/vault/index.js';
import {
  JwtLeaseProvider,
  LeaseKind,
  ProxyLeaseProvider,
  type Broker,
} from '../src/broker/index.js';
import type { VerifiedChain } from '../src/credentials/index.js';
import { brokerJwtWorld, JWT_NOW, PAYMENTS } from '../test/helpers/broker-jwt-world.js';
import { brokerWorld } from '../test/helpers/broker-world.js';
import { MapSecretReader } from '../test/helpers/egress-world.js';
import { group, row, type TableRow } from './harness.js';

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`benchmark setup: ${what}`);
}

/**
 * A nonce store that takes every nonce: the exchange row replays a pool of proofs, and measures
 * verification, not the replay memory (MemoryProofNonceStore's claim is a Map lookup and insert).
 */
const acceptAll: ProofNonceStore = { since: 0, claim: () => Promise.resolve(true) };

export async function brokerBenchmarks(): Promise<readonly TableRow[]> {
  const w = await brokerJwtWorld();
  const ed = w.provider('ed25519');
  const p256 = w.provider('p256');
  const scope = ['payments:refund', 'payments:read'];
  const context = () => w.contextOf(w.payerChain, PAYMENTS, scope);
  const sample = (await ed.issue(context())).value.token;
  // The floor signs as many bytes as a token's JWS signing input.
  const message = new TextEncoder().encode(sample.slice(0, sample.lastIndexOf('.')));
  const edKeys = generateEd25519KeyPair();
  const p256Key = importP256PrivateKey(generateP256KeyPair().privateKeyPkcs8);

  const tokenEndpoint = 'https://broker.example/token';
  const proofs: string[] = [];
  for (let i = 0; i < 64; i++)
    proofs.push(
      await signExchangeProof(w.vault, w.payer.issuer, {
        chain: w.payerBytes,
        tokenEndpoint,
        audience: PAYMENTS,
        scope,
        nowSeconds: JWT_NOW,
      }),
    );
  const request = { tokenEndpoint, audience: PAYMENTS, scope };
  const verifyOptions = { chains: w.chains, nonces: acceptAll, nowSeconds: JWT_NOW + 1 };
  // The pool is valid (and a real store refuses a replay of it).
  const real = new MemoryProofNonceStore({ nowSeconds: JWT_NOW });
  await verifyExchangeProof(proofs[0]!, request, { ...verifyOptions, nonces: real });
  check(
    await verifyExchangeProof(proofs[0]!, request, { ...verifyOptions, nonces: real }).then(
      () => false,
      () => true,
    ),
    'a replayed proof is refused',
  );

  let n = 0;
  const results = await group('broker-jwt')
    .add('jwt', () => ed.issue(context()), {
      label: 'JWT lease (Ed25519, 3-link chain, through the vault)',
    })
    .add('floor', () => signEd25519(edKeys.secretKey, message), {
      label: 'one Ed25519 signature of the same size (libsodium)',
    })
    .add('jwt-p256', () => p256.issue(context()), {
      label: 'JWT lease (P-256, 3-link chain, through the vault)',
    })
    .add('floor-p256', () => signP256(p256Key, message), {
      label: 'one P-256 signature of the same size (node:crypto)',
    })
    .add(
      'exchange',
      async () => {
        const verified = await verifyExchangeProof(proofs[n++ & 63]!, request, verifyOptions);
        return ed.issue(w.contextOf(verified.chain, verified.audience, verified.scope));
      },
      { label: 'token exchange without HTTP: proof verified + JWT lease (Ed25519)' },
    )
    .run();
  return [
    row(results, 'jwt', { baseline: 'floor', target: '≤ 2 (≥ 0.5× the floor rate)' }),
    row(results, 'jwt-p256', { baseline: 'floor-p256', target: '≤ 2' }),
    row(results, 'exchange', { baseline: 'floor' }),
    ...(await revokeByIdentity()),
  ];
}

const LEASES = 100;
const ROUNDS = 12;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Revoke-by-identity latency for an agent holding {@link LEASES} leases (see the file comment). */
async function revokeByIdentity(): Promise<TableRow[]> {
  const w = await brokerWorld();
  try {
    const vault = new MemoryVault();
    const jwt = new JwtLeaseProvider({
      vault,
      key: await vault.generateSigningKey('ed25519'),
      issuer: 'mandate:broker:bench',
      clock: w.clock,
    });
    const host = 'api.stripe.example';
    const proxy = new ProxyLeaseProvider({
      secrets: new MapSecretReader(new Map([['stripe', 'sk_live_bench_0123456789']])),
      bindings: [
        { secret: 'stripe', host, header: { name: 'authorization', format: 'Bearer {secret}' } },
      ],
      clock: w.clock,
    });
    const { broker } = w.open({ providers: [jwt, proxy] });
    const chain: VerifiedChain = w.supportChain;
    const agent = w.support.identity.identifier;
    const grant = async (b: Broker): Promise<string[]> => {
      const handles: string[] = [];
      for (let i = 0; i < LEASES; i++) {
        const granted = await b.lease(
          chain,
          i % 2 === 0
            ? { kind: LeaseKind.jwt, resource: 'payments-api', scope: ['refunds'] }
            : { kind: LeaseKind.proxy, resource: 'stripe' },
        );
        if (granted.lease.kind === LeaseKind.jwt) handles.push(granted.lease.handle);
      }
      check(proxy.injectionsFor(agent, host).length === LEASES / 2, 'the proxy leases inject');
      return handles;
    };
    const dead = (jtis: readonly string[]): boolean => {
      const listed = new Set(jwt.revokedJtis().map((r) => r.jti));
      return jtis.every((j) => listed.has(j)) && proxy.injectionsFor(agent, host).length === 0;
    };
    const grants: number[] = [];
    const byId: number[] = [];
    const byDenySet: number[] = [];
    for (let round = 0; round < 2 * ROUNDS; round++) {
      let t = process.hrtime.bigint();
      const jtis = await grant(broker);
      grants.push(Number(process.hrtime.bigint() - t) / 1e3);
      t = process.hrtime.bigint();
      const ended =
        round % 2 === 0
          ? await broker.revokeMatching([agent])
          : await broker.revokeDenied((id) => id === agent);
      const us = Number(process.hrtime.bigint() - t) / 1e3;
      check(ended.length === LEASES && dead(jtis), 'all 100 leases are dead at their providers');
      (round % 2 === 0 ? byId : byDenySet).push(us);
    }
    const granting = median(grants);
    const line = (what: string, us: number): TableRow => ({
      what,
      usPerOp: us,
      baseline: `granting the ${LEASES} leases`,
      baselineUsPerOp: granting,
      ratio: us / granting,
    });
    return [
      {
        what: `granting ${LEASES} leases to one agent (50 JWT + 50 proxy, decided, stored, audited)`,
        usPerOp: granting,
      },
      line(
        `revokeMatching(agent): all ${LEASES} dead at the providers (median of ${ROUNDS})`,
        median(byId),
      ),
      line(
        `deny-set pass (revokeDenied: scan + revoke): all ${LEASES} dead (median of ${ROUNDS})`,
        median(byDenySet),
      ),
    ];
  } finally {
    w.cleanup();
  }
}
