import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { calculateJwkThumbprint, createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import { BROKER_JWT_KEY_FILE, homeBrokerJwtKey } from '../../src/cli/commands/broker-jwks.js';
import { openHome } from '../../src/cli/home.js';
import { JwtLeaseProvider } from '../../src/broker/index.js';
import { failsJson, okJson } from '../helpers/cli.js';
import { brokerJwtWorld, JWT_NOW, PAYMENTS } from '../helpers/broker-jwt-world.js';

describe('mandate broker jwks', () => {
  it("creates the home's broker key on first use, then prints the same JWKS", async () => {
    const home = mkdtempSync(join(tmpdir(), 'jwks-'));
    const first = await okJson<{ keys: JWK[] }>(home, 'broker', 'jwks');
    expect(first.keys).toHaveLength(1);
    const key = first.keys[0]!;
    expect(key).toMatchObject({ kty: 'OKP', crv: 'Ed25519', use: 'sig', alg: 'EdDSA' });
    expect(key.kid).toBe(await calculateJwkThumbprint(key));
    expect(Object.keys(key).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    const stored = JSON.parse(readFileSync(join(home, BROKER_JWT_KEY_FILE), 'utf8')) as {
      keyId: string;
      keyType: string;
    };
    expect(stored.keyType).toBe('ed25519');
    expect(await okJson(home, 'broker', 'jwks')).toEqual(first);
    // The key exists: asking for another type is refused, not a silent replacement.
    await failsJson(home, 'ERR_ARGUMENT_INVALID', 3, 'broker', 'jwks', '--key-type', 'p256');
  });

  it('creates a P-256 key when asked, and refuses a damaged key file', async () => {
    const home = mkdtempSync(join(tmpdir(), 'jwks-'));
    const jwks = await okJson<{ keys: JWK[] }>(home, 'broker', 'jwks', '--key-type', 'p256');
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', use: 'sig', alg: 'ES256' });
    await failsJson(home, 'ERR_ARGUMENT_INVALID', 3, 'broker', 'jwks', '--key-type', 'rsa');
    writeFileSync(join(home, BROKER_JWT_KEY_FILE), '{"keyId": 1}');
    await failsJson(home, 'ERR_JWT_KEY_FILE_INVALID', 3, 'broker', 'jwks');
  });

  it('the printed JWKS verifies tokens the home key signs', async () => {
    const home = mkdtempSync(join(tmpdir(), 'jwks-'));
    const jwks = await okJson<{ keys: JWK[] }>(home, 'broker', 'jwks', '--key-type', 'p256');
    const w = await brokerJwtWorld();
    const opened = await openHome(home);
    try {
      const provider = new JwtLeaseProvider({
        vault: opened.vault,
        key: await homeBrokerJwtKey(opened),
        issuer: 'https://broker.example',
        clock: w.clock,
      });
      const { value } = await provider.issue(
        w.contextOf(w.payerChain, PAYMENTS, ['payments:read']),
      );
      const { payload } = await jwtVerify(value.token, createLocalJWKSet(jwks), {
        currentDate: new Date((JWT_NOW + 1) * 1000),
      });
      expect(payload.sub).toBe(w.payer.id);
    } finally {
      opened.close();
    }
  });
});
