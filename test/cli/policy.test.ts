import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/encoding/index.js';
import { sha256 } from '../../src/crypto/index.js';
import { MANDATE_CEDAR_SCHEMA, mandateCedarSchema } from '../../src/gates/index.js';
import { failsJson as fails, json, okJson as ok, run } from '../helpers/cli.js';
import { CATALOG } from '../helpers/gate-world.js';

// `mandate policy validate|publish|show|history|export|import|eval` (issue 10): Cedar policies
// validated against the Mandate schema, published as signed versioned bundles in the home's
// store, shown verified, and evaluated on Cedar's JSON formats.

const dir = (): string => mkdtempSync(join(tmpdir(), 'mandate-policy-'));

/** Writes `text` to a new file in `folder` and returns its path. */
function file(folder: string, name: string, text: string): string {
  const path = join(folder, name);
  writeFileSync(path, text);
  return path;
}

// Written against the Mandate schema (src/gates/schema.ts): agents call tools.
const POLICIES = `@id("call-tools")
permit(principal is Agent, action == Action::"callTool", resource is Tool);
@id("no-human-impersonation")
@approval("a person must confirm")
forbid(principal, action == Action::"callTool", resource) when { principal.human };
`;

const CUSTOM_SCHEMA = `entity Agent { level: Long };
entity Tool;
action callTool appliesTo { principal: Agent, resource: Tool, context: { amount: Long } };
`;
const CUSTOM_POLICIES = `permit(principal, action == Action::"callTool", resource) when { principal.level > 2 };
forbid(principal, action, resource) when { context.amount > 100 };
`;

interface Published {
  version: number;
  hash: string;
  issuer: string;
  createdAt: number;
}

async function authorityHome() {
  const home = dir();
  const files = dir();
  const { identifier, changeHistory } = await ok<{ identifier: string; changeHistory: string }>(
    home,
    'authority',
    'init',
  );
  return { home, files, authority: identifier, changeHistory };
}

describe('mandate policy validate', () => {
  it('validates against the Mandate schema by default, or the one given, and lists the policies', async () => {
    const files = dir();
    const home = dir();
    const r = await ok<{ valid: boolean; schema: string; policies: unknown[] }>(
      home,
      'policy',
      'validate',
      file(files, 'p.cedar', POLICIES),
    );
    expect(r).toEqual({
      valid: true,
      schema: 'mandate',
      policies: [
        { id: 'policy0', effect: 'permit', annotations: { id: 'call-tools' } },
        {
          id: 'policy1',
          effect: 'forbid',
          annotations: { id: 'no-human-impersonation', approval: 'a person must confirm' },
        },
      ],
    });
    const schema = file(files, 's.cedarschema', CUSTOM_SCHEMA);
    const custom = file(files, 'c.cedar', CUSTOM_POLICIES);
    expect((await ok(home, 'policy', 'validate', custom, '--schema', schema)).schema).toBe(schema);
    // The custom policies read `principal.level`, which the Mandate schema does not declare.
    await fails(home, 'ERR_POLICY_INVALID', 3, 'policy', 'validate', custom);
    const human = await run('policy', 'validate', file(files, 'p2.cedar', POLICIES));
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^valid: 2 policies \(schema: mandate\)\n {2}policy0 {2}permit/);
  });

  it('--catalog validates against the Mandate schema with the catalog’s tool arguments; not with --schema', async () => {
    const files = dir();
    const home = dir();
    const refunds = file(
      files,
      'refunds.cedar',
      'permit(principal, action == Action::"callTool", resource == Tool::"orders/issue_refund") when { context.args has amount && context.args.amount <= 200 };\n',
    );
    // Under the default schema (no arguments declared) `context.args has amount` validates but is
    // always false, and a call with arguments does not conform: hence `--catalog`.
    expect((await ok<{ schema: string }>(home, 'policy', 'validate', refunds)).schema).toBe(
      'mandate',
    );
    const catalog = file(files, 'catalog.json', JSON.stringify({ tools: CATALOG }));
    const r = await ok<{ schema: string }>(
      home,
      'policy',
      'validate',
      refunds,
      '--catalog',
      catalog,
    );
    expect(r.schema).toBe(`mandate + catalog ${catalog}`);
    // The same as the schema `gate schema --catalog` prints.
    const schema = file(files, 's.cedarschema', mandateCedarSchema({ tools: CATALOG }));
    await ok(home, 'policy', 'validate', refunds, '--schema', schema);
    const both = await fails(
      home,
      'ERR_ARGUMENT_INVALID',
      3,
      'policy',
      'validate',
      refunds,
      '--schema',
      schema,
      '--catalog',
      catalog,
    );
    expect(both.stderr).toContain('not both');
    const { home: authority } = await authorityHome();
    await fails(
      authority,
      'ERR_ARGUMENT_INVALID',
      3,
      'policy',
      'publish',
      refunds,
      '--schema',
      schema,
      '--catalog',
      catalog,
    );
    // Published with the catalog: no warning (okJson checks stderr is empty), and the bundle's
    // schema is the catalog's.
    await ok(authority, 'policy', 'publish', refunds, '--catalog', catalog);
    expect((await ok<{ schema: string }>(authority, 'policy', 'show')).schema).toBe(
      mandateCedarSchema({ tools: CATALOG }),
    );
    // Policies that cannot apply to callTool need no arguments: no schema warning; but without
    // `--catalog` the bundle binds no tools, and the gates list none (outside-attack hole F2).
    const listOnly = await run(
      '--home',
      authority,
      '--json',
      'policy',
      'publish',
      file(files, 'list.cedar', 'permit(principal, action == Action::"listTool", resource);\n'),
    );
    expect(listOnly.code).toBe(0);
    expect(listOnly.stderr).toBe(
      'warning: published without `--catalog`: the bundle binds no tool catalog, so the gates list and call no tool under it (ERR_GATE_NO_CATALOG)\n',
    );
  });

  it('refuses hostile Cedar text with a typed error, and keeps working (outside-attack hole F7)', async () => {
    const files = dir();
    const home = dir();
    const P = 'permit(principal, action, resource) when { ';
    const hostile = {
      'parens.cedar': `${P}${'('.repeat(20_000)}true${')'.repeat(20_000)} };`,
      'ands.cedar': `${P}${Array<string>(5000).fill('true').join(' && ')} };`,
    };
    for (const [name, text] of Object.entries(hostile))
      await fails(home, 'ERR_POLICY_TOO_COMPLEX', 3, 'policy', 'validate', file(files, name, text));
    await ok(home, 'policy', 'validate', file(files, 'fine.cedar', `${P}true };`));
  });

  it('refuses what does not parse, validate or compile, naming why', async () => {
    const files = dir();
    const home = dir();
    const unparsable = await fails(
      home,
      'ERR_POLICY_SYNTAX',
      3,
      'policy',
      'validate',
      file(files, 'a.cedar', 'permit(principal, action'),
    );
    expect(unparsable.stderr).toMatch(/at 1:/);
    const invalid = await fails(
      home,
      'ERR_POLICY_INVALID',
      3,
      'policy',
      'validate',
      file(
        files,
        'b.cedar',
        'permit(principal, action == Action::"callTool", resource) when { resource.colour == "red" };',
      ),
    );
    expect(invalid.stderr).toContain('colour');
    const unsupported = await fails(
      home,
      'ERR_POLICY_UNSUPPORTED',
      11,
      'policy',
      'validate',
      file(files, 'c.cedar', 'permit(principal == ?principal, action, resource);'),
    );
    expect(unsupported.stderr).toMatch(/template/);
    await fails(
      home,
      'ERR_POLICY_SCHEMA_INVALID',
      3,
      'policy',
      'validate',
      file(files, 'd.cedar', POLICIES),
      '--schema',
      file(files, 'bad.cedarschema', 'entity Agent {'),
    );
    await fails(home, 'ERR_FILE_NOT_FOUND', 6, 'policy', 'validate', join(files, 'missing.cedar'));
    await fails(
      home,
      'ERR_GATE_CATALOG_INVALID',
      3,
      'policy',
      'validate',
      file(files, 'e.cedar', POLICIES),
      '--catalog',
      file(files, 'bad.json', '{"tools": 1}'),
    );
    await fails(home, 'ERR_ARGUMENT_INVALID', 3, 'policy', 'validate', files);
  });
});

describe('mandate policy publish | show | history', () => {
  it('publishes signed, numbered versions; show verifies and prints the one in force', async () => {
    const { home, files, authority } = await authorityHome();
    await fails(home, 'ERR_BUNDLE_NOT_FOUND', 6, 'policy', 'show');
    const policies = file(files, 'p.cedar', POLICIES);
    // Without --schema or --catalog: the default schema, and a warning, since these policies
    // apply to callTool and that schema declares no tool arguments.
    const first = await run('--home', home, '--json', 'policy', 'publish', policies);
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(
      /^warning: published with the default Mandate schema, which declares no tool arguments: every `callTool` with arguments will be denied .*--catalog FILE\.json/,
    );
    const v1 = json(first) as unknown as Published;
    expect(v1).toMatchObject({ version: 1, issuer: authority, schema: 'mandate', policies: 2 });
    expect(v1.hash).toMatch(/^[0-9a-f]{64}$/);
    const catalog = file(files, 'catalog.json', JSON.stringify({ tools: CATALOG }));
    const v2 = await ok<Published>(home, 'policy', 'publish', policies, '--catalog', catalog);
    expect(v2).toMatchObject({ version: 2, schema: `mandate + catalog ${catalog}` });
    expect(v2.hash).not.toBe(v1.hash);

    const shown = await ok(home, 'policy', 'show');
    expect(shown).toMatchObject({
      version: 2,
      hash: v2.hash,
      issuer: authority,
      createdAt: v2.createdAt,
      text: POLICIES,
      policies: [
        { id: 'policy0', effect: 'permit', annotations: { id: 'call-tools' } },
        { id: 'policy1', effect: 'forbid' },
      ],
    });
    expect((await ok(home, 'policy', 'show', '1')).hash).toBe(v1.hash);
    await fails(home, 'ERR_BUNDLE_NOT_FOUND', 6, 'policy', 'show', '7');
    await fails(home, 'ERR_ARGUMENT_INVALID', 3, 'policy', 'show', 'x');
    const history = await ok<{ bundles: { version: number; hash: string }[] }>(
      home,
      'policy',
      'history',
    );
    expect(history.bundles.map((b) => [b.version, b.hash])).toEqual([
      [1, v1.hash],
      [2, v2.hash],
    ]);
    const human = await run('--home', home, 'policy', 'show');
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`hash:     ${v2.hash}`);
    expect(human.stdout).toMatch(
      /\n {2}policy1 {2}forbid {2}@\S+.*@id\("no-human-impersonation"\)/,
    );
    expect(human.stdout).toContain('@approval("a person must confirm")\nforbid(');
  });

  it('publishes nothing when the policies fail, or the authority is unknown, not local, untrusted or revoked', async () => {
    const { home, files } = await authorityHome();
    const good = file(files, 'p.cedar', POLICIES);
    await fails(
      home,
      'ERR_POLICY_SYNTAX',
      3,
      'policy',
      'publish',
      file(files, 'bad.cedar', 'forbid('),
    );
    await fails(
      home,
      'ERR_POLICY_UNSUPPORTED',
      11,
      'policy',
      'publish',
      file(
        files,
        'ext.cedar',
        'permit(principal, action, resource) when { datetime("2024-10-15") < datetime("2024-10-16") };',
      ),
    );
    await fails(home, 'ERR_IDENTITY_NOT_FOUND', 6, 'policy', 'publish', good, '--authority', 'x');
    await ok(home, 'identity', 'create', '--name', 'bob');
    await fails(
      home,
      'ERR_BUNDLE_UNTRUSTED_ISSUER',
      4,
      'policy',
      'publish',
      good,
      '--authority',
      'bob',
    );
    expect((await ok<{ bundles: unknown[] }>(home, 'policy', 'history')).bundles).toEqual([]);
    await ok(home, 'revoke', 'authority');
    await fails(home, 'ERR_REVOKED', 5, 'policy', 'publish', good);
    expect((await ok<{ bundles: unknown[] }>(home, 'policy', 'history')).bundles).toEqual([]);
  });

  it('refuses, on load, a bundle edited in the database', async () => {
    const { home, files } = await authorityHome();
    const mandate = file(files, 'mandate.cedarschema', MANDATE_CEDAR_SCHEMA);
    const published = await run(
      '--home',
      home,
      '--json',
      'policy',
      'publish',
      file(files, 'p.cedar', POLICIES),
      '--schema',
      mandate,
    );
    expect(published.code).toBe(0);
    const db = new Database(join(home, 'mandate.db'));
    const { bytes } = db.prepare('SELECT bytes FROM policy_bundles WHERE version = 1').get() as {
      bytes: Buffer;
    };
    // `permit(principal is Agent` → `permit(principal is Agenu`: a new meaning, same length.
    const at = bytes.indexOf('is Agent');
    expect(at).toBeGreaterThan(0);
    const edited = Buffer.from(bytes);
    edited[at + 7] = 'u'.charCodeAt(0);
    db.exec('DROP TRIGGER policy_bundles_append_only');
    // The bytes alone: the row no longer matches its hash.
    db.prepare('UPDATE policy_bundles SET bytes = ? WHERE version = 1').run(edited);
    await fails(home, 'ERR_STORE_CORRUPT', 1, 'policy', 'show');
    // The hash fixed up too: the authority's signature does not cover the edit.
    db.prepare('UPDATE policy_bundles SET hash = ? WHERE version = 1').run(toHex(sha256(edited)));
    await fails(home, 'ERR_BUNDLE_SIGNATURE_INVALID', 4, 'policy', 'show');
    await fails(home, 'ERR_BUNDLE_SIGNATURE_INVALID', 4, 'policy', 'export');
    db.close();
  });
});

describe('mandate policy export | import', () => {
  it('carries a bundle to a home that trusts its authority, newer versions only', async () => {
    const a = await authorityHome();
    const policies = file(a.files, 'p.cedar', POLICIES);
    const catalog = file(a.files, 'catalog.json', JSON.stringify(CATALOG));
    await ok(a.home, 'policy', 'publish', policies, '--catalog', catalog);
    await ok(a.home, 'policy', 'publish', policies, '--catalog', catalog);
    const v1 = join(a.files, 'v1.bundle');
    const v2 = join(a.files, 'v2.bundle');
    expect((await ok(a.home, 'policy', 'export', '1', '--out', v1)).file).toBe(v1);
    const exported = await ok<{ bundle: string; version: number }>(a.home, 'policy', 'export');
    expect(exported.version).toBe(2);
    writeFileSync(v2, exported.bundle);

    // Another home: it does not trust `a`'s authority until told to.
    const b = dir();
    await fails(b, 'ERR_BUNDLE_UNTRUSTED_ISSUER', 4, 'policy', 'import', v2);
    await ok(b, 'trust', 'add', a.changeHistory);
    expect((await ok(b, 'policy', 'import', v2)).version).toBe(2);
    // Older, or the same again: refused, and version 2 stays in force.
    await fails(b, 'ERR_BUNDLE_NOT_NEWER', 7, 'policy', 'import', v1);
    await fails(b, 'ERR_BUNDLE_NOT_NEWER', 7, 'policy', 'import', v2);
    expect((await ok(b, 'policy', 'show')).version).toBe(2);
    // A bundle edited on the way.
    // A bundle edited on the way: `call-tools` → `call-toolz` in the policy text.
    const hex = (text: string) => Buffer.from(text).toString('hex');
    const tampered = exported.bundle.replace(hex('call-tools'), hex('call-toolz'));
    expect(tampered).not.toBe(exported.bundle);
    await fails(b, 'ERR_BUNDLE_SIGNATURE_INVALID', 4, 'policy', 'import', tampered);
    await fails(b, 'ERR_BUNDLE_MALFORMED', 3, 'policy', 'import', 'abcd');
  });
});

describe('mandate policy eval', () => {
  const ENTITIES = JSON.stringify([
    { uid: { type: 'Agent', id: 'a' }, attrs: { level: 3 }, parents: [] },
    { uid: { type: 'Agent', id: 'low' }, attrs: { level: 1 }, parents: [] },
    { uid: { type: 'Tool', id: 't' }, attrs: {}, parents: [] },
  ]);
  const request = (principal: string, context: Record<string, unknown>) =>
    JSON.stringify({
      principal: { type: 'Agent', id: principal },
      action: { type: 'Action', id: 'callTool' },
      resource: { type: 'Tool', id: 't' },
      context,
    });

  it('decides one request: exit 0 on allow, 5 on deny, with the determining policies', async () => {
    const files = dir();
    const args = [
      'policy',
      'eval',
      '--policies',
      file(files, 'p.cedar', CUSTOM_POLICIES),
      '--schema',
      file(files, 's.cedarschema', CUSTOM_SCHEMA),
      '--entities',
      file(files, 'e.json', ENTITIES),
      '--request',
    ];
    const allow = await run('--json', ...args, file(files, 'r1.json', request('a', { amount: 5 })));
    expect(allow.code).toBe(0);
    expect(JSON.parse(allow.stdout)).toEqual({
      decision: 'allow',
      policies: ['policy0'],
      errors: [],
    });
    const deny = await run(
      '--json',
      ...args,
      file(files, 'r2.json', request('a', { amount: 500 })),
    );
    expect(deny.code).toBe(5);
    expect(deny.stderr).toBe('');
    expect(JSON.parse(deny.stdout)).toEqual({
      decision: 'deny',
      policies: ['policy1'],
      errors: [],
    });
    const human = await run(...args, file(files, 'r3.json', request('low', { amount: 5 })));
    expect(human).toMatchObject({ code: 5, stdout: 'DENY\n' });
  });

  it('with --requests prints one JSON line per line, an error line for a bad one, and denies on evaluation errors', async () => {
    const files = dir();
    // Without a schema nothing checks that `context.amount` exists: a missing one is an
    // evaluation error, which denies (Cedar would skip the policy and allow).
    const lines = [
      request('a', { amount: 5 }),
      request('a', {}),
      'not json',
      '',
      JSON.stringify({ principal: { type: 'Agent', id: 'a' } }),
      request('low', { amount: 5 }),
    ];
    const r = await run(
      'policy',
      'eval',
      '--policies',
      file(files, 'p.cedar', CUSTOM_POLICIES),
      '--entities',
      file(files, 'e.json', ENTITIES),
      '--requests',
      file(files, 'r.jsonl', `${lines.join('\n')}\n`),
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const out = r.stdout.split('\n');
    expect(out.pop()).toBe('');
    const parsed = out.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed).toHaveLength(lines.length);
    expect(parsed[0]).toEqual({ decision: 'allow', policies: ['policy0'], errors: [] });
    expect(parsed[1]).toMatchObject({
      decision: 'deny',
      policies: [],
      errors: [{ policy: 'policy1' }],
    });
    for (const i of [2, 3, 4])
      expect(parsed[i]).toMatchObject({ error: { code: 'ERR_POLICY_INPUT_INVALID' } });
    expect(parsed[5]).toEqual({ decision: 'deny', policies: [], errors: [] });
  });

  it('refuses bad inputs with a typed error', async () => {
    const files = dir();
    const home = dir();
    const policies = file(files, 'p.cedar', CUSTOM_POLICIES);
    const entities = file(files, 'e.json', ENTITIES);
    const one = file(files, 'r.json', request('a', { amount: 1 }));
    const base = ['policy', 'eval', '--policies', policies, '--entities', entities];
    await fails(home, 'ERR_ARGUMENT_INVALID', 3, ...base);
    await fails(home, 'ERR_ARGUMENT_INVALID', 3, ...base, '--request', one, '--requests', one);
    await fails(
      home,
      'ERR_POLICY_INPUT_INVALID',
      3,
      ...base,
      '--request',
      file(files, 'bad.json', '{"principal":1}'),
    );
    await fails(
      home,
      'ERR_POLICY_INPUT_INVALID',
      3,
      'policy',
      'eval',
      '--policies',
      policies,
      '--entities',
      file(files, 'bad-entities.json', '{}'),
      '--request',
      one,
    );
    await fails(
      home,
      'ERR_POLICY_SYNTAX',
      3,
      'policy',
      'eval',
      '--policies',
      file(files, 'bad.cedar', 'permit('),
      '--entities',
      entities,
      '--request',
      one,
    );
  });
});
