import { describe, expect, it } from 'vitest';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeProtectedHeader,
  jwtVerify,
  type JWK,
} from 'jose';
import { isMandateError } from '../core/index.js';
import { brokerJwtWorld, JWT_NOW, LEDGER, PAYMENTS } from '../../test/helpers/broker-jwt-world.js';
import { checkLeaseChain } from '../gates/lease-decision.js';
import { actorClaimOf, publicJwkOf } from './jwt.js';
import type { Lease } from './types.js';

async function codeOfAsync(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  return 'accepted';
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  return 'accepted';
}

const at = new Date(JWT_NOW * 1000 + 5_000);

describe('JwtLeaseProvider', () => {
  for (const keyType of ['ed25519', 'p256'] as const) {
    it(`mints ${keyType} tokens jose verifies against the JWKS, with the chain's claims`, async () => {
      const w = await brokerJwtWorld();
      const provider = w.provider(keyType);
      const context = w.contextOf(w.payerChain, PAYMENTS, ['payments:refund', 'payments:read']);
      const issued = await provider.issue(context);
      const header = decodeProtectedHeader(issued.value.token);
      expect(header).toEqual({
        alg: keyType === 'ed25519' ? 'EdDSA' : 'ES256',
        kid: provider.kid,
        typ: 'JWT',
      });
      const { payload } = await jwtVerify(
        issued.value.token,
        createLocalJWKSet(provider.jwks() as { keys: JWK[] }),
        {
          issuer: 'https://broker.example',
          audience: PAYMENTS,
          currentDate: at,
          typ: 'JWT',
          algorithms: [keyType === 'ed25519' ? 'EdDSA' : 'ES256'],
        },
      );
      expect(payload.sub).toBe(w.payer.id);
      expect(payload.jti).toBe(issued.handle);
      expect(payload.scope).toBe('payments:refund payments:read');
      expect(payload.iat).toBe(JWT_NOW);
      expect(payload.nbf).toBe(JWT_NOW);
      expect(payload.exp).toBe(context.expiresAt);
      expect(payload.exp).toBeLessThanOrEqual(w.payerChain.expiresAt);
      // The payer's delegator outermost, the root subject (dana) most deeply nested.
      expect(payload.act).toEqual({
        sub: w.billing.id,
        act: { sub: w.planner.id, act: { sub: w.dana.id } },
      });
    });
  }

  it('P-256 tokens in low-S form verify with jose, token after token', async () => {
    const w = await brokerJwtWorld();
    const provider = w.provider('p256');
    const jwks = createLocalJWKSet(provider.jwks() as { keys: JWK[] });
    for (let i = 0; i < 24; i++) {
      const { value } = await provider.issue(
        w.contextOf(w.payerChain, PAYMENTS, ['payments:read']),
      );
      const s = Buffer.from(value.token.split('.')[2]!, 'base64url').subarray(32);
      // s ≤ (n − 1) / 2: the vault's low-S form, which ES256 verifiers accept.
      expect(s[0]! <= 0x7f).toBe(true);
      await expect(jwtVerify(value.token, jwks, { currentDate: at })).resolves.toBeDefined();
    }
  });

  it('caps a lease at the chain: a token never outlives the chain', async () => {
    const w = await brokerJwtWorld();
    const provider = w.provider('ed25519');
    const context = w.contextOf(w.payerChain, PAYMENTS, ['payments:read']);
    expect(
      await codeOfAsync(() =>
        provider.issue({ ...context, expiresAt: w.payerChain.expiresAt + 1 }),
      ),
    ).toBe('ERR_JWT_LIFETIME_INVALID');
    expect(
      await codeOfAsync(() => provider.issue({ ...context, expiresAt: context.nowSeconds })),
    ).toBe('ERR_JWT_LIFETIME_INVALID');
    expect(await codeOfAsync(() => provider.issue({ ...context, holder: w.billing.id }))).toBe(
      'ERR_JWT_HOLDER_MISMATCH',
    );
  });

  it("publishes kid as the key's RFC 7638 thumbprint (as jose computes it)", async () => {
    const w = await brokerJwtWorld();
    for (const key of [w.ed25519Key, w.p256Key]) {
      const jwk = publicJwkOf(key);
      expect(jwk.kid).toBe(await calculateJwkThumbprint(jwk as JWK));
      expect(jwk.use).toBe('sig');
    }
  });

  it('refuses a token signed by another key', async () => {
    const w = await brokerJwtWorld();
    const issued = await w
      .provider('p256')
      .issue(w.contextOf(w.payerChain, PAYMENTS, ['payments:read']));
    const other = w.provider('ed25519');
    await expect(
      jwtVerify(issued.value.token, createLocalJWKSet(other.jwks() as { keys: JWK[] }), {
        currentDate: at,
      }),
    ).rejects.toThrow();
  });

  it("leaves the grant to the broker's decision (jwt/AUDIENCE, secret_scopes) and checks only syntax", async () => {
    const w = await brokerJwtWorld();
    const now = JWT_NOW + 1;
    // The one chain lock: the broker decides `jwt/AUDIENCE` with the chain's `secrets` and
    // `secret_scopes` (conjunction of every level), before the provider is asked.
    const decide = (chain = w.payerChain, audience = PAYMENTS, scope = ['payments:read']) =>
      checkLeaseChain(chain, { kind: 'jwt', resource: audience, scope }, now, undefined)
        ?.decision ?? 'allow';
    expect(decide()).toBe('allow');
    expect(decide(w.payerChain, PAYMENTS, ['payments:read', 'payments:refund'])).toBe('allow');
    // The root allows payments:write; the planner's link took it away.
    expect(decide(w.payerChain, PAYMENTS, ['payments:write'])).toBe('deny');
    expect(decide(w.danaChain, PAYMENTS, ['payments:write'])).toBe('allow');
    // The billing link allows only PAYMENTS; dana's chain allows the ledger too.
    expect(decide(w.payerChain, LEDGER, ['payments:read'])).toBe('deny');
    expect(decide(w.danaChain, LEDGER, ['payments:read'])).toBe('allow');
    // A chain that grants no secrets gets no token at all.
    expect(decide(w.strangerChain, PAYMENTS, [])).toBe('deny');
    // The provider signs what the broker decided; it refuses only malformed values.
    const provider = w.provider('ed25519');
    expect(
      await codeOfAsync(() =>
        provider.issue(w.contextOf(w.payerChain, PAYMENTS, ['payments:read', 'payments:refund'])),
      ),
    ).toBe('accepted');
    expect(
      await codeOfAsync(() => provider.issue(w.contextOf(w.payerChain, PAYMENTS, ['a b']))),
    ).toBe('ERR_JWT_SCOPE_INVALID');
    expect(
      await codeOfAsync(() => provider.issue(w.contextOf(w.payerChain, PAYMENTS, ['x', 'x']))),
    ).toBe('ERR_JWT_SCOPE_INVALID');
    expect(
      await codeOfAsync(() =>
        provider.issue(w.contextOf(w.payerChain, 'has space', ['payments:read'])),
      ),
    ).toBe('ERR_JWT_AUDIENCE_INVALID');
  });

  it('maps a chain without links to a token without act', async () => {
    const w = await brokerJwtWorld();
    expect(actorClaimOf(w.danaChain)).toBeUndefined();
    expect(actorClaimOf(w.plannerChain)).toEqual({ sub: w.dana.id });
  });

  it('renews with the same jti and a later exp; revocation lists the jti until it cannot matter', async () => {
    const w = await brokerJwtWorld();
    const provider = w.provider('ed25519');
    const first = w.contextOf(w.payerChain, PAYMENTS, ['payments:read'], 120);
    const issued = await provider.issue(first);
    const lease: Lease = {
      id: first.leaseId,
      kind: 'jwt',
      holder: w.payer.id,
      chainIds: w.payerChain.revocationSubjects,
      resource: PAYMENTS,
      scope: ['payments:read'],
      createdAt: first.nowSeconds,
      expiresAt: first.expiresAt,
      maxExpiresAt: w.payerChain.expiresAt,
      renewals: 0,
      state: 'active',
      handle: issued.handle,
    };
    w.clock.advance(60);
    const renewed = await provider.renew(
      lease,
      w.contextOf(w.payerChain, PAYMENTS, ['payments:read'], 120),
    );
    expect(renewed.handle).toBe(issued.handle);
    const jwks = createLocalJWKSet(provider.jwks() as { keys: JWK[] });
    const { payload } = await jwtVerify(renewed.value.token, jwks, {
      currentDate: new Date((JWT_NOW + 61) * 1000),
    });
    expect(payload.jti).toBe(issued.handle);
    expect(payload.exp).toBe(JWT_NOW + 180);

    expect(provider.revokedJtis()).toEqual([]);
    await provider.revoke({ ...lease, expiresAt: JWT_NOW + 180 });
    await provider.revoke(lease); // idempotent, never shortens
    expect(provider.revokedJtis()).toEqual([
      { jti: issued.handle, expiresAt: w.payerChain.expiresAt },
    ]);
    expect(
      await codeOfAsync(() =>
        provider.renew(lease, w.contextOf(w.payerChain, PAYMENTS, ['payments:read'], 60)),
      ),
    ).toBe('ERR_JWT_REVOKED');
    w.clock.set(w.payerChain.expiresAt);
    expect(provider.revokedJtis()).toEqual([]);
  });

  it('refuses bad options', async () => {
    const w = await brokerJwtWorld();
    expect(codeOf(() => w.provider('ed25519', ''))).toBe('ERR_ARGUMENT_INVALID');
    expect(
      codeOf(() =>
        publicJwkOf({ keyId: 'k', keyType: 'rsa' as 'p256', publicKey: new Uint8Array(65) }),
      ),
    ).toBe('ERR_JWT_KEY_TYPE_UNSUPPORTED');
  });
});
