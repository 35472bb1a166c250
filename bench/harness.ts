/**
 * A small benchmark harness, the method of research/perf-baseline.md: warm-up, batches sized to
 * about 20 ms, rounds that rotate the order of a group's benchmarks, a round's value is its
 * median batch, and ratios are taken inside one round (where A and B run moments apart) before
 * the median is taken. On a shared machine absolute times drift by tens of percent within a
 * minute; same-round ratios drift far less, so targets are stated as ratios.
 */
import { performance } from 'node:perf_hooks';

export type BenchFn = () => unknown;

export interface BenchOptions {
  /** What the table shows; defaults to the id. */
  readonly label?: string;
  /** Payload bytes per call, to report throughput. */
  readonly bytesPerOp?: number;
}

export interface RunOptions {
  readonly rounds?: number;
  /** Time each benchmark gets per round. */
  readonly roundMs?: number;
  readonly warmupMs?: number;
  /** Target duration of one timed batch. */
  readonly batchMs?: number;
}

export interface BenchResult {
  readonly id: string;
  readonly label: string;
  /** Median over rounds of each round's median batch. */
  readonly usPerOp: number;
  readonly opsPerSecond: number;
  /** Present when bytesPerOp was given: decimal megabytes per second. */
  readonly mbPerSecond?: number;
  /** Each round's value (µs/op), in round order. */
  readonly roundsUsPerOp: readonly number[];
  readonly batchSize: number;
}

export interface GroupResults {
  readonly name: string;
  readonly results: readonly BenchResult[];
  get(id: string): BenchResult;
  /** Median over rounds of a's µs/op ÷ b's µs/op in the same round: below 1, a is faster. */
  ratio(a: string, b: string): number;
}

export interface BenchGroup {
  add(id: string, fn: BenchFn, options?: BenchOptions): BenchGroup;
  run(options?: RunOptions): Promise<GroupResults>;
}

const FULL: Required<RunOptions> = { rounds: 7, roundMs: 200, warmupMs: 300, batchMs: 20 };
const QUICK: Required<RunOptions> = { rounds: 2, roundMs: 50, warmupMs: 20, batchMs: 5 };

/** The defaults, or the smoke-test settings when MANDATE_BENCH_QUICK=1. */
export function defaultRunOptions(env: NodeJS.ProcessEnv = process.env): Required<RunOptions> {
  return env.MANDATE_BENCH_QUICK === '1' ? QUICK : FULL;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

// Every result is stored here, so the optimiser cannot prove a benchmarked call dead.
const sink: { value: unknown } = { value: undefined };

interface Entry {
  readonly id: string;
  readonly fn: BenchFn;
  readonly options: BenchOptions;
  isAsync: boolean;
  batchSize: number;
  readonly roundValues: number[];
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === 'object' &&
  value !== null &&
  'then' in value &&
  typeof value.then === 'function';

/** Runs `count` calls and returns the elapsed milliseconds; async calls are awaited one at a time. */
async function timeBatch(entry: Entry, count: number): Promise<number> {
  const { fn } = entry;
  if (entry.isAsync) {
    const start = performance.now();
    for (let i = 0; i < count; i++) sink.value = await fn();
    return performance.now() - start;
  }
  const start = performance.now();
  for (let i = 0; i < count; i++) sink.value = fn();
  return performance.now() - start;
}

async function warmUp(entry: Entry, warmupMs: number, batchMs: number): Promise<void> {
  const first = entry.fn();
  entry.isAsync = isThenable(first);
  sink.value = entry.isAsync ? await first : first;
  // Double the batch until it is long enough to time reliably, then scale it to batchMs.
  let size = 1;
  let elapsed = await timeBatch(entry, size);
  const deadline = performance.now() + warmupMs;
  while (elapsed < batchMs / 4 && size < 1 << 30) {
    size *= 2;
    elapsed = await timeBatch(entry, size);
  }
  // Size from the median of the warm-up batches, not the last one: a last batch that a GC or
  // another process interrupted would give the row tiny batches, whose medians leave such
  // interruptions out and so flatter it against rows timed in full-length batches.
  const samples = [elapsed];
  while (performance.now() < deadline || samples.length < 5)
    samples.push(await timeBatch(entry, size));
  samples.sort((a, b) => a - b);
  const typical = samples[samples.length >> 1]!;
  entry.batchSize = Math.max(1, Math.round((size * batchMs) / Math.max(typical, 1e-3)));
}

export function group(name: string): BenchGroup {
  const entries: Entry[] = [];
  const self: BenchGroup = {
    add(id, fn, options = {}) {
      if (entries.some((e) => e.id === id)) throw new Error(`duplicate benchmark id ${id}`);
      entries.push({ id, fn, options, isAsync: false, batchSize: 1, roundValues: [] });
      return self;
    },
    async run(options = {}) {
      const o = { ...defaultRunOptions(), ...options };
      for (const entry of entries) {
        entry.roundValues.length = 0;
        await warmUp(entry, o.warmupMs, o.batchMs);
      }
      for (let round = 0; round < o.rounds; round++) {
        for (let k = 0; k < entries.length; k++) {
          const entry = entries[(round + k) % entries.length]!;
          const perOp: number[] = [];
          const end = performance.now() + o.roundMs;
          do {
            perOp.push(((await timeBatch(entry, entry.batchSize)) * 1000) / entry.batchSize);
          } while (performance.now() < end);
          entry.roundValues.push(median(perOp));
        }
      }
      return summarise(name, entries);
    },
  };
  return self;
}

function summarise(name: string, entries: readonly Entry[]): GroupResults {
  const results = entries.map((e): BenchResult => {
    const usPerOp = median(e.roundValues);
    const base = {
      id: e.id,
      label: e.options.label ?? e.id,
      usPerOp,
      opsPerSecond: 1e6 / usPerOp,
      roundsUsPerOp: [...e.roundValues],
      batchSize: e.batchSize,
    };
    return e.options.bytesPerOp === undefined
      ? base
      : { ...base, mbPerSecond: e.options.bytesPerOp / usPerOp };
  });
  const get = (id: string): BenchResult => {
    const found = results.find((r) => r.id === id);
    if (found === undefined) throw new Error(`no benchmark ${id} in group ${name}`);
    return found;
  };
  return {
    name,
    results,
    get,
    ratio(a, b) {
      const ra = get(a).roundsUsPerOp;
      const rb = get(b).roundsUsPerOp;
      return median(ra.map((v, i) => v / rb[i]!));
    },
  };
}

// --- tables ------------------------------------------------------------------------------------

export interface TableRow {
  readonly what: string;
  readonly usPerOp: number;
  readonly baseline?: string;
  readonly baselineUsPerOp?: number;
  readonly ratio?: number;
  readonly target?: string;
  /**
   * What the two figures measure when it is not µs per operation (e.g. `KiB`): printed after
   * each of them. The ratio is still this row's figure over its baseline's.
   */
  readonly unit?: string;
}

/** A row for `id`, compared with `baseline` of the same group when one is named. */
export function row(
  results: GroupResults,
  id: string,
  options: { baseline?: string; target?: string } = {},
): TableRow {
  const r = results.get(id);
  const what =
    r.mbPerSecond === undefined ? r.label : `${r.label} (${formatNumber(r.mbPerSecond)} MB/s)`;
  const target = options.target === undefined ? {} : { target: options.target };
  if (options.baseline === undefined) return { what, usPerOp: r.usPerOp, ...target };
  const b = results.get(options.baseline);
  return {
    what,
    usPerOp: r.usPerOp,
    baseline: b.label,
    baselineUsPerOp: b.usPerOp,
    ratio: results.ratio(id, options.baseline),
    ...target,
  };
}

const HEADERS = ['what', 'µs/op', 'baseline', 'baseline µs/op', 'ratio', 'target'] as const;

/** Three significant digits, thousands grouped: enough for numbers that drift by ±30%. */
function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function cells(r: TableRow): string[] {
  const unit = r.unit === undefined ? '' : ` ${r.unit}`;
  return [
    r.what,
    `${formatNumber(r.usPerOp)}${unit}`,
    r.baseline ?? '',
    r.baselineUsPerOp === undefined ? '' : `${formatNumber(r.baselineUsPerOp)}${unit}`,
    r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}×`,
    r.target ?? '',
  ];
}

// Text columns align left, number columns right.
const NUMERIC = [false, true, false, true, true, false];

export function formatTable(rows: readonly TableRow[]): string {
  const body = rows.map(cells);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...body.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string =>
    c
      .map((s, i) => (NUMERIC[i] ? s.padStart(widths[i]!) : s.padEnd(widths[i]!)))
      .join(' | ')
      .trimEnd();
  return [line(HEADERS), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join(
    '\n',
  );
}

export function printTable(rows: readonly TableRow[]): void {
  console.log(formatTable(rows));
}

/** The same rows as a GitHub markdown table, for the README's performance section. */
export function markdownTable(rows: readonly TableRow[]): string {
  const escape = (s: string): string => s.replaceAll('|', '\\|');
  const align = NUMERIC.map((n) => (n ? '---:' : '---'));
  return [
    `| ${HEADERS.join(' | ')} |`,
    `|${align.join('|')}|`,
    ...rows.map((r) => `| ${cells(r).map(escape).join(' | ')} |`),
  ].join('\n');
}
