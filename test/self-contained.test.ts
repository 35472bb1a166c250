import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readVectorJson, repoRoot } from './helpers/vectors.js';

// A clone with nothing beside it must install, build and pass its tests: no source, test,
// benchmark or CI script may read a path outside the repository (the shared vector collection
// used to sit beside the development checkout).

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'data') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else if (/\.(?:[cm]?[jt]s|sh|json)$/.test(name) || name === 'run') out.push(path);
  }
  return out;
}

// `../shared`, `'..', 'shared'` and friends: any way of naming the folder beside the checkout.
const ESCAPE = /\.\.\/shared\b|['"]\.\.['"]\s*,\s*['"]shared['"]|\.\.\/\.\.\/\.\.\//;

describe('the repository is self-contained', () => {
  it('no file under src/, test/, bench/ or .ci/ names a path beside the checkout', () => {
    const offenders = ['src', 'test', 'bench', '.ci']
      .flatMap((dir) => filesUnder(join(repoRoot, dir)))
      .filter((path) => !path.endsWith('self-contained.test.ts'))
      .filter((path) => ESCAPE.test(readFileSync(path, 'utf8')))
      .map((path) => relative(repoRoot, path));
    expect(offenders).toStrictEqual([]);
  });

  it('vector reads cannot leave test/vectors/data', () => {
    expect(() => readVectorJson('../../../shared/vectors/ockam/noise-xx.json')).toThrow(/leaves/);
    expect(() => readVectorJson('/etc/passwd')).toThrow(/leaves/);
    expect(readVectorJson('ockam/noise-xx.json')).toBeTypeOf('object');
  });

  it('the escape pattern catches the forms it is meant to catch', () => {
    expect(ESCAPE.test("resolve(repoRoot, '..', 'shared', 'vectors')")).toBe(true);
    expect(ESCAPE.test('cat ../shared/vectors/x.json')).toBe(true);
    expect(ESCAPE.test("resolve(root, 'test', 'vectors')")).toBe(false);
  });
});
