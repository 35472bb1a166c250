import { mkdtempSync, writeFileSync } from 'node:fs';
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

/**
 * A failed run's stdout: nothing, or (with --json) exactly one JSON error object naming `code`,
 * so a script reading stdout always gets one value and never half a result.
 */
export function expectErrorStdout(r: Run, code: string, what = code): void {
  if (r.stdout === '') return;
  const printed = JSON.parse(r.stdout) as { error?: { code?: unknown; message?: unknown } };
  expect(Object.keys(printed), what).toStrictEqual(['error']);
  expect(printed.error?.code, what).toBe(code);
  expect(typeof printed.error?.message, what).toBe('string');
}

/** The bearer-check warning `chain check` prints on stderr when it runs without `--presenter`. */
const BEARER_WARNING_RE = /^warning: no --presenter[^\n]*\n/;

/**
 * `mandate --home HOME --json ARGV…`, which must succeed with nothing on stderr (but the
 * bearer-check warning of a `chain check` without `--presenter`); returns the JSON result.
 */
export async function okJson<T = Record<string, unknown>>(
  home: string,
  ...argv: string[]
): Promise<T> {
  const r = await run('--home', home, '--json', ...argv);
  expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
  expect(r.stderr.replace(BEARER_WARNING_RE, ''), argv.join(' ')).toBe('');
  return json(r) as T;
}

/**
 * `mandate --home HOME --json ARGV…`, which must fail: one `error[CODE]: ` line on stderr, the
 * exit code `exit`, and on stdout nothing or the JSON error.
 */
export async function failsJson(
  home: string,
  code: string,
  exit: number,
  ...argv: string[]
): Promise<Run> {
  const r = await run('--home', home, '--json', ...argv);
  expect(r.stderr, argv.join(' ')).toMatch(new RegExp(`^error\\[${code}\\]: \\S[^\\n]*\\n$`));
  expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(exit);
  expectErrorStdout(r, code);
  return r;
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

/** A home with a broker and an agent, a policy permitting `permits`, and the agent's credential. */
export async function brokerHome(prefix: string, agentAttrs: readonly string[], permits: string) {
  const { home, dir, issue } = await authorityHome(prefix, ['broker', 'agent']);
  const brokerCred = await issue('broker', 'tools=read_orders');
  const agentCred = join(dir, 'agent.cred');
  const r = await run(
    '--home',
    home,
    'credential',
    'issue',
    '--to',
    'agent',
    ...agentAttrs.flatMap((a) => ['--attr', a]),
    '--out',
    agentCred,
  );
  expect(r.code, r.stderr).toBe(0);
  const policies = join(dir, 'leases.cedar');
  writeFileSync(
    policies,
    `@id("leases")\npermit(principal, action == Action::"leaseSecret", resource == Secret::"${permits}");\n`,
  );
  expect((await run('--home', home, 'policy', 'publish', policies)).code).toBe(0);
  return { home, dir, brokerCred, agentCred };
}
