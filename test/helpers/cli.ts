import { vi } from 'vitest';
import { main } from '../../src/cli/main.js';

/** What one in-process CLI run printed, and its exit code. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `mandate ARGV…` in this process, capturing stdout and stderr (nothing reaches the
 * terminal) for the duration of the run only.
 */
export async function run(...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
  const stderr = vi
    .spyOn(process.stderr, 'write')
    .mockImplementation((chunk: string | Uint8Array) => {
      err.push(String(chunk));
      return true;
    });
  try {
    const code = await main(argv);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
  }
}

/** The --json result of a run. */
export const json = (r: Run): Record<string, unknown> =>
  JSON.parse(r.stdout) as Record<string, unknown>;
