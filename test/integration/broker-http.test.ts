// The broker's HTTP side end to end: tokens verified by jose against the live JWKS endpoint, and
// the RFC 8693 token endpoint refusing what it must (wrong grant, bad or rebound proofs, expired
// and replayed proofs, revoked chains, oversized bodies).
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { isMandateError } from '../../src/core/index.js';
import { forbidden } from '../../src/core/internal.js';
import { checkLeaseChain } from '../../src/gates/lease-decision.js';
import {
  CHAIN_PROOF_TOKEN_TYPE,
  MemoryProofNonceStore,
  signExchangeProof,
  verifyExchangeProof,
  type JwtLeaseProvider,
} from '../../src/broker/index.js';
import {
  startBrokerHttp,
  TOKEN_EXCHANGE_GRANT_TYPE,
  MAX_TOKEN_REQUEST_BYTES,
  type BrokerHttp,
} from '../../src/node/index.js';
import type { SigningKeyType } from '../../src/vault/index.js';
import { brokerJwtWorld, JWT_NOW, LEDGER, PAYMENTS } from '../helpers/broker-jwt-world.js';
import { revoke } from '../helpers/deny-set.js';

type World = Awaited<ReturnType<typeof brokerJwtWorld>>;

const servers: BrokerHttp[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/**
 * A broker HTTP server whose `exchange` decides with the broker's chain lock (`checkLeaseChain`
 * for `jwt/AUDIENCE`, as `Gate.decideLease` does, without a bundle) and leases from `provider`.
 */
async function serve(w: World, keyType: SigningKeyType = 'ed25519') {
  const nonces = new MemoryProofNonceStore({ nowSeconds: w.clock.nowSeconds() });
  // The provider's issuer is the server's URL, known once it listens.
  const held: { provider?: JwtLeaseProvider } = {};
  const leased: string[] = [];
  const http = await startBrokerHttp({
    get jwt() {
      return held.provider!;
    },
    clock: w.clock,
    verifyProof: (proof, request) =>
      verifyExchangeProof(proof, request, {
        chains: w.chains,
        nonces,
        nowSeconds: w.clock.nowSeconds(),
      }),
    exchange: async (chain, request) => {
      const denied = checkLeaseChain(
        chain,
        { kind: 'jwt', resource: request.audience, scope: request.scope },
        w.clock.nowSeconds(),
        undefined,
      );
      if (denied !== undefined) throw forbidden('ERR_LEASE_DENIED', denied.reasons.join('; '));
      const context = w.contextOf(chain, request.audience, request.scope);
      const issued = await held.provider!.issue(context);
      leased.push(context.leaseId);
      return { leaseId: context.leaseId, token: issued.value.token, expiresAt: context.expiresAt };
    },
  });
  const provider = w.provider(keyType, http.url);
  held.provider = provider;
  servers.push(http);
  return { http, provider, nonces, leased };
}

async function proofFor(
  w: World,
  tokenEndpoint: string,
  options: {
    readonly agent?: World['payer'];
    readonly chain?: Uint8Array;
    readonly audience?: string;
    readonly scope?: readonly string[];
    readonly ttlSeconds?: number;
  } = {},
): Promise<string> {
  return signExchangeProof(w.vault, (options.agent ?? w.payer).issuer, {
    chain: options.chain ?? w.payerBytes,
    tokenEndpoint,
    audience: options.audience ?? PAYMENTS,
    scope: options.scope ?? ['payments:refund'],
    nowSeconds: w.clock.nowSeconds(),
    ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
  });
}

async function exchange(
  http: BrokerHttp,
  fields: Record<string, string>,
  contentType = 'application/x-www-form-urlencoded',
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(http.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const request = (proof: string, overrides: Record<string, string> = {}) => ({
  grant_type: TOKEN_EXCHANGE_GRANT_TYPE,
  subject_token: proof,
  subject_token_type: CHAIN_PROOF_TOKEN_TYPE,
  audience: PAYMENTS,
  scope: 'payments:refund',
  ...overrides,
});

function expectRefused(
  answer: { status: number; body: Record<string, unknown> },
  error: string,
  code: string,
): void {
  expect(answer.status).toBe(400);
  expect(answer.body.error).toBe(error);
  expect(String(answer.body.error_description).startsWith(`${code}:`)).toBe(true);
}

describe('broker HTTP: JWKS and token exchange', () => {
  for (const keyType of ['ed25519', 'p256'] as const) {
    it(`${keyType}: a token from the token endpoint verifies with jose against the live JWKS`, async () => {
      const w = await brokerJwtWorld();
      const { http, leased } = await serve(w, keyType);
      const answer = await exchange(
        http,
        request(
          await proofFor(w, http.tokenEndpoint, { scope: ['payments:refund', 'payments:read'] }),
          {
            scope: 'payments:refund payments:read',
            requested_token_type: 'urn:ietf:params:oauth:token-type:jwt',
          },
        ),
      );
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({
        issued_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_type: 'Bearer',
        expires_in: 300,
        scope: 'payments:refund payments:read',
        mandate_lease_id: leased[0],
      });
      const jwks = createRemoteJWKSet(new URL(`${http.url}/.well-known/jwks.json`));
      const { payload, protectedHeader } = await jwtVerify(String(answer.body.access_token), jwks, {
        issuer: http.url,
        audience: PAYMENTS,
        currentDate: new Date((JWT_NOW + 1) * 1000),
        algorithms: [keyType === 'ed25519' ? 'EdDSA' : 'ES256'],
      });
      expect(protectedHeader.alg).toBe(keyType === 'ed25519' ? 'EdDSA' : 'ES256');
      expect(payload.sub).toBe(w.payer.id);
      expect(payload.act).toEqual({
        sub: w.billing.id,
        act: { sub: w.planner.id, act: { sub: w.dana.id } },
      });
      expect(payload.scope).toBe('payments:refund payments:read');
      expect(payload.exp).toBe(JWT_NOW + 300);
      expect(payload.exp).toBeLessThanOrEqual(w.payerChain.expiresAt);
      expect(payload.jti).toMatch(/^jti_[0-9a-f]{32}$/);
      // After its exp, jose refuses it.
      await expect(
        jwtVerify(String(answer.body.access_token), jwks, {
          currentDate: new Date((JWT_NOW + 301) * 1000),
        }),
      ).rejects.toThrow();
    });
  }

  it('a token signed by another key is refused by the live JWKS', async () => {
    const w = await brokerJwtWorld();
    const { http } = await serve(w, 'ed25519');
    const foreign = await w
      .provider('p256', http.url)
      .issue(w.contextOf(w.payerChain, PAYMENTS, ['payments:read']));
    const jwks = createRemoteJWKSet(new URL(`${http.url}/.well-known/jwks.json`));
    await expect(
      jwtVerify(foreign.value.token, jwks, { currentDate: new Date((JWT_NOW + 1) * 1000) }),
    ).rejects.toThrow();
  });

  it('refuses a wrong grant type, token type, content type and missing parameters', async () => {
    const w = await brokerJwtWorld();
    const { http } = await serve(w);
    const proof = await proofFor(w, http.tokenEndpoint);
    const wrongGrant = await exchange(http, request(proof, { grant_type: 'client_credentials' }));
    expect(wrongGrant.status).toBe(400);
    expect(wrongGrant.body.error).toBe('unsupported_grant_type');
    expectRefused(
      await exchange(
        http,
        request(proof, { subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' }),
      ),
      'invalid_request',
      'ERR_TOKEN_EXCHANGE_REQUEST_INVALID',
    );
    expectRefused(
      await exchange(http, request(proof), 'application/json'),
      'invalid_request',
      'ERR_TOKEN_EXCHANGE_REQUEST_INVALID',
    );
    const noAudience: Record<string, string> = request(proof);
    delete noAudience.audience;
    expectRefused(
      await exchange(http, noAudience),
      'invalid_request',
      'ERR_TOKEN_EXCHANGE_REQUEST_INVALID',
    );
    expectRefused(
      await exchange(http, request(proof, { actor_token: 'x' })),
      'invalid_request',
      'ERR_TOKEN_EXCHANGE_REQUEST_INVALID',
    );
    // None of those consumed the proof: it still works.
    expect((await exchange(http, request(proof))).status).toBe(200);
  });

  it('refuses a bad proof signature, and a proof signed by someone else than the chain actor', async () => {
    const w = await brokerJwtWorld();
    const { http } = await serve(w);
    const proof = await proofFor(w, http.tokenEndpoint);
    const [h, p, s] = proof.split('.') as [string, string, string];
    const sig = Buffer.from(s, 'base64url');
    sig[5] = sig[5]! ^ 1;
    expectRefused(
      await exchange(http, request(`${h}.${p}.${sig.toString('base64url')}`)),
      'invalid_grant',
      'ERR_TOKEN_EXCHANGE_SIGNATURE_INVALID',
    );
    // The billing agent signs a proof carrying the payer's chain: the presenter check refuses.
    const stolen = await proofFor(w, http.tokenEndpoint, { agent: w.billing });
    expectRefused(
      await exchange(http, request(stolen)),
      'invalid_grant',
      'ERR_CHAIN_PRESENTER_MISMATCH',
    );
  });

  it('binds the proof to the endpoint, the audience and the scope', async () => {
    const w = await brokerJwtWorld();
    const { http } = await serve(w);
    const forLedger = await proofFor(w, http.tokenEndpoint, { audience: LEDGER });
    expectRefused(
      await exchange(http, request(forLedger)),
      'invalid_grant',
      'ERR_TOKEN_EXCHANGE_PROOF_MISMATCH',
    );
    const forRead = await proofFor(w, http.tokenEndpoint, { scope: ['payments:read'] });
    expectRefused(
      await exchange(http, request(forRead)),
      'invalid_grant',
      'ERR_TOKEN_EXCHANGE_PROOF_MISMATCH',
    );
    const elsewhere = await proofFor(w, 'https://other-broker.example/token');
    expectRefused(
      await exchange(http, request(elsewhere)),
      'invalid_grant',
      'ERR_TOKEN_EXCHANGE_PROOF_MISMATCH',
    );
    // A proof honestly asking for what the chain does not allow: invalid_scope / invalid_target.
    const write = await proofFor(w, http.tokenEndpoint, { scope: ['payments:write'] });
    expectRefused(
      await exchange(http, request(write, { scope: 'payments:write' })),
      'invalid_scope',
      'ERR_LEASE_DENIED',
    );
  });

  it('refuses an expired proof, one signed before the broker started, and one that lives too long', async () => {
    const w = await brokerJwtWorld();
    w.clock.advance(5);
    const { http } = await serve(w);
    const early = await proofFor(w, http.tokenEndpoint, { ttlSeconds: 10 });
    w.clock.advance(10);
    expectRefused(
      await exchange(http, request(early)),
      'invalid_grant',
      'ERR_TOKEN_EXCHANGE_PROOF_EXPIRED',
    );
    // Signed (with the right endpoint) before the nonce store existed.
    w.clock.set(JWT_NOW);
    const before = await proofFor(w, http.tokenEndpoint, { ttlSeconds: 60 });
    w.clock.set(JWT_NOW + 6);
    expectRefused(
      await exchange(http, request(before)),
      'invalid_grant',
      'ERR_TOKEN_EXCHANGE_PROOF_EXPIRED',
    );
    await expect(proofFor(w, http.tokenEndpoint, { ttlSeconds: 61 })).rejects.toMatchObject({
      code: 'ERR_ARGUMENT_INVALID',
    });
  });

  it('refuses a replayed proof', async () => {
    const w = await brokerJwtWorld();
    const { http, nonces } = await serve(w);
    const proof = await proofFor(w, http.tokenEndpoint);
    expect((await exchange(http, request(proof))).status).toBe(200);
    expectRefused(
      await exchange(http, request(proof)),
      'invalid_grant',
      'ERR_TOKEN_EXCHANGE_PROOF_REPLAYED',
    );
    expect(nonces.size).toBe(1);
    // Once the proof has expired its nonce is forgotten, and the proof is refused as expired.
    w.clock.advance(31);
    expectRefused(
      await exchange(http, request(proof)),
      'invalid_grant',
      'ERR_TOKEN_EXCHANGE_PROOF_EXPIRED',
    );
  });

  it('refuses a proof whose chain was revoked, and lists revoked jtis for relying parties', async () => {
    const w = await brokerJwtWorld();
    const { http, provider } = await serve(w);
    const answer = await exchange(http, request(await proofFor(w, http.tokenEndpoint)));
    expect(answer.status).toBe(200);
    const jti = String(decodeJwt(String(answer.body.access_token)).jti);
    revoke(w.denySet, w.billing.id, {
      expiresAt: JWT_NOW + 3600,
      nowSeconds: JWT_NOW,
      identity: true,
    });
    expectRefused(
      await exchange(http, request(await proofFor(w, http.tokenEndpoint))),
      'invalid_grant',
      'ERR_REVOKED',
    );
    // The broker's lease revocation (brokercore's revokeMatching) reaches the provider:
    await provider.revoke({
      id: 'lease_x',
      kind: 'jwt',
      holder: w.payer.id,
      chainIds: [],
      resource: PAYMENTS,
      scope: [],
      createdAt: JWT_NOW,
      expiresAt: JWT_NOW + 300,
      maxExpiresAt: JWT_NOW + 600,
      renewals: 0,
      state: 'revoked',
      handle: jti,
    });
    const list = (await (await fetch(`${http.url}/revoked`)).json()) as {
      iss: string;
      revoked: { jti: string; exp: number }[];
    };
    expect(list.iss).toBe(http.url);
    expect(list.revoked).toEqual([{ jti, exp: JWT_NOW + 600 }]);
  });

  it('refuses an oversized body before reading it', async () => {
    const w = await brokerJwtWorld();
    const { http } = await serve(w);
    const answer = await exchange(http, request('x'.repeat(MAX_TOKEN_REQUEST_BYTES + 1)));
    expect(answer.status).toBe(413);
    expect(answer.body.error).toBe('invalid_request');
    expect(String(answer.body.error_description)).toMatch(/^ERR_TOKEN_EXCHANGE_TOO_LARGE:/);
  });

  it('refuses an oversized body sent without a length (chunked)', async () => {
    const w = await brokerJwtWorld();
    const { http } = await serve(w);
    const chunk = new TextEncoder().encode('x'.repeat(16 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const response = await fetch(http.tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
      duplex: 'half',
    });
    expect(response.status).toBe(413);
  });

  it('fails to start on a port in use', async () => {
    const w = await brokerJwtWorld();
    const { http, provider } = await serve(w);
    await expect(
      startBrokerHttp({
        listen: { port: http.address.port },
        jwt: provider,
        verifyProof: () => Promise.reject(new Error('unused')),
        exchange: () => Promise.reject(new Error('unused')),
      }),
    ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_ADDRESS_IN_USE' });
  });

  it('closes cleanly: close() resolves and the port refuses connections', async () => {
    const w = await brokerJwtWorld();
    const { http } = await serve(w);
    expect((await fetch(`${http.url}/.well-known/jwks.json`)).status).toBe(200);
    await http.close();
    await http.close(); // idempotent
    await expect(fetch(`${http.url}/.well-known/jwks.json`)).rejects.toThrow();
  });
});

describe('token-exchange proof', () => {
  it('any single-byte mutation of a proof is refused', async () => {
    const w = await brokerJwtWorld();
    const tokenEndpoint = 'https://broker.example/token';
    const proof = await proofFor(w, tokenEndpoint);
    const req = { tokenEndpoint, audience: PAYMENTS, scope: ['payments:refund'] };
    // Sanity: the unmutated proof verifies (with a store of its own each time).
    const fresh = () => new MemoryProofNonceStore({ nowSeconds: JWT_NOW });
    const options = () => ({ chains: w.chains, nonces: fresh(), nowSeconds: JWT_NOW + 1 });
    await expect(verifyExchangeProof(proof, req, options())).resolves.toMatchObject({
      agent: w.payer.id,
    });
    const bytes = new TextEncoder().encode(proof);
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: bytes.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        async (index, delta) => {
          const mutated = bytes.slice();
          mutated[index] = (mutated[index]! + delta) & 0xff;
          const text = new TextDecoder().decode(mutated);
          try {
            await verifyExchangeProof(text, req, options());
          } catch (error) {
            return isMandateError(error);
          }
          return false;
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a P-256 agent key signs proofs the broker verifies', async () => {
    const w = await brokerJwtWorld({ agentKeyType: 'p256' });
    const tokenEndpoint = 'https://broker.example/token';
    const proof = await proofFor(w, tokenEndpoint);
    const verified = await verifyExchangeProof(
      proof,
      { tokenEndpoint, audience: PAYMENTS, scope: ['payments:refund'] },
      {
        chains: w.chains,
        nonces: new MemoryProofNonceStore({ nowSeconds: JWT_NOW }),
        nowSeconds: JWT_NOW,
      },
    );
    expect(verified.chain.actor).toBe(w.payer.id);
    expect(verified.scope).toEqual(['payments:refund']);
  });

  it('a full nonce store refuses rather than forgets', async () => {
    const store = new MemoryProofNonceStore({ nowSeconds: JWT_NOW, maxEntries: 2 });
    expect(await store.claim('a', JWT_NOW + 30, JWT_NOW)).toBe(true);
    expect(await store.claim('b', JWT_NOW + 30, JWT_NOW)).toBe(true);
    expect(await store.claim('a', JWT_NOW + 30, JWT_NOW + 1)).toBe(false);
    await expect(store.claim('c', JWT_NOW + 30, JWT_NOW + 1)).rejects.toMatchObject({
      code: 'ERR_TOKEN_EXCHANGE_BUSY',
    });
    expect(await store.claim('c', JWT_NOW + 60, JWT_NOW + 30)).toBe(true);
    expect(store.size).toBe(1);
  });
});
