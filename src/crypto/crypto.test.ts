import {
  createCipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  verify as nodeVerify,
  webcrypto,
} from 'node:crypto';
import { format, inspect } from 'node:util';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorKind, isMandateError } from '../core/index.js';
import { fromHex, toHex } from '../encoding/index.js';
import {
  AEAD_TAG_BYTES,
  AeadAlgorithm,
  SecureArena,
  aeadDecrypt,
  aeadEncrypt,
  constantTimeEqual,
  ed25519KeyPairFromSeed,
  generateEd25519KeyPair,
  generateEd25519KeyPairInto,
  generateP256KeyPair,
  generateX25519KeyPair,
  generateX25519KeyPairInto,
  hkdfSha256,
  hmacSha256,
  importP256PrivateKey,
  randomBytes,
  sha256,
  sha256Utf8,
  signEd25519,
  signEd25519Node,
  signP256,
  verifyEd25519,
  verifyEd25519Node,
  verifyP256,
  wipe,
  x25519,
  x25519PublicKey,
  type P256KeyPair,
} from './index.js';
import { expectCode, thrown } from '../../test/helpers/errors.js';

const bytesOf = (length: number): fc.Arbitrary<Uint8Array> =>
  fc.uint8Array({ minLength: length, maxLength: length });
const message = fc.uint8Array({ maxLength: 300 });
const flipBit = (bytes: Uint8Array, bit: number): Uint8Array => {
  const out = bytes.slice();
  const i = (bit >> 3) % out.byteLength;
  out[i] = out[i]! ^ (1 << (bit & 7));
  return out;
};
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

// --- Ed25519 -----------------------------------------------------------------------------------

describe('Ed25519: libsodium and node:crypto agree', () => {
  it('sign bytes are identical (Ed25519 is deterministic) and each verifies the other', () => {
    fc.assert(
      fc.property(bytesOf(32), message, (seed, msg) => {
        const { publicKey, secretKey } = ed25519KeyPairFromSeed(seed);
        const bySodium = signEd25519(secretKey, msg);
        const byNode = signEd25519Node(secretKey, msg);
        expect(toHex(bySodium)).toBe(toHex(byNode));
        expect(verifyEd25519(publicKey, msg, byNode)).toBe(true);
        expect(verifyEd25519Node(publicKey, msg, bySodium)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('both reject a flipped bit in the message or the signature', () => {
    fc.assert(
      fc.property(bytesOf(32), message, fc.nat(511), fc.nat(), (seed, msg, sigBit, msgBit) => {
        const { publicKey, secretKey } = ed25519KeyPairFromSeed(seed);
        const signature = signEd25519(secretKey, msg);
        const badSig = flipBit(signature, sigBit);
        expect(verifyEd25519(publicKey, msg, badSig)).toBe(false);
        expect(verifyEd25519Node(publicKey, msg, badSig)).toBe(false);
        if (msg.byteLength > 0) {
          const badMsg = flipBit(msg, msgBit);
          expect(verifyEd25519(publicKey, badMsg, signature)).toBe(false);
          expect(verifyEd25519Node(publicKey, badMsg, signature)).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a generated pair is seed ‖ public key and re-derives from its seed', () => {
    const pair = generateEd25519KeyPair();
    expect(pair.secretKey.subarray(32)).toStrictEqual(pair.publicKey);
    expect(ed25519KeyPairFromSeed(pair.secretKey.subarray(0, 32))).toStrictEqual(pair);
  });

  it('wrong lengths: key material throws ERR_CRYPTO_KEY_LENGTH, verification just says no', () => {
    const pair = generateEd25519KeyPair();
    expectCode(() => ed25519KeyPairFromSeed(new Uint8Array(31)), 'ERR_CRYPTO_KEY_LENGTH');
    expectCode(
      () => signEd25519(pair.secretKey.subarray(0, 32), utf8('m')),
      'ERR_CRYPTO_KEY_LENGTH',
    );
    expectCode(() => signEd25519Node(new Uint8Array(65), utf8('m')), 'ERR_CRYPTO_KEY_LENGTH');
    expectCode(() => {
      generateEd25519KeyPairInto(new Uint8Array(32), new Uint8Array(32));
    }, 'ERR_CRYPTO_KEY_LENGTH');
    const signature = signEd25519(pair.secretKey, utf8('m'));
    for (const verify of [verifyEd25519, verifyEd25519Node]) {
      expect(verify(pair.publicKey.subarray(1), utf8('m'), signature)).toBe(false);
      expect(verify(pair.publicKey, utf8('m'), signature.subarray(0, 63))).toBe(false);
      expect(verify(pair.publicKey, utf8('m'), new Uint8Array([...signature, 0]))).toBe(false);
    }
  });
});

// --- X25519 ------------------------------------------------------------------------------------

// RFC 8410 DER headers, to hand raw X25519 keys to node:crypto.
const X25519_PKCS8_PREFIX = fromHex('302e020100300506032b656e04220420');
const X25519_SPKI_PREFIX = fromHex('302a300506032b656e032100');

describe('X25519', () => {
  it('agrees with node:crypto and is symmetric', () => {
    fc.assert(
      fc.property(bytesOf(32), bytesOf(32), (a, b) => {
        const publicA = x25519PublicKey(a);
        const publicB = x25519PublicKey(b);
        const nodePrivateA = createPrivateKey({
          key: Buffer.concat([X25519_PKCS8_PREFIX, a]),
          format: 'der',
          type: 'pkcs8',
        });
        const nodePublicA = createPublicKey(nodePrivateA)
          .export({ format: 'der', type: 'spki' })
          .subarray(X25519_SPKI_PREFIX.byteLength);
        expect(toHex(nodePublicA)).toBe(toHex(publicA));
        const nodePublicB = createPublicKey({
          key: Buffer.concat([X25519_SPKI_PREFIX, publicB]),
          format: 'der',
          type: 'spki',
        });
        const shared = x25519(a, publicB);
        expect(toHex(diffieHellman({ privateKey: nodePrivateA, publicKey: nodePublicB }))).toBe(
          toHex(shared),
        );
        expect(toHex(x25519(b, publicA))).toBe(toHex(shared));
      }),
      { numRuns: 100 },
    );
  });

  it('a generated pair is consistent and lengths are checked', () => {
    const pair = generateX25519KeyPair();
    expect(x25519PublicKey(pair.secretKey)).toStrictEqual(pair.publicKey);
    expectCode(() => x25519(pair.secretKey, pair.publicKey.subarray(1)), 'ERR_CRYPTO_KEY_LENGTH');
    expectCode(() => x25519PublicKey(new Uint8Array(31)), 'ERR_CRYPTO_KEY_LENGTH');
    expectCode(() => {
      generateX25519KeyPairInto(new Uint8Array(32), new Uint8Array(64));
    }, 'ERR_CRYPTO_KEY_LENGTH');
  });

  it('refuses the all-zero peer key with ERR_CRYPTO_DH_LOW_ORDER', () => {
    expectCode(
      () => x25519(generateX25519KeyPair().secretKey, new Uint8Array(32)),
      'ERR_CRYPTO_DH_LOW_ORDER',
    );
  });
});

// --- P-256 -------------------------------------------------------------------------------------

// Group order n of P-256 (SEC 2 §2.4.2): r or s equal to n is out of range.
const P256_ORDER = fromHex('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
const bigIntOf = (bytes: Uint8Array): bigint => BigInt(`0x${toHex(bytes)}`);
const P256_HALF_ORDER = bigIntOf(P256_ORDER) >> 1n;
/** (r, s) → (r, n − s), the other solution of the ECDSA equation. */
const highSTwin = (signature: Uint8Array): Uint8Array =>
  Uint8Array.of(
    ...signature.subarray(0, 32),
    ...fromHex(
      (bigIntOf(P256_ORDER) - bigIntOf(signature.subarray(32))).toString(16).padStart(64, '0'),
    ),
  );
const spkiOf = (publicKey: Uint8Array) =>
  createPublicKey({
    key: Buffer.concat([
      Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
      publicKey,
    ]),
    format: 'der',
    type: 'spki',
  });

describe('P-256', () => {
  let keys: P256KeyPair[] = [];
  beforeAll(() => {
    keys = [generateP256KeyPair(), generateP256KeyPair(), generateP256KeyPair()];
  });

  it('sign/verify round-trips, with raw bytes or a parsed key', () => {
    fc.assert(
      fc.property(fc.nat(2), message, (k, msg) => {
        const pair = keys[k]!;
        const signature = signP256(pair.privateKeyPkcs8, msg);
        expect(signature).toHaveLength(64);
        expect(verifyP256(pair.publicKey, msg, signature)).toBe(true);
        expect(
          verifyP256(
            pair.publicKey,
            msg,
            signP256(importP256PrivateKey(pair.privateKeyPkcs8), msg),
          ),
        ).toBe(true);
        expect(verifyP256(keys[(k + 1) % 3]!.publicKey, msg, signature)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  // Issue 8: (r, s) and (r, n − s) both satisfy the ECDSA equation, so a signature could be
  // rewritten without the key. Mandate signs and accepts only s ≤ (n − 1) / 2.
  it('signs in low-S form only, and refuses the high-S twin (r, n − s) of every signature', () => {
    fc.assert(
      fc.property(fc.nat(2), message, (k, msg) => {
        const pair = keys[k]!;
        const signature = signP256(pair.privateKeyPkcs8, msg);
        expect(bigIntOf(signature.subarray(32)) <= P256_HALF_ORDER).toBe(true);
        const twin = highSTwin(signature);
        expect(bigIntOf(twin.subarray(32)) > P256_HALF_ORDER).toBe(true);
        expect(verifyP256(pair.publicKey, msg, twin)).toBe(false);
        // OpenSSL alone accepts the twin: the rule is Mandate's, not the library's.
        expect(
          nodeVerify(
            'sha256',
            msg,
            { key: spkiOf(pair.publicKey), dsaEncoding: 'ieee-p1363' },
            twin,
          ),
        ).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects a flipped bit in the message, the signature or the public key', () => {
    fc.assert(
      fc.property(
        fc.nat(2),
        message,
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 8, max: 519 }),
        (k, msg, sigBit, msgBit, keyBit) => {
          const pair = keys[k]!;
          const signature = signP256(pair.privateKeyPkcs8, msg);
          expect(verifyP256(pair.publicKey, msg, flipBit(signature, sigBit))).toBe(false);
          if (msg.byteLength > 0)
            expect(verifyP256(pair.publicKey, flipBit(msg, msgBit), signature)).toBe(false);
          // Bits past the 0x04 prefix: the result is off the curve or another key; never a throw.
          expect(verifyP256(flipBit(pair.publicKey, keyBit), msg, signature)).toBe(false);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('returns false, never throws, on garbage keys and signatures', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 80 }),
        fc.uint8Array({ maxLength: 80 }),
        message,
        (key, sig, msg) => {
          expect(verifyP256(key, msg, sig)).toBe(false);
          expect(verifyP256(Uint8Array.of(0x04, ...key.subarray(0, 64)), msg, sig)).toBe(false);
          expect(verifyP256(keys[0]!.publicKey, msg, sig)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
    const { publicKey } = keys[0]!;
    const msg = utf8('m');
    const signature = signP256(keys[0]!.privateKeyPkcs8, msg);
    const zero = new Uint8Array(32);
    for (const bad of [
      new Uint8Array(64), // r = s = 0
      Uint8Array.of(...zero, ...signature.subarray(32)), // r = 0
      Uint8Array.of(...signature.subarray(0, 32), ...zero), // s = 0
      Uint8Array.of(...P256_ORDER, ...signature.subarray(32)), // r = n
      Uint8Array.of(...signature.subarray(0, 32), ...P256_ORDER), // s = n
      new Uint8Array(64).fill(0xff),
      signature.subarray(0, 63),
    ]) {
      expect(verifyP256(publicKey, msg, bad)).toBe(false);
    }
    expect(verifyP256(Uint8Array.of(0x02, ...publicKey.subarray(1)), msg, signature)).toBe(false);
    expect(verifyP256(new Uint8Array(65), msg, signature)).toBe(false);
    expect(verifyP256(Uint8Array.of(0x04, ...new Uint8Array(64).fill(0xff)), msg, signature)).toBe(
      false,
    );
  });

  it('signatures are raw r ‖ s that WebCrypto (JOSE ES256 form) verifies, and the reverse', async () => {
    const { publicKey, privateKeyPkcs8 } = keys[0]!;
    const msg = utf8('interop');
    const params = { name: 'ECDSA', namedCurve: 'P-256' } as const;
    const hash = { name: 'ECDSA', hash: 'SHA-256' } as const;
    const verifyKey = await webcrypto.subtle.importKey('raw', publicKey, params, false, ['verify']);
    expect(
      await webcrypto.subtle.verify(hash, verifyKey, signP256(privateKeyPkcs8, msg), msg),
    ).toBe(true);
    const signKey = await webcrypto.subtle.importKey('pkcs8', privateKeyPkcs8, params, false, [
      'sign',
    ]);
    // WebCrypto signs with either s; its low-S form verifies here, its high-S form does not.
    for (let i = 0; i < 16; i++) {
      const signature = new Uint8Array(await webcrypto.subtle.sign(hash, signKey, msg));
      const high = bigIntOf(signature.subarray(32)) > P256_HALF_ORDER;
      const low = high ? highSTwin(signature) : signature;
      expect(verifyP256(publicKey, msg, low)).toBe(true);
      expect(verifyP256(publicKey, msg, highSTwin(low))).toBe(false);
    }
  });

  it('importP256PrivateKey refuses what is not a P-256 PKCS#8 key', () => {
    const ed = generateKeyPairSync('ed25519').privateKey.export({ format: 'der', type: 'pkcs8' });
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({
      format: 'der',
      type: 'pkcs8',
    });
    for (const bad of [
      new Uint8Array(0),
      utf8('not a key'),
      new Uint8Array(ed),
      new Uint8Array(p384),
    ]) {
      expectCode(() => importP256PrivateKey(bad), 'ERR_CRYPTO_KEY_INVALID');
      expectCode(() => signP256(bad, utf8('m')), 'ERR_CRYPTO_KEY_INVALID');
    }
  });
});

// --- AEAD --------------------------------------------------------------------------------------

interface AeadVector {
  readonly source: string;
  readonly algorithm: AeadAlgorithm;
  readonly key: string;
  readonly nonce: string;
  readonly aad: string;
  readonly plaintext: string;
  readonly ciphertext: string;
  readonly tag: string;
}

const aeadVectors: AeadVector[] = [
  // McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", rev. 2005, Appendix B,
  // Test Cases 13–16 (the AES-256 cases; NIST's GCM validation reuses them).
  {
    source: 'GCM spec Test Case 13',
    algorithm: AeadAlgorithm.aes256gcm,
    key: '00'.repeat(32),
    nonce: '00'.repeat(12),
    aad: '',
    plaintext: '',
    ciphertext: '',
    tag: '530f8afbc74536b9a963b4f1c4cb738b',
  },
  {
    source: 'GCM spec Test Case 14',
    algorithm: AeadAlgorithm.aes256gcm,
    key: '00'.repeat(32),
    nonce: '00'.repeat(12),
    aad: '',
    plaintext: '00'.repeat(16),
    ciphertext: 'cea7403d4d606b6e074ec5d3baf39d18',
    tag: 'd0d1c8a799996bf0265b98b5d48ab919',
  },
  {
    source: 'GCM spec Test Case 15',
    algorithm: AeadAlgorithm.aes256gcm,
    key: 'feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308',
    nonce: 'cafebabefacedbaddecaf888',
    aad: '',
    plaintext:
      'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255',
    ciphertext:
      '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad',
    tag: 'b094dac5d93471bdec1a502270e3cc6c',
  },
  {
    source: 'GCM spec Test Case 16',
    algorithm: AeadAlgorithm.aes256gcm,
    key: 'feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308',
    nonce: 'cafebabefacedbaddecaf888',
    aad: 'feedfacedeadbeeffeedfacedeadbeefabaddad2',
    plaintext:
      'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
    ciphertext:
      '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662',
    tag: '76fc6ece0f4e1768cddf8853bb2d551b',
  },
  // RFC 8439 §2.8.2, "Example and Test Vector for AEAD_CHACHA20_POLY1305".
  {
    source: 'RFC 8439 §2.8.2',
    algorithm: AeadAlgorithm.chacha20poly1305,
    key: '808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f',
    nonce: '070000004041424344454647',
    aad: '50515253c0c1c2c3c4c5c6c7',
    plaintext: toHex(
      utf8(
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
      ),
    ),
    ciphertext:
      'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116',
    tag: '1ae10b594f09e26a7e902ecbd0600691',
  },
];

const algorithms = [AeadAlgorithm.aes256gcm, AeadAlgorithm.chacha20poly1305] as const;

/** The same AEAD straight from node:crypto: the reference for both of our backends. */
function nodeSeal(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  const cipher =
    algorithm === AeadAlgorithm.aes256gcm
      ? createCipheriv('aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_BYTES })
      : createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_BYTES });
  cipher.setAAD(aad, { plaintextLength: plaintext.byteLength });
  return new Uint8Array(
    Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]),
  );
}

describe('AEAD', () => {
  it.each(aeadVectors)('$source', (v) => {
    const sealed = aeadEncrypt(
      v.algorithm,
      fromHex(v.key),
      fromHex(v.nonce),
      fromHex(v.plaintext),
      fromHex(v.aad),
    );
    expect(toHex(sealed)).toBe(v.ciphertext + v.tag);
    expect(
      toHex(aeadDecrypt(v.algorithm, fromHex(v.key), fromHex(v.nonce), sealed, fromHex(v.aad))),
    ).toBe(v.plaintext);
  });

  it.each(algorithms)('%s equals node:crypto for random inputs and round-trips', (algorithm) => {
    fc.assert(
      fc.property(
        bytesOf(32),
        bytesOf(12),
        fc.uint8Array({ maxLength: 2000 }),
        fc.uint8Array({ maxLength: 64 }),
        (key, nonce, plaintext, aad) => {
          const sealed = aeadEncrypt(algorithm, key, nonce, plaintext, aad);
          expect(toHex(sealed)).toBe(toHex(nodeSeal(algorithm, key, nonce, plaintext, aad)));
          expect(aeadDecrypt(algorithm, key, nonce, sealed, aad)).toStrictEqual(plaintext);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('AES-GCM output has an ArrayBuffer of its own, so wiping it touches nothing else', () => {
    const key = new Uint8Array(32).fill(1);
    const nonce = new Uint8Array(12);
    for (const length of [0, 1, 100, 16 * 1024]) {
      const sealed = aeadEncrypt(AeadAlgorithm.aes256gcm, key, nonce, new Uint8Array(length));
      expect([sealed.byteOffset, sealed.buffer.byteLength]).toEqual([0, length + AEAD_TAG_BYTES]);
      const opened = aeadDecrypt(AeadAlgorithm.aes256gcm, key, nonce, sealed);
      expect(opened).toStrictEqual(new Uint8Array(length));
    }
  });

  it.each(algorithms)('%s: any tampering throws ERR_CRYPTO_DECRYPT_FAILED', (algorithm) => {
    const expectRefused = (f: () => unknown): void => {
      const error = thrown(f);
      expect(isMandateError(error, 'ERR_CRYPTO_DECRYPT_FAILED'), String(error)).toBe(true);
      if (isMandateError(error)) expect(error.kind).toBe(ErrorKind.unauthorized);
    };
    fc.assert(
      fc.property(
        bytesOf(32),
        bytesOf(12),
        fc.uint8Array({ maxLength: 200 }),
        fc.uint8Array({ maxLength: 32 }),
        fc.nat(),
        (key, nonce, plaintext, aad, bit) => {
          const sealed = aeadEncrypt(algorithm, key, nonce, plaintext, aad);
          expectRefused(() => aeadDecrypt(algorithm, key, nonce, flipBit(sealed, bit), aad));
          expectRefused(() => aeadDecrypt(algorithm, flipBit(key, bit), nonce, sealed, aad));
          expectRefused(() => aeadDecrypt(algorithm, key, flipBit(nonce, bit), sealed, aad));
          expectRefused(() => aeadDecrypt(algorithm, key, nonce, sealed, Uint8Array.of(...aad, 0)));
          expectRefused(() =>
            aeadDecrypt(algorithm, key, nonce, sealed.subarray(0, sealed.byteLength - 1), aad),
          );
          expectRefused(() =>
            aeadDecrypt(algorithm, key, nonce, sealed.subarray(0, bit % AEAD_TAG_BYTES), aad),
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it('checks key and nonce lengths', () => {
    for (const algorithm of algorithms) {
      expectCode(
        () => aeadEncrypt(algorithm, new Uint8Array(16), new Uint8Array(12), new Uint8Array(1)),
        'ERR_CRYPTO_KEY_LENGTH',
      );
      expectCode(
        () => aeadEncrypt(algorithm, new Uint8Array(32), new Uint8Array(24), new Uint8Array(1)),
        'ERR_CRYPTO_NONCE_LENGTH',
      );
      expectCode(
        () => aeadDecrypt(algorithm, new Uint8Array(32), new Uint8Array(8), new Uint8Array(16)),
        'ERR_CRYPTO_NONCE_LENGTH',
      );
    }
  });
});

// --- Hashes and KDF ----------------------------------------------------------------------------

describe('SHA-256, HMAC, HKDF', () => {
  it('SHA-256("abc") is the FIPS 180-2 Appendix B.1 digest', () => {
    expect(toHex(sha256(utf8('abc')))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('both code paths (libsodium up to 128 B, OpenSSL above) equal node:crypto', () => {
    const reference = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
    const big = randomBytes(64 * 1024 + 3);
    expect(toHex(sha256(big))).toBe(reference(big));
    fc.assert(
      fc.property(fc.integer({ min: 120, max: 140 }), fc.nat(255), (length, fill) => {
        const data = new Uint8Array(length).map((_, i) => (i * 31 + fill) & 0xff);
        expect(toHex(sha256(data))).toBe(reference(data));
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        expect(toHex(sha256(data))).toBe(reference(data));
      }),
    );
  });

  it('sha256Utf8 is SHA-256 of the text UTF-8-encoded (lone surrogates as U+FFFD), 32 bytes each', () => {
    const encoder = new TextEncoder();
    const seen: Uint8Array[] = [];
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 2000 }), (text) => {
        const digest = sha256Utf8(text);
        expect(digest.byteLength).toBe(32);
        expect(toHex(digest)).toBe(toHex(sha256(encoder.encode(text))));
        seen.push(digest);
      }),
    );
    // Each digest is its own 32 bytes (views of a shared pool, none over another): clearing
    // each in turn leaves every later one as it was.
    const hexes = seen.map((d) => toHex(d));
    seen.forEach((d, k) => {
      expect(toHex(d)).toBe(hexes[k]);
      d.fill(0);
    });
    expect(toHex(sha256Utf8('\ud800'))).toBe(toHex(sha256(encoder.encode('\ufffd'))));
  });

  it('HMAC-SHA-256 matches RFC 4231 test case 2', () => {
    expect(toHex(hmacSha256(utf8('Jefe'), utf8('what do ya want for nothing?')))).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  // RFC 5869 Appendix A.1 (test case 1) and A.3 (test case 3: empty salt and info).
  it('HKDF-SHA-256 matches RFC 5869 test case 1', () => {
    const okm = hkdfSha256(
      fromHex('0b'.repeat(22)),
      fromHex('000102030405060708090a0b0c'),
      fromHex('f0f1f2f3f4f5f6f7f8f9'),
      42,
    );
    expect(toHex(okm)).toBe(
      '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
    );
  });

  it('HKDF-SHA-256 matches RFC 5869 test case 3', () => {
    const okm = hkdfSha256(fromHex('0b'.repeat(22)), new Uint8Array(0), new Uint8Array(0), 42);
    expect(toHex(okm)).toBe(
      '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
    );
  });
});

// --- Constant time, randomness, wiping --------------------------------------------------------

describe('constantTimeEqual, randomBytes, wipe', () => {
  it('constantTimeEqual agrees with a plain comparison', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 }), (a, b) => {
        expect(constantTimeEqual(a, b)).toBe(Buffer.from(a).equals(Buffer.from(b)));
        expect(constantTimeEqual(a, a.slice())).toBe(true);
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), (a, bit) => {
        expect(constantTimeEqual(a, flipBit(a, bit))).toBe(false);
      }),
    );
    expect(constantTimeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
    expect(constantTimeEqual(new Uint8Array(32), new Uint8Array(33))).toBe(false);
  });

  it('randomBytes gives the requested length and does not repeat', () => {
    expect(randomBytes(0)).toHaveLength(0);
    expect(randomBytes(33)).toHaveLength(33);
    expect(toHex(randomBytes(32))).not.toBe(toHex(randomBytes(32)));
  });

  it('wipe zeroes exactly the view it is given', () => {
    const backing = new Uint8Array(16).fill(0xee);
    wipe(backing.subarray(4, 12));
    expect(toHex(backing)).toBe(`${'ee'.repeat(4)}${'00'.repeat(8)}${'ee'.repeat(4)}`);
  });
});

// --- Guarded memory -----------------------------------------------------------------------------

describe('SecretBytes and SecureArena', () => {
  it('every string form of a secret is [redacted]', () => {
    const arena = new SecureArena();
    const secret = arena.allocateFrom(fromHex('deadbeef'.repeat(8)));
    const forms = [
      String(secret),
      secret.toString(),
      JSON.stringify(secret),
      JSON.stringify({ key: secret }),
      inspect(secret),
      inspect({ nested: { key: secret } }, { depth: 5 }),
      format('%s %o %O %j', secret, secret, secret, secret),
    ];
    expect(forms.slice(0, 3)).toStrictEqual(['[redacted]', '[redacted]', '"[redacted]"']);
    expect(forms[3]).toBe('{"key":"[redacted]"}');
    expect(forms[4]).toBe('[redacted]');
    for (const form of forms) {
      expect(form).toContain('[redacted]');
      expect(form.toLowerCase()).not.toMatch(/deadbeef|de ad be ef|222|173/);
    }
  });

  it('a freed slot is wiped and reused for the next secret of its size, which reads zero', () => {
    const arena = new SecureArena(1024);
    const first = arena.allocate(32);
    const memory = first.expose();
    memory.fill(0xab);
    const used = arena.allocatedBytes;
    first.destroy();
    expect(memory.every((b) => b === 0)).toBe(true);
    expect(first.destroyed).toBe(true);
    expect(() => first.expose()).toThrow();
    first.destroy(); // idempotent

    const second = arena.allocate(32);
    const reused = second.expose();
    expect(arena.allocatedBytes).toBe(used);
    expect(reused.buffer).toBe(memory.buffer);
    expect(reused.byteOffset).toBe(memory.byteOffset);
    expect(reused.every((b) => b === 0)).toBe(true);

    // Another size takes a new slot; slots never overlap.
    const other = arena.allocate(16);
    expect(arena.allocatedBytes).toBeGreaterThan(used);
    other.expose().fill(0xff);
    expect(reused.every((b) => b === 0)).toBe(true);
  });

  it('allocateFrom copies, and secrets larger than a chunk still fit', () => {
    const arena = new SecureArena(64);
    const source = randomBytes(48);
    const secret = arena.allocateFrom(source);
    expect(toHex(secret.expose())).toBe(toHex(source));
    expect(secret.byteLength).toBe(48);
    const large = arena.allocate(200);
    expect(large.byteLength).toBe(200);
    const third = arena.allocateFrom(randomBytes(40));
    expect(toHex(secret.expose())).toBe(toHex(source));
    third.destroy();
    large.destroy();
    secret.destroy();
    expect(secret.byteLength).toBe(0);
  });
});
