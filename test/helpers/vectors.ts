import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found from this file's location (test/helpers/). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The public vectors the tests use, copied into the repository with their sources
 * (test/vectors/data/README.md): a clone with nothing beside it passes its own tests.
 */
export const vectorsDir = resolve(repoRoot, 'test', 'vectors', 'data');

export function readVectorJson(relativePath: string): unknown {
  const path = resolve(vectorsDir, relativePath);
  const inside = relative(vectorsDir, path);
  if (
    inside === '' ||
    inside.startsWith(`..${sep}`) ||
    inside === '..' ||
    resolve(inside) === inside
  )
    throw new Error(`vector path \`${relativePath}\` leaves test/vectors/data`);
  if (!existsSync(path)) throw new Error(`test vectors missing: ${path}`);
  return JSON.parse(readFileSync(path, 'utf8')) as unknown;
}

// Narrowing helpers for vector files: parse, don't cast.
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
export function record(value: unknown, what: string): Record<string, unknown> {
  if (!isRecord(value)) throw new Error(`${what} must be an object`);
  return value;
}
export function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what} must be an array`);
  return value;
}
export function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new Error(`${what} must be a string`);
  return value;
}
