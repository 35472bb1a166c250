import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/vectors.js';

// A guard, not a behaviour test: the channel layer keeps `verify.denySet` optional (a library
// user may verify without one), so nothing in the types stops a node or a command from building a
// peer verifier that never consults the deny-set — the hole issue 8 found in every network path.
// Every `verify: { … }` the composition layers (cli, node, …) write must name `denySet`.

/** The `{ … }` that starts at `open` (balanced braces; the sources hold no brace in strings). */
function objectAt(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(open, i + 1);
  }
  throw new Error('unbalanced braces');
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

describe('deny-set wiring', () => {
  it('every peer verifier built outside the channel layer names a deny-set', () => {
    const src = join(repoRoot, 'src');
    const sites: string[] = [];
    const missing: string[] = [];
    for (const file of sources(src)) {
      const name = relative(src, file);
      // The layer that defines the option, and uses it as given.
      if (name.startsWith('channel/')) continue;
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/\bverify: \{/g)) {
        const open = (match.index ?? 0) + match[0].length - 1;
        const site = `${name}:${String(text.slice(0, open).split('\n').length)}`;
        sites.push(site);
        if (!/\bdenySet\b/.test(objectAt(text, open))) missing.push(site);
      }
    }
    // Not vacuous: node start / relay start / channel open|ping, the renewer, authority start,
    // ticket redeem over the network, the demo.
    expect(sites.length).toBeGreaterThanOrEqual(5);
    expect(missing).toEqual([]);
  });
});
