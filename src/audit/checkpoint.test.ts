import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { fromHex, toHex } from '../encoding/index.js';
import { MemoryVault } from '../vault/index.js';
import { list, readVectorJson, record, repoRoot, text } from '../../test/helpers/vectors.js';
import { buildAuditGoldenVectors, seedNoteSigner } from '../../test/vectors/audit-golden.js';
import {
  formatCheckpoint,
  formatNoteVerifierKey,
  MAX_NOTE_BYTES,
  noteKeyId,
  noteSignerFromVault,
  noteVerifierKey,
  openNote,
  parseCheckpoint,
  parseNoteVerifierKey,
  signCheckpoint,
  signNote,
  verifyCheckpoint,
} from './checkpoint.js';
import { verifyConsistency, verifyInclusion } from './merkle.js';

async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  return 'no error';
}

// --- Go's golang.org/x/mod/sumdb/note test data -------------------------------------------

const go = record(readVectorJson('signed-note/go-sumdb-note.json'), 'go note vectors');
const goText = text(go.text, 'text');

/** Go's test-only `PRIVATE+KEY+NAME+HASH+base64(0x01 ‖ seed)` signer key. */
function goSigner(skey: string) {
  const [, , name, , ...rest] = skey.split('+') as [string, string, string, string, string];
  const key = rest.join('+');
  const bytes = Buffer.from(key, 'base64');
  expect(bytes[0]).toBe(1);
  return seedNoteSigner(name, new Uint8Array(bytes.subarray(1)));
}

describe('signed notes against Go sumdb/note test data', () => {
  const peter = parseNoteVerifierKey(text(go.peterVerifierKey, 'peter'));
  const enoch = parseNoteVerifierKey(text(go.enochVerifierKey, 'enoch'));

  it('parses and re-formats the published verifier keys', () => {
    expect(peter.name).toBe('PeterNeumann');
    expect(peter.keyId).toBe(0xc74f20a3);
    expect(formatNoteVerifierKey(peter)).toBe(go.peterVerifierKey);
    expect(enoch.keyId).toBe(0xaf0cfe78);
    expect(formatNoteVerifierKey(enoch)).toBe(go.enochVerifierKey);
  });

  it('rejects every substring and every one-byte change of a verifier key (as Go does)', async () => {
    const vkey = text(go.peterVerifierKey, 'peter');
    const b = Buffer.from(vkey);
    for (let i = 0; i <= b.length; i++) {
      for (let j = i + 1; j <= b.length; j++) {
        if (i === 0 && j === b.length) continue;
        expect(await codeOf(() => parseNoteVerifierKey(b.subarray(i, j).toString()))).toMatch(
          /^ERR_CHECKPOINT_KEY_(INVALID|UNSUPPORTED)$/,
        );
      }
    }
    for (let i = 0; i < b.length; i++) {
      const c = Buffer.from(b);
      c[i]! += 1;
      expect(await codeOf(() => parseNoteVerifierKey(c.toString('latin1')))).toMatch(
        /^ERR_CHECKPOINT_KEY_(INVALID|UNSUPPORTED)$/,
      );
    }
    const [wrongLength, unknownAlgorithm] = list(go.badVerifierKeys, 'bad keys').map((k) =>
      text(k, 'key'),
    );
    expect(await codeOf(() => parseNoteVerifierKey(wrongLength!))).toBe(
      'ERR_CHECKPOINT_KEY_INVALID',
    );
    expect(await codeOf(() => parseNoteVerifierKey(unknownAlgorithm!))).toBe(
      'ERR_CHECKPOINT_KEY_UNSUPPORTED',
    );
  });

  it('signs the published note byte for byte with the published test key', async () => {
    const signer = goSigner(text(go.signerKey, 'signer'));
    expect(signer.keyId).toBe(0xc74f20a3);
    expect(toHex(signer.publicKey)).toBe(toHex(peter.publicKey));
    expect(await signNote(goText, [signer])).toBe(go.signedByPeter);
  });

  it('opens the published notes: known keys verify, unknown keys are ignored', () => {
    const one = openNote(text(go.signedByBoth, 'both'), [peter]);
    expect(one.text).toBe(goText);
    expect(one.verified.map((s) => s.name)).toEqual(['PeterNeumann']);
    expect(one.unverified.map((s) => s.name)).toEqual(['EnochRoot']);
    const two = openNote(new TextEncoder().encode(text(go.signedByBoth, 'both')), [peter, enoch]);
    expect(two.verified.map((s) => s.name)).toEqual(['PeterNeumann', 'EnochRoot']);
    expect(two.unverified).toEqual([]);
  });

  it('refuses unverifiable, corrupted and malformed notes with typed codes', async () => {
    expect(await codeOf(() => openNote(text(go.signedByBoth, 'both'), []))).toBe(
      'ERR_CHECKPOINT_UNVERIFIED',
    );
    expect(await codeOf(() => openNote(text(go.invalidSignature, 'invalid'), [peter]))).toBe(
      'ERR_CHECKPOINT_SIGNATURE_INVALID',
    );
    for (const bad of list(go.malformed, 'malformed')) {
      expect(await codeOf(() => openNote(text(bad, 'note'), [peter]))).toBe(
        'ERR_CHECKPOINT_MALFORMED',
      );
    }
    const many = goText + '\n' + text(go.peterSignatureLine, 'line').repeat(101);
    expect(await codeOf(() => openNote(many, [peter]))).toBe('ERR_CHECKPOINT_MALFORMED');
    // Duplicated signatures count once.
    const twice = goText + '\n' + text(go.peterSignatureLine, 'line').repeat(2);
    expect(openNote(twice, [peter]).verified).toHaveLength(1);
  });
});

// --- Mandate's golden checkpoint ---------------------------------------------------------------

const goldenPath = join(repoRoot, 'docs', 'spec', 'vectors', 'audit-log.json');
const golden = JSON.parse(readFileSync(goldenPath, 'utf8')) as Awaited<
  ReturnType<typeof buildAuditGoldenVectors>
>;

describe('golden audit-log vectors (docs/spec/vectors/audit-log.json)', () => {
  it('are reproduced byte for byte from the seed and the entries', async () => {
    expect(await buildAuditGoldenVectors()).toEqual(golden);
  });

  it('check out with independent code: noble SHA-256 key ID, noble Ed25519 signature', () => {
    const publicKey = fromHex(golden.publicKey);
    const id = nobleSha256
      .create()
      .update(new TextEncoder().encode(golden.origin))
      .update(Uint8Array.of(0x0a, 0x01))
      .update(publicKey)
      .digest()
      .subarray(0, 4);
    expect(toHex(id)).toBe(golden.keyId);
    const [body, sigLine] = golden.signedCheckpoint.split('\n\n') as [string, string];
    expect(`${body}\n`).toBe(golden.checkpointText);
    expect(sigLine.startsWith(`\u2014 ${golden.origin} `)).toBe(true);
    const sig = Buffer.from(sigLine.trimEnd().split(' ')[2]!, 'base64');
    expect(sig.subarray(0, 4).toString('hex')).toBe(golden.keyId);
    const message = new TextEncoder().encode(golden.checkpointText);
    expect(ed25519.verify(sig.subarray(4), message, publicKey)).toBe(true);
  });

  it('verify with the verifier key; the proofs verify against the checkpoints', () => {
    const key = parseNoteVerifierKey(golden.verifierKey);
    const checkpoint = verifyCheckpoint(golden.signedCheckpoint, [key], { origin: golden.origin });
    expect(checkpoint.treeSize).toBe(7);
    expect(toHex(checkpoint.rootHash)).toBe(golden.roots[6]);
    const older = verifyCheckpoint(golden.olderSignedCheckpoint, [key]);
    verifyInclusion(
      golden.inclusionProof.leafIndex,
      checkpoint.treeSize,
      fromHex(golden.leafHashes[3]!),
      golden.inclusionProof.proof.map((h) => fromHex(h)),
      checkpoint.rootHash,
    );
    verifyConsistency(
      older.treeSize,
      checkpoint.treeSize,
      older.rootHash,
      checkpoint.rootHash,
      golden.consistencyProof.proof.map((h) => fromHex(h)),
    );
  });
});

// --- signing through the vault, strict parsing -------------------------------------------------

describe('checkpoints', () => {
  const checkpoint = {
    origin: 'example.com/log',
    treeSize: 12345,
    rootHash: new Uint8Array(32).fill(7),
    extensions: ['ext one'],
  };

  it('are signed through a vault handle and verified with the public key', async () => {
    const vault = new MemoryVault();
    const handle = await vault.generateSigningKey('ed25519');
    const signer = noteSignerFromVault(vault, handle, 'example.com/log');
    const note = await signCheckpoint(checkpoint, [signer]);
    const key = noteVerifierKey('example.com/log', handle.publicKey);
    const verified = verifyCheckpoint(note, [key], { origin: 'example.com/log' });
    expect(verified).toMatchObject({ treeSize: 12345, extensions: ['ext one'], note });
    expect(verified.rootHash).toEqual(checkpoint.rootHash);
    expect(await codeOf(() => verifyCheckpoint(note, [key], { origin: 'other' }))).toBe(
      'ERR_CHECKPOINT_ORIGIN_MISMATCH',
    );
    // Another key under the same name: ignored, so the note is unverified.
    const other = await vault.generateSigningKey('ed25519');
    expect(
      await codeOf(() =>
        verifyCheckpoint(note, [noteVerifierKey('example.com/log', other.publicKey)]),
      ),
    ).toBe('ERR_CHECKPOINT_UNVERIFIED');
    // A re-signed (forged) body under the trusted name and key ID, with another key's signature.
    const forger = noteSignerFromVault(vault, other, 'example.com/log');
    const forged = await signCheckpoint({ ...checkpoint, treeSize: 1 }, [
      { ...forger, keyId: key.keyId },
    ]);
    expect(await codeOf(() => verifyCheckpoint(forged, [key]))).toBe(
      'ERR_CHECKPOINT_SIGNATURE_INVALID',
    );
    // The same signature line twice: a note counts it once, a checkpoint is refused.
    const sigLine = note.slice(note.lastIndexOf('\n\n') + 2);
    expect(await codeOf(() => verifyCheckpoint(note + sigLine, [key]))).toBe(
      'ERR_CHECKPOINT_MALFORMED',
    );
    const p256 = await vault.generateSigningKey('p256');
    expect(await codeOf(() => noteSignerFromVault(vault, p256, 'x'))).toBe(
      'ERR_CHECKPOINT_KEY_UNSUPPORTED',
    );
    expect(await codeOf(() => noteSignerFromVault(vault, handle, 'a b'))).toBe(
      'ERR_CHECKPOINT_KEY_INVALID',
    );
  });

  it('parse strictly', async () => {
    const root = Buffer.alloc(32, 1).toString('base64');
    const ok = `o\n0\n${root}\n`;
    expect(parseCheckpoint(ok).treeSize).toBe(0);
    const bad = [
      `o\n00\n${root}\n`,
      `o\n01\n${root}\n`,
      `o\n-1\n${root}\n`,
      `o\n1e3\n${root}\n`,
      `o\n9007199254740992\n${root}\n`,
      `o\n1\n${root.slice(0, -1)}\n`,
      `o\n1\n${Buffer.alloc(31).toString('base64')}\n`,
      `o\n1\n${root}`,
      `\n1\n${root}\n`,
      `o\n1\n${root}\n\n`,
      `o\n1\n`,
      `o\n1\n${root}\next\n\n`,
      `o\x1b\n1\n${root}\n`,
      // A time line: Unix seconds, decimal without leading zeros, at most one.
      `o\n1\n${root}\nmandate-time \n`,
      `o\n1\n${root}\nmandate-time\n`,
      `o\n1\n${root}\nmandate-time 01\n`,
      `o\n1\n${root}\nmandate-time 1.5\n`,
      `o\n1\n${root}\nmandate-time -1\n`,
      `o\n1\n${root}\nmandate-time 9007199254740992\n`,
      `o\n1\n${root}\nmandate-time 1 \n`,
      `o\n1\n${root}\nmandate-time 1\nmandate-time 1\n`,
    ];
    for (const t of bad)
      expect([t, await codeOf(() => parseCheckpoint(t))]).toEqual([t, 'ERR_CHECKPOINT_MALFORMED']);
    expect(await codeOf(() => formatCheckpoint({ ...checkpoint, extensions: [''] }))).toBe(
      'ERR_CHECKPOINT_MALFORMED',
    );
    expect(
      await codeOf(() => formatCheckpoint({ ...checkpoint, extensions: ['mandate-time x'] })),
    ).toBe('ERR_CHECKPOINT_MALFORMED');
    // Other extension lines stay opaque; a time line dates the verified checkpoint.
    expect(parseCheckpoint(`o\n1\n${root}\nmandate-timex 01\n`).extensions).toEqual([
      'mandate-timex 01',
    ]);
    const vault = new MemoryVault();
    const handle = await vault.generateSigningKey('ed25519');
    const dated = await signCheckpoint(
      { ...checkpoint, extensions: ['ext one', 'mandate-time 1800000000'] },
      [noteSignerFromVault(vault, handle, 'example.com/log')],
    );
    const key = noteVerifierKey('example.com/log', handle.publicKey);
    expect(verifyCheckpoint(dated, [key]).time).toBe(1_800_000_000);
    expect(
      verifyCheckpoint(
        await signCheckpoint(checkpoint, [noteSignerFromVault(vault, handle, 'example.com/log')]),
        [key],
      ).time,
    ).toBeUndefined();
    expect(await codeOf(() => openNote('x'.repeat(MAX_NOTE_BYTES + 1), []))).toBe(
      'ERR_CHECKPOINT_TOO_LARGE',
    );
    expect(await codeOf(() => openNote(Uint8Array.of(0x6f, 0x0a, 0xff, 0x0a), []))).toBe(
      'ERR_CHECKPOINT_MALFORMED',
    );
  });

  it('round-trip any body, and refuse any change to a signed note', async () => {
    const signer = seedNoteSigner('log.example/a', new Uint8Array(32).fill(9));
    const key = noteVerifierKey(signer.name, signer.publicKey);
    expect(noteKeyId(signer.name, signer.publicKey)).toBe(key.keyId);
    const line = fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 20 })
      .filter(
        (s) =>
          !s.includes('\n') &&
          !/[\p{Cc}\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u.test(s),
      );
    await fc.assert(
      fc.asyncProperty(
        line,
        fc.nat(),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.array(line, { maxLength: 3 }),
        fc.nat(),
        fc.nat(255),
        async (origin, treeSize, rootHash, extensions, at, value) => {
          const body = { origin, treeSize, rootHash, extensions };
          const note = await signCheckpoint(body, [signer]);
          const verified = verifyCheckpoint(note, [key]);
          expect({ ...verified, rootHash: toHex(verified.rootHash) }).toMatchObject({
            ...body,
            rootHash: toHex(rootHash),
          });
          const bytes = new TextEncoder().encode(note);
          const i = at % bytes.length;
          if (bytes[i] === value) return;
          const changed = bytes.slice();
          changed[i] = value;
          const code = await codeOf(() => verifyCheckpoint(changed, [key]));
          expect(code).toMatch(/^ERR_CHECKPOINT_/);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('never throws anything but a typed error on arbitrary input', async () => {
    const key = noteVerifierKey('k', new Uint8Array(32).fill(1));
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), async (s) => {
        expect(await codeOf(() => verifyCheckpoint(s, [key]))).toMatch(/^ERR_CHECKPOINT_/);
        const code = await codeOf(() => parseNoteVerifierKey(s));
        expect(code).toMatch(/^ERR_CHECKPOINT_KEY_/);
      }),
      { numRuns: 500 },
    );
  });
});
