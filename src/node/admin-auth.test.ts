import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ManualClock } from '../core/index.js';
import { MemoryVault, SigningKeyType } from '../vault/index.js';
import { attestPurposeKey } from '../identity/internal.js';
import { createIdentity } from '../identity/create-identity.js';
import { Purpose } from '../identity/index.js';
import type { CredentialIssuer } from '../credentials/index.js';
import { codeOf, thrown } from '../../test/helpers/errors.js';
import {
  ADMIN_CHALLENGE_TTL_SECONDS,
  AdminAuth,
  AdminRateLimitedError,
  DEFAULT_ADMIN_RATE_LIMITS,
  signAdminChallenge,
} from './admin-auth.js';

// The rate limits of the admin API's login endpoints (docs/spec/admin.md, "Rate limits"): a
// flood is refused with ERR_ADMIN_RATE_LIMITED, and never costs the operator the challenge or
// login token it already holds. Time is a ManualClock: nothing here waits.

const T0 = 1_900_000_000;
const ORIGIN = 'http://127.0.0.1:8080';

async function operatorOf(vault: MemoryVault): Promise<CredentialIssuer> {
  const { identity, primaryKey } = await createIdentity(vault, { nowSeconds: T0 });
  const key = await vault.generateSigningKey(SigningKeyType.ed25519);
  const credentialKeyAttestation = await attestPurposeKey(
    vault,
    identity,
    primaryKey.keyId,
    { purpose: Purpose.credentials, signingKey: { keyType: key.keyType, bytes: key.publicKey } },
    { nowSeconds: T0, ttlSeconds: 24 * 3600 },
  );
  return { identity, credentialKeyId: key.keyId, credentialKeyAttestation };
}

async function world(rateLimits?: ConstructorParameters<typeof AdminAuth>[0]['rateLimits']) {
  const vault = new MemoryVault();
  const operator = await operatorOf(vault);
  const clock = new ManualClock(T0);
  const reasons: string[] = [];
  const note = (_message: string, fields?: Record<string, unknown>) => {
    reasons.push(String(fields?.reason));
  };
  const auth = new AdminAuth({
    operator: operator.identity,
    clock,
    logger: { debug: note, info: note, warn: note, error: note },
    ...(rateLimits === undefined ? {} : { rateLimits }),
  });
  const answer = (challenge: string) =>
    signAdminChallenge({
      challenge,
      origin: ORIGIN,
      signer: operator,
      vault,
      nowSeconds: clock.nowSeconds(),
    });
  return { auth, clock, answer, reasons, operator };
}

// For the property: issueChallenge never looks at the operator, any verified identity will do.
const sharedOperator = (await operatorOf(new MemoryVault())).identity;

/** Asks for `n` challenges; how many were issued. */
function flood(auth: AdminAuth, n: number): number {
  let issued = 0;
  for (let i = 0; i < n; i++) if (codeOf(() => auth.issueChallenge()) === 'accepted') issued++;
  return issued;
}

describe('admin login rate limits', () => {
  it('issues challenges up to the burst, then one rate a second, refusing the rest with a retry time', async () => {
    const { auth, clock } = await world({ challengeBurst: 5, challengesPerSecond: 2 });
    expect(flood(auth, 100)).toBe(5);
    const refused = thrown(() => auth.issueChallenge());
    expect(refused).toBeInstanceOf(AdminRateLimitedError);
    expect(refused).toMatchObject({
      code: 'ERR_ADMIN_RATE_LIMITED',
      kind: 'exhausted',
      retryAfterSeconds: 1,
    });
    clock.advance(1);
    expect(flood(auth, 100)).toBe(2);
    // An idle spell refills up to the burst, not beyond.
    clock.advance(3600);
    expect(flood(auth, 100)).toBe(5);
    // A clock set back refills nothing, and does not refill twice when it comes forward again.
    clock.advance(-10);
    expect(flood(auth, 100)).toBe(0);
    clock.advance(10);
    expect(flood(auth, 100)).toBe(0);
    clock.advance(1);
    expect(flood(auth, 100)).toBe(2);
  });

  it('never issues more than burst + rate × elapsed seconds, and issues that much when asked', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 40 })), {
          maxLength: 30,
        }),
        (burst, rate, schedule) => {
          const clock = new ManualClock(T0);
          const auth = new AdminAuth({
            operator: sharedOperator,
            clock,
            rateLimits: { challengeBurst: burst, challengesPerSecond: rate },
          });
          let issued = 0;
          let available = burst;
          for (const [advance, asks] of schedule) {
            clock.advance(advance);
            available = Math.min(burst, available + advance * rate);
            const got = flood(auth, asks);
            expect(got).toBe(Math.min(asks, available));
            available -= got;
            issued += got;
            expect(issued).toBeLessThanOrEqual(burst + rate * (clock.nowSeconds() - T0));
          }
        },
      ),
    );
  });

  it('a flood of challenges and of refused logins does not cost the operator the challenge or token it holds', async () => {
    const { auth, clock, answer, reasons } = await world();
    const token = auth.issueLoginToken();
    const { challenge } = auth.issueChallenge();
    const signed = await answer(challenge);
    // Just under a challenge's lifetime of flooding at many times the rate: challenges, junk
    // answers and unknown login tokens.
    const refusedCodes = new Set<string>();
    for (let s = 0; s < ADMIN_CHALLENGE_TTL_SECONDS - 1; s++) {
      flood(auth, 1000);
      for (let i = 0; i < 50; i++) {
        refusedCodes.add(
          codeOf(() => auth.redeemChallenge({ ...signed, challenge: `x${i}` }, ORIGIN)),
        );
        refusedCodes.add(codeOf(() => auth.redeemLoginToken(`not-a-token-${i}`)));
      }
      clock.advance(1);
    }
    expect([...refusedCodes].sort()).toEqual([
      'ERR_ADMIN_CHALLENGE_INVALID',
      'ERR_ADMIN_LOGIN_INVALID',
      'ERR_ADMIN_RATE_LIMITED',
    ]);
    // Refusals past the limit are not logged one by one: the log grows at the limit's rate.
    const refusedLogs = reasons.filter((r) => r === 'unknown, used or expired').length;
    expect(refusedLogs).toBeLessThanOrEqual(
      DEFAULT_ADMIN_RATE_LIMITS.refusedLoginBurst +
        DEFAULT_ADMIN_RATE_LIMITS.refusedLoginsPerSecond * ADMIN_CHALLENGE_TTL_SECONDS,
    );
    // Every limit spent again at the last second.
    flood(auth, 1000);
    while (codeOf(() => auth.redeemLoginToken('unknown')) !== 'ERR_ADMIN_RATE_LIMITED');
    expect(codeOf(() => auth.issueChallenge())).toBe('ERR_ADMIN_RATE_LIMITED');
    // Past every limit, the operator's answer and login token still log in.
    const [, session] = auth.redeemChallenge(signed, ORIGIN);
    expect(session.operator).toBe(auth.operator.identifier);
    expect(auth.redeemLoginToken(token)[1].operator).toBe(auth.operator.identifier);
    // Each once: a used one is an ordinary refusal, counted like any other.
    expect(codeOf(() => auth.redeemChallenge(signed, ORIGIN))).toBe('ERR_ADMIN_RATE_LIMITED');
    clock.advance(1);
    expect(codeOf(() => auth.redeemChallenge(signed, ORIGIN))).toBe('ERR_ADMIN_CHALLENGE_INVALID');
  });

  it('an answer naming a live challenge is never rate-limited, even a wrong one', async () => {
    const { auth, answer, reasons } = await world({
      refusedLoginBurst: 1,
      refusedLoginsPerSecond: 1,
    });
    expect(codeOf(() => auth.redeemLoginToken('unknown'))).toBe('ERR_ADMIN_LOGIN_INVALID');
    expect(codeOf(() => auth.redeemLoginToken('unknown'))).toBe('ERR_ADMIN_RATE_LIMITED');
    const signed = await answer(auth.issueChallenge().challenge);
    const flipped = signed.signature.slice(0, -2) + (signed.signature.endsWith('00') ? '01' : '00');
    // It used a challenge the issue limit let out: its refusal is the uniform one, and logged.
    expect(codeOf(() => auth.redeemChallenge({ ...signed, signature: flipped }, ORIGIN))).toBe(
      'ERR_ADMIN_CHALLENGE_INVALID',
    );
    expect(reasons.at(-1)).toBe('bad signature');
  });

  it('refuses limits that are not positive integers, or that would let a challenge be evicted before it expires', async () => {
    const { operator } = await world();
    const make = (rateLimits: Record<string, number>) =>
      codeOf(() => new AdminAuth({ operator: operator.identity, rateLimits }));
    for (const bad of [
      { challengeBurst: 0 },
      { challengesPerSecond: 0.5 },
      { refusedLoginBurst: -1 },
      { refusedLoginsPerSecond: Number.NaN },
      { challengeBurst: 1024 - 16 * ADMIN_CHALLENGE_TTL_SECONDS + 1, challengesPerSecond: 16 },
    ])
      expect(make(bad), JSON.stringify(bad)).toBe('ERR_ARGUMENT_INVALID');
    expect(
      make({ challengeBurst: 1024 - 16 * ADMIN_CHALLENGE_TTL_SECONDS, challengesPerSecond: 16 }),
    ).toBe('accepted');
  });
});
