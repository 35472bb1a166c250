/**
 * The export format of an audit log: one line per entry, in log order, each line the JCS
 * (RFC 8785) object `{"index":N,"record":R}` where `R` is the entry's bytes verbatim (a record is
 * itself a JCS object). JCS sorts `index` before `record`, so a line is exactly the bytes
 * `{"index":` ‖ decimal N ‖ `,"record":` ‖ R ‖ `}`: the reader slices R out of the line instead of
 * re-encoding it, and the leaf hash is over the bytes the log holds (sign bytes, keep bytes).
 */
import { invalid } from '../core/internal.js';
import { bytesEqual, canonicalizeJson } from '../encoding/index.js';
import { auditRecordHash } from './record-codec.js';
import {
  LogProblemCode,
  type LogEntryLine,
  type LogPosition,
  type LogProblem,
} from './verify-log.js';
import { MAX_AUDIT_RECORD_BYTES } from './repository.js';

const PREFIX = '{"index":';
const MIDDLE = ',"record":';
/** Bound on one export line, in bytes: a record at its bound and the envelope. */
export const MAX_EXPORT_LINE_BYTES = MAX_AUDIT_RECORD_BYTES + 64;
/** Bound on a record's JSON nesting. */
const MAX_RECORD_DEPTH = 32;
const INDEX_RE = /^(?:0|[1-9]\d{0,15})$/;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** One export line for the entry at `index` (its record must be a JCS JSON object). */
export function formatExportLine(index: number, record: Uint8Array): string {
  if (!Number.isSafeInteger(index) || index < 0)
    throw invalid('ERR_ARGUMENT_INVALID', 'a log index is a non-negative safe integer');
  const parsed = canonicalRecord(record);
  if (parsed === undefined)
    throw invalid(
      'ERR_AUDIT_ENTRY_MALFORMED',
      `entry ${index} is not a canonical (JCS) JSON object and cannot be exported as a line`,
    );
  return `${PREFIX}${index}${MIDDLE}${parsed.text}}`;
}

/** The record's text and value when it is a canonical JSON object, else undefined. */
function canonicalRecord(
  record: Uint8Array,
): { readonly text: string; readonly value: object } | undefined {
  let text: string;
  try {
    text = strictUtf8.decode(record);
  } catch {
    return undefined;
  }
  if (!text.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    return canonicalizeJson(value, MAX_RECORD_DEPTH) === text ? { text, value } : undefined;
  } catch {
    return undefined;
  }
}

/** A line parsed: the entry (index, record bytes, and its record hash as `id`). */
export type ExportLine =
  | { readonly ok: true; readonly entry: LogEntryLine }
  | { readonly ok: false; readonly message: string };

/**
 * Parses one export line (without its newline). Never throws: a line that is not exactly
 * `{"index":N,"record":{…}}` (N in canonical decimal) is `{ ok: false }` with the reason. The
 * record's own form is not checked here (see verifyTrail).
 */
export function parseExportLine(line: string): ExportLine {
  const envelope = readEnvelope(line);
  if (!envelope.ok) return envelope;
  const record = utf8.encode(envelope.text);
  if (record.byteLength > MAX_AUDIT_RECORD_BYTES)
    return { ok: false, message: 'the record is too large' };
  return { ok: true, entry: { index: envelope.index, record, id: auditRecordHash(record) } };
}

/** A line's envelope read: its index and its record's text, or why it is not a line. */
type Envelope =
  | { readonly ok: true; readonly index: number; readonly text: string }
  | { readonly ok: false; readonly message: string };

const bad = (message: string): Envelope => ({ ok: false, message });

function readEnvelope(line: string): Envelope {
  if (typeof line !== 'string') return bad('a line is text');
  if (line.length > MAX_EXPORT_LINE_BYTES) return bad('the line is too long');
  // (Characters and slices compared: startsWith and endsWith cost more here, per line.)
  if (line.slice(0, PREFIX.length) !== PREFIX || line.charCodeAt(line.length - 1) !== 0x7d)
    return bad('a line is the JCS object {"index":N,"record":{…}}');
  const middle = line.indexOf(MIDDLE, PREFIX.length);
  if (middle < 0) return bad('a line is the JCS object {"index":N,"record":{…}}');
  const indexText = line.slice(PREFIX.length, middle);
  if (!INDEX_RE.test(indexText) || !Number.isSafeInteger(Number(indexText)))
    return bad('the index is not a non-negative integer in canonical form');
  const text = line.slice(middle + MIDDLE.length, -1);
  // Only the envelope is checked here: whether the record is a well-formed record is the record
  // layer's to say (verifyTrail reports it at the line), and the Merkle root covers its bytes.
  if (text.charCodeAt(0) !== 0x7b || text.charCodeAt(text.length - 1) !== 0x7d)
    return bad('the record is not a JSON object');
  return { ok: true, index: Number(indexText), text };
}

/** A parsed export file: entries, or the first line that is not one (1-based). */
export type ParsedExport =
  | { readonly ok: true; readonly entries: readonly LogEntryLine[] }
  | { readonly ok: false; readonly line: number; readonly message: string };

/**
 * Splits an export file into lines and parses each. One final newline is allowed (and expected);
 * an empty line elsewhere, or a carriage return, is a malformed line.
 */
export function parseExport(text: string): ParsedExport {
  if (text === '') return { ok: true, entries: [] };
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  const entries: LogEntryLine[] = [];
  for (const [i, line] of lines.entries()) {
    const parsed = parseExportLine(line);
    if (!parsed.ok) return { ok: false, line: i + 1, message: parsed.message };
    entries.push(parsed.entry);
  }
  return { ok: true, entries };
}

/**
 * An entry {@link parseExportTexts} read: its id (the record's hash, as parseExportLine's) is
 * taken when first asked for, which a verifier does only for an invocation or a problem.
 */
class ExportEntry implements LogEntryLine {
  #id: string | undefined;

  constructor(
    readonly index: number,
    readonly record: Uint8Array,
  ) {}

  get id(): string {
    return (this.#id ??= auditRecordHash(this.record));
  }
}

/**
 * {@link parseExport}'s result with each record's text beside its entry (undefined where the
 * text is not exactly its bytes' UTF-8 decoding: a lone surrogate, which encoding replaces).
 */
export type ParsedExportTexts =
  | {
      readonly ok: true;
      readonly entries: readonly LogEntryLine[];
      readonly texts: readonly (string | undefined)[];
    }
  | { readonly ok: false; readonly line: number; readonly message: string };

// String.prototype.isWellFormed (Node 20; not in the ES2023 lib).
const isWellFormed = (text: string): boolean =>
  (text as unknown as { isWellFormed(): boolean }).isWellFormed();

/**
 * {@link parseExport} for a verifier that reads the records once (verifyTrailExport): the same
 * entries, lines and messages, and the records' texts. When the file is ASCII (as exports nearly
 * always are: JCS writes other characters as they are, but records rarely hold any), it is
 * encoded at once and each record's bytes are a view of that encoding; else each record is
 * encoded alone. Entries' ids are taken when read.
 */
export function withParsedExportTexts<T>(text: string, use: (parsed: ParsedExportTexts) => T): T {
  if (text === '') return use({ ok: true, entries: [], texts: [] });
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  const buffer = new Uint8Array(body.length);
  // One byte per character fits: all of the text is written exactly when every character is
  // one byte, i.e. the text is ASCII (then a character's offset is its byte's).
  const { read, written } = utf8.encodeInto(body, buffer);
  const ascii = read === body.length && written === body.length;
  return use(parseLines(body, ascii ? buffer : undefined));
}

function parseLines(body: string, encoded: Uint8Array | undefined): ParsedExportTexts {
  const lines = body.split('\n');
  const entries: LogEntryLine[] = [];
  const texts: (string | undefined)[] = [];
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const envelope = readEnvelope(line);
    if (!envelope.ok) return { ok: false, line: i + 1, message: envelope.message };
    const recordText = envelope.text;
    // The record ends the line, before its last character (`}`).
    const record =
      encoded === undefined
        ? utf8.encode(recordText)
        : encoded.subarray(start + line.length - 1 - recordText.length, start + line.length - 1);
    if (record.byteLength > MAX_AUDIT_RECORD_BYTES)
      return { ok: false, line: i + 1, message: 'the record is too large' };
    entries.push(new ExportEntry(envelope.index, record));
    texts.push(encoded !== undefined || isWellFormed(recordText) ? recordText : undefined);
    start += line.length + 1;
  }
  return { ok: true, entries, texts };
}

/** What {@link ExportScanner} found: the entries to verify, or the first structural problem. */
export type ExportScan =
  | { readonly ok: true; readonly entries: readonly LogEntryLine[] }
  | { readonly ok: false; readonly problem: LogProblem };

const INDEX_PREFIX_RE = /^\{"index":(0|[1-9]\d{0,15}),"record":/;

/**
 * Reads an export one line at a time and stops at the first structural problem, before any
 * record is verified and without keeping what follows it: a malformed line, or the first line
 * whose index departs from 0, 1, 2, … — a line repeating an earlier entry
 * (`ERR_AUDIT_RECORD_DUPLICATED`), a later entry where an earlier one belongs (the rest of the
 * file is scanned for the missing index only, by its envelope: `ERR_AUDIT_RECORD_REORDERED` when
 * it comes later, else `ERR_AUDIT_RECORD_DELETED`). The codes, messages and positions are
 * {@link verifyLog}'s. Only an insertion (a different record claiming an earlier line's index)
 * needs every entry (verifyLog tells which of the two is inserted from the roots): from there on
 * the entries are kept.
 *
 * @example
 * ```ts
 * const scanner = new ExportScanner();
 * for (const line of lines) if (scanner.push(line)) break;
 * const scan = scanner.end();
 * ```
 */
export class ExportScanner {
  readonly #entries: LogEntryLine[] = [];
  #lines = 0;
  #mode: 'sequence' | 'seek' | 'keep' = 'sequence';
  #problem: LogProblem | undefined;
  /** In `seek` mode: the missing index and the departing line's position. */
  #sought: { readonly index: number; readonly position: LogPosition } | undefined;

  /** Lines read so far. */
  get lines(): number {
    return this.#lines;
  }

  /** Entries parsed and kept (and hashed) so far. */
  get parsed(): number {
    return this.#entries.length;
  }

  /** Feeds the next line (without its newline); true when the scan is decided (stop reading). */
  push(line: string): boolean {
    if (this.#problem !== undefined) return true;
    const n = ++this.#lines;
    if (this.#mode === 'seek') {
      const m = INDEX_PREFIX_RE.exec(line.slice(0, 32));
      if (m !== null && Number(m[1]) === this.#sought!.index) {
        const { index, position } = this.#sought!;
        this.#problem = {
          code: LogProblemCode.recordReordered,
          message: `line ${position.line} holds entry ${String(position.index)} where entry ${index} belongs`,
          position: { ...position, index },
        };
      }
      return this.#problem !== undefined;
    }
    const parsed = parseExportLine(line);
    if (!parsed.ok) {
      this.#problem = {
        code: LogProblemCode.entryMalformed,
        message: `line ${n}: ${parsed.message}`,
        position: { line: n },
      };
      return true;
    }
    const e = parsed.entry;
    const expected = this.#entries.length;
    if (this.#mode === 'keep' || e.index === expected) {
      this.#entries.push(e);
      return false;
    }
    const position: LogPosition = {
      line: n,
      index: e.index,
      ...(e.id === undefined ? {} : { id: e.id }),
    };
    if (e.index < expected) {
      const earlier = this.#entries[e.index]!;
      if (bytesEqual(earlier.record, e.record)) {
        this.#problem = {
          code: LogProblemCode.recordDuplicated,
          message: `line ${n} repeats entry ${e.index} (line ${e.index + 1})`,
          position,
        };
        return true;
      }
      this.#mode = 'keep';
      this.#entries.push(e);
      return false;
    }
    this.#mode = 'seek';
    this.#sought = { index: expected, position };
    return false;
  }

  /** After the last line (or a decided scan): the entries, or the problem. */
  end(): ExportScan {
    if (this.#problem === undefined && this.#mode === 'seek') {
      const { index, position } = this.#sought!;
      this.#problem = {
        code: LogProblemCode.recordDeleted,
        message: `entry ${index} is missing before line ${String(position.line)}`,
        position: { ...position, index },
      };
    }
    if (this.#problem !== undefined) return { ok: false, problem: this.#problem };
    return { ok: true, entries: this.#entries };
  }
}
