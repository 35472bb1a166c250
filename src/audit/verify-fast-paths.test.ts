// The trail verifier's fast paths against the plain forms they stand for: the JCS check without
// writing the text (isCanonicalText), a record read from text already decoded (readSignedRecord),
// an export parsed once into views of one encoding (withParsedExportTexts), and
// verifyTrailExport against verifyTrail over parseExport's entries.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalizeJson } from '../encoding/index.js';
import { ed25519KeyPairFromSeed, sha256, signEd25519 } from '../crypto/index.js';
import { goldenParty } from '../../test/vectors/audit-records-golden.js';
import { noteVerifierKey, signCheckpoint, type NoteSigner } from './checkpoint.js';
import { formatExportLine, parseExport, withParsedExportTexts } from './export.js';
import { CompactRange, hashLeaf } from './merkle.js';
import {
  checkAuditRecord,
  isCanonicalText,
  readAuditRecord,
  readSignedRecord,
  signingBytesOf,
  signingHashOf,
} from './record-codec.js';
import { verifyTrail, verifyTrailExport, verifyTrailInOrder } from './verify-trail.js';

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function attempt<T>(f: () => T): { ok: true; value: T } | { ok: false; error: unknown } {
  try {
    return { ok: true, value: f() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** What was thrown, as compared: the code and message of a typed error. */
function thrown(error: unknown): unknown {
  if (error instanceof Error)
    return { code: (error as { code?: unknown }).code, message: error.message };
  return error;
}

/** JCS of a JSON.parse result, or undefined where canonicalizeJson refuses it (the slow path). */
function jcs(value: unknown): string | undefined {
  try {
    return canonicalizeJson(value);
  } catch {
    return undefined;
  }
}

const isWellFormed = (text: string): boolean =>
  (text as unknown as { isWellFormed(): boolean }).isWellFormed();

// ---- JSON texts: canonical, and spelled otherwise ----

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const keyArb = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 5 }),
  fc.constantFrom(
    '0',
    '1',
    '9',
    '10',
    '01',
    '-1',
    '4294967295',
    '__proto__',
    'a',
    'b',
    'signature',
    'é',
    '😀',
    '\ud800',
    '\udc00x',
    'a"b',
    'a\\b',
    '\n',
    '/',
  ),
);
const stringArb = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 8 }),
  fc.constantFrom('', '"', '\\', '\u0000', '\u001f', '\u007f', '\u2028', '\ud83d', '\ude00', '/'),
);
const numberArb = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 1e21, 1e-7, 5e-324, 2 ** 53, 0.1, 1.5),
);
const { json: jsonArb } = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    numberArb,
    stringArb,
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(keyArb, tie('json'), { maxKeys: 5 }),
  ),
}));
const objectArb = fc.dictionary(keyArb, jsonArb, { maxKeys: 8 });

/** A deterministic stream of choices from a seed (to spell a value otherwise, node by node). */
function chooser(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}

/**
 * A JSON text of `value`, each node spelled canonically (mostly) or otherwise: members in
 * insertion order or reversed, a member given twice, whitespace, a character escaped, another
 * spelling of a number.
 */
function spell(value: Json, pick: (n: number) => number, odd: number): string {
  const ws = (): string => (pick(odd) === 0 ? [' ', '\n', '\t', '\r'][pick(4)]! : '');
  if (value === null || typeof value === 'boolean') return `${ws()}${String(value)}${ws()}`;
  if (typeof value === 'number') {
    const spellings = [JSON.stringify(value)];
    if (pick(odd) === 0) {
      spellings.push(value.toExponential(), `${value}`.includes('.') ? `${value}0` : `${value}.0`);
      if (Object.is(value, 0)) spellings.push('-0', '0.0', '0e5');
    }
    const s = spellings[pick(spellings.length)]!;
    return Number.isFinite(Number(s)) ? s : JSON.stringify(value);
  }
  if (typeof value === 'string') return spellString(value, pick, odd);
  if (Array.isArray(value)) return `[${value.map((v) => spell(v, pick, odd)).join(',')}]`;
  const keys = Object.keys(value);
  const order = [[...keys].sort(), keys, [...keys].reverse()][pick(odd) === 0 ? pick(3) : 0]!;
  const members = order.map(
    (k) => `${ws()}${spellString(k, pick, odd)}${ws()}:${spell(value[k]!, pick, odd)}`,
  );
  if (members.length > 0 && pick(odd) === 0) {
    const k = order[pick(order.length)]!;
    members.splice(
      pick(members.length + 1),
      0,
      `${spellString(k, pick, odd)}:${spell(1, pick, odd)}`,
    );
  }
  return `{${members.join(',')}}`;
}

function spellString(s: string, pick: (n: number) => number, odd: number): string {
  const plain = JSON.stringify(s);
  if (pick(odd) !== 0 || s.length === 0) return plain;
  // One character (code unit) escaped as \uXXXX, or `/` as `\/`.
  const at = pick(s.length);
  const unit = s.charCodeAt(at);
  const escaped =
    s[at] === '/' && pick(2) === 0 ? '\\/' : `\\u${unit.toString(16).padStart(4, '0')}`;
  return `"${JSON.stringify(s.slice(0, at)).slice(1, -1)}${escaped}${JSON.stringify(s.slice(at + 1)).slice(1, -1)}"`;
}

/** Whether every object's own keys (Object.keys order) ascend in UTF-16 code units. */
function keysSorted(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (Array.isArray(value)) return value.every(keysSorted);
  const keys = Object.keys(value);
  return (
    keys.every((k, i) => i === 0 || keys[i - 1]! < k) && Object.values(value).every(keysSorted)
  );
}

function depth(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  return 1 + Math.max(0, ...Object.values(value).map(depth));
}

describe('isCanonicalText', () => {
  it('is true only for the JCS text of the value (never where canonicalizeJson differs or refuses)', () => {
    fc.assert(
      fc.property(objectArb, fc.integer(), fc.constantFrom(2, 4, 12), (value, seed, odd) => {
        const text = spell(value, chooser(seed), odd);
        const parsed: unknown = JSON.parse(text);
        if (!isWellFormed(text)) return; // not a decoder's output: outside its contract
        if (isCanonicalText(parsed, text)) expect(jcs(parsed)).toBe(text);
      }),
      { numRuns: 3000 },
    );
  });

  it('is true for the JCS text of an object with no escapes and its names in code-unit order', () => {
    fc.assert(
      fc.property(objectArb, (value) => {
        const parsed: unknown = JSON.parse(JSON.stringify(value));
        const text = jcs(parsed);
        if (text === undefined) return;
        const expected = !text.includes('\\') && keysSorted(parsed) && depth(parsed) <= 16;
        expect(isCanonicalText(parsed, text)).toBe(expected);
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses what the writer would: other spellings, duplicates, order, depth', () => {
    const cases: [string, boolean][] = [
      ['{"a":1,"b":2}', true],
      ['{"b":2,"a":1}', false],
      ['{"a":1,"a":1}', false],
      ['{"a":1,"b":2,"a":1}', false],
      ['{"a":1.0}', false],
      ['{"a":1e0}', false],
      ['{"a":-0}', false],
      ['{"a":1e400}', false],
      ['{"a":1E2}', false],
      ['{"a":1e21}', false],
      ['{"a":1e+21}', true],
      ['{"a": 1}', false],
      ['{"a":1} ', false],
      [' {"a":1}', false],
      ['{"a":"\\u0061"}', false],
      ['{"a":"\\ud800"}', false],
      ['{"a":"é😀"}', true],
      ['{"10":1,"9":2}', false], // JCS's order; Object.keys lists 9 first: left to the writer
      ['{"1":1,"2":2}', true],
      ['{"__proto__":1}', true],
      ['{"a":[1,{"b":null}],"c":[]}', true],
      ['{"a":[1 ,2]}', false],
      ['{"a":{}}', true],
      [`{"a":${'['.repeat(20)}${']'.repeat(20)}}`, false],
      [`{"a":${'['.repeat(10)}${']'.repeat(10)}}`, true],
    ];
    for (const [text, fast] of cases) {
      const parsed: unknown = JSON.parse(text);
      expect(isCanonicalText(parsed, text), text).toBe(fast);
      if (fast) expect(jcs(parsed)).toBe(text);
    }
    expect(isCanonicalText([1], '[1]')).toBe(false);
    expect(isCanonicalText('x', '"x"')).toBe(false);
  });
});

// ---- records: readSignedRecord and readAuditRecord against the plain reading ----

const golden = JSON.parse(
  readFileSync(new URL('../../docs/spec/vectors/audit-records.json', import.meta.url), 'utf8'),
) as Record<string, { text: string }>;
const ORDER = [
  'invocation',
  'decision',
  'outcome',
  'lease',
  'nextInvocation',
  'escalation',
  'trace',
  'chainRecord',
  'invocationByHash',
];
const goldenTexts = ORDER.map((k) => golden[k]!.text);

/**
 * How a record was read before the fast paths: decode, parse, write JCS and compare, check,
 * then cut `,"signature":{…}` (its last occurrence) out of the bytes.
 */
function plainRead(bytes: Uint8Array): { record: unknown; signingBytes: Uint8Array } {
  const malformed = (why: string) =>
    Object.assign(new Error(`audit record: ${why}`), { code: 'ERR_AUDIT_RECORD_MALFORMED' });
  if (bytes.byteLength > 1024 * 1024) throw malformed(`a record is at most ${1024 * 1024} bytes`);
  let text: string;
  let value: unknown;
  try {
    text = strictUtf8.decode(bytes);
    value = JSON.parse(text);
  } catch {
    throw malformed('not UTF-8 JSON');
  }
  let canonical: string;
  try {
    canonical = canonicalizeJson(value);
  } catch {
    throw malformed('not I-JSON');
  }
  if (canonical !== text) throw malformed('not in JCS (RFC 8785) form');
  const record = checkAuditRecord(value);
  const member = `,"signature":${canonicalizeJson(record.signature)}`;
  const at = text.lastIndexOf(member);
  if (at === -1) throw malformed('the signature member is not where JCS puts it');
  const offset = utf8.encode(text.slice(0, at)).length;
  const signingBytes = new Uint8Array(bytes.length - member.length);
  signingBytes.set(bytes.subarray(0, offset), 0);
  signingBytes.set(bytes.subarray(offset + member.length), offset);
  return { record, signingBytes };
}

/** One edit of a record's text: a character replaced, inserted or escaped, members moved. */
const editArb = fc.record({
  kind: fc.constantFrom('replace', 'insert', 'escape', 'swap', 'duplicate', 'none'),
  at: fc.nat(),
  other: fc.nat(),
  char: fc.constantFrom(
    ' ',
    '\n',
    '"',
    '\\',
    ',',
    '0',
    '1',
    'a',
    'é',
    '😀',
    '\ud800',
    '}',
    '{',
    ':',
  ),
});

function edit(text: string, e: { kind: string; at: number; other: number; char: string }): string {
  const at = e.at % (text.length + 1);
  switch (e.kind) {
    case 'replace':
      return text.slice(0, at) + e.char + text.slice(at + 1);
    case 'insert':
      return text.slice(0, at) + e.char + text.slice(at);
    case 'escape': {
      // A character inside a string written as \uXXXX (the same value, another spelling).
      const quote = text.indexOf('":"', at);
      if (quote < 0) return text;
      const i = quote + 3;
      return `${text.slice(0, i)}\\u${text.charCodeAt(i).toString(16).padStart(4, '0')}${text.slice(i + 1)}`;
    }
    case 'swap':
    case 'duplicate': {
      const members = text.slice(1, -1).split(/,(?=")/);
      const i = e.at % members.length;
      const j = e.other % members.length;
      if (e.kind === 'duplicate') members.splice(j, 0, members[i]!);
      else [members[i], members[j]] = [members[j]!, members[i]!];
      return `{${members.join(',')}}`;
    }
    default:
      return text;
  }
}

describe('readSignedRecord', () => {
  it('reads what the plain reading reads, and refuses what it refuses, the same way', () => {
    fc.assert(
      fc.property(fc.nat(goldenTexts.length - 1), editArb, (k, e) => {
        const text = edit(goldenTexts[k]!, e);
        const bytes = utf8.encode(text);
        const expected = attempt(() => plainRead(bytes));
        const viaBytes = attempt(() => readAuditRecord(bytes));
        const decoded = attempt(() => strictUtf8.decode(bytes));
        const viaText = attempt(() => {
          const read = readSignedRecord(bytes, decoded.ok ? decoded.value : undefined);
          const signingBytes = signingBytesOf(read);
          expect(signingHashOf(read)).toEqual(sha256(signingBytes));
          return { record: read.record, signingBytes };
        });
        for (const got of [viaBytes, viaText]) {
          expect(got.ok).toBe(expected.ok);
          if (got.ok && expected.ok) expect(got.value).toEqual(expected.value);
          if (!got.ok && !expected.ok) expect(thrown(got.error)).toEqual(thrown(expected.error));
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('refuses an attestation one character off one read before, wherever that character is', () => {
    // Chains and attestations checked once are found again without decoding (by a few of their
    // characters, then compared whole): a string that differs anywhere is checked afresh.
    const text = golden.decision!.text;
    readAuditRecord(utf8.encode(text));
    const { attestation } = JSON.parse(text) as { attestation: string };
    const at = text.indexOf(attestation);
    for (let i = 0; i < attestation.length; i++) {
      const edited = `${text.slice(0, at + i)}*${text.slice(at + i + 1)}`;
      const error = attempt(() => readAuditRecord(utf8.encode(edited)));
      expect(error.ok).toBe(false);
      if (!error.ok)
        expect(thrown(error.error)).toEqual({
          code: 'ERR_AUDIT_RECORD_MALFORMED',
          message: 'audit record: `attestation` is not canonical base64url (unpadded)',
        });
    }
    expect(readAuditRecord(utf8.encode(text)).record).toEqual(JSON.parse(text));
  });

  it('refuses a hash or an identifier one character off one read before, wherever it is', () => {
    // Hashes and identifiers accepted once are accepted again without the pattern when equal
    // (found by a few of their characters, then compared whole): one that differs is checked.
    const text = golden.decision!.text;
    readAuditRecord(utf8.encode(text));
    const { invocation, agent } = JSON.parse(text) as { invocation: string; agent: string };
    for (const [value, message] of [
      [invocation, 'audit record: `invocation` must be 64 lower-case hex digits'],
      [agent, 'audit record: `agent` is not an identifier'],
    ] as const) {
      const at = text.indexOf(`"${value}"`) + 1;
      for (let i = 0; i < value.length; i++) {
        const edited = `${text.slice(0, at + i)}G${text.slice(at + i + 1)}`;
        const error = attempt(() => readAuditRecord(utf8.encode(edited)));
        expect(error.ok).toBe(false);
        if (!error.ok)
          expect(thrown(error.error)).toEqual({ code: 'ERR_AUDIT_RECORD_MALFORMED', message });
      }
    }
    expect(readAuditRecord(utf8.encode(text)).record).toEqual(JSON.parse(text));
  });

  it('hashes the signing bytes of a record past the reused buffer the same', () => {
    // A decision whose reasons make it larger than the 16 KiB hashing buffer.
    const value = JSON.parse(golden.decision!.text) as { reasons: string[] };
    value.reasons = ['x'.repeat(10_000), 'y'.repeat(10_000)];
    const bytes = utf8.encode(canonicalizeJson(value));
    const read = readSignedRecord(bytes);
    expect(signingHashOf(read)).toEqual(sha256(signingBytesOf(read)));
    expect(signingBytesOf(read)).toEqual(plainRead(bytes).signingBytes);
  });
});

// ---- exports: parsed once, and verified as verifyTrail verifies parseExport's entries ----

const goldenLines = goldenTexts.map((t, i) => formatExportLine(i, utf8.encode(t)));

const exportEditArb = fc.record({
  line: fc.nat(),
  record: editArb,
  kind: fc.constantFrom(
    'record',
    'line',
    'cr',
    'empty',
    'no-final-newline',
    'swap',
    'drop',
    'none',
  ),
  char: fc.constantFrom('é', '😀', '\ud800', '\udfff', '\r', 'x', '}'),
});

function editExport(e: {
  line: number;
  record: { kind: string; at: number; other: number; char: string };
  kind: string;
  char: string;
}): string {
  const lines = [...goldenLines];
  const i = e.line % lines.length;
  const line = lines[i]!;
  const middle = line.indexOf(',"record":') + ',"record":'.length;
  let final = '\n';
  switch (e.kind) {
    case 'record':
      lines[i] = `${line.slice(0, middle)}${edit(line.slice(middle, -1), e.record)}}`;
      break;
    case 'line': {
      const at = e.record.at % (line.length + 1);
      lines[i] = line.slice(0, at) + e.char + line.slice(at);
      break;
    }
    case 'cr':
      lines[i] = `${line}\r`;
      break;
    case 'empty':
      lines.splice(i, 0, '');
      break;
    case 'no-final-newline':
      final = '';
      break;
    case 'swap': {
      const j = e.record.other % lines.length;
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      break;
    }
    case 'drop':
      lines.splice(i, 1);
      break;
  }
  return lines.join('\n') + final;
}

describe('withParsedExportTexts', () => {
  it("gives parseExport's result, each record's text beside it where it decodes to it", () => {
    fc.assert(
      fc.property(exportEditArb, (e) => {
        const text = editExport(e);
        const expected = parseExport(text);
        withParsedExportTexts(text, (parsed) => {
          if (!expected.ok || !parsed.ok) {
            expect(parsed).toEqual(expected);
            return;
          }
          expect(parsed.entries.length).toBe(expected.entries.length);
          parsed.entries.forEach((entry, i) => {
            const want = expected.entries[i]!;
            expect(entry.index).toBe(want.index);
            expect(Buffer.from(entry.record).equals(Buffer.from(want.record))).toBe(true);
            expect(entry.id).toBe(want.id);
            const recordText = parsed.texts[i];
            const decoded = attempt(() => strictUtf8.decode(want.record));
            if (recordText === undefined) expect(isWellFormed(text)).toBe(false);
            else expect(decoded).toEqual({ ok: true, value: recordText });
          });
        });
      }),
      { numRuns: 800 },
    );
  });

  it('parses an export within another parse (the reused buffer is not shared)', () => {
    const outer = `${goldenLines.join('\n')}\n`;
    const inner = `${goldenLines.slice(0, 3).reverse().join('\n')}\n`;
    const expected = parseExport(outer);
    withParsedExportTexts(outer, (parsed) => {
      withParsedExportTexts(inner, (nested) => {
        expect(nested.ok && nested.entries.map((x) => x.index)).toEqual([2, 1, 0]);
      });
      expect(parsed.ok && expected.ok).toBe(true);
      if (!parsed.ok || !expected.ok) return;
      parsed.entries.forEach((entry, i) => {
        expect(Buffer.from(entry.record).equals(Buffer.from(expected.entries[i]!.record))).toBe(
          true,
        );
      });
    });
  });
});

const authority = goldenParty('authority');
const authorities = new Map([[authority.identity.identifier, authority.identity]]);
const ORIGIN = 'mandate.example/audit/fast-paths-test';
const pair = ed25519KeyPairFromSeed(new Uint8Array(32).fill(9));
const signer: NoteSigner = {
  name: ORIGIN,
  keyId: noteVerifierKey(ORIGIN, pair.publicKey).keyId,
  publicKey: pair.publicKey,
  sign: (m) => Promise.resolve(signEd25519(pair.secretKey, m)),
};
const verifiers = [noteVerifierKey(ORIGIN, pair.publicKey)];

async function checkpointOver(records: readonly Uint8Array[]): Promise<string> {
  const range = new CompactRange();
  for (const r of records) range.append(hashLeaf(r));
  return signCheckpoint(
    { origin: ORIGIN, treeSize: records.length, rootHash: range.root(), extensions: [] },
    [signer],
  );
}

/** A record's signature value with one character changed (still canonical: it fails to verify). */
function forgeSignature(text: string, at: number): string {
  const m = /"value":"([A-Za-z0-9_-]{86})"\}/.exec(text);
  if (m === null) return text;
  const i = m.index + 9 + (at % 85);
  const c = text[i] === 'A' ? 'B' : 'A';
  return text.slice(0, i) + c + text.slice(i + 1);
}

/** Up to three edits of the golden records: signatures forged, records edited (as above). */
const trailEditsArb = fc.array(
  fc.record({
    line: fc.nat(goldenTexts.length - 1),
    forge: fc.boolean(),
    record: editArb,
    at: fc.nat(),
  }),
  { maxLength: 3 },
);

describe('verifyTrailExport', () => {
  it("reports what verifyTrail reports over parseExport's entries, edit by edit", async () => {
    const checkpoint = await checkpointOver(goldenTexts.map((t) => utf8.encode(t)));
    fc.assert(
      fc.property(exportEditArb, fc.boolean(), (e, trusted) => {
        const text = editExport(e);
        const options = {
          checkpoint,
          verifiers,
          authorities,
          enforcers: trusted ? authorities : new Map(),
        };
        const parsed = parseExport(text);
        const expected = parsed.ok
          ? verifyTrailInOrder({ ...options, entries: parsed.entries })
          : {
              ok: false,
              problem: {
                code: 'ERR_AUDIT_ENTRY_MALFORMED',
                message: `line ${parsed.line}: ${parsed.message}`,
                position: { line: parsed.line },
              },
            };
        const got = verifyTrailExport({ ...options, text });
        expect(got).toEqual(expected);
        // The same members in the same order (a report's JSON is printed as it is).
        expect(JSON.stringify(got)).toBe(JSON.stringify(expected));
      }),
      { numRuns: 300 },
    );
  });

  it('reports a forged signature where it is, whatever else is wrong after it (signatures checked together)', async () => {
    const golden = await checkpointOver(goldenTexts.map((t) => utf8.encode(t)));
    await fc.assert(
      fc.asyncProperty(
        trailEditsArb,
        fc.boolean(),
        fc.boolean(),
        async (edits, signed, trusted) => {
          const texts = [...goldenTexts];
          for (const e of edits)
            texts[e.line] = e.forge
              ? forgeSignature(texts[e.line]!, e.at)
              : edit(texts[e.line]!, e.record);
          const records = texts.map((t) => utf8.encode(t));
          // Signed over the edited records, the log verifies and only the records' own checks
          // can fail; over the golden ones, the edits are located within the edited range.
          const checkpoint = signed ? await checkpointOver(records) : golden;
          const options = {
            checkpoint,
            verifiers,
            authorities,
            enforcers: trusted ? authorities : new Map(),
          };
          const entries = records.map((record, index) => ({ index, record }));
          const expected = verifyTrailInOrder({ ...options, entries });
          const got = verifyTrail({ ...options, entries });
          expect(got).toEqual(expected);
          expect(JSON.stringify(got)).toBe(JSON.stringify(expected));
          // The export of the same lines (an edit may leave a line that is not one).
          const text = `${texts.map((t, i) => `{"index":${i},"record":${t}}`).join('\n')}\n`;
          const parsed = parseExport(text);
          const fromExport = verifyTrailExport({ ...options, text });
          if (parsed.ok) {
            const want = verifyTrailInOrder({ ...options, entries: parsed.entries });
            expect(fromExport).toEqual(want);
            expect(JSON.stringify(fromExport)).toBe(JSON.stringify(want));
          } else expect(fromExport.ok).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reports the first forged signature before a later record that fails another check', async () => {
    const texts = [...goldenTexts];
    texts[1] = forgeSignature(texts[1]!, 7); // the decision's signature
    texts[4] = edit(texts[4]!, { kind: 'insert', at: 1, other: 0, char: ' ' }); // not JCS
    const records = texts.map((t) => utf8.encode(t));
    const options = {
      checkpoint: await checkpointOver(records),
      verifiers,
      authorities,
      enforcers: authorities,
    };
    const entries = records.map((record, index) => ({ index, record }));
    const result = verifyTrail({ ...options, entries });
    expect(result.ok ? undefined : result.problem).toMatchObject({
      code: 'ERR_AUDIT_SIGNATURE_INVALID',
      position: { line: 2, index: 1 },
    });
    expect(result).toEqual(verifyTrailInOrder({ ...options, entries }));
  });
});
