import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/vectors.js';

// Keeps the documents' shell blocks true: every ```sh block of a document, in order, is one bash
// script (`set -euo pipefail`) run from the repository root, as a reader in a clone runs them, in
// a fresh temporary HOME and TMPDIR (the documents make their homes with `mktemp -d`), with nothing
// pasted by hand. `npx mandate` is this checkout's bin, as npx resolves it here (checked once
// below), called directly to spare npm's start-up on every command. A block may be left out only
// when the line before it says `<!-- not run by test/docs/readme-blocks.test.ts … -->`, and only
// if it holds nothing but `npm …` commands (the install and the test suite themselves).

const DOCUMENTS = ['README.md', 'docs/tutorial.md'];
const SKIP_MARK = '<!-- not run by test/docs/readme-blocks.test.ts';
/** Per document: enough for the tutorial on a loaded 2-core machine; then the group is killed. */
// The tutorial alone takes 90–100 s on a quiet 2-core machine (it starts and stops a dozen
// nodes); 150 s was once too little while other test files ran beside it.
const RUN_TIMEOUT_MS = 240_000;
const bin = join(repoRoot, 'dist', 'cli', 'bin.js');

interface Block {
  /** 1-based line of the block's first command in its document. */
  readonly line: number;
  readonly lines: readonly string[];
}

/** The ```sh blocks of a markdown text, in order: those to run, and those marked to skip. */
function shellBlocks(markdown: string): { run: Block[]; skipped: Block[] } {
  const lines = markdown.split('\n');
  const run: Block[] = [];
  const skipped: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```sh') continue;
    const end = lines.indexOf('```', i + 1);
    if (end < 0) throw new Error(`unclosed \`\`\`sh block at line ${String(i + 1)}`);
    let before = i - 1;
    while (before >= 0 && lines[before]?.trim() === '') before--;
    const block = { line: i + 2, lines: lines.slice(i + 1, end) };
    (lines[before]?.startsWith(SKIP_MARK) === true ? skipped : run).push(block);
    i = end;
  }
  return { run, skipped };
}

/**
 * One bash script of the blocks, and for each of its lines the document line it came from. On a
 * failure the ERR trap prints `@@failed LINE STATUS COMMAND`; on exit every background job gets
 * SIGTERM (and the test SIGKILLs the process group after).
 */
function script(blocks: readonly Block[]): { text: string; origin: Map<number, number> } {
  const head = [
    'set -euo pipefail',
    'shopt -s inherit_errexit',
    `trap 'status=$?; { set +x; } 2>/dev/null; echo "@@failed $LINENO $status $BASH_COMMAND" >&2' ERR`,
    `trap 'kill $(jobs -p) 2>/dev/null || true' EXIT`,
    'set -x',
  ];
  const out = [...head];
  const origin = new Map<number, number>();
  for (const block of blocks) {
    block.lines.forEach((l, k) => {
      out.push(l);
      origin.set(out.length, block.line + k);
    });
  }
  return { text: `${out.join('\n')}\n`, origin };
}

/** The ports the script listens on or dials: `HOST:PORT` and `/tcp/PORT`. */
function ports(text: string): number[] {
  const found = new Set<number>();
  for (const m of text.matchAll(/127\.0\.0\.1:(\d+)|\/tcp\/(\d+)/g))
    found.add(Number(m[1] ?? m[2]));
  return [...found].sort((a, b) => a - b);
}

async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => {
      resolve(false);
    });
    server.listen(port, '127.0.0.1', () =>
      server.close(() => {
        resolve(true);
      }),
    );
  });
}

/** The newest modification time of the non-test `.ts` files under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const path of readdirSync(dir, { encoding: 'utf8', recursive: true }))
    if (path.endsWith('.ts') && !path.endsWith('.test.ts'))
      newest = Math.max(newest, statSync(join(dir, path)).mtimeMs);
  return newest;
}

/** Files in the checkout that git does not track, ignored ones included (`.mandate/`, …). */
function untracked(): string[] {
  const r = spawnSync('git', ['status', '--porcelain', '--ignored', '--untracked-files=all'], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  return r.stdout
    .split('\n')
    .filter((l) => l !== '' && !/^(?:!!|\?\?) (?:dist|node_modules)\//.test(l));
}

interface Outcome {
  readonly status: number | null;
  readonly timedOut: boolean;
  readonly output: string;
}

/** Runs `file` with bash in its own process group; kills the whole group when done or late. */
function runScript(file: string, env: NodeJS.ProcessEnv): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn('bash', [file], {
      cwd: repoRoot,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: string[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c.toString()));
    child.stderr.on('data', (c: Buffer) => chunks.push(c.toString()));
    const killGroup = (): void => {
      try {
        process.kill(-(child.pid ?? 0), 'SIGKILL');
      } catch {
        // the group is gone already
      }
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, RUN_TIMEOUT_MS);
    child.once('exit', (status) => {
      clearTimeout(timer);
      killGroup(); // background services the script left behind
      // Let the pipes drain (they close once every holder of them is dead).
      setTimeout(() => {
        resolve({ status, timedOut, output: chunks.join('') });
      }, 200);
    });
  });
}

/** The tail of every `*.log` the script wrote under `dir` (logs of background services). */
function logs(dir: string): string {
  const out: string[] = [];
  for (const path of readdirSync(dir, { encoding: 'utf8', recursive: true })) {
    if (!path.endsWith('.log')) continue;
    const tail = readFileSync(join(dir, path), 'utf8').split('\n').slice(-20).join('\n');
    out.push(`--- ${path} (last 20 lines)\n${tail}`);
  }
  return out.join('\n');
}

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

beforeAll(() => {
  // `npm ci` builds dist/ (`prepare`); a checkout whose sources changed since is rebuilt here.
  const src = join(repoRoot, 'src');
  if (existsSync(bin) && statSync(bin).mtimeMs >= newestMtime(src)) return;
  const build = spawnSync('npm', ['run', 'build', '--silent'], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  if (build.status !== 0)
    throw new Error(
      `dist/ is missing or older than src/, and \`npm run build\` failed:\n${build.stdout}${build.stderr}`,
    );
}, 300_000);

describe('the documents’ shell blocks', () => {
  it('`npx mandate` in the repository root is this checkout’s bin', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
      version: string;
      bin: { mandate: string };
    };
    expect(pkg.bin.mandate).toBe('dist/cli/bin.js');
    // No network: npx links the checkout itself into its cache (on its first call in a fresh npm
    // cache that takes npm 10–30 s on a 2-core machine; later calls about a second).
    const r = spawnSync('npx', ['mandate', '--version'], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, npm_config_offline: 'true' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  }, 120_000);

  for (const doc of DOCUMENTS) {
    it(
      `${doc}: every sh block runs, top to bottom, as written`,
      async () => {
        const { run: blocks, skipped } = shellBlocks(readFileSync(join(repoRoot, doc), 'utf8'));
        expect(blocks.length, `${doc} has no sh block`).toBeGreaterThan(0);
        for (const block of skipped)
          for (const l of block.lines)
            expect(l, `${doc}:${String(block.line)}: only npm commands may skip`).toMatch(/^npm /);

        const { text, origin } = script(blocks);
        for (const port of ports(text))
          expect(await portIsFree(port), `${doc} needs port ${String(port)}, which is taken`).toBe(
            true,
          );

        const root = mkdtempSync(join(tmpdir(), 'mandate-doc-blocks-'));
        scratch.push(root);
        for (const d of ['home', 'tmp', 'bin']) mkdirSync(join(root, d));
        const shim = join(root, 'bin', 'npx');
        writeFileSync(
          shim,
          [
            '#!/bin/sh',
            `if [ "$1" = mandate ]; then shift; exec '${process.execPath}' '${bin}' "$@"; fi`,
            'echo "only \\`npx mandate\\` is available here" >&2; exit 127',
            '',
          ].join('\n'),
        );
        chmodSync(shim, 0o755);
        const file = join(root, 'blocks.sh');
        writeFileSync(file, text);

        const before = untracked();
        const env = {
          PATH: `${join(root, 'bin')}:${process.env.PATH ?? ''}`,
          HOME: join(root, 'home'),
          TMPDIR: join(root, 'tmp'),
          LANG: 'C.UTF-8',
        };
        const outcome = await runScript(file, env);

        const failed = /^@@failed (\d+) (\d+) (.*)$/m.exec(outcome.output);
        const where =
          failed === null
            ? ''
            : `${doc}:${String(origin.get(Number(failed[1])) ?? '?')} exited ${failed[2] ?? '?'}: ${failed[3] ?? ''}\n`;
        const report =
          `${outcome.timedOut ? `timed out after ${String(RUN_TIMEOUT_MS)} ms\n` : ''}${where}` +
          `--- output (last 80 lines)\n${outcome.output.split('\n').slice(-80).join('\n')}\n${logs(root)}`;
        expect(outcome.timedOut, report).toBe(false);
        expect(outcome.status, report).toBe(0);
        expect(untracked(), `${doc} wrote into the repository`).toEqual(before);
      },
      RUN_TIMEOUT_MS + 30_000,
    );
  }
});
