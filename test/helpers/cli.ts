import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, vi } from 'vitest';
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

/**
 * A fresh home with an authority (`authority init`) and the named identities, and `issue`, which
 * writes a credential for one of them (`credential issue --attr … --out`) and returns its file.
 */
export async function authorityHome(prefix: string, names: readonly string[]) {
  const home = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-files-`));
  expect((await run('--home', home, 'authority', 'init')).code).toBe(0);
  for (const name of names) {
    expect((await run('--home', home, 'identity', 'create', '--name', name)).code).toBe(0);
  }
  const issue = async (to: string, attr: string): Promise<string> => {
    const out = join(dir, `${to}.cred`);
    const r = await run(
      '--home',
      home,
      'credential',
      'issue',
      '--to',
      to,
      '--attr',
      attr,
      '--out',
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    return out;
  };
  return { home, dir, issue };
}
