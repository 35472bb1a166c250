/**
 * JWT leases (token exchange, docs/spec/broker-jwt.md) against their signing floor, measured in
 * the same run: `JwtLeaseProvider.issue` for a 3-link chain (the chain's scope grant checked,
 * claims with nested `act`, the JWS built and signed through the vault) next to one raw Ed25519
 * signature over a message of the token's size (libsodium, no vault); the same with a P-256 key
 * next to one raw P-256 signature; and a whole exchange without HTTP (the agent's proof verified
 * — its chain from the verifier's cache, the attestation and the proof signature — and the token
 * minted), for scale. Target: a lease at least half the floor's rate (ratio ≤ 2). Run:
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
import { brokerJwtWorld, JWT_NOW, PAYMENTS } from '../test/helpers/broker-jwt-world.js';
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
  ];
}
