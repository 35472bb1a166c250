import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number): void;
  stop(): void;
}

/**
 * A progress bar on stderr (never on stdout, which may be --json), drawn only when stderr is a
 * terminal and `enabled` (callers pass `!json`): piped or logged output gets no bar at all.
 * Callers stop it in a `finally`, or its redraw timer keeps the process alive after an error.
 */
export function startProgress(label: string, total: number, enabled = true): Progress {
  if (!enabled || !process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {value}/{total} | {rate}/s | eta {eta_formatted}`,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = process.hrtime.bigint();
  bar.start(total, 0, { rate: '0' });
  return {
    update(done) {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      bar.update(done, { rate: seconds > 0 ? Math.round(done / seconds).toString() : '0' });
    },
    stop() {
      bar.stop();
    },
  };
}

/** Runs `work` with a progress bar that is stopped however `work` ends. */
export async function withProgress<T>(
  label: string,
  total: number,
  enabled: boolean,
  work: (update: (done: number) => void) => Promise<T>,
): Promise<T> {
  const bar = startProgress(label, total, enabled);
  try {
    return await work((done) => {
      bar.update(done);
    });
  } finally {
    bar.stop();
  }
}
