import {
  closeSync,
  constants as fsConstants,
  existsSync,
  fstatSync,
  openSync,
  readSync,
  statSync,
  writeSync,
} from 'node:fs';
import type { Command } from 'commander';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { isMandateError } from '../../core/index.js';
import { conflict, invalid, notFound } from '../../core/internal.js';
import {
  AuditLog,
  emitTrailSpans,
  parseCheckpoint,
  parseNote,
  formatExportLine,
  formatNoteVerifierKey,
  hashLeaf,
  MAX_AUDIT_READ_ENTRIES,
  MAX_NOTE_BYTES,
  parseExportLine,
  parseNoteVerifierKey,
  ExportScanner,
  MAX_EXPORT_LINE_BYTES,
  type ExportScan,
  verifyCheckpoint,
  verifyInclusion,
  verifyTrail,
  verifyConsistency,
  verifyStoredLog,
  LogProblemCode,
  rootFromLeafHashes,
  type TrailProblem,
  type LogEntryLine,
  type VerifiedCheckpoint,
  type NoteVerifierKey,
  type TrailVerification,
  type TrailPosition,
  type LogVerification,
  TRACE_RECORD_TYPE,
} from '../../audit/index.js';
import { bytesEqual } from '../../encoding/index.js';
import { type Identifier, type VerifiedIdentity } from '../../identity/index.js';
import type { CliContext } from '../context.js';
import type { Home } from '../home.js';
import { formatFields } from '../output.js';
import { checkOutputFile, DEFAULT_AUTHORITY } from '../chains.js';
import { readTextArgument } from '../input.js';
import { collect } from '../parse.js';
import { homeAuditOrigin, homeLogKey } from '../../node/internal.js';
import {
  readAuditTrail,
  readLogEntries,
  type AuditTrailView,
  type TrailCall,
} from '../../node/index.js';

/**
 * `audit verify` answers a verification that failed (the report on stdout) with this exit code:
 * not 0, and apart from the error kinds' codes (the command itself did not fail). Documented in
 * docs/errors.md.
 */
export const AUDIT_VERIFICATION_FAILED_EXIT_CODE = 13;
/** Bound on an export file read by `verify`, `show` and `query`. */
const MAX_EXPORT_FILE_BYTES = 512 * 1024 * 1024;
/** Bound on its lines (entries): each costs memory beyond its bytes, so short lines are bounded too. */
export const MAX_EXPORT_FILE_LINES = 2_000_000;
/** `audit verify`'s code for records past the checkpoint, unless `--allow-uncovered`. */
const UNCOVERED_CODE = 'ERR_AUDIT_RECORDS_UNCOVERED';

// The home's log name and checkpoint key are the node's (src/node/home-audit.ts).
export { homeAuditOrigin, homeLogKey };

export function registerAuditCommands(program: Command, context: () => CliContext): void {
  const audit = program
    .command('audit')
    .description('the signed audit trail: export, checkpoint, verify offline, read');
  audit
    .command('export')
    .requiredOption('--out <file>', 'where to write the JSON lines (one record per line)')
    .option('--traces', 'write the decision traces (evaluation cases) instead of the records')
    .option(
      '--spans <file>',
      'also write the trail as OpenTelemetry GenAI spans (JSON lines, through the OTel SDK)',
    )
    .description('every record of this home, one JCS JSON object per line, in log order')
    .action((opts: { out: string; traces?: boolean; spans?: string }) =>
      runAuditExport(context(), opts),
    );
  audit
    .command('checkpoint')
    .option('--out <file>', 'also write the signed checkpoint there')
    .option('--authority <name>', 'the identity whose credential key signs', DEFAULT_AUTHORITY)
    .description("sign a checkpoint of this home's log if it grew; print the latest")
    .action((opts: { out?: string; authority: string }) => runAuditCheckpoint(context(), opts));
  audit
    .command('verify')
    .option('--log <file>', "an exported log (default: this home's own log)")
    .option('--checkpoint <file>', "the signed checkpoint (default: this home's latest)")
    .option(
      '--from <file>',
      'an older signed checkpoint the log must extend (repeatable: each dated one vouches for the records it covers)',
      collect,
    )
    .option(
      '--key <vkey>',
      'a trusted checkpoint key NAME+KEYID+KEY (repeatable; default: the authority’s)',
      collect,
    )
    .option(
      '--authority <name>',
      "the authority whose key signs this home's log",
      DEFAULT_AUTHORITY,
    )
    .option(
      '--origin <origin>',
      "the log's origin its checkpoints and keys must name (default: this home's log)",
    )
    .option(
      '--enforcer <identity>',
      'a trusted enforcement point (repeatable; default: the authority only)',
      collect,
    )
    .option(
      '--allow-uncovered',
      'accept records past the checkpoint (checked, but no log signature covers them)',
    )
    .description('check the whole trail offline: signatures, chains then, links, Merkle root')
    .action((opts: VerifyOptions) => runAuditVerify(context(), opts));
  audit
    .command('show')
    .argument('<id>', 'a record hash (or a unique prefix of at least 8 hex digits)')
    .option('--log <file>', "an exported log (default: this home's own log)")
    .description('one record, readably, with its invocation, decision and outcome')
    .action((id: string, opts: { log?: string }) => runAuditShow(context(), id, opts));
  audit
    .command('query')
    .option('--agent <id>', 'only this acting agent (identifier or local name)')
    .option('--tool <name>', 'only this tool')
    .option('--since <time>', 'only calls made at or after (unix seconds or ISO 8601)')
    .option('--decision <d>', 'only this decision: allow, deny or approval_required')
    .option('--log <file>', "an exported log (default: this home's own log)")
    .option('--limit <n>', 'at most this many calls, oldest first (default 100)')
    .description('the calls of the trail: who acted, for whom, what, the decision and why')
    .action((opts: QueryOptions) => runAuditQuery(context(), opts));
}

interface VerifyOptions {
  log?: string;
  checkpoint?: string;
  from?: string[];
  key?: string[];
  authority: string;
  origin?: string;
  enforcer?: string[];
  allowUncovered?: boolean;
}

interface QueryOptions {
  agent?: string;
  tool?: string;
  since?: string;
  decision?: string;
  log?: string;
  limit?: string;
}

/** Every entry of the home's log, in order. */
const homeEntries = (home: Home): Promise<LogEntryLine[]> => readLogEntries(home.store.auditLog);

/** Bytes read from an export file at a time. */
const EXPORT_CHUNK_BYTES = 1 << 20;

/** Opens an export file: a regular file (`ERR_FILE_NOT_REGULAR`) of at most 512 MiB. */
function openExportFile(file: string): { fd: number; size: number } {
  if (!existsSync(file)) throw notFound('ERR_FILE_NOT_FOUND', `no such file \`${file}\``);
  const notRegular = () => invalid('ERR_FILE_NOT_REGULAR', `\`${file}\` is not a regular file`);
  if (!statSync(file).isFile()) throw notRegular();
  const fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw notRegular();
    if (stat.size > MAX_EXPORT_FILE_BYTES)
      throw invalid(
        'ERR_INPUT_TOO_LARGE',
        `\`${file}\` is larger than ${MAX_EXPORT_FILE_BYTES} bytes`,
      );
    return { fd, size: stat.size };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/**
 * The lines of an export file (without their newlines), read in 1 MiB chunks: the file is never
 * held whole, and a line is held only up to the line bound (a longer one is `null`, without its
 * bytes). More than `MAX_EXPORT_FILE_LINES` lines is `ERR_INPUT_TOO_LARGE`, counted (newlines
 * only) before any line is given out. Stopping early closes the file.
 */
function* exportFileLines(file: string): Generator<string | null, void, undefined> {
  const { fd } = openExportFile(file);
  try {
    const chunk = Buffer.alloc(EXPORT_CHUNK_BYTES);
    let lines = 0;
    let last = 0x0a;
    for (let at = 0; ;) {
      const n = readSync(fd, chunk, 0, chunk.length, at);
      if (n === 0) break;
      at += n;
      const bytes = chunk.subarray(0, n);
      for (let nl = bytes.indexOf(0x0a); nl >= 0; nl = bytes.indexOf(0x0a, nl + 1)) lines++;
      last = bytes[n - 1]!;
    }
    if (last !== 0x0a) lines++;
    if (lines > MAX_EXPORT_FILE_LINES)
      throw invalid(
        'ERR_INPUT_TOO_LARGE',
        `\`${file}\` has more than ${MAX_EXPORT_FILE_LINES} lines`,
      );
    let carry: Buffer[] = [];
    let carried = 0;
    let tooLong = false;
    const take = (piece: Buffer): void => {
      if (tooLong) return;
      if (carried + piece.length > MAX_EXPORT_LINE_BYTES) {
        tooLong = true;
        carry = [];
        return;
      }
      carry.push(Buffer.from(piece));
      carried += piece.length;
    };
    const line = (): string | null => {
      const text = tooLong ? null : Buffer.concat(carry, carried).toString('utf8');
      carry = [];
      carried = 0;
      tooLong = false;
      return text;
    };
    for (let at = 0; ;) {
      const n = readSync(fd, chunk, 0, chunk.length, at);
      if (n === 0) break;
      at += n;
      const bytes = chunk.subarray(0, n);
      let start = 0;
      for (let nl = bytes.indexOf(0x0a); nl >= 0; nl = bytes.indexOf(0x0a, start)) {
        take(bytes.subarray(start, nl));
        start = nl + 1;
        yield line();
      }
      take(bytes.subarray(start));
    }
    if (carried > 0 || tooLong) yield line();
  } finally {
    closeSync(fd);
  }
}

/**
 * `audit verify`'s reading of an export file: line by line, stopping at the first structural
 * problem (a malformed line, an index out of sequence: {@link ExportScanner}) before any record
 * is verified; the file is never held whole.
 */
function scanExportFile(file: string): { readonly scan: ExportScan; readonly lines: number } {
  const scanner = new ExportScanner();
  for (const text of exportFileLines(file)) {
    if (text === null) {
      const line = scanner.lines + 1;
      return {
        scan: {
          ok: false,
          problem: {
            code: 'ERR_AUDIT_ENTRY_MALFORMED',
            message: `line ${line}: the line is too long`,
            position: { line },
          },
        },
        lines: line,
      };
    }
    if (scanner.push(text)) break;
  }
  return { scan: scanner.end(), lines: scanner.lines };
}

/** Every entry of an export file (for reading: `show`, `query`); a malformed line is an error. */
function readExportFile(file: string): LogEntryLine[] {
  const entries: LogEntryLine[] = [];
  let line = 0;
  for (const text of exportFileLines(file)) {
    line++;
    const parsed =
      text === null
        ? ({ ok: false, message: 'the line is too long' } as const)
        : parseExportLine(text);
    if (!parsed.ok)
      throw invalid('ERR_AUDIT_ENTRY_MALFORMED', `\`${file}\` line ${line}: ${parsed.message}`);
    entries.push(parsed.entry);
  }
  return entries;
}

function writeLines(file: string, lines: Iterable<string>): number {
  const fd = openSync(file, 'w', 0o644);
  let n = 0;
  try {
    let buffer = '';
    for (const line of lines) {
      buffer += `${line}\n`;
      n++;
      if (buffer.length > 1 << 20) {
        writeSync(fd, buffer);
        buffer = '';
      }
    }
    if (buffer !== '') writeSync(fd, buffer);
  } finally {
    closeSync(fd);
  }
  return n;
}

/** `audit export --out FILE [--traces]`. */
export async function runAuditExport(
  ctx: CliContext,
  opts: { out: string; traces?: boolean; spans?: string },
): Promise<void> {
  checkOutputFile(opts.out);
  checkOutputFile(opts.spans);
  const home = await ctx.openHome();
  try {
    const entries = await homeEntries(home);
    if (opts.traces === true) {
      const cases = evaluationCases(readAuditTrail(entries));
      const n = writeLines(
        opts.out,
        cases.map((c) => JSON.stringify(c)),
      );
      ctx.out.result(
        { out: opts.out, traces: n },
        () => `wrote ${n} decision traces to ${opts.out}`,
      );
      return;
    }
    const n = writeLines(
      opts.out,
      entries.map((e) => formatExportLine(e.index, e.record)),
    );
    const spans = opts.spans === undefined ? undefined : await writeSpans(opts.spans, entries);
    ctx.out.result(
      { out: opts.out, records: n, ...(spans === undefined ? {} : { spans }) },
      () =>
        `wrote ${n} records to ${opts.out}${spans === undefined ? '' : `, ${spans} spans to ${opts.spans}`}`,
    );
  } finally {
    home.close();
  }
}

/**
 * The trail as GenAI spans, through the OpenTelemetry SDK (configured here, for this command
 * only): a tracer provider whose in-memory exporter collects the finished spans, written as JSON
 * lines (trace and span ids, parent, name, kind, times as [s, ns], attributes, status).
 */
async function writeSpans(file: string, entries: readonly LogEntryLine[]): Promise<number> {
  // Loaded only when spans are asked for: the SDK is no part of the CLI's start-up.
  const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } =
    await import('@opentelemetry/sdk-trace-base');
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  emitTrailSpans(entries, { tracer: provider.getTracer('mandate') });
  const spans = exporter.getFinishedSpans();
  writeLines(
    file,
    spans.map((s) =>
      JSON.stringify({
        traceId: s.spanContext().traceId,
        spanId: s.spanContext().spanId,
        parentSpanId: s.parentSpanContext?.spanId ?? null,
        name: s.name,
        kind: SpanKind[s.kind],
        startTime: s.startTime,
        endTime: s.endTime,
        attributes: s.attributes,
        status: { code: SpanStatusCode[s.status.code], message: s.status.message ?? null },
      }),
    ),
  );
  return spans.length;
}

/** `audit checkpoint [--out FILE]`. */
export async function runAuditCheckpoint(
  ctx: CliContext,
  opts: { out?: string; authority: string },
): Promise<void> {
  checkOutputFile(opts.out);
  const home = await ctx.openHome();
  try {
    const logKey = await homeLogKey(home, opts.authority);
    const { origin } = logKey;
    const signer = logKey.signer();
    const log = await AuditLog.open({ repository: home.store.auditLog, origin, clock: ctx.clock });
    const latest = await home.store.auditLog.latestCheckpoint();
    let signed = false;
    let note = latest?.note;
    try {
      if (latest !== undefined && latest.treeSize > log.size)
        throw conflict(
          'ERR_AUDIT_CHECKPOINT_INCONSISTENT',
          `the log holds ${log.size} entries, fewer than the checkpoint of size ${latest.treeSize} it signed before: the stored log was altered`,
        );
      const cut = await cutOff(home, log.size);
      if (cut !== undefined) throw conflict('ERR_AUDIT_CHECKPOINT_INCONSISTENT', cut);
      if (latest === undefined || latest.treeSize < log.size) {
        // Refuses a tree that does not extend the newest stored checkpoint (a tampered store).
        note = await log.checkpoint([signer]);
        signed = true;
      }
    } catch (error) {
      if (!isMandateError(error, 'ERR_AUDIT_CHECKPOINT_INCONSISTENT')) throw error;
      // A trail that no longer verifies: the verification exit code, like `audit verify`.
      ctx.out.exitCode = AUDIT_VERIFICATION_FAILED_EXIT_CODE;
      ctx.out.note(`error[${error.code}]: ${error.message}`);
      if (ctx.out.json) ctx.out.result({ error: error.toJSON(), signed: false }, () => '');
      return;
    }
    const key = formatNoteVerifierKey({
      name: signer.name,
      keyId: signer.keyId,
      publicKey: signer.publicKey,
    });
    if (opts.out !== undefined) writeLines(opts.out, [note!.slice(0, -1)]);
    ctx.out.note(
      signed
        ? `signed a checkpoint of ${log.size} records`
        : 'the log has not grown since the latest checkpoint',
    );
    ctx.out.note(`checkpoint key: ${key}`);
    ctx.out.result({ treeSize: log.size, signed, key, checkpoint: note }, () => note!.trimEnd());
  } finally {
    home.close();
  }
}

/**
 * Why the home's log looks cut off, if it does: the home's trail index (what `audit query` and
 * the enforcement points have read of the log, in the same store) has read more entries than the
 * log holds. A log cut short together with the checkpoints that covered the rest verifies
 * against the older ones; this catches such a rollback (found by an outside attack) unless the
 * index was rolled back too — only a checkpoint kept elsewhere (`--from`) catches that.
 */
async function cutOff(home: Home, size: number): Promise<string | undefined> {
  const indexed = await home.store.auditTrail.indexedSize();
  return indexed > size
    ? `the log holds ${size} entries, but this home has read ${indexed} of it (its trail index): entries were cut off the log, with any checkpoint that covered them`
    : undefined;
}

/** How many entries a problem's position names (`[index, until)`; 1 for one, 0 for none). */
function spanOf(p: TrailPosition): number {
  if (p.index === undefined) return 0;
  return (p.until ?? p.index + 1) - p.index;
}

/** Whether position `inner` lies inside `outer`. */
function within(inner: TrailPosition, outer: TrailPosition): boolean {
  if (inner.index === undefined || outer.index === undefined) return false;
  return (
    inner.index >= outer.index &&
    (inner.until ?? inner.index + 1) <= (outer.until ?? outer.index + 1)
  );
}

/** verifyStoredLog's failure as a trail verification's (a row it cannot find: deleted). */
function storeVerification(store: LogVerification): TrailVerification {
  if (!store.ok) return { ok: false, problem: store.problem };
  return {
    ok: false,
    problem: {
      code: 'ERR_AUDIT_RECORD_DELETED',
      message: 'an entry is missing from the store',
      position: {},
    },
  };
}

function readCheckpointFile(file: string, what: string): string {
  return readTextArgument(file, what, MAX_NOTE_BYTES);
}

/** `audit verify [--log FILE] [--checkpoint FILE] [--from FILE]`. */
export async function runAuditVerify(ctx: CliContext, opts: VerifyOptions): Promise<void> {
  const home = await ctx.openHome();
  let result: TrailVerification;
  let records: number;
  try {
    // A file is read line by line and stops at its first structural problem (reported as the
    // verification's result, before any signature is checked).
    const scanned = opts.log === undefined ? undefined : scanExportFile(opts.log);
    // The home's own log: a row missing from the store is a deleted record, which the store's
    // own check below locates (reading the entries stops at it).
    let missingRow = false;
    const entries =
      scanned === undefined
        ? await homeEntries(home).catch((error: unknown) => {
            if (!isMandateError(error, 'ERR_AUDIT_ENTRY_NOT_FOUND')) throw error;
            missingRow = true;
            return undefined;
          })
        : scanned.scan.ok
          ? scanned.scan.entries
          : undefined;
    records = entries?.length ?? scanned?.lines ?? (await home.store.auditLog.size());
    // The home's own log: cut short, with the checkpoints that covered the rest?
    const cut =
      opts.log === undefined ? await cutOff(home, await home.store.auditLog.size()) : undefined;
    const checkpoint =
      opts.checkpoint !== undefined
        ? readCheckpointFile(opts.checkpoint, 'checkpoint')
        : (await home.store.auditLog.latestCheckpoint())?.note;
    if (checkpoint === undefined && cut === undefined)
      throw notFound(
        'ERR_AUDIT_CHECKPOINT_NOT_FOUND',
        'this home has no checkpoint yet: run `mandate audit checkpoint` (or give `--checkpoint`)',
      );
    if (opts.checkpoint !== undefined) {
      // An older checkpoint given while the home holds a newer one: say so (the newer one covers
      // more, and the given one may be a rollback).
      const stored = await home.store.auditLog.latestCheckpoint();
      let given: number | undefined;
      try {
        given = parseCheckpoint(parseNote(checkpoint!).text).treeSize;
      } catch {
        given = undefined; // verification reports it
      }
      if (stored !== undefined && given !== undefined && stored.treeSize > given)
        ctx.out.note(
          `note: this home holds a newer checkpoint (size ${stored.treeSize}) than the one given (size ${given}): omit \`--checkpoint\` to verify against it, or give the older one as \`--from\``,
        );
    }
    const keys = opts.key ?? [];
    // The log's origin (the home's, or `--origin`): every checkpoint must name it, and a key the
    // auditor gives must be named after it (C2SP: a log's note key is named by its origin), so a
    // note of another log, signed by that log's key, does not pass for this one.
    const origin = opts.origin ?? (await homeLogKey(home, opts.authority)).origin;
    const verifiers =
      keys.length > 0
        ? keys.map((k) => parseNoteVerifierKey(k))
        : [(await homeLogKey(home, opts.authority)).verifier];
    for (const v of verifiers)
      if (v.name !== origin)
        throw invalid(
          'ERR_CHECKPOINT_KEY_ORIGIN_MISMATCH',
          `the checkpoint key \`${v.name}\` is not named after the log's origin \`${origin}\` (give \`--origin\` for another log)`,
        );
    const authorities = await home.trustedAuthorities();
    const enforcers = await enforcersOf(home, opts.enforcer, opts.authority);
    // The home's own log: every checkpoint it stores must agree with it (a store rewritten after
    // a checkpoint, then checkpointed again, forks: ERR_AUDIT_CHECKPOINT_INCONSISTENT).
    const stored =
      opts.log === undefined
        ? (await home.store.auditLog.listCheckpoints()).map((c) => c.note)
        : [];
    // Older checkpoints the auditor gives (`--from`, repeatable): each must agree with the log.
    const older = (opts.from ?? []).map((file) => readCheckpointFile(file, 'older checkpoint'));
    // (Read above whenever the log is not cut off: it is then what verifyTrail gets.)
    const common = {
      checkpoint: checkpoint!,
      ...(older.length === 0 ? {} : { from: older[0]! }),
      ...(older.length <= 1 && stored.length === 0
        ? {}
        : { moreCheckpoints: [...older.slice(1), ...stored] }),
      origin,
      verifiers,
      authorities,
      enforcers,
      // An agent's key is judged by its newest history the home knows, not only by the one its
      // chain carries (a rotation that revoked it), as it stood when a dated checkpoint covered
      // the record (docs/spec/audit.md, "Keys judged at the time the log vouches for").
      knownIdentities: await homeHistories(home),
    };
    // The home's store: each entry against its stored leaf hash, every stored subtree hash.
    const storeCheck = () => verifyStoredLog(home.store.auditLog, { verifiers, origin });
    // A malformed line of a file is a failed verification (with its line), not a usage error.
    result =
      scanned !== undefined && !scanned.scan.ok
        ? { ok: false, problem: scanned.scan.problem }
        : cut !== undefined
          ? {
              ok: false,
              problem: {
                code: LogProblemCode.logTruncated,
                message: cut,
                position: { index: records },
              },
            }
          : missingRow
            ? storeVerification(await storeCheck())
            : verifyTrail({ ...common, entries: entries! });
    // The home's own log, once its records verify: the store as well — each entry against its
    // stored leaf hash and every stored subtree hash (what inclusion proofs are made of). (Found
    // by an outside attack: zeroed stored hashes verified, and made authentic records look
    // unproven in `audit show`.)
    if (result.ok && opts.log === undefined) {
      const store = await storeCheck();
      if (!store.ok) result = storeVerification(store);
    } else if (!result.ok && opts.log === undefined && spanOf(result.problem.position) > 1) {
      // An edit the records locate only to a range (rows moved with their stored hashes): the
      // store's own hashes may name fewer entries inside it (second outside attack).
      const store = await storeCheck();
      if (
        !store.ok &&
        store.problem.code === result.problem.code &&
        within(store.problem.position, result.problem.position) &&
        spanOf(store.problem.position) < spanOf(result.problem.position)
      )
        result = { ok: false, problem: store.problem };
    }
    // A file of the home's own log: where the checkpoints locate a departure only to a range
    // (or the records only to the first one that contradicts it), the store's proofs give the
    // first line that departs.
    if (!result.ok && entries !== undefined && opts.log !== undefined) {
      const located = await locateInStore(
        home,
        entries,
        checkpoint!, // (a file: nothing is cut off, so it was read above)
        verifiers,
        origin,
        result.problem,
      );
      if (located !== undefined) result = { ok: false, problem: located };
    }
  } finally {
    home.close();
  }
  if (result.ok && result.uncovered > 0 && opts.allowUncovered !== true)
    result = {
      ok: false,
      problem: {
        code: UNCOVERED_CODE,
        message: `${result.uncovered} records are past the checkpoint of size ${result.checkpoint.treeSize}: no log signature covers them (run \`mandate audit checkpoint\`, or accept them with \`--allow-uncovered\`)`,
        position: { index: result.checkpoint.treeSize, line: result.checkpoint.treeSize + 1 },
      },
    };
  if (result.ok) {
    const s = result.summary;
    ctx.out.result(
      {
        ok: true,
        records,
        treeSize: result.checkpoint.treeSize,
        origin: result.checkpoint.origin,
        uncovered: result.uncovered,
        summary: s,
      },
      () =>
        [
          `ok: ${records} records verified against the checkpoint of size ${result.checkpoint.treeSize}`,
          formatFields([
            ['origin', result.checkpoint.origin],
            ['invocations', s.invocations],
            ['decisions', s.decisions],
            ['agents', s.agents],
            ['revocations', s.revocations],
            ['signatures', s.signatures],
            ...(result.uncovered === 0
              ? []
              : ([['uncovered', `${result.uncovered} records after the checkpoint`]] as const)),
          ]),
        ].join('\n'),
    );
    if (result.uncovered > 0)
      ctx.out.note(
        `note: ${result.uncovered} records are past the checkpoint (run \`mandate audit checkpoint\`)`,
      );
    return;
  }
  const p = result.problem;
  const where = [
    p.position.line === undefined ? undefined : `line ${p.position.line}`,
    p.position.index === undefined ? undefined : `index ${p.position.index}`,
    p.position.until === undefined || p.position.until === (p.position.index ?? 0) + 1
      ? undefined
      : `until ${p.position.until}`,
    p.position.id === undefined ? undefined : `record ${p.position.id}`,
    p.position.checkpoint === undefined ? undefined : `checkpoint ${p.position.checkpoint}`,
  ].filter((x) => x !== undefined);
  ctx.out.exitCode = AUDIT_VERIFICATION_FAILED_EXIT_CODE;
  ctx.out.note(
    `verification failed: ${p.code}${where.length === 0 ? '' : ` at ${where.join(', ')}`}`,
  );
  ctx.out.result({ ok: false, records, problem: p }, () =>
    [
      `FAILED: ${p.code}`,
      formatFields([
        ['where', where.join(', ') || '(the checkpoints)'],
        ['why', p.message],
        ...(p.cause === undefined ? [] : ([['cause', p.cause]] as const)),
      ]),
    ].join('\n'),
  );
}

/** Problems derived from a root that does not match, which the store may locate better. */
const LOCATABLE: readonly string[] = [
  'ERR_AUDIT_RECORD_EDITED',
  'ERR_AUDIT_RECORD_REORDERED',
  'ERR_AUDIT_RECORD_DELETED',
];

/**
 * The first line of an exported file that departs from the log, when the home's store holds that
 * log and proves it: the file's first `i` entries are a prefix of the checkpoint's tree (a
 * consistency proof from the store, against the file's own root of those entries) and the tree
 * holds another entry at index `i` (an inclusion proof of the store's leaf). Both proofs are
 * checked against the verified checkpoint, so a store that was altered proves nothing and the
 * report stays as it was. Used when it is closer than the report (a range, or a later line), or
 * when the report calls "moved" a record the log never held.
 */
async function locateInStore(
  home: Home,
  entries: readonly LogEntryLine[],
  note: string,
  verifiers: readonly NoteVerifierKey[],
  origin: string,
  problem: TrailProblem,
): Promise<TrailProblem | undefined> {
  if (!LOCATABLE.includes(problem.code) || problem.position.line === undefined) return undefined;
  const exact =
    problem.position.until === undefined ||
    problem.position.until <= (problem.position.index ?? 0) + 1;
  let checkpoint: VerifiedCheckpoint;
  try {
    checkpoint = verifyCheckpoint(note, verifiers, { origin });
  } catch (error) {
    if (!isMandateError(error)) throw error;
    return undefined;
  }
  const size = checkpoint.treeSize;
  const repository = home.store.auditLog;
  if (entries.length < size || (await repository.size()) < size) return undefined;
  const fileLeaves = entries.slice(0, size).map((e) => hashLeaf(e.record));
  const storeLeaves: Uint8Array[] = [];
  for (let from = 0; from < size; from += MAX_AUDIT_READ_ENTRIES) {
    const to = Math.min(size, from + MAX_AUDIT_READ_ENTRIES);
    const ids = Array.from({ length: to - from }, (_, k) => ({ level: 0, index: from + k }));
    storeLeaves.push(...(await repository.readNodes(ids)));
  }
  const i = fileLeaves.findIndex((leaf, k) => !bytesEqual(leaf, storeLeaves[k]!));
  if (i < 0 || (exact && i + 1 > problem.position.line)) return undefined;
  try {
    const log = await AuditLog.open({ repository, origin: checkpoint.origin });
    verifyInclusion(
      i,
      size,
      storeLeaves[i]!,
      await log.inclusionProof(i, size),
      checkpoint.rootHash,
    );
    verifyConsistency(
      i,
      size,
      rootFromLeafHashes(fileLeaves.slice(0, i)),
      checkpoint.rootHash,
      await log.consistencyProof(i, size),
    );
  } catch (error) {
    if (!isMandateError(error)) throw error;
    return undefined;
  }
  const leaf = fileLeaves[i]!;
  const moved = storeLeaves.some((l) => bytesEqual(l, leaf));
  // At the line reported, the report stands, unless it calls moved a record the log never held
  // (an authentic record of a fork, substituted).
  if (
    exact &&
    i + 1 === problem.position.line &&
    (moved || problem.code !== 'ERR_AUDIT_RECORD_REORDERED')
  )
    return undefined;
  const e = entries[i]!;
  return {
    code: moved ? 'ERR_AUDIT_RECORD_REORDERED' : 'ERR_AUDIT_RECORD_EDITED',
    message: `line ${i + 1} departs from the log: ${moved ? 'it holds an entry the log holds at another index' : `the log holds another entry at index ${i}`} (the home's store proves it under the checkpoint of size ${size}: the lines before it are the log's, entry ${i} is not this one)`,
    position: { line: i + 1, index: i, ...(e.id === undefined ? {} : { id: e.id }) },
    cause: problem.code,
  };
}

/** Every identity history this home knows (its own and those it imported), by identifier. */
async function homeHistories(home: Home): Promise<Map<Identifier, VerifiedIdentity>> {
  const out = new Map<Identifier, VerifiedIdentity>();
  const page = 1000;
  const total = await home.identities.count();
  for (let offset = 0; offset < total; offset += page)
    for (const known of await home.identities.list({ limit: page, offset }))
      out.set(known.identity.identifier, known.identity);
  return out;
}

/**
 * Trusted enforcement points: those named, or the home's authority (the identity `gate call`
 * countersigns with by default) — never every local identity: an agent's key in this home must
 * not make its own records pass as the gate's.
 */
export async function enforcersOf(
  home: Home,
  names: readonly string[] | undefined,
  authority: string,
): Promise<Map<Identifier, VerifiedIdentity>> {
  const out = new Map<Identifier, VerifiedIdentity>();
  if (names !== undefined && names.length > 0) {
    for (const name of names) {
      const known = await home.identities.get(name);
      out.set(known.identity.identifier, known.identity);
    }
    return out;
  }
  const known = await home.identities.get(authority);
  out.set(known.identity.identifier, known.identity);
  return out;
}

// --- reading the trail -----------------------------------------------------------------------

/** Decision traces as evaluation cases: the inputs, the call, the policies, the human's answer. */
function evaluationCases(trail: AuditTrailView): Record<string, unknown>[] {
  return trail.traces.map((t) => {
    const escalated = trail.byHash.get(String(t.escalation))?.record;
    return {
      id: t.hash,
      agent: t.agent,
      chainHash: t.chainHash,
      approval: t.approval,
      call:
        escalated === undefined
          ? null
          : {
              tool: escalated.tool,
              server: escalated.server,
              argumentsDigest: escalated.argumentsDigest,
              issuedAt: escalated.issuedAt,
            },
      inputs: (t.report as { inputs?: unknown } | null)?.inputs ?? [],
      reasoning: (t.report as { reasoning?: unknown } | null)?.reasoning ?? null,
      policies: t.policies,
      expected: (t.resolution as { decision?: unknown } | undefined)?.decision,
      resolution: t.resolution,
    };
  });
}

/**
 * Whether the record is in the latest checkpoint: its inclusion proof, from the store, against the
 * root the checkpoint signs (the signature checked with the authority's key when it has one).
 */
async function inclusionStatus(
  home: Home | undefined,
  authority: string,
  index: number,
  record: Uint8Array,
): Promise<string> {
  if (home === undefined) return 'not checked (an exported log: run `mandate audit verify --log`)';
  const latest = await home.store.auditLog.latestCheckpoint();
  if (latest === undefined || index >= latest.treeSize) return 'not yet in a signed checkpoint';
  let signature = 'its signature verified';
  let root: Uint8Array;
  try {
    root = verifyCheckpoint(latest.note, [(await homeLogKey(home, authority)).verifier]).rootHash;
  } catch {
    signature = 'its signature NOT verified';
    root = parseCheckpoint(parseNote(latest.note).text).rootHash;
  }
  const log = await AuditLog.open({ repository: home.store.auditLog, origin: 'mandate/audit' });
  const proof = await log.inclusionProof(index, latest.treeSize);
  try {
    verifyInclusion(index, latest.treeSize, hashLeaf(record), proof, root);
    return `included in the checkpoint of size ${latest.treeSize}, ${signature} (proof of ${proof.length} hashes)`;
  } catch {
    return `NOT included in the checkpoint of size ${latest.treeSize}`;
  }
}

function callJson(c: TrailCall) {
  return {
    invocation: c.hash,
    index: c.index,
    agent: c.agent,
    onBehalfOf: c.path,
    tool: c.tool,
    server: c.server,
    argumentsDigest: c.argumentsDigest,
    issuedAt: c.issuedAt,
    decision: c.decision ?? null,
    outcome: c.outcome ?? null,
    covered: c.covered ?? null,
    ...(c.extraDecisions === undefined ? {} : { extraDecisions: c.extraDecisions }),
  };
}

function humanCall(c: TrailCall): string {
  const d = c.decision;
  return [
    `${new Date(c.issuedAt * 1000).toISOString()}  ${c.tool}  ${d?.decision ?? 'no decision'}`,
    formatFields([
      ['invocation', c.hash],
      ['agent', c.agent],
      ['on behalf of', c.path.length === 0 ? '(chain unreadable)' : c.path.join(' → ')],
      ...(c.server === null ? [] : ([['server', c.server]] as const)),
      ['arguments', `sha256 ${c.argumentsDigest}`],
      ...(c.covered === false
        ? ([
            ['checkpoint', 'UNCOVERED: not included under the latest verified checkpoint'],
          ] as const)
        : []),
      ...(c.extraDecisions === undefined
        ? []
        : ([
            [
              'WARNING',
              `${c.extraDecisions.length} more decision record(s) for this call: ${c.extraDecisions.join(', ')} (run \`mandate audit verify\`)`,
            ],
          ] as const)),
      ...(d === undefined
        ? []
        : ([
            ['decision', `${d.decision}${d.lock === null ? '' : ` (lock: ${d.lock})`}`],
            ['why', d.reasons.join('; ') || '-'],
            ['policies', d.policies.join(', ') || '-'],
            ['bundle', d.bundle ?? '-'],
            ...(d.approval === null
              ? []
              : ([
                  [
                    'approved by',
                    `${d.approval.approver} (${d.approval.decision}): ${d.approval.reason}`,
                  ],
                ] as const)),
          ] as const)),
      ...(c.outcome === undefined
        ? []
        : ([
            [
              'outcome',
              `${c.outcome.status}${c.outcome.error === null ? '' : ` ${c.outcome.error}`}${c.outcome.leases.length === 0 ? '' : ` (leases ${c.outcome.leases.join(', ')})`}`,
            ],
          ] as const)),
    ]),
  ].join('\n');
}

/** Whether an entry of the home's log is covered: included under a verified checkpoint. */
type Coverage = (index: number, record: Uint8Array) => Promise<boolean>;

/**
 * Coverage by the home's latest checkpoint: its signature verified with the authority's key (and
 * its origin the home's), and the entry included under its root. When the entries' root at the
 * checkpoint's size is the signed one, every entry below that size is included; otherwise (the
 * store was altered) each entry asked about is checked by its inclusion proof from the store.
 */
async function homeCoverage(
  home: Home,
  authority: string,
  entries: readonly LogEntryLine[],
): Promise<Coverage> {
  const none: Coverage = () => Promise.resolve(false);
  const latest = await home.store.auditLog.latestCheckpoint();
  if (latest === undefined) return none;
  let checkpoint: VerifiedCheckpoint;
  try {
    const key = await homeLogKey(home, authority);
    checkpoint = verifyCheckpoint(latest.note, [key.verifier], { origin: key.origin });
  } catch (error) {
    if (!isMandateError(error)) throw error;
    return none;
  }
  const size = checkpoint.treeSize;
  if (
    size <= entries.length &&
    bytesEqual(
      rootFromLeafHashes(entries.slice(0, size).map((e) => hashLeaf(e.record))),
      checkpoint.rootHash,
    )
  )
    return (index) => Promise.resolve(index < size);
  const log = await AuditLog.open({ repository: home.store.auditLog, origin: checkpoint.origin });
  return async (index, record) => {
    if (index >= size || size > log.size) return false;
    try {
      verifyInclusion(
        index,
        size,
        hashLeaf(record),
        await log.inclusionProof(index, size),
        checkpoint.rootHash,
      );
      return true;
    } catch (error) {
      if (!isMandateError(error)) throw error;
      return false;
    }
  };
}

/**
 * Sets `covered` on the calls shown: by the home's coverage — of the invocation and of the
 * decision and outcome shown with it (an edited decision under a covered invocation read as
 * "included, verified": found by an outside attack) — or `null` for an exported log.
 */
async function markCoverage(
  calls: readonly TrailCall[],
  entries: readonly LogEntryLine[],
  coverage: Coverage | undefined,
): Promise<void> {
  for (const call of calls) {
    if (coverage === undefined || entries[call.index]?.index !== call.index) {
      call.covered = null;
      continue;
    }
    let covered = true;
    for (const index of [call.index, call.decision?.index, call.outcome?.index]) {
      if (index === undefined) continue;
      const entry = entries[index];
      if (entry?.index !== index || !(await coverage(index, entry.record))) {
        covered = false;
        break;
      }
    }
    call.covered = covered;
  }
}

/** `audit show ID`. */
export async function runAuditShow(
  ctx: CliContext,
  id: string,
  opts: { log?: string },
): Promise<void> {
  if (!/^[0-9a-f]{8,64}$/.test(id))
    throw invalid('ERR_ARGUMENT_INVALID', 'a record id is 8 to 64 lowercase hex digits (its hash)');
  const home = await ctx.openHome();
  try {
    const entries = opts.log === undefined ? await homeEntries(home) : readExportFile(opts.log);
    const trail = readAuditTrail(entries);
    const matches = [...trail.byHash.keys()].filter((h) => h.startsWith(id));
    if (matches.length === 0) throw notFound('ERR_AUDIT_RECORD_NOT_FOUND', `no record \`${id}\``);
    if (matches.length > 1)
      throw invalid(
        'ERR_ARGUMENT_INVALID',
        `\`${id}\` names ${matches.length} records: give more digits`,
      );
    const hash = matches[0]!;
    const found = trail.byHash.get(hash)!;
    // The call the record belongs to (the invocation itself, or the one it names).
    const named =
      found.record.type === TRACE_RECORD_TYPE ? found.record.resolvedBy : found.record.invocation;
    const call = trail.calls.find((c) => c.hash === hash || c.hash === named);
    if (call !== undefined)
      await markCoverage(
        [call],
        entries,
        opts.log === undefined ? await homeCoverage(home, DEFAULT_AUTHORITY, entries) : undefined,
      );
    const entry = entries.find((e) => e.index === found.index)!;
    const inclusion = await inclusionStatus(
      opts.log === undefined ? home : undefined,
      DEFAULT_AUTHORITY,
      found.index,
      entry.record,
    );
    ctx.out.result(
      {
        id: hash,
        index: found.index,
        type: found.record.type,
        record: found.record,
        call: call === undefined ? null : callJson(call),
        inclusion,
      },
      () =>
        [
          `${String(found.record.type)}  ${hash}  (log index ${found.index})`,
          call === undefined ? '' : humanCall(call),
          formatFields([['inclusion', inclusion]]),
        ]
          .filter((s) => s !== '')
          .join('\n'),
    );
  } finally {
    home.close();
  }
}

function parseSince(text: string): number {
  if (/^\d{1,12}$/.test(text)) return Number(text);
  const ms = Date.parse(text);
  if (Number.isNaN(ms))
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `\`--since\` is unix seconds or an ISO 8601 time, not \`${text}\``,
    );
  return Math.floor(ms / 1000);
}

/** `audit query`. */
export async function runAuditQuery(ctx: CliContext, opts: QueryOptions): Promise<void> {
  const since = opts.since === undefined ? undefined : parseSince(opts.since);
  if (
    opts.decision !== undefined &&
    !['allow', 'deny', 'approval_required'].includes(opts.decision)
  )
    throw invalid('ERR_ARGUMENT_INVALID', '`--decision` is allow, deny or approval_required');
  const limit = opts.limit === undefined ? 100 : Number(opts.limit);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 100_000)
    throw invalid('ERR_ARGUMENT_INVALID', '`--limit` is an integer from 1 to 100000');
  const home = await ctx.openHome();
  try {
    let agent = opts.agent;
    if (agent !== undefined && !/^I[0-9a-f]{64}$/.test(agent))
      agent = (await home.identities.get(agent)).identity.identifier;
    const entries = opts.log === undefined ? await homeEntries(home) : readExportFile(opts.log);
    const calls = readAuditTrail(entries)
      .calls.filter(
        (c) =>
          (agent === undefined || c.agent === agent) &&
          (opts.tool === undefined || c.tool === opts.tool) &&
          (since === undefined || c.issuedAt >= since) &&
          (opts.decision === undefined || c.decision?.decision === opts.decision),
      )
      .slice(0, limit);
    await markCoverage(
      calls,
      entries,
      opts.log === undefined ? await homeCoverage(home, DEFAULT_AUTHORITY, entries) : undefined,
    );
    ctx.out.result({ calls: calls.map(callJson) }, () =>
      calls.length === 0 ? 'no calls match' : calls.map(humanCall).join('\n\n'),
    );
  } finally {
    home.close();
  }
}
