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

// Any way of naming the folder beside the checkout: the parent folder then the shared folder, as
// one path or as separate path segments, or a climb of three folders. The names are assembled
// here so that this file does not itself name such a path.
const PARENT = '\\.\\.';
const BESIDE = ['sha', 'red'].join('');
const ESCAPE = new RegExp(
  `${PARENT}/${BESIDE}\\b|['"]${PARENT}['"]\\s*,\\s*['"]${BESIDE}['"]|(?:${PARENT}/){3}`,
);
const up = (...segments: string[]): string => ['..', ...segments].join('/');

describe('the repository is self-contained', () => {
  it('no file under src/, test/, bench/ or .ci/ names a path beside the checkout', () => {
    const offenders = ['src', 'test', 'bench', '.ci']
      .flatMap((dir) => filesUnder(join(repoRoot, dir)))
      .filter((path) => ESCAPE.test(readFileSync(path, 'utf8')))
      .map((path) => relative(repoRoot, path));
    expect(offenders).toStrictEqual([]);
  });

  it('vector reads cannot leave test/vectors/data', () => {
    const climbing = ['..', '..', up(BESIDE, 'vectors', 'ockam', 'noise-xx.json')].join('/');
    expect(() => readVectorJson(climbing)).toThrow(/leaves/);
    expect(() => readVectorJson('/etc/passwd')).toThrow(/leaves/);
    expect(readVectorJson('ockam/noise-xx.json')).toBeTypeOf('object');
  });

  it('the escape pattern catches the forms it is meant to catch', () => {
    expect(ESCAPE.test(`resolve(repoRoot, '..', '${BESIDE}', 'vectors')`)).toBe(true);
    expect(ESCAPE.test(`cat ${up(BESIDE, 'vectors', 'x.json')}`)).toBe(true);
    expect(ESCAPE.test(`read ${up('..', '..', 'x')}`)).toBe(true);
    expect(ESCAPE.test("resolve(root, 'test', 'vectors')")).toBe(false);
  });
});
