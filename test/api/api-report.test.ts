import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  API_REPORT_PATH,
  collectApi,
  entrySources,
  formatApiReport,
  repoRoot,
  type EntryPoint,
} from '../../scripts/api-report.js';

// The exported surface is API: it grows only on purpose. The checked-in report lists every
// exported name of every entry of package.json's `exports` map; a change to an index that adds,
// removes or changes the kind of a name must update the report in the same commit.
describe('the public API', () => {
  let api: EntryPoint[];
  beforeAll(() => {
    api = collectApi();
  }, 60_000);

  it('matches the checked-in report (api/mandate.api.md)', () => {
    const checkedIn = readFileSync(API_REPORT_PATH, 'utf8');
    expect(
      formatApiReport(api),
      'the exported surface changed: run `npm run api:report`, review the difference in ' +
        'api/mandate.api.md and commit it with the change',
    ).toBe(checkedIn);
  });

  it('gives every public export a TSDoc comment', () => {
    const undocumented = api.flatMap((e) =>
      e.names.filter((n) => !n.documented).map((n) => `${e.specifier}: ${n.name}`),
    );
    expect(undocumented, 'add a /** … */ comment to each of these declarations').toStrictEqual([]);
  });

  it('exports each layer index and the root, never an internal barrel or a primitive layer', () => {
    const sources = entrySources().map((e) => e.source.slice(repoRoot.length + 1));
    expect(sources).toContain('src/index.ts');
    for (const source of sources) expect(source).toMatch(/^src\/(?:[a-z]+\/)?index\.ts$/);
    expect(sources).not.toContain('src/crypto/index.ts');
    expect(sources).not.toContain('src/encoding/index.ts');
  });

  it('the root export re-exports names of the subpaths, each with the same kind', () => {
    const root = api.find((e) => e.specifier === 'mandate')!;
    const bySubpath = new Map(
      api.filter((e) => e !== root).flatMap((e) => e.names.map((n) => [n.name, n.kind] as const)),
    );
    for (const n of root.names) expect(bySubpath.get(n.name), n.name).toBe(n.kind);
    for (const name of ['Identities', 'verifyChangeHistory', 'SoftwareVault', 'openSqliteStore']) {
      expect(root.names.map((n) => n.name)).toContain(name);
    }
  });

  it('leaves out what users do not need (dead code, test helpers, migrations, Noise internals)', () => {
    const all = new Set(api.flatMap((e) => e.names.map((n) => n.name)));
    for (const name of [
      'DEFAULT_LINK_TTL_SECONDS',
      'addressEquals',
      'describeChain',
      'createSeededPrng',
      'SQLITE_MIGRATIONS',
      'IDENTITIES_MIGRATION',
      'DENY_SET_MIGRATION_SQL',
      'createHandshake',
      'CipherState',
      'ChannelEncryptor',
      'invalid',
      'SerialScope',
    ]) {
      expect(all.has(name), name).toBe(false);
    }
  });

  it('the README library example imports only exported names', () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## As a library'));
    const code = /```ts\n([\s\S]*?)```/.exec(section)![1]!;
    const imports = [...code.matchAll(/import \{([^}]*)\} from '([^']+)'/g)];
    expect(imports.length).toBeGreaterThan(0);
    for (const [, names, specifier] of imports) {
      const entry = api.find((e) => e.specifier === specifier);
      expect(entry, specifier).toBeDefined();
      for (const name of names!.split(',').map((n) => n.trim().replace(/^type /, ''))) {
        expect(
          entry!.names.map((n) => n.name),
          `${specifier}: ${name}`,
        ).toContain(name);
      }
    }
  });
});
