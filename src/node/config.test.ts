import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isMandateError } from '../core/index.js';
import { envNameOf, loadNodeConfig, type NodeConfigLayers } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'mandate-node-config-'));
let files = 0;
function file(value: unknown): string {
  const path = join(dir, `config-${files++}.json`);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
}

/** The code and message of what `loadNodeConfig(layers)` throws. */
function refusal(layers: NodeConfigLayers): { code: string; message: string } {
  try {
    loadNodeConfig(layers);
  } catch (error) {
    if (isMandateError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('accepted');
}

const base = { identity: 'bob', listen: '127.0.0.1:4000' };

describe('loadNodeConfig', () => {
  it('fills the defaults of the schema', () => {
    expect(loadNodeConfig({ flags: base })).toEqual({
      ...base,
      credentials: [],
      services: ['echo'],
      broker: {},
      admin: { listen: '127.0.0.1:0', as: 'authority', authority: 'authority' },
      shutdownTimeoutMs: 10_000,
    });
    const withAuthority = loadNodeConfig({
      flags: { ...base, authority: { route: '/ip4/127.0.0.1/tcp/4200' } },
    });
    expect(withAuthority.authority).toEqual({
      route: '/ip4/127.0.0.1/tcp/4200',
      refreshLeadSeconds: 60,
      maxStalenessSeconds: 10,
    });
  });

  it('layers defaults < file < environment < flags, key by key', () => {
    const config = loadNodeConfig({
      file: file({
        identity: 'from-file',
        listen: '127.0.0.1:1',
        services: ['relay', 'echo'],
        authority: { route: '/ip4/127.0.0.1/tcp/1', refreshLeadSeconds: 30 },
      }),
      env: {
        MANDATE_LISTEN: '127.0.0.1:2',
        MANDATE_AUTHORITY_MAX_STALENESS_SECONDS: '7',
        MANDATE_CREDENTIALS: 'a.cred, b.cred',
        MANDATE_HOME: '/not/a/node/key',
      },
      flags: { listen: '127.0.0.1:3', authority: { refreshLeadSeconds: 20 } },
    });
    expect(config.identity).toBe('from-file');
    expect(config.listen).toBe('127.0.0.1:3');
    expect(config.services).toEqual(['relay', 'echo']);
    expect(config.credentials).toEqual(['a.cred', 'b.cred']);
    expect(config.authority).toEqual({
      route: '/ip4/127.0.0.1/tcp/1',
      refreshLeadSeconds: 20,
      maxStalenessSeconds: 7,
    });
  });

  it('the highest layer that sets a key wins (property)', () => {
    const seconds = fc.option(fc.integer({ min: 1, max: 86_400 }), { nil: undefined });
    fc.assert(
      fc.property(seconds, seconds, seconds, (inFile, inEnv, inFlags) => {
        const config = loadNodeConfig({
          file: file({ ...base, ...(inFile === undefined ? {} : { shutdownTimeoutMs: inFile }) }),
          env: inEnv === undefined ? {} : { MANDATE_SHUTDOWN_TIMEOUT_MS: String(inEnv) },
          flags: inFlags === undefined ? {} : { shutdownTimeoutMs: inFlags },
        });
        expect(config.shutdownTimeoutMs).toBe(inFlags ?? inEnv ?? inFile ?? 10_000);
      }),
      { numRuns: 50 },
    );
  });

  it('refuses unknown keys, naming the key and where it came from', () => {
    const unknown = refusal({ file: file({ ...base, lisen: 'x' }) });
    expect(unknown.code).toBe('ERR_NODE_CONFIG_INVALID');
    expect(unknown.message).toContain('`lisen` (from the config file) is not a known key');
    const nested = refusal({
      file: file({ ...base, authority: { route: '/ip4/1.2.3.4/tcp/1', ttl: 1 } }),
    });
    expect(nested.message).toContain('`authority.ttl`');
  });

  it('refuses values of the wrong type or range, naming the key', () => {
    const wrongType = refusal({ file: file({ ...base, shutdownTimeoutMs: '10s' }) });
    expect(wrongType).toMatchObject({ code: 'ERR_NODE_CONFIG_INVALID' });
    expect(wrongType.message).toContain('`shutdownTimeoutMs`');
    const service = refusal({ file: file({ ...base, services: ['echo', 'teleporter'] }) });
    expect(service.message).toContain('`services`');
    const env = refusal({ flags: base, env: { MANDATE_SHUTDOWN_TIMEOUT_MS: 'soon' } });
    expect(env.code).toBe('ERR_NODE_CONFIG_INVALID');
    expect(env.message).toContain('MANDATE_SHUTDOWN_TIMEOUT_MS');
    const route = refusal({
      flags: base,
      env: { MANDATE_RELAY_ROUTE: 'nowhere', MANDATE_RELAY_NAME: 'b' },
    });
    expect(route.message).toContain('`relay.route` (from MANDATE_RELAY_ROUTE)');
  });

  it('refuses what the flags got wrong as an argument, naming the flag', () => {
    const lead = refusal({
      flags: { ...base, authority: { refreshLeadSeconds: 6 } },
      flagNames: { 'authority.route': '--authority' },
    });
    expect(lead.code).toBe('ERR_ARGUMENT_INVALID');
    expect(lead.message).toContain('`--authority` is required');
    const listen = refusal({
      flags: { ...base, listen: 'nohost' },
      flagNames: { listen: '--listen' },
    });
    expect(listen).toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
    expect(listen.message).toContain('`--listen`');
  });

  it('requires the identity and the listen address', () => {
    expect(refusal({ flags: { listen: '127.0.0.1:1' } }).message).toContain(
      '`identity` is required',
    );
    expect(refusal({ file: file({ identity: 'bob' }) }).message).toContain('`listen`');
  });

  it('serves health on loopback only', () => {
    expect(
      loadNodeConfig({ flags: { ...base, health: { listen: '127.0.0.1:0' } } }).health,
    ).toEqual({
      listen: '127.0.0.1:0',
    });
    const open = refusal({ file: file({ ...base, health: { listen: '0.0.0.0:9000' } }) });
    expect(open.message).toContain('`health.listen`');
  });

  it('takes the admin service options from every layer, and refuses a bad address naming it', () => {
    const config = loadNodeConfig({
      defaults: { identity: 'authority', listen: '127.0.0.1:0', admin: { as: 'ops' } },
      file: file({ services: ['admin'], admin: { authority: 'root' } }),
      env: { MANDATE_ADMIN_LISTEN: '127.0.0.1:8080' },
    });
    expect(config.identity).toBe('authority');
    expect(config.admin).toEqual({ listen: '127.0.0.1:8080', as: 'ops', authority: 'root' });
    const bad = refusal({ flags: base, env: { MANDATE_ADMIN_LISTEN: 'anywhere' } });
    expect(bad.code).toBe('ERR_NODE_CONFIG_INVALID');
    expect(bad.message).toContain('`admin.listen` (from MANDATE_ADMIN_LISTEN)');
    const flag = refusal({
      flags: { ...base, admin: { listen: 'anywhere' } },
      flagNames: { 'admin.listen': '--listen' },
    });
    expect(flag).toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
    expect(flag.message).toContain('`--listen`');
    // A command's defaults are the lowest layer: the file wins over them.
    expect(
      loadNodeConfig({ defaults: { identity: 'up', listen: '127.0.0.1:0' }, file: file(base) })
        .identity,
    ).toBe('bob');
  });

  it('serves the admin API on loopback only, refusing a wildcard or outward address from every layer', () => {
    for (const listen of [
      '127.0.0.1:0',
      '127.0.0.1:8080',
      'localhost:8080',
      '::1:0',
      '[::1]:0',
      '[::1]:8080',
    ])
      expect(loadNodeConfig({ flags: { ...base, admin: { listen } } }).admin.listen).toBe(listen);
    for (const listen of ['0.0.0.0:0', '0.0.0.0:8080', '0:8080', '[::]:8080', '10.0.0.1:8080']) {
      const fromFile = refusal({ file: file({ ...base, admin: { listen } }) });
      expect(fromFile.code).toBe('ERR_NODE_CONFIG_INVALID');
      expect(fromFile.message).toContain(
        `\`admin.listen\` (from the config file) must be on loopback (127.0.0.1, ::1, localhost), not \`${listen}\``,
      );
      const fromEnv = refusal({ flags: base, env: { MANDATE_ADMIN_LISTEN: listen } });
      expect(fromEnv.code).toBe('ERR_NODE_CONFIG_INVALID');
      expect(fromEnv.message).toContain(
        '`admin.listen` (from MANDATE_ADMIN_LISTEN) must be on loopback',
      );
      const fromFlag = refusal({
        flags: { ...base, admin: { listen } },
        flagNames: { 'admin.listen': '--listen' },
      });
      expect(fromFlag.code).toBe('ERR_ARGUMENT_INVALID');
      expect(fromFlag.message).toContain('`--listen` must be on loopback');
    }
  });

  it('refuses a missing, non-regular, over-size, non-JSON, duplicate-key or non-object file', () => {
    expect(refusal({ file: join(dir, 'absent.json') }).code).toBe('ERR_NODE_CONFIG_NOT_FOUND');
    expect(refusal({ file: file('{"identity": ') }).code).toBe('ERR_NODE_CONFIG_INVALID');
    expect(refusal({ file: file('{"identity": "a", "identity": "b"}') }).code).toBe(
      'ERR_NODE_CONFIG_INVALID',
    );
    expect(refusal({ file: file([base]) }).code).toBe('ERR_NODE_CONFIG_INVALID');
    const fifo = join(dir, 'config.pipe');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const path of ['/dev/zero', fifo, dir]) {
      const device = refusal({ file: path, flags: base });
      expect(device.code).toBe('ERR_NODE_CONFIG_INVALID');
      expect(device.message).toBe(`config file \`${path}\` is not a regular file`);
    }
    expect(refusal({ file: file(' '.repeat(64 * 1024 + 1)) }).message).toContain('is larger than');
    for (const top of ['null', '"x"', '[]', '1', 'true'])
      expect(refusal({ file: file(top), flags: base }).message).toContain(
        'must hold a JSON object',
      );
  });

  it('refuses `__proto__`, `constructor` and other prototype names as unknown keys, touching no prototype', () => {
    const before = Object.getOwnPropertyNames(Object.prototype);
    for (const text of [
      '{"__proto__":{"admin":{"listen":"0.0.0.0:0"}}}',
      '{"__proto__":{"x":1}}',
      '{"__proto__":{}}',
      '{"admin":{"__proto__":{"listen":"0.0.0.0:0"}}}',
    ]) {
      const refused = refusal({ file: file(text), flags: base });
      expect(refused.code).toBe('ERR_NODE_CONFIG_INVALID');
      expect(refused.message).toMatch(
        /`(admin\.)?__proto__` \(from the config file\) is not a known key/,
      );
    }
    for (const key of ['constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
      const refused = refusal({ file: file(`{"${key}":{}}`), flags: base });
      expect(refused.code).toBe('ERR_NODE_CONFIG_INVALID');
      expect(refused.message).toContain(`\`${key}\` (from the config file) is not a known key`);
      const nested = refusal({ file: file(`{"broker":{"${key}":"x"}}`), flags: base });
      expect(nested.message).toContain(`\`broker.${key}\` (from the config file)`);
    }
    // From the flags (a command's own keys) and a command's defaults, too.
    const flags: Record<string, unknown> = { ...base };
    Object.defineProperty(flags, '__proto__', { value: { x: 1 }, enumerable: true });
    expect(refusal({ flags }).message).toContain('`__proto__` is not a known key');
    expect(refusal({ flags: { ...base, constructor: 1 } }).message).toContain(
      '`constructor` is not a known key',
    );
    expect(Object.getOwnPropertyNames(Object.prototype)).toEqual(before);
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
  });

  it('no config file text changes a prototype or fails other than with a config refusal (property)', () => {
    const path = join(dir, 'property.json');
    const prototypes = [Object.prototype, Array.prototype, Function.prototype];
    type Descriptors = Record<PropertyKey, Record<string, unknown> | undefined>;
    const snapshot = () =>
      prototypes.map((proto) => Object.getOwnPropertyDescriptors(proto) as Descriptors);
    const before = snapshot();
    // The same keys, each with the very same value or accessors.
    const unchanged = () =>
      snapshot().every((now, i) => {
        const then = before[i]!;
        const keys = Reflect.ownKeys(now);
        return (
          keys.length === Reflect.ownKeys(then).length &&
          keys.every((key) =>
            (['value', 'get', 'set'] as const).every((part) =>
              Object.is(now[key]?.[part], then[key]?.[part]),
            ),
          )
        );
      });
    const key = fc.oneof(
      fc.constantFrom(
        '__proto__',
        'constructor',
        'prototype',
        'toString',
        'hasOwnProperty',
        'valueOf',
        'identity',
        'listen',
        'services',
        'admin',
        'broker',
        'health',
        'authority',
        'x',
      ),
      fc.string({ maxLength: 8 }),
    );
    const { tree } = fc.letrec<{ tree: unknown }>((tie) => ({
      tree: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.boolean(), fc.constant(null)),
        fc.array(tie('tree'), { maxLength: 3 }),
        fc.uniqueArray(fc.tuple(key, tie('tree')), { maxLength: 4, selector: ([k]) => k }),
      ),
    }));
    // JSON text written by hand: a `__proto__` key stays a key (JSON.stringify of a built object
    // could not say it), and the file may also carry a valid identity and address.
    const toText = (value: unknown): string =>
      Array.isArray(value) && value.every((item) => Array.isArray(item) && item.length === 2)
        ? `{${value.map(([k, v]) => `${JSON.stringify(k)}:${toText(v)}`).join(',')}}`
        : Array.isArray(value)
          ? `[${value.map(toText).join(',')}]`
          : JSON.stringify(value);
    const text = fc.oneof(
      fc.json({ maxDepth: 4 }),
      tree.map(toText),
      fc
        .uniqueArray(fc.tuple(key, tree), { maxLength: 4, selector: ([k]) => k })
        .filter((pairs) => pairs.every(([k]) => k !== 'identity' && k !== 'listen'))
        .map((pairs) => toText([['identity', 'bob'], ['listen', '127.0.0.1:0'], ...pairs])),
    );
    fc.assert(
      fc.property(text, (content) => {
        writeFileSync(path, content);
        try {
          loadNodeConfig({ file: path });
        } catch (error) {
          if (!isMandateError(error)) throw error;
          expect(error.code).toBe('ERR_NODE_CONFIG_INVALID');
        }
        expect(unchanged()).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('names environment variables after the keys', () => {
    expect(envNameOf('authority.refreshLeadSeconds')).toBe(
      'MANDATE_AUTHORITY_REFRESH_LEAD_SECONDS',
    );
    expect(envNameOf('health.listen')).toBe('MANDATE_HEALTH_LISTEN');
    expect(envNameOf('shutdownTimeoutMs')).toBe('MANDATE_SHUTDOWN_TIMEOUT_MS');
  });
});
