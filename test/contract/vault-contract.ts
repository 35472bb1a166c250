import { createHmac, hkdfSync } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  AeadAlgorithm,
  aeadDecrypt,
  aeadEncrypt,
  generateX25519KeyPair,
  randomBytes,
  verifyEd25519,
  verifyP256,
  x25519,
} from '../../src/crypto/index.js';
import { fromHex, toHex } from '../../src/encoding/index.js';
import {
  SigningKeyType,
  type SecretHandle,
  type SecureChannelVault,
  type SigningVault,
} from '../../src/vault/index.js';

/**
 * The one compliance suite every SigningVault + SecureChannelVault must pass. It speaks only
 * the interfaces: secrets it cannot see are checked through what they do (an AEAD key is the
 * right key if it encrypts to the independently computed ciphertext).
 */
export type VaultUnderTest = SigningVault & SecureChannelVault;

export interface VaultFixture {
  readonly vault: VaultUnderTest;
  /** Frees what the factory made (files, databases); called after each test. */
  readonly close: () => void | Promise<void>;
}

const NONCE = new Uint8Array(12).fill(7);
const PROBE = new TextEncoder().encode('vault contract probe');
const EMPTY = new Uint8Array(0);
const KEY_ID_RE = /^[0-9a-f]{32}$/;

/** Points of order 1, 2, 4 or 8 on Curve25519 (RFC 7748 §6.1; libsodium's blocklist). */
const LOW_ORDER_POINTS = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

/** Noise's HKDF written out with node:crypto alone, as the reference the vault must match. */
function referenceHkdf(
  salt: Uint8Array,
  ikm: Uint8Array,
  info: Uint8Array,
  count: number,
): Uint8Array[] {
  const prk = createHmac('sha256', salt).update(ikm).digest();
  const out: Uint8Array[] = [];
  let previous: Uint8Array = EMPTY;
  for (let i = 1; i <= count; i++) {
    previous = new Uint8Array(
      createHmac('sha256', prk).update(previous).update(info).update(Uint8Array.of(i)).digest(),
    );
    out.push(previous);
  }
  return out;
}

/** The vault holds `handle` = `expected` iff AES-GCM under both gives the same ciphertext. */
async function expectSecretEquals(
  vault: VaultUnderTest,
  handle: SecretHandle,
  expected: Uint8Array,
): Promise<void> {
  const actual = await vault.aeadEncrypt(handle, NONCE, PROBE, EMPTY);
  expect(toHex(actual)).toBe(
    toHex(aeadEncrypt(AeadAlgorithm.aes256gcm, expected, NONCE, PROBE, EMPTY)),
  );
}

/** Every text form of `value` a log line, an error report or a debugger could show. */
function textForms(value: unknown): string {
  const forms = [inspect(value, { depth: 8, showHidden: true }), JSON.stringify(value) ?? ''];
  if (value instanceof Error) forms.push(value.message, String(value.stack));
  return forms.join('\n');
}

function expectNoSecretIn(text: string, secret: Uint8Array): void {
  const hex = toHex(secret);
  const squeezed = text.replace(/\s+/g, '');
  expect(text).not.toContain(hex);
  expect(squeezed).not.toContain(hex.match(/../g)!.join('')); // Buffer inspect: `<Buffer 01 02 ...>`
  expect(text).not.toContain(Buffer.from(secret).toString('base64').slice(0, 16));
  expect(squeezed).not.toContain(Array.from(secret.subarray(0, 8)).join(',')); // Uint8Array inspect
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

export function runVaultContract(name: string, factory: () => Promise<VaultFixture>): void {
  describe(`vault contract: ${name}`, () => {
    /** Gives each test a fresh vault and always closes it, even when the test fails. */
    const withVault = (test: (vault: VaultUnderTest) => Promise<void>) => async () => {
      const fixture = await factory();
      try {
        await test(fixture.vault);
      } finally {
        await fixture.close();
      }
    };

    describe('signing keys', () => {
      it(
        'signs with Ed25519 so that libsodium verifies',
        withVault(async (vault) => {
          const handle = await vault.generateSigningKey(SigningKeyType.ed25519);
          expect(handle.keyId).toMatch(KEY_ID_RE);
          expect(handle.keyType).toBe('ed25519');
          expect(handle.publicKey.byteLength).toBe(32);
          const message = new TextEncoder().encode('hello mandate');
          const signature = await vault.sign(handle.keyId, message);
          expect(signature.byteLength).toBe(64);
          expect(verifyEd25519(handle.publicKey, message, signature)).toBe(true);
          expect(verifyEd25519(handle.publicKey, PROBE, signature)).toBe(false);
        }),
      );

      it(
        'signNow, where the vault has it, signs as sign does (or answers undefined)',
        withVault(async (vault) => {
          if (vault.signNow === undefined) return;
          const handle = await vault.generateSigningKey(SigningKeyType.ed25519);
          await vault.sign(handle.keyId, PROBE);
          const now = vault.signNow(handle.keyId, PROBE);
          // Ed25519 is deterministic: a key in memory signs now exactly what `sign` signs.
          if (now !== undefined) expect(now).toEqual(await vault.sign(handle.keyId, PROBE));
          const p256 = await vault.generateSigningKey(SigningKeyType.p256);
          const signature = vault.signNow(p256.keyId, PROBE);
          if (signature !== undefined)
            expect(verifyP256(p256.publicKey, PROBE, signature)).toBe(true);
          // An unknown key: `undefined` (load it through `sign`) or the vault's not-found error.
          let unknown: unknown;
          try {
            unknown = vault.signNow(`${handle.keyId.slice(0, -1)}x`, PROBE);
          } catch (error) {
            unknown = (error as { code?: string }).code;
          }
          expect([undefined, 'ERR_VAULT_KEY_NOT_FOUND']).toContain(unknown);
        }),
      );

      it(
        'signs with P-256 (ECDSA-SHA-256, raw r ‖ s) so that node:crypto verifies',
        withVault(async (vault) => {
          const handle = await vault.generateSigningKey(SigningKeyType.p256);
          expect(handle.keyId).toMatch(KEY_ID_RE);
          expect(handle.keyType).toBe('p256');
          expect(handle.publicKey.byteLength).toBe(65);
          expect(handle.publicKey[0]).toBe(0x04);
          for (const message of [EMPTY, PROBE, randomBytes(5000)]) {
            const signature = await vault.sign(handle.keyId, message);
            expect(signature.byteLength).toBe(64);
            expect(verifyP256(handle.publicKey, message, signature)).toBe(true);
          }
          expect(verifyP256(handle.publicKey, PROBE, await vault.sign(handle.keyId, EMPTY))).toBe(
            false,
          );
        }),
      );

      it(
        'gives distinct keys distinct random ids',
        withVault(async (vault) => {
          const handles = await Promise.all(
            Array.from({ length: 20 }, () => vault.generateSigningKey(SigningKeyType.ed25519)),
          );
          expect(new Set(handles.map((h) => h.keyId)).size).toBe(20);
          expect(new Set(handles.map((h) => toHex(h.publicKey))).size).toBe(20);
          const signatures = await Promise.all(handles.map((h) => vault.sign(h.keyId, PROBE)));
          handles.forEach((h, i) => {
            expect(verifyEd25519(h.publicKey, PROBE, signatures[i]!)).toBe(true);
          });
        }),
      );

      it(
        'returns the same handle from get as from generate, and keeps its own copy',
        withVault(async (vault) => {
          for (const keyType of [SigningKeyType.ed25519, SigningKeyType.p256]) {
            const handle = await vault.generateSigningKey(keyType);
            const expected = { keyId: handle.keyId, keyType, publicKey: handle.publicKey.slice() };
            expect(await vault.getSigningKey(handle.keyId)).toEqual(expected);
            handle.publicKey.fill(0);
            const again = await vault.getSigningKey(handle.keyId);
            expect(again).toEqual(expected);
            again.publicKey.fill(0);
            expect(await vault.getSigningKey(handle.keyId)).toEqual(expected);
          }
        }),
      );

      it(
        'refuses an unknown key type with ERR_VAULT_KEY_TYPE_UNSUPPORTED',
        withVault(async (vault) => {
          // Deliberately outside the type, as plain JS or a bad config file would pass it.
          const keyType = 'rsa' as SigningKeyType;
          await expect(vault.generateSigningKey(keyType)).rejects.toMatchObject({
            code: 'ERR_VAULT_KEY_TYPE_UNSUPPORTED',
            kind: 'unsupported',
          });
        }),
      );

      it(
        'reports unknown signing keys as ERR_VAULT_KEY_NOT_FOUND',
        withVault(async (vault) => {
          const missing = toHex(randomBytes(16));
          const notFound = { code: 'ERR_VAULT_KEY_NOT_FOUND', kind: 'not_found' };
          await expect(vault.getSigningKey(missing)).rejects.toMatchObject(notFound);
          await expect(vault.sign(missing, PROBE)).rejects.toMatchObject(notFound);
          const error = await rejection(vault.sign(missing, PROBE));
          expect(error instanceof Error && error.message).toContain(`\`${missing}\``);
        }),
      );

      it(
        'deletes idempotently, after which the key is gone',
        withVault(async (vault) => {
          for (const keyType of [SigningKeyType.ed25519, SigningKeyType.p256]) {
            const handle = await vault.generateSigningKey(keyType);
            const other = await vault.generateSigningKey(keyType);
            await vault.sign(handle.keyId, PROBE);
            await vault.deleteSigningKey(handle.keyId);
            await vault.deleteSigningKey(handle.keyId);
            await expect(vault.sign(handle.keyId, PROBE)).rejects.toMatchObject({
              code: 'ERR_VAULT_KEY_NOT_FOUND',
            });
            await expect(vault.getSigningKey(handle.keyId)).rejects.toMatchObject({
              code: 'ERR_VAULT_KEY_NOT_FOUND',
            });
            // Deleting one key leaves the others alone.
            expect(
              verifyEd25519OrP256(
                other.keyType,
                other.publicKey,
                await vault.sign(other.keyId, PROBE),
              ),
            ).toBe(true);
          }
          await vault.deleteSigningKey(toHex(randomBytes(16)));
        }),
      );
    });

    describe('x25519 keys and dh', () => {
      it(
        'agrees on one shared secret from both sides',
        withVault(async (vault) => {
          const a = await vault.generateX25519Key();
          const b = await vault.generateX25519Key();
          expect(a.keyId).toMatch(KEY_ID_RE);
          expect(a.publicKey.byteLength).toBe(32);
          expect(await vault.getX25519Key(a.keyId)).toEqual(a);
          const ab = await vault.dh(a.keyId, b.publicKey);
          const ba = await vault.dh(b.keyId, a.publicKey);
          const sealed = await vault.aeadEncrypt(ab, NONCE, PROBE, EMPTY);
          expect(await vault.aeadDecrypt(ba, NONCE, sealed, EMPTY)).toEqual(PROBE);
          expect(await vault.aeadEncrypt(ba, NONCE, PROBE, EMPTY)).toEqual(sealed);
        }),
      );

      it(
        'computes RFC 7748 X25519 with an outside party',
        withVault(async (vault) => {
          const mine = await vault.generateX25519Key();
          const peer = generateX25519KeyPair();
          const shared = await vault.dh(mine.keyId, peer.publicKey);
          await expectSecretEquals(vault, shared, x25519(peer.secretKey, mine.publicKey));
        }),
      );

      it(
        'refuses low-order peer keys with ERR_CRYPTO_DH_LOW_ORDER',
        withVault(async (vault) => {
          const mine = await vault.generateX25519Key();
          for (const point of LOW_ORDER_POINTS) {
            await expect(vault.dh(mine.keyId, fromHex(point))).rejects.toMatchObject({
              code: 'ERR_CRYPTO_DH_LOW_ORDER',
            });
          }
          // The key survives the refusals.
          const peer = generateX25519KeyPair();
          await expectSecretEquals(
            vault,
            await vault.dh(mine.keyId, peer.publicKey),
            x25519(peer.secretKey, mine.publicKey),
          );
        }),
      );

      it(
        'reports unknown and deleted x25519 keys as ERR_VAULT_KEY_NOT_FOUND, deleting idempotently',
        withVault(async (vault) => {
          const notFound = { code: 'ERR_VAULT_KEY_NOT_FOUND', kind: 'not_found' };
          const missing = toHex(randomBytes(16));
          const peer = generateX25519KeyPair().publicKey;
          await expect(vault.getX25519Key(missing)).rejects.toMatchObject(notFound);
          await expect(vault.dh(missing, peer)).rejects.toMatchObject(notFound);
          const key = await vault.generateX25519Key();
          await vault.dh(key.keyId, peer);
          await vault.deleteX25519Key(key.keyId);
          await vault.deleteX25519Key(key.keyId);
          await vault.deleteX25519Key(missing);
          await expect(vault.getX25519Key(key.keyId)).rejects.toMatchObject(notFound);
          await expect(vault.dh(key.keyId, peer)).rejects.toMatchObject(notFound);
        }),
      );
    });

    describe('wrong purpose', () => {
      it(
        'refuses to use a key for the other purpose with ERR_VAULT_WRONG_PURPOSE',
        withVault(async (vault) => {
          const signing = await vault.generateSigningKey(SigningKeyType.ed25519);
          const exchange = await vault.generateX25519Key();
          const wrong = { code: 'ERR_VAULT_WRONG_PURPOSE' };
          await expect(vault.sign(exchange.keyId, PROBE)).rejects.toMatchObject(wrong);
          await expect(vault.getSigningKey(exchange.keyId)).rejects.toMatchObject(wrong);
          await expect(vault.deleteSigningKey(exchange.keyId)).rejects.toMatchObject(wrong);
          await expect(vault.dh(signing.keyId, exchange.publicKey)).rejects.toMatchObject(wrong);
          await expect(vault.getX25519Key(signing.keyId)).rejects.toMatchObject(wrong);
          await expect(vault.deleteX25519Key(signing.keyId)).rejects.toMatchObject(wrong);
          // A refused delete deleted nothing.
          expect(
            verifyEd25519(signing.publicKey, PROBE, await vault.sign(signing.keyId, PROBE)),
          ).toBe(true);
          expect(await vault.getX25519Key(exchange.keyId)).toEqual(exchange);
        }),
      );
    });

    describe('hkdf', () => {
      it(
        'matches RFC 5869 test case 1 (A.1) for the first 42 bytes',
        withVault(async (vault) => {
          const ikm = new Uint8Array(22).fill(0x0b);
          const salt = fromHex('000102030405060708090a0b0c');
          const info = fromHex('f0f1f2f3f4f5f6f7f8f9');
          const okm =
            '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865';
          const reference = referenceHkdf(salt, ikm, info, 2);
          expect(toHex(Buffer.concat(reference)).slice(0, okm.length)).toBe(okm);
          const [t1, t2] = await vault.hkdf(
            await vault.importSecret(salt),
            await vault.importSecret(ikm),
            info,
            2,
          );
          await expectSecretEquals(vault, t1!, reference[0]!);
          await expectSecretEquals(vault, t2!, reference[1]!);
        }),
      );

      it(
        "is Noise's HKDF with an empty info, for 1, 2 and 3 outputs, with and without ikm",
        withVault(async (vault) => {
          const chainingKey = randomBytes(32);
          const ikm = randomBytes(32);
          const ck = await vault.importSecret(chainingKey);
          const ikmHandle = await vault.importSecret(ikm);
          for (const count of [1, 2, 3] as const) {
            for (const [ikmBytes, ikmArg] of [
              [ikm, ikmHandle],
              [EMPTY, undefined],
            ] as const) {
              const outputs = await vault.hkdf(ck, ikmArg, EMPTY, count);
              expect(outputs).toHaveLength(count);
              // Noise rev. 34 §4.3, spelled out: temp = HMAC(ck, ikm); o1 = HMAC(temp, 0x01); ...
              const temp = createHmac('sha256', chainingKey).update(ikmBytes).digest();
              const o1 = createHmac('sha256', temp).update(Uint8Array.of(1)).digest();
              const o2 = createHmac('sha256', temp).update(o1).update(Uint8Array.of(2)).digest();
              const o3 = createHmac('sha256', temp).update(o2).update(Uint8Array.of(3)).digest();
              const expected = [o1, o2, o3].slice(0, count);
              // And node's RFC 5869 HKDF agrees on the concatenation.
              expect(
                Buffer.from(hkdfSync('sha256', ikmBytes, chainingKey, EMPTY, 32 * count)),
              ).toEqual(Buffer.concat(expected));
              for (const [i, output] of outputs.entries())
                await expectSecretEquals(vault, output, expected[i]!);
            }
          }
        }),
      );

      it(
        'chains: an hkdf output can be the next salt, and outputs are independent handles',
        withVault(async (vault) => {
          const start = randomBytes(32);
          const [ck1, k1] = await vault.hkdf(await vault.importSecret(start), undefined, EMPTY, 2);
          const [ck2] = await vault.hkdf(ck1!, k1, EMPTY, 1);
          const [r1, r2] = referenceHkdf(start, EMPTY, EMPTY, 2);
          const [r3] = referenceHkdf(r1!, r2!, EMPTY, 1);
          await vault.deleteSecret(k1!);
          await expectSecretEquals(vault, ck1!, r1!);
          await expectSecretEquals(vault, ck2!, r3!);
          await expect(vault.hkdf(ck1!, k1, EMPTY, 1)).rejects.toMatchObject({
            code: 'ERR_VAULT_SECRET_NOT_FOUND',
          });
        }),
      );
    });

    describe('secrets and aead', () => {
      it(
        'round-trips AES-256-GCM and refuses any tampering with ERR_CRYPTO_DECRYPT_FAILED',
        withVault(async (vault) => {
          const keyBytes = randomBytes(32);
          const key = await vault.importSecret(keyBytes);
          const nonce = randomBytes(12);
          const aad = new TextEncoder().encode('header');
          const plaintext = randomBytes(100);
          const sealed = await vault.aeadEncrypt(key, nonce, plaintext, aad);
          expect(sealed.byteLength).toBe(plaintext.byteLength + 16);
          expect(sealed).toEqual(
            aeadEncrypt(AeadAlgorithm.aes256gcm, keyBytes, nonce, plaintext, aad),
          );
          expect(await vault.aeadDecrypt(key, nonce, sealed, aad)).toEqual(plaintext);
          expect(aeadDecrypt(AeadAlgorithm.aes256gcm, keyBytes, nonce, sealed, aad)).toEqual(
            plaintext,
          );

          const failed = { code: 'ERR_CRYPTO_DECRYPT_FAILED' };
          for (const index of [0, 50, sealed.byteLength - 1]) {
            const tampered = sealed.slice();
            tampered[index]! ^= 0x01;
            await expect(vault.aeadDecrypt(key, nonce, tampered, aad)).rejects.toMatchObject(
              failed,
            );
          }
          const otherNonce = nonce.slice();
          otherNonce[0]! ^= 0x80;
          await expect(vault.aeadDecrypt(key, otherNonce, sealed, aad)).rejects.toMatchObject(
            failed,
          );
          await expect(vault.aeadDecrypt(key, nonce, sealed, EMPTY)).rejects.toMatchObject(failed);
          await expect(
            vault.aeadDecrypt(key, nonce, sealed.subarray(0, 10), aad),
          ).rejects.toMatchObject(failed);
          const otherKey = await vault.importSecret(randomBytes(32));
          await expect(vault.aeadDecrypt(otherKey, nonce, sealed, aad)).rejects.toMatchObject(
            failed,
          );
        }),
      );

      it(
        'round-trips an empty plaintext',
        withVault(async (vault) => {
          const key = await vault.importSecret(randomBytes(32));
          const sealed = await vault.aeadEncrypt(key, NONCE, EMPTY, EMPTY);
          expect(sealed.byteLength).toBe(16);
          expect(await vault.aeadDecrypt(key, NONCE, sealed, EMPTY)).toEqual(EMPTY);
        }),
      );

      it(
        'deletes secrets idempotently and reports unknown ones as ERR_VAULT_SECRET_NOT_FOUND',
        withVault(async (vault) => {
          const notFound = { code: 'ERR_VAULT_SECRET_NOT_FOUND', kind: 'not_found' };
          const key = await vault.importSecret(randomBytes(32));
          await vault.deleteSecret(key);
          await vault.deleteSecret(key);
          await vault.deleteSecret({ secretId: 'never-issued' });
          await expect(vault.aeadEncrypt(key, NONCE, PROBE, EMPTY)).rejects.toMatchObject(notFound);
          await expect(
            vault.aeadDecrypt(key, NONCE, new Uint8Array(32), EMPTY),
          ).rejects.toMatchObject(notFound);
          await expect(vault.hkdf(key, undefined, EMPTY, 1)).rejects.toMatchObject(notFound);
          const live = await vault.importSecret(randomBytes(32));
          await expect(vault.hkdf(live, key, EMPTY, 1)).rejects.toMatchObject(notFound);
        }),
      );

      it(
        'refuses an empty secret and a key of the wrong length',
        withVault(async (vault) => {
          await expect(vault.importSecret(EMPTY)).rejects.toMatchObject({
            code: 'ERR_VAULT_SECRET_INVALID',
          });
          const short = await vault.importSecret(randomBytes(16));
          await expect(vault.aeadEncrypt(short, NONCE, PROBE, EMPTY)).rejects.toMatchObject({
            code: 'ERR_CRYPTO_KEY_LENGTH',
          });
          const key = await vault.importSecret(randomBytes(32));
          await expect(
            vault.aeadEncrypt(key, new Uint8Array(8), PROBE, EMPTY),
          ).rejects.toMatchObject({ code: 'ERR_CRYPTO_NONCE_LENGTH' });
        }),
      );
    });

    describe('secrets never show', () => {
      it(
        'keeps secret bytes out of handles, results, errors and the vault itself',
        withVault(async (vault) => {
          const imported = randomBytes(32);
          const peer = generateX25519KeyPair();
          const exchange = await vault.generateX25519Key();
          const dhSecret = x25519(peer.secretKey, exchange.publicKey);
          const [derived1, derived2] = referenceHkdf(imported, dhSecret, EMPTY, 2);
          const secrets = [imported, dhSecret, derived1!, derived2!];

          const importedHandle = await vault.importSecret(imported);
          const dhHandle = await vault.dh(exchange.keyId, peer.publicKey);
          const derivedHandles = await vault.hkdf(importedHandle, dhHandle, EMPTY, 2);
          await expectSecretEquals(vault, derivedHandles[0]!, derived1!);
          const ed = await vault.generateSigningKey(SigningKeyType.ed25519);
          const p256 = await vault.generateSigningKey(SigningKeyType.p256);

          const shown: unknown[] = [
            vault,
            importedHandle,
            dhHandle,
            ...derivedHandles,
            ed,
            p256,
            exchange,
          ];
          shown.push(await vault.getSigningKey(ed.keyId), await vault.getX25519Key(exchange.keyId));
          shown.push(await vault.sign(ed.keyId, PROBE), await vault.sign(p256.keyId, PROBE));
          const sealed = await vault.aeadEncrypt(importedHandle, NONCE, PROBE, EMPTY);
          shown.push(sealed);
          sealed[0]! ^= 1;
          shown.push(await rejection(vault.aeadDecrypt(importedHandle, NONCE, sealed, EMPTY)));
          shown.push(await rejection(vault.aeadDecrypt(dhHandle, NONCE, sealed, EMPTY)));
          shown.push(await rejection(vault.dh(exchange.keyId, new Uint8Array(32))));
          shown.push(await rejection(vault.sign(exchange.keyId, imported)));
          shown.push(await rejection(vault.dh(ed.keyId, peer.publicKey)));

          // Handles carry exactly their public fields, nothing that could hold a secret.
          expect(Object.keys(importedHandle)).toEqual(['secretId']);
          expect(Object.keys(dhHandle)).toEqual(['secretId']);
          expect(Object.keys(ed).sort()).toEqual(['keyId', 'keyType', 'publicKey']);
          expect(Object.keys(exchange).sort()).toEqual(['keyId', 'publicKey']);

          const text = shown.map(textForms).join('\n');
          for (const secret of secrets) expectNoSecretIn(text, secret);
          expect(JSON.stringify(vault)).not.toMatch(/[0-9a-f]{64}/);
        }),
      );
    });

    describe('concurrency', () => {
      it(
        'handles many interleaved operations',
        withVault(async (vault) => {
          const results = await Promise.all(
            Array.from({ length: 16 }, async (_, i) => {
              const keyType = i % 2 === 0 ? SigningKeyType.ed25519 : SigningKeyType.p256;
              const handle = await vault.generateSigningKey(keyType);
              const signature = await vault.sign(handle.keyId, PROBE);
              return verifyEd25519OrP256(keyType, handle.publicKey, signature);
            }),
          );
          expect(results.every(Boolean)).toBe(true);
        }),
      );
    });
  });
}

function verifyEd25519OrP256(
  keyType: SigningKeyType,
  publicKey: Uint8Array,
  signature: Uint8Array,
): boolean {
  return keyType === SigningKeyType.ed25519
    ? verifyEd25519(publicKey, PROBE, signature)
    : verifyP256(publicKey, PROBE, signature);
}
