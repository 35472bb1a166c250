import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found from this file's location (test/helpers/). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** shared/vectors lives beside the checkout, in development and in CI alike. */
export const vectorsDir = resolve(repoRoot, '..', 'shared', 'vectors');

export function readVectorJson(relativePath: string): unknown {
  const path = resolve(vectorsDir, relativePath);
  if (!existsSync(path))
    throw new Error(`test vectors missing: ${path} (shared/vectors must sit beside the checkout)`);
  return JSON.parse(readFileSync(path, 'utf8')) as unknown;
}
