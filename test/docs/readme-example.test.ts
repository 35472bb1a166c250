import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/vectors.js';

// Keeps the README's library example true: it is cut out of README.md, pointed at src/ and a
// temporary home, and run as a program.
describe('README library example', () => {
  it('runs and prints the identifier, the change count and an expiry', () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## As a library'));
    const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    expect(code).toBeDefined();
    expect(code!.split('\n').filter((l) => l.trim() !== '').length).toBeLessThanOrEqual(15);
    const home = mkdtempSync(join(tmpdir(), 'mandate-readme-'));
    const program = code!
      .replace(
        /'mandate(?:\/(\w+))?'/g,
        (_m, layer: string | undefined) =>
          `'${pathToFileURL(join(repoRoot, 'src', ...(layer === undefined ? [] : [layer]), 'index.ts')).href}'`,
      )
      .replaceAll('./.mandate', home);
    const file = join(home, 'example.mts');
    writeFileSync(file, program);
    const run = spawnSync(process.execPath, ['--import', 'tsx', file], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^I[0-9a-f]{64} 2 \d+\n$/);
  });
});
