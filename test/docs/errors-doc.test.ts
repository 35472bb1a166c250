import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/vectors.js';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

const CODE_RE = /\bERR_[A-Z0-9_]*[A-Z0-9]\b/g;

describe('docs/errors.md', () => {
  const doc = readFileSync(join(repoRoot, 'docs', 'errors.md'), 'utf8');
  const documented = new Map<string, string>();
  for (const match of doc.matchAll(/^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|\s*([a-z_()]+)\s*\|/gm))
    documented.set(match[1]!, match[2]!);
  const used = new Set(
    sourceFiles(join(repoRoot, 'src')).flatMap(
      (file) => readFileSync(file, 'utf8').match(CODE_RE) ?? [],
    ),
  );

  it('lists every code the source raises', () => {
    expect([...used].filter((code) => !documented.has(code)).sort()).toEqual([]);
  });

  it('lists no code the source does not have', () => {
    expect([...documented.keys()].filter((code) => !used.has(code)).sort()).toEqual([]);
  });

  it('gives every code a known kind', () => {
    const kinds = new Set([
      'internal',
      'usage',
      'invalid',
      'unauthorized',
      'forbidden',
      'not_found',
      'conflict',
      'exhausted',
      'timeout',
      'unavailable',
      'unsupported',
    ]);
    for (const [code, kind] of documented) expect(kinds.has(kind), code).toBe(true);
  });
});
