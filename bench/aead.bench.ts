/**
 * The fixed cost of one AEAD call, per message, for every path a channel could seal and open its
 * messages with, measured in the same run (issue 15, "AEAD cost"):
 *   node --import tsx bench/run.ts --only aead [--markdown]
 *
 * Each path runs at several message sizes inside one group, so every round times all of them
 * moments apart; the line through a path's smallest and largest size in each round gives its fixed
 * cost per message (the intercept) and its cost per KiB (the slope), and the ratios of intercepts
 * are taken inside each round before the median, as harness.ts does for ratios of times.
 *
 * Messages have the channel's shape: an envelope head of 24 bytes and the payload as two pieces,
 * sealed after 9 bytes of headroom (frame type and nonce), as secure-channel.ts does. The floors
 * seal one contiguous plaintext with nothing around it.
 *
 * libsodium's AES-256-GCM (`crypto_aead_aes256gcm_*`, with `beforenm` precomputation) has no row:
 * sodium-native 5.1 compiles it into its prebuilt addon but binds none of it to JavaScript (no
 * `crypto_aead_aes256gcm_*` on the module nor on its native binding; README, "AEAD per message").
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import {
  AEAD_TAG_BYTES,
  AeadAlgorithm,
  aeadDecrypt,
  aeadEncrypt,
  randomBytes,
} from '../src/crypto/index.js';
import { sodium } from '../src/crypto/sodium.js';
import { group, median, type GroupResults, type TableRow } from './harness.js';

const SIZES = [64, 1024, 4096, 16 * 1024] as const;
const HEAD_BYTES = 24;
const HEADROOM = 9;
/** The options aeadEncrypt gives node:crypto (a 16-byte tag), for both of its AEADs. */
const GCM = { authTagLength: AEAD_TAG_BYTES } as const;

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`benchmark precondition failed: ${what}`);
}

const sizeLabel = (bytes: number): string => (bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`);

function ownBytes(length: number): Uint8Array {
  const buffer = Buffer.allocUnsafeSlow(length);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
}

/**
 * aeadEncrypt's AES-256-GCM path before this benchmark existed, kept as the baseline: a fresh
 * context, one update() per piece, then a frame into which every output is copied.
 */
function previousAesEncrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  pieces: readonly Uint8Array[],
  headroom: number,
): Uint8Array {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_BYTES });
  const bodies = pieces.map((piece) => cipher.update(piece));
  cipher.final();
  let length = headroom + AEAD_TAG_BYTES;
  for (const body of bodies) length += body.byteLength;
  const out = ownBytes(length);
  out.fill(0, 0, headroom);
  let at = headroom;
  for (const body of bodies) {
    out.set(body, at);
    at += body.byteLength;
  }
  out.set(cipher.getAuthTag(), at);
  return out;
}

/** Every piece of a message joined into the frame first, then one update(): at every size. */
function joinedAesEncrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  pieces: readonly Uint8Array[],
  headroom: number,
): Uint8Array {
  let length = 0;
  for (const piece of pieces) length += piece.byteLength;
  const out = ownBytes(headroom + length + AEAD_TAG_BYTES);
  out.fill(0, 0, headroom);
  let at = headroom;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.byteLength;
  }
  const cipher = createCipheriv('aes-256-gcm', key, nonce, GCM);
  out.set(cipher.update(out.subarray(headroom, at)), headroom);
  cipher.final();
  out.set(cipher.getAuthTag(), at);
  return out;
}

interface Path {
  readonly id: string;
  readonly label: string;
}

const ENCRYPT_PATHS = [
  { id: 'aes.before', label: 'AES-256-GCM, aeadEncrypt before (one update() per piece)' },
  { id: 'aes.now', label: 'AES-256-GCM, aeadEncrypt now' },
  { id: 'aes.joined', label: 'AES-256-GCM, pieces always joined in the frame, one update()' },
  { id: 'aes.floor', label: 'node:crypto AES-256-GCM floor (context, update, final, tag)' },
  { id: 'aes.keyObject', label: 'node:crypto AES-256-GCM floor, KeyObject key' },
  { id: 'chacha.now', label: 'ChaCha20-Poly1305, aeadEncrypt now' },
  { id: 'chacha.floor', label: 'libsodium ChaCha20-Poly1305 IETF into a preallocated output' },
  { id: 'chacha.node', label: 'node:crypto ChaCha20-Poly1305 floor (context, update, final, tag)' },
] as const satisfies readonly Path[];

const DECRYPT_PATHS = [
  { id: 'aes.now', label: 'AES-256-GCM, aeadDecrypt' },
  { id: 'aes.floor', label: 'node:crypto AES-256-GCM floor (context, setAuthTag, update, final)' },
  { id: 'chacha.now', label: 'ChaCha20-Poly1305, aeadDecrypt' },
  { id: 'chacha.floor', label: 'libsodium ChaCha20-Poly1305 IETF into a preallocated output' },
  {
    id: 'chacha.node',
    label: 'node:crypto ChaCha20-Poly1305 floor (context, setAuthTag, update, final)',
  },
] as const satisfies readonly Path[];

type EncryptId = (typeof ENCRYPT_PATHS)[number]['id'];
type DecryptId = (typeof DECRYPT_PATHS)[number]['id'];

const entry = (path: string, size: number): string => `${path}.${size}`;

export async function aeadBenchmarks(): Promise<TableRow[]> {
  const key = randomBytes(32);
  const keyObject = createSecretKey(key);
  const nonce = randomBytes(12);
  const aes = AeadAlgorithm.aes256gcm;
  const chacha = AeadAlgorithm.chacha20poly1305;

  const encrypt = group('aead-encrypt');
  const decrypt = group('aead-decrypt');
  for (const size of SIZES) {
    const whole = randomBytes(size);
    const pieces = [whole.subarray(0, HEAD_BYTES), whole.subarray(HEAD_BYTES)];
    const sealedOut = Buffer.allocUnsafeSlow(size + AEAD_TAG_BYTES);
    const openedOut = Buffer.allocUnsafeSlow(size);
    const nodeFloor = (
      cipherName: 'aes-256-gcm' | 'chacha20-poly1305',
      k: Uint8Array | KeyObject,
    ): Buffer[] => {
      const cipher =
        cipherName === 'aes-256-gcm'
          ? createCipheriv(cipherName, k, nonce, GCM)
          : createCipheriv(cipherName, k, nonce, GCM);
      const body = cipher.update(whole);
      cipher.final();
      return [body, cipher.getAuthTag()];
    };
    const chachaFloor = (): Buffer => {
      sodium.crypto_aead_chacha20poly1305_ietf_encrypt(sealedOut, whole, null, null, nonce, key);
      return sealedOut;
    };

    // Every path produces the same bytes as the one the channel uses.
    const aesFrame = aeadEncrypt(aes, key, nonce, pieces, undefined, HEADROOM);
    const chachaFrame = aeadEncrypt(chacha, key, nonce, pieces, undefined, HEADROOM);
    const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));
    check(same(previousAesEncrypt(key, nonce, pieces, HEADROOM), aesFrame), 'before = now');
    check(same(joinedAesEncrypt(key, nonce, pieces, HEADROOM), aesFrame), 'joined = now');
    const aesSealed = aesFrame.subarray(HEADROOM);
    const chachaSealed = chachaFrame.subarray(HEADROOM);
    check(same(Buffer.concat(nodeFloor('aes-256-gcm', key)), aesSealed), 'floor = now');
    check(same(Buffer.concat(nodeFloor('aes-256-gcm', keyObject)), aesSealed), 'KeyObject');
    check(same(chachaFloor(), chachaSealed), 'libsodium = aeadEncrypt');
    check(same(Buffer.concat(nodeFloor('chacha20-poly1305', key)), chachaSealed), 'OpenSSL');

    const bytesPerOp = size;
    const encryptFns: Record<EncryptId, () => unknown> = {
      'aes.before': () => previousAesEncrypt(key, nonce, pieces, HEADROOM),
      'aes.now': () => aeadEncrypt(aes, key, nonce, pieces, undefined, HEADROOM),
      'aes.joined': () => joinedAesEncrypt(key, nonce, pieces, HEADROOM),
      'aes.floor': () => nodeFloor('aes-256-gcm', key),
      'aes.keyObject': () => nodeFloor('aes-256-gcm', keyObject),
      'chacha.now': () => aeadEncrypt(chacha, key, nonce, pieces, undefined, HEADROOM),
      'chacha.floor': chachaFloor,
      'chacha.node': () => nodeFloor('chacha20-poly1305', key),
    };
    for (const path of ENCRYPT_PATHS)
      encrypt.add(entry(path.id, size), encryptFns[path.id], {
        label: `${path.label}, ${sizeLabel(size)}`,
        bytesPerOp,
      });

    const nodeFloorOpen = (
      cipherName: 'aes-256-gcm' | 'chacha20-poly1305',
      sealed: Uint8Array,
    ): Buffer => {
      const decipher =
        cipherName === 'aes-256-gcm'
          ? createDecipheriv(cipherName, key, nonce, GCM)
          : createDecipheriv(cipherName, key, nonce, GCM);
      decipher.setAuthTag(sealed.subarray(size));
      const out = decipher.update(sealed.subarray(0, size));
      decipher.final();
      return out;
    };
    const chachaFloorOpen = (): Buffer => {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
        openedOut,
        null,
        chachaSealed,
        null,
        nonce,
        key,
      );
      return openedOut;
    };
    check(same(aeadDecrypt(aes, key, nonce, aesSealed), whole), 'aeadDecrypt AES opens');
    check(same(nodeFloorOpen('aes-256-gcm', aesSealed), whole), 'node:crypto opens');
    check(same(nodeFloorOpen('chacha20-poly1305', chachaSealed), whole), 'OpenSSL opens');
    check(same(aeadDecrypt(chacha, key, nonce, chachaSealed), whole), 'aeadDecrypt ChaCha opens');
    check(same(chachaFloorOpen(), whole), 'libsodium opens');
    const decryptFns: Record<DecryptId, () => unknown> = {
      'aes.now': () => aeadDecrypt(aes, key, nonce, aesSealed),
      'aes.floor': () => nodeFloorOpen('aes-256-gcm', aesSealed),
      'chacha.now': () => aeadDecrypt(chacha, key, nonce, chachaSealed),
      'chacha.floor': chachaFloorOpen,
      'chacha.node': () => nodeFloorOpen('chacha20-poly1305', chachaSealed),
    };
    for (const path of DECRYPT_PATHS)
      decrypt.add(entry(path.id, size), decryptFns[path.id], {
        label: `${path.label}, ${sizeLabel(size)}`,
        bytesPerOp,
      });
  }

  const sealed = await encrypt.run();
  const opened = await decrypt.run();
  return [
    ...sizeRows(sealed, 'encrypt', [
      ['aes.now', 'aes.before'],
      ['aes.joined', 'aes.before'],
      ['aes.floor', 'aes.now'],
      ['aes.keyObject', 'aes.floor'],
      ['chacha.floor', 'aes.floor'],
      ['chacha.node', 'chacha.floor'],
      ['chacha.now', 'chacha.floor'],
    ]),
    ...sizeRows(opened, 'decrypt', [
      ['aes.now', 'aes.floor'],
      ['chacha.floor', 'aes.floor'],
      ['chacha.node', 'chacha.floor'],
      ['chacha.now', 'chacha.floor'],
    ]),
    ...fitRows(sealed, 'encrypt', ENCRYPT_PATHS, {
      'aes.before': undefined,
      'aes.now': 'aes.before',
      'aes.joined': 'aes.before',
      'aes.floor': 'aes.now',
      'aes.keyObject': 'aes.floor',
      'chacha.now': 'chacha.floor',
      'chacha.floor': 'aes.floor',
      'chacha.node': 'chacha.floor',
    }),
    ...fitRows(opened, 'decrypt', DECRYPT_PATHS, {
      'aes.now': 'aes.floor',
      'aes.floor': undefined,
      'chacha.now': 'chacha.floor',
      'chacha.floor': 'aes.floor',
      'chacha.node': 'chacha.floor',
    }),
  ];
}

/** One row per size and pair: the path's µs per message against its baseline's. */
function sizeRows(
  results: GroupResults,
  what: string,
  pairs: readonly (readonly [string, string])[],
): TableRow[] {
  const rows: TableRow[] = [];
  for (const size of SIZES)
    for (const [id, baseline] of pairs) {
      const r = results.get(entry(id, size));
      const b = results.get(entry(baseline, size));
      rows.push({
        what: `${what}: ${r.label} (${Math.round(r.mbPerSecond ?? 0)} MB/s)`,
        usPerOp: r.usPerOp,
        baseline: b.label,
        baselineUsPerOp: b.usPerOp,
        ratio: results.ratio(entry(id, size), entry(baseline, size)),
      });
    }
  return rows;
}

interface Line {
  /** µs per message at zero bytes. */
  readonly intercept: number;
  /** µs per byte. */
  readonly slope: number;
}

/**
 * The line through a path's smallest and largest message, per round: its fixed and per-byte cost.
 * Not least squares over every size: the cost is not linear in between (node:crypto's allocations
 * change regime with size), and a fit through all sizes gave fixed costs above the cost of a
 * 64-byte message; the sizes between are in the table as measured.
 */
function fitPerRound(results: GroupResults, id: string): Line[] {
  const small = SIZES[0];
  const large = SIZES[SIZES.length - 1]!;
  const smallRounds = results.get(entry(id, small)).roundsUsPerOp;
  const largeRounds = results.get(entry(id, large)).roundsUsPerOp;
  return smallRounds.map((atSmall, round) => {
    const slope = (largeRounds[round]! - atSmall) / (large - small);
    return { intercept: atSmall - slope * small, slope };
  });
}

/**
 * One row per path: its fixed cost per message (the intercept, medians over rounds) with its cost
 * per KiB in the label, against its baseline's fixed cost, the ratio of intercepts taken per round.
 */
function fitRows(
  results: GroupResults,
  what: string,
  paths: readonly Path[],
  baselines: Readonly<Record<string, string | undefined>>,
): TableRow[] {
  const fits = new Map(paths.map((p) => [p.id, fitPerRound(results, p.id)]));
  const labels = new Map(paths.map((p) => [p.id, p.label]));
  return paths.map((path) => {
    const fit = fits.get(path.id)!;
    const intercept = median(fit.map((line) => line.intercept));
    const perKiB = median(fit.map((line) => line.slope * 1024));
    const row: TableRow = {
      what: `${what}: ${path.label}: fixed per message (+ ${perKiB.toFixed(3)} µs/KiB)`,
      usPerOp: intercept,
    };
    const baseline = baselines[path.id];
    if (baseline === undefined) return row;
    const base = fits.get(baseline)!;
    return {
      ...row,
      baseline: `${labels.get(baseline)!}: fixed`,
      baselineUsPerOp: median(base.map((line) => line.intercept)),
      ratio: median(fit.map((line, round) => line.intercept / base[round]!.intercept)),
    };
  });
}
