import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { repoRoot } from './vectors.js';

// Long-running `mandate` commands (nodes, relays, authorities) as child processes, for the CLI
// tests that cross process boundaries. Call `killChildren` in `afterEach`.

const children: ChildProcess[] = [];

/** SIGKILLs every child still running and waits for each to exit. */
export async function killChildren(): Promise<void> {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  }
}

/** A port that was free a moment ago (listen on 0, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface Started {
  readonly child: ChildProcess;
  /** Everything the child wrote to stderr so far (its log). */
  readonly stderr: () => string;
  /** Everything the child wrote to stdout so far. */
  readonly stdout: () => string;
  /** Resolves once the log matches; rejects if the child exits first or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code when the child exits by itself. */
  readonly exited: Promise<number | null>;
}

/** Runs `mandate --home HOME ARGV…` from the sources (tsx) as a child process. */
export function startMandate(home: string, ...argv: string[]): Started {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'src', 'cli', 'bin.ts'), '--home', home, ...argv],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let err = '';
  let out = '';
  const waiters: (() => void)[] = [];
  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
    wake();
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.once('exit', wake);
  return {
    child,
    stderr: () => err,
    stdout: () => out,
    // Generous by default: a child starts tsx and a node on a noisy 2-core machine.
    waitFor: (pattern, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`timed out waiting for ${String(pattern)}; stderr:\n${err}`));
        }, timeoutMs);
        const check = (): void => {
          if (pattern.test(err)) {
            clearTimeout(timer);
            resolve();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            reject(new Error(`exited ${String(child.exitCode)}; stderr:\n${err}`));
          } else waiters.push(check);
        };
        check();
      }),
    stop: async (signal) => {
      child.kill(signal);
      return exit;
    },
    exited: exit,
  };
}

/** `mandate --home HOME --json ARGV…` as a child process with `input` on its stdin. */
export function withStdin(
  home: string,
  input: string,
  ...argv: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return withEnv(home, input, {}, ...argv);
}

/** {@link withStdin} with `env` added to this process's environment. */
export function withEnv(
  home: string,
  input: string,
  env: Readonly<Record<string, string>>,
  ...argv: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'src', 'cli', 'bin.ts'), '--home', home, '--json', ...argv],
    { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  child.stdin.end(input);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      resolve({ code, stdout, stderr });
    }),
  );
}
