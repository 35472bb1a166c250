// The package as a user gets it: `npm pack` (which builds), install the tarball into an empty
// folder, type-check and run the README's library example there against the installed package,
// and check that only the `exports` map is reachable. Slow (the install compiles better-sqlite3):
// run by .ci/run after the tests, and by `npm run pack:check`. MANDATE_PACK_KEEP=1 keeps the
// temporary folder.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const work = mkdtempSync(join(tmpdir(), 'mandate-pack-'));
const keep = process.env.MANDATE_PACK_KEEP === '1';

function fail(message: string): void {
  console.error(`pack-check: ${message}`);
  process.exitCode = 1;
}

function run(command: string, args: string[], cwd: string): { stdout: string; stderr: string } {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8' });
  if (result.status !== 0) {
    process.stdout.write(result.stdout ?? '');
    process.stderr.write(result.stderr ?? '');
    throw new Error(`\`${command} ${args.join(' ')}\` exited with ${String(result.status)}`);
  }
  return { stdout: result.stdout, stderr: result.stderr };
}

try {
  // 1. The tarball, and what it holds.
  interface Packed {
    filename: string;
    size: number;
    files: { path: string }[];
  }
  const packed = (
    JSON.parse(
      execFileSync(npm, ['pack', '--json', '--pack-destination', work], {
        cwd: repoRoot,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    ) as Packed[]
  )[0]!;
  const tarball = join(work, packed.filename);
  const files = packed.files.map((f) => f.path);
  console.log(`pack-check: ${packed.filename}, ${files.length} files, ${packed.size} bytes`);
  const unwanted = files.filter(
    (f) =>
      /\.test\.|\.map$/.test(f) || /^(src|test|bench|scripts|dashboard|\.ci|docs\/img)\//.test(f),
  );
  if (unwanted.length > 0)
    fail(`the tarball holds files users do not need: ${unwanted.join(', ')}`);
  for (const needed of [
    'LICENSE',
    'README.md',
    'package.json',
    'dist/index.js',
    'dist/index.d.ts',
    // The dashboard `mandate dashboard` serves, built by Vite (its hashed assets beside it).
    'dist/dashboard/index.html',
  ]) {
    if (!files.includes(needed)) fail(`the tarball lacks ${needed}`);
  }
  if (!files.some((f) => /^dist\/dashboard\/assets\/index-[\w-]+\.js$/.test(f)))
    fail('the tarball lacks the dashboard script');

  // 2. An empty project that installs it.
  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'mandate-pack-check', private: true, type: 'module' }, null, 2),
  );
  console.log('pack-check: npm install (compiles native modules: a few minutes)');
  run(npm, ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball], app);

  // 3. The README's library example, exactly as written, type-checked and run.
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## As a library'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (code === undefined) throw new Error('README.md has no ```ts block under "## As a library"');
  writeFileSync(join(app, 'example.ts'), code);
  writeFileSync(join(app, 'example.mjs'), code);
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023'],
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
        typeRoots: [join(repoRoot, 'node_modules', '@types')],
      },
      files: ['example.ts'],
    }),
  );
  run(
    process.execPath,
    [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app],
    app,
  );
  const example = run(process.execPath, ['example.mjs'], app);
  if (!/^I[0-9a-f]{64} 2 \d+\n$/.test(example.stdout)) {
    fail(`the README example printed ${JSON.stringify(example.stdout)}`);
  }
  if (example.stderr !== '') fail(`the README example wrote to stderr: ${example.stderr}`);

  // 4. The root export works, and only the exports map is reachable.
  const probe = `
    const root = await import('mandate');
    for (const name of ['Identities', 'verifyChangeHistory', 'SoftwareVault', 'openSqliteStore',
      'Authority', 'verifyChain', 'authorize', 'openSecureChannel', 'SecureChannelListener',
      'MandateError']) {
      if (root[name] === undefined) throw new Error('mandate has no ' + name);
    }
    for (const hidden of ['mandate/crypto', 'mandate/encoding', 'mandate/core/internal',
      'mandate/dist/core/internal.js', 'mandate/dist/channel/noise.js']) {
      try {
        await import(hidden);
        throw new Error(hidden + ' should not be importable');
      } catch (error) {
        if (error.code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') throw error;
      }
    }
    console.log('ok');
  `;
  writeFileSync(join(app, 'probe.mjs'), probe);
  const probed = run(process.execPath, ['probe.mjs'], app);
  if (probed.stdout !== 'ok\n') fail(`the export probe printed ${JSON.stringify(probed.stdout)}`);
  if (process.exitCode === undefined) {
    console.log('pack-check: the installed package runs the README example');
  }
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
} finally {
  if (keep) console.log(`pack-check: kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
