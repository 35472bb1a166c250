/**
 * The crypto floors every Mandate hot path is measured against, in one run:
 *   node --import tsx bench/crypto.bench.ts [--markdown]
 * MANDATE_BENCH_QUICK=1 gives a smoke run. Ratios are per round (see harness.ts); below 1× the
 * row is faster than its baseline.
 */
import {
  createCipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';
import {
  AeadAlgorithm,
  aeadEncrypt,
  ed25519KeyPairFromSeed,
  generateEd25519KeyPairInto,
  generateP256KeyPair,
  generateX25519KeyPair,
  generateX25519KeyPairInto,
  importP256PrivateKey,
  randomBytes,
  sha256,
  signEd25519,
  signEd25519Node,
  signP256,
  verifyEd25519,
  verifyP256,
  x25519Into,
} from '../src/crypto/index.js';
import { group, markdownTable, printTable, row, type TableRow } from './harness.js';

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`benchmark precondition failed: ${what}`);
}

const rows: TableRow[] = [];

// --- Ed25519: libsodium against OpenSSL on pre-parsed KeyObjects (OpenSSL's own floor) -------
{
  const message = randomBytes(32);
  const { publicKey, secretKey } = ed25519KeyPairFromSeed(randomBytes(32));
  const nodeKeys = generateKeyPairSync('ed25519');
  const nodeSignature = nodeSign(null, message, nodeKeys.privateKey);
  const signature = signEd25519(secretKey, message);
  // Same bytes from both backends, so the comparison is of equal work.
  check(
    Buffer.from(signEd25519Node(secretKey, message)).equals(signature),
    'Ed25519 backends sign alike',
  );
  check(verifyEd25519(publicKey, message, signature), 'libsodium verifies its signature');
  const pk = new Uint8Array(32);
  const sk = new Uint8Array(64);

  const results = await group('ed25519')
    .add(
      'sodium.keygen',
      () => {
        generateEd25519KeyPairInto(pk, sk);
      },
      { label: 'libsodium Ed25519 keygen' },
    )
    .add('node.keygen', () => generateKeyPairSync('ed25519'), {
      label: 'node:crypto Ed25519 keygen',
    })
    .add('sodium.sign', () => signEd25519(secretKey, message), {
      label: 'libsodium Ed25519 sign 32 B',
    })
    .add('node.sign', () => nodeSign(null, message, nodeKeys.privateKey), {
      label: 'node:crypto Ed25519 sign 32 B',
    })
    .add('sodium.verify', () => verifyEd25519(publicKey, message, signature), {
      label: 'libsodium Ed25519 verify 32 B',
    })
    .add('node.verify', () => nodeVerify(null, message, nodeKeys.publicKey, nodeSignature), {
      label: 'node:crypto Ed25519 verify 32 B',
    })
    .run();
  rows.push(
    row(results, 'sodium.keygen', { baseline: 'node.keygen', target: '< 1×' }),
    row(results, 'sodium.sign', { baseline: 'node.sign', target: '< 1×' }),
    row(results, 'sodium.verify', { baseline: 'node.verify', target: '< 1×' }),
  );
}

// --- X25519 --------------------------------------------------------------------------------------
{
  const ours = generateX25519KeyPair();
  const peer = generateX25519KeyPair();
  const nodeOurs = generateKeyPairSync('x25519');
  const nodePeer = generateKeyPairSync('x25519');
  const shared = new Uint8Array(32);
  const pk = new Uint8Array(32);
  const sk = new Uint8Array(32);

  const results = await group('x25519')
    .add(
      'sodium.keygen',
      () => {
        generateX25519KeyPairInto(pk, sk);
      },
      { label: 'libsodium X25519 keygen' },
    )
    .add('node.keygen', () => generateKeyPairSync('x25519'), { label: 'node:crypto X25519 keygen' })
    .add(
      'sodium.dh',
      () => {
        x25519Into(shared, ours.secretKey, peer.publicKey);
      },
      { label: 'libsodium X25519 DH' },
    )
    .add(
      'node.dh',
      () => diffieHellman({ privateKey: nodeOurs.privateKey, publicKey: nodePeer.publicKey }),
      {
        label: 'node:crypto X25519 DH',
      },
    )
    .run();
  rows.push(
    row(results, 'sodium.keygen', { baseline: 'node.keygen', target: '< 1×' }),
    row(results, 'sodium.dh', { baseline: 'node.dh', target: '< 1×' }),
  );
}

// --- SHA-256: our split (libsodium ≤ 128 B, OpenSSL above) against OpenSSL throughout ----------
{
  const small = randomBytes(32);
  const large = randomBytes(1024 * 1024);
  check(
    Buffer.from(sha256(large)).equals(createHash('sha256').update(large).digest()),
    'SHA-256 paths agree',
  );

  const results = await group('sha256')
    .add('ours.32', () => sha256(small), { label: 'sha256 32 B' })
    .add('node.32', () => createHash('sha256').update(small).digest(), {
      label: 'node:crypto createHash 32 B',
    })
    .add('ours.1m', () => sha256(large), { label: 'sha256 1 MiB', bytesPerOp: large.byteLength })
    .add('node.1m', () => createHash('sha256').update(large).digest(), {
      label: 'node:crypto createHash 1 MiB',
      bytesPerOp: large.byteLength,
    })
    .run();
  rows.push(
    row(results, 'ours.32', { baseline: 'node.32', target: '< 1× (why ≤ 128 B uses libsodium)' }),
    row(results, 'ours.1m', { baseline: 'node.1m', target: '≤ 1.05× (same code path)' }),
  );
}

// --- AEAD, 16 KiB records ---------------------------------------------------------------------
{
  const key = randomBytes(32);
  const nonce = randomBytes(12);
  const plaintext = randomBytes(16 * 1024);
  const rawAes = (): Buffer => {
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  };
  check(
    Buffer.from(aeadEncrypt(AeadAlgorithm.aes256gcm, key, nonce, plaintext)).equals(rawAes()),
    'AES-GCM matches node:crypto',
  );

  const results = await group('aead')
    .add('aes', () => aeadEncrypt(AeadAlgorithm.aes256gcm, key, nonce, plaintext), {
      label: 'AES-256-GCM encrypt 16 KiB',
      bytesPerOp: plaintext.byteLength,
    })
    .add('node.aes', rawAes, {
      label: 'node:crypto createCipheriv AES-256-GCM 16 KiB',
      bytesPerOp: plaintext.byteLength,
    })
    .add('chacha', () => aeadEncrypt(AeadAlgorithm.chacha20poly1305, key, nonce, plaintext), {
      label: 'libsodium ChaCha20-Poly1305 encrypt 16 KiB',
      bytesPerOp: plaintext.byteLength,
    })
    .run();
  rows.push(
    row(results, 'aes', { baseline: 'node.aes', target: '≤ 1.10×' }),
    row(results, 'chacha', { baseline: 'aes' }),
  );
}

// --- P-256 (ES256, for WIMSE/JOSE interop) ---------------------------------------------------
{
  const message = randomBytes(32);
  const pair = generateP256KeyPair();
  const privateKey = importP256PrivateKey(pair.privateKeyPkcs8);
  const publicKey = createPublicKey(privateKey);
  const signature = signP256(privateKey, message);
  check(verifyP256(pair.publicKey, message, signature), 'P-256 round trip');

  const results = await group('p256')
    .add('sign', () => signP256(privateKey, message), { label: 'P-256 sign 32 B (parsed key)' })
    .add('verify', () => verifyP256(pair.publicKey, message, signature), {
      label: 'P-256 verify 32 B (raw public key)',
    })
    .add(
      'node.verify',
      () => nodeVerify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature),
      {
        label: 'node:crypto P-256 verify (KeyObject)',
      },
    )
    .run();
  rows.push(
    row(results, 'sign'),
    row(results, 'verify', { baseline: 'node.verify', target: '≤ 1.25× (parsed keys cached)' }),
  );
}

console.log(
  `node ${process.versions.node}, OpenSSL ${process.versions.openssl}, ${process.platform}/${process.arch}`,
);
printTable(rows);
if (process.argv.includes('--markdown')) console.log(`\n${markdownTable(rows)}`);
