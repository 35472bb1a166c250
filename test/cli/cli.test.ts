import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { json, run } from '../helpers/cli.js';
import { repoRoot } from '../helpers/vectors.js';
import { killChildren, startMandate } from '../helpers/processes.js';
import { readVectorJson } from '../helpers/vectors.js';

afterEach(killChildren);

describe('mandate identity', () => {
  it('creates, lists, shows, rotates, exports, verifies and imports', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mandate-cli-'));
    const created = await run('--home', home, '--json', 'identity', 'create', '--name', 'alice');
    expect(created.code).toBe(0);
    const identifier = json(created).identifier as string;
    expect(identifier).toMatch(/^I[0-9a-f]{64}$/);

    const p256 = json(
      await run(
        '--home',
        home,
        '--json',
        'identity',
        'create',
        '--name',
        'bob',
        '--key-type',
        'p256',
      ),
    );
    expect(p256.keyType).toBe('p256');

    const list = json(await run('--home', home, '--json', 'identity', 'list'));
    expect(list.total).toBe(2);

    const show = json(await run('--home', home, '--json', 'identity', 'show', 'alice'));
    expect(show.identifier).toBe(identifier);
    expect((show.purposeKeys as unknown[]).length).toBe(2);

    const rotated = json(await run('--home', home, '--json', 'identity', 'rotate', 'alice'));
    expect(rotated.identifier).toBe(identifier);
    expect((rotated.changes as unknown[]).length).toBe(2);

    const exported = await run('--home', home, 'identity', 'export', 'alice');
    const hex = exported.stdout.trim();
    expect(hex).toMatch(/^[0-9a-f]+$/);

    const verified = json(await run('--json', 'identity', 'verify', hex));
    expect(verified).toMatchObject({ identifier, keyType: 'ed25519' });
    expect((verified.changes as unknown[]).length).toBe(2);

    const file = join(home, 'alice.hex');
    writeFileSync(file, `${hex}\n`);
    expect((await run('identity', 'verify', file, '--expect', identifier)).code).toBe(0);
    const human = await run('identity', 'verify', file);
    expect(human.stdout).toContain(identifier);

    const other = mkdtempSync(join(tmpdir(), 'mandate-cli-'));
    const imported = json(await run('--home', other, '--json', 'identity', 'import', file));
    expect(imported).toMatchObject({ identifier, relation: 'new' });
    expect(json(await run('--home', other, '--json', 'identity', 'import', hex)).relation).toBe(
      'equal',
    );
  });

  it('creates many with --count', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mandate-cli-'));
    const r = await run(
      '--home',
      home,
      '--json',
      'identity',
      'create',
      '--count',
      '30',
      '--name',
      'a-',
    );
    expect(r.code).toBe(0);
    expect(json(r).created).toBe(30);
    expect(json(await run('--home', home, '--json', 'identity', 'show', 'a-29')).name).toBe('a-29');
  });

  it('bulk create refuses a taken name before starting, exits, and prints no bar off a terminal', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mandate-cli-'));
    expect((await run('--home', home, 'identity', 'create', '--name', 'a-599')).code).toBe(0);
    // A child process: a progress bar's redraw timer left running would keep it alive forever.
    const child = startMandate(home, 'identity', 'create', '--count', '600', '--name', 'a-');
    const timeout = new Promise<'hung'>((resolve) =>
      setTimeout(() => {
        resolve('hung');
      }, 25_000),
    );
    expect(await Promise.race([child.exited, timeout])).toBe(7);
    expect(child.stderr()).toContain('error[ERR_IDENTITY_NAME_TAKEN]');
    expect(child.stderr()).not.toContain('creating identities');
    expect(json(await run('--home', home, '--json', 'identity', 'list')).total).toBe(1);
  });

  it('prints its version', async () => {
    const version = (
      JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
    const r = await run('--version');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(version);
  });

  it('with --json, an error is also a JSON object on stdout', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mandate-cli-'));
    const r = await run('--home', home, '--json', 'identity', 'show', 'nobody');
    expect(r.code).toBe(6);
    const printed = JSON.parse(r.stdout) as { error: Record<string, unknown> };
    expect(Object.keys(printed)).toStrictEqual(['error']);
    expect(printed.error).toMatchObject({ code: 'ERR_IDENTITY_NOT_FOUND', kind: 'not_found' });
    expect(typeof printed.error.message).toBe('string');
    expect(r.stderr).toContain('error[ERR_IDENTITY_NOT_FOUND]');
    const usage = await run('--json', 'identity', 'frobnicate');
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stdout)).toMatchObject({ error: { code: 'ERR_USAGE', kind: 'usage' } });
  });

  it('verifies the Ockam vector', async () => {
    const vector = readVectorJson('ockam/identity-ed25519.json') as {
      change_history_hex: string;
      expected_identifier: string;
    };
    const r = await run('--json', 'identity', 'verify', vector.change_history_hex);
    expect(r.code).toBe(0);
    expect(json(r).identifier).toBe(vector.expected_identifier);
  });

  it('reports bad input as error[CODE] with an exit code by kind, and stores nothing', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mandate-cli-'));
    const cases: [string[], string, number][] = [
      [['identity', 'verify', '8100'], 'ERR_IDENTITY_MALFORMED', 3],
      [['identity', 'verify', 'zz'], 'ERR_HEX_INVALID', 3],
      [['identity', 'verify', 'abc'], 'ERR_HEX_INVALID', 3],
      [['identity', 'verify', './no/such/file.hex'], 'ERR_FILE_NOT_FOUND', 6],
      [['--home', home, 'identity', 'show', 'nobody'], 'ERR_IDENTITY_NOT_FOUND', 6],
      [['--home', home, 'identity', 'create', '--key-type', 'rsa'], 'ERR_ARGUMENT_INVALID', 3],
      [['--home', home, 'identity', 'create', '--count', '0'], 'ERR_ARGUMENT_INVALID', 3],
      [['--home', home, 'identity', 'import', '81'], 'ERR_IDENTITY_MALFORMED', 3],
      [['identity', 'frobnicate'], 'ERR_USAGE', 2],
    ];
    for (const [argv, code, exit] of cases) {
      const r = await run(...argv);
      expect(r.stderr, argv.join(' ')).toMatch(new RegExp(`^error\\[${code}\\]: `));
      expect(r.code, argv.join(' ')).toBe(exit);
      expect(r.stderr).not.toContain('    at ');
    }
    expect(json(await run('--home', home, '--json', 'identity', 'list')).total).toBe(0);
  });
});

describe('the vault passphrase (MANDATE_VAULT_PASSPHRASE)', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });
  const withPassphrase = (passphrase: string | undefined, ...argv: string[]) => {
    vi.unstubAllEnvs();
    if (passphrase !== undefined) vi.stubEnv('MANDATE_VAULT_PASSPHRASE', passphrase);
    return run(...argv);
  };
  const total = async (home: string, passphrase: string | undefined): Promise<unknown> =>
    json(await withPassphrase(passphrase, '--home', home, '--json', 'identity', 'list')).total;

  it('refuses a wrong passphrase before sealing anything', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mandate-pass-'));
    expect(
      (await withPassphrase('right', '--home', home, 'identity', 'create', '--name', 'a')).code,
    ).toBe(0);
    const wrong = await withPassphrase(
      'wrong',
      '--home',
      home,
      'identity',
      'create',
      '--name',
      'b',
    );
    expect(wrong.stderr).toMatch(/^error\[ERR_VAULT_PASSPHRASE_WRONG\]: /);
    expect(wrong.code).toBe(4);
    // Nothing was sealed under the wrong key: the home holds `a` alone, and `a` still signs.
    expect(await total(home, 'right')).toBe(1);
    expect((await withPassphrase('right', '--home', home, 'identity', 'rotate', 'a')).code).toBe(0);
  });

  it('refuses to open a passphrase home without the passphrase, and creates no key file', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mandate-pass-'));
    expect(
      (await withPassphrase('right', '--home', home, 'identity', 'create', '--name', 'a')).code,
    ).toBe(0);
    for (const argv of [
      ['identity', 'create', '--name', 'b'],
      ['identity', 'list'],
    ]) {
      const r = await withPassphrase(undefined, '--home', home, ...argv);
      expect(r.stderr).toMatch(
        /^error\[ERR_VAULT_PASSPHRASE_REQUIRED\]: .*MANDATE_VAULT_PASSPHRASE/,
      );
      expect(r.code).toBe(4);
    }
    expect(existsSync(join(home, 'vault.key'))).toBe(false);
    expect(await total(home, 'right')).toBe(1);
  });

  it('refuses an empty passphrase, and a passphrase for a key-file home', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mandate-pass-'));
    const empty = await withPassphrase('', '--home', home, 'identity', 'create', '--name', 'a');
    expect(empty.stderr).toMatch(/^error\[ERR_VAULT_PASSPHRASE_EMPTY\]: /);
    expect(empty.code).toBe(3);
    expect(existsSync(join(home, 'vault.key'))).toBe(false);
    expect(
      (await withPassphrase(undefined, '--home', home, 'identity', 'create', '--name', 'a')).code,
    ).toBe(0);
    const stray = await withPassphrase('x', '--home', home, 'identity', 'create', '--name', 'b');
    expect(stray.stderr).toMatch(
      /^error\[ERR_VAULT_PASSPHRASE_UNEXPECTED\]: .*MANDATE_VAULT_PASSPHRASE/,
    );
    expect(stray.code).toBe(3);
    expect(existsSync(join(home, 'vault.salt'))).toBe(false);
    expect(await total(home, undefined)).toBe(1);
  });

  it('checks a home made before verifiers against its sealed keys, then records the verifier', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mandate-pass-'));
    expect(
      (await withPassphrase('right', '--home', home, 'identity', 'create', '--name', 'a')).code,
    ).toBe(0);
    // As an earlier Mandate left it: sealed keys, no verifier.
    const db = new Database(join(home, 'mandate.db'));
    db.exec('DELETE FROM vault_kek');
    db.close();
    const wrong = await withPassphrase('wrong', '--home', home, 'identity', 'list');
    expect(wrong.stderr).toMatch(/^error\[ERR_VAULT_PASSPHRASE_WRONG\]: /);
    const none = await withPassphrase(undefined, '--home', home, 'identity', 'list');
    expect(none.stderr).toMatch(/^error\[ERR_VAULT_PASSPHRASE_REQUIRED\]: /);
    expect(existsSync(join(home, 'vault.key'))).toBe(false);
    expect(await total(home, 'right')).toBe(1);
    // The verifier is recorded now: a wrong passphrase is refused even with no key at hand.
    const check = new Database(join(home, 'mandate.db'));
    const row = check.prepare('SELECT source FROM vault_kek').get() as { source: string };
    check.close();
    expect(row.source).toBe('passphrase');
  });
});

describe('the mandate binary', () => {
  it('runs as a separate process and exits by kind', () => {
    const bin = join(repoRoot, 'src', 'cli', 'bin.ts');
    const ok = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        bin,
        '--json',
        'identity',
        'verify',
        '81825837830101583285f68200815820f405e06d988fa8039cce1cd0ae607e46847c1b64bc459ca9d89dd9b21ae30681f41a654cebe91a7818eee98200815840494c9b70e8a9ad5593fceb478f722a513b4bd39fa70f4265d584253bc24617d0eb498ce532273f6d0d5326921e013696fce57c20cc6c4008f74b816810f0b009',
      ],
      { cwd: repoRoot, encoding: 'utf8' },
    );
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      identifier: 'I923829d0397a06fa862be5a87b7966959b8ef99ab6455b843ca9131a747b4819',
    });
    const bad = spawnSync(process.execPath, ['--import', 'tsx', bin, 'identity', 'verify', '-'], {
      cwd: repoRoot,
      encoding: 'utf8',
      input: 'not hex at all',
    });
    expect(bad.status).toBe(3);
    expect(bad.stderr).toMatch(/^error\[ERR_IDENTITY_MALFORMED\]/);
  });
});
