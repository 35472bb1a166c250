import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number): void;
  stop(): void;
}

/**
 * A progress bar on stderr (never on stdout, which may be --json). Without a terminal it prints
 * a plain line every second instead of redrawing, so CI logs stay readable.
 */
export function startProgress(label: string, total: number, enabled = true): Progress {
  if (!enabled) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {value}/{total} | {rate}/s | eta {eta_formatted}`,
      noTTYOutput: true,
      notTTYSchedule: 1000,
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
