import { createDecipheriv } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { randomBytes, SecureArena, verifyEd25519 } from '../crypto/index.js';
import { fromHex, toHex } from '../encoding/index.js';
import { InMemorySealedKeyRepository } from './in-memory-sealed-key-repository.js';
import { openBlob, sealBlob, sealedBlobBytes } from './sealed-blob.js';
import { sealedKeyAad } from './sealed-key.js';
import { SoftwareVault } from './software-vault.js';

const arena = new SecureArena();
const AAD = new TextEncoder().encode('mandate/test/aad');

/**
 * A sealed key as Mandate wrote it before version 2 (`0x01 ‖ nonce ‖ AES-256-GCM ‖ tag`), pinned
 * as bytes: KEK = 00 01 … 1f, nonce = a0 … ab, the Ed25519 key of the seed 42…42, key id below.
 * Every vault written before version 2 holds only such blobs; they must keep opening.
 */
const V1 = {
  kek: Uint8Array.from({ length: 32 }, (_, i) => i),
  keyId: '0000000000000000000000000000000a',
  publicKey: fromHex('2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12'),
  sealed: fromHex(
    '01a0a1a2a3a4a5a6a7a8a9aaaba45a3e6f078940fd2027c5914538829c32ee1b52d0f5002ede4c64c43de93743f324bf2e345b4e191aae462956542895f0d4bc33088ec97ed6c805583cf15ea299251f2f08fd1cc53fdee24c9b752895',
  ),
} as const;

describe('sealed blobs', () => {
  it('seals as version 2: 0x02, a 24-byte nonce, XChaCha20-Poly1305 with its 16-byte tag', () => {
    const kek = arena.allocateFrom(randomBytes(32));
    const plaintext = randomBytes(64);
    const sealed = sealBlob(kek, plaintext, AAD);
    expect(sealed[0]).toBe(0x02);
    expect(sealed.byteLength).toBe(1 + 24 + 64 + 16);
    expect(sealedBlobBytes(64)).toBe(sealed.byteLength);
    expect(toHex(openBlob(kek, sealed, AAD)!)).toBe(toHex(plaintext));
    // A fresh nonce per seal: the same plaintext never seals to the same bytes.
    expect(toHex(sealBlob(kek, plaintext, AAD))).not.toBe(toHex(sealed));
  });

  it('opens nothing under another KEK or AAD, tampered, truncated or relabelled', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat(), (plaintext, at) => {
        const kek = arena.allocateFrom(randomBytes(32));
        const sealed = sealBlob(kek, plaintext, AAD);
        expect(openBlob(kek, sealed, AAD)).toEqual(plaintext);
        expect(openBlob(arena.allocateFrom(randomBytes(32)), sealed, AAD)).toBeUndefined();
        expect(openBlob(kek, sealed, AAD.subarray(1))).toBeUndefined();
        const flipped = sealed.slice();
        flipped[at % flipped.byteLength]! ^= 1 << (at % 8);
        expect(openBlob(kek, flipped, AAD)).toBeUndefined();
        expect(openBlob(kek, sealed.subarray(0, (at % sealed.byteLength) - 1), AAD)).toBe(
          undefined,
        );
        const relabelled = sealed.slice();
        relabelled[0] = 0x01;
        expect(openBlob(kek, relabelled, AAD)).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  it('still opens version 1 (AES-256-GCM), as node:crypto reads the pinned blob too', () => {
    const kek = arena.allocateFrom(V1.kek);
    const aad = sealedKeyAad({
      keyId: V1.keyId,
      purpose: 'signing',
      keyType: 'ed25519',
      publicKey: V1.publicKey,
    });
    const opened = openBlob(kek, V1.sealed, aad);
    expect(opened?.byteLength).toBe(64);
    // The independent reading: the format is exactly version ‖ nonce ‖ GCM body ‖ tag.
    const decipher = createDecipheriv('aes-256-gcm', V1.kek, V1.sealed.subarray(1, 13));
    decipher.setAAD(aad);
    decipher.setAuthTag(V1.sealed.subarray(V1.sealed.byteLength - 16));
    const reference = Buffer.concat([
      decipher.update(V1.sealed.subarray(13, V1.sealed.byteLength - 16)),
      decipher.final(),
    ]);
    expect(toHex(opened!)).toBe(toHex(reference));
    expect(openBlob(kek, V1.sealed, AAD)).toBeUndefined();
  });

  it('lets a vault written before version 2 sign with its old keys and seal new ones as version 2', async () => {
    const repository = new InMemorySealedKeyRepository();
    await repository.putKey({
      keyId: V1.keyId,
      purpose: 'signing',
      keyType: 'ed25519',
      publicKey: V1.publicKey,
      sealed: V1.sealed,
    });
    const vault = new SoftwareVault({ repository, kek: arena.allocateFrom(V1.kek), arena });
    const message = new TextEncoder().encode('signed by a version 1 key');
    expect(verifyEd25519(V1.publicKey, message, await vault.sign(V1.keyId, message))).toBe(true);
    const fresh = await vault.generateSigningKey('ed25519');
    expect((await repository.getKey(fresh.keyId))?.sealed[0]).toBe(0x02);
    // The old record is left as it was: nothing rewrites version 1 rows.
    expect(toHex((await repository.getKey(V1.keyId))!.sealed)).toBe(toHex(V1.sealed));
  });
});
