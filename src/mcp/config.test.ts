import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { silentLogger } from '../core/internal.js';
import { parseGatewayConfig, parseGatewayConfigText } from './config.js';
import { mergeUpstreamTools } from './catalog.js';
import type { UpstreamTool } from './upstream.js';
import { leasedUpstreamConfig } from './leases.js';

function refusal(work: () => unknown): { code: string; message: string } {
  try {
    work();
  } catch (error) {
    if (isMandateError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('no error');
}

describe('parseGatewayConfig', () => {
  it('accepts the mcpServers format with Mandate keys, and fills the defaults', () => {
    const config = parseGatewayConfig({
      mcpServers: {
        fs: { command: 'npx', args: ['-y', 'x'], env: { TOKEN_FILE: '/run/t' } },
        remote: {
          type: 'http',
          url: 'https://tools.example.com/mcp',
          headers: { 'X-Team': 'support' },
          mandate: { prefix: 'remote_', timeoutMs: 5000 },
        },
      },
      mandate: { listen: '127.0.0.1:4400', identity: 'gateway' },
    });
    expect(config.upstreams).toMatchObject([
      { kind: 'stdio', name: 'fs', command: 'npx', args: ['-y', 'x'], mandate: { prefix: '' } },
      { kind: 'http', name: 'remote', mandate: { prefix: 'remote_', timeoutMs: 5000 } },
    ]);
    expect(config).toMatchObject({
      listen: '127.0.0.1:4400',
      identity: 'gateway',
      callTimeoutMs: 30_000,
      maxMessageBytes: 1024 * 1024,
      restart: { initialDelayMs: 250, maxDelayMs: 30_000 },
    });
    expect(config.upstreams[0]!.mandate.timeoutMs).toBe(30_000);
  });

  it('names the key of every refusal', () => {
    const cases: [unknown, string, RegExp][] = [
      [{}, 'ERR_MCP_CONFIG_INVALID', /`mcpServers` is required/],
      [{ mcpServers: {} }, 'ERR_MCP_CONFIG_INVALID', /`mcpServers`/],
      [
        { mcpServers: { fs: { command: 'x', mandate: { prefx: 'a' } } } },
        'ERR_MCP_CONFIG_INVALID',
        /`mcpServers\.fs\.mandate\.prefx` is not a known key/,
      ],
      [
        { mcpServers: { fs: { command: 'x', mandate: { prefix: 'a b' } } } },
        'ERR_MCP_CONFIG_INVALID',
        /`mcpServers\.fs\.mandate\.prefix`/,
      ],
      [
        { mcpServers: { fs: { command: 'x', url: 'http://a' } } },
        'ERR_MCP_CONFIG_INVALID',
        /`mcpServers\.fs` needs exactly one of/,
      ],
      [{ mcpServers: { 'f s': { command: 'x' } } }, 'ERR_MCP_CONFIG_INVALID', /`mcpServers\.f s`/],
      [
        { mcpServers: { fs: { command: 'x', args: [1] } } },
        'ERR_MCP_CONFIG_INVALID',
        /`mcpServers\.fs\.args\.0`/,
      ],
      [
        { mcpServers: { r: { url: 'http://a', env: { A: 'b' } } } },
        'ERR_MCP_CONFIG_INVALID',
        /`mcpServers\.r\.env` is for a stdio server/,
      ],
      [
        { mcpServers: { r: { url: 'http://u:p@a.example' } } },
        'ERR_MCP_CONFIG_URL',
        /carries credentials/,
      ],
      [{ mcpServers: { r: { url: 'file:///etc/passwd' } } }, 'ERR_MCP_CONFIG_URL', /http/],
      [{ mcpServers: { r: { type: 'stdio', url: 'http://a' } } }, 'ERR_MCP_CONFIG_TYPE', /stdio/],
      [
        { mcpServers: { fs: { command: 'x', mandate: { lease: { secret: 's' } } } } },
        'ERR_MCP_CONFIG_INVALID',
        /`mcpServers\.fs\.mandate\.lease\.env` is required/,
      ],
      [
        { mcpServers: { fs: { command: 'x' } }, mandate: { maxMessageBytes: 10 } },
        'ERR_MCP_CONFIG_INVALID',
        /`mandate\.maxMessageBytes`/,
      ],
    ];
    for (const [value, code, message] of cases) {
      const r = refusal(() => parseGatewayConfig(value));
      expect(r.code, JSON.stringify(value)).toBe(code);
      expect(r.message, JSON.stringify(value)).toMatch(message);
    }
  });

  it('refuses a value spawn or fetch would refuse by quoting it (a NUL, a control character in a header), naming only its key', () => {
    const secret = 'Bearer SUPERSECRET';
    const cases: [unknown, RegExp][] = [
      [
        { mcpServers: { r: { url: 'http://a', headers: { Authorization: `${secret}\u0000x` } } } },
        /`mcpServers\.r\.headers\.Authorization` holds a character a header value cannot/,
      ],
      [
        { mcpServers: { r: { url: 'http://a', headers: { Authorization: `${secret}\nx` } } } },
        /`mcpServers\.r\.headers\.Authorization` holds a character/,
      ],
      [
        { mcpServers: { fs: { command: 'x', env: { TOKEN: `${secret}\u0000` } } } },
        /`mcpServers\.fs\.env\.TOKEN` holds a NUL character/,
      ],
      [
        { mcpServers: { fs: { command: 'x', args: ['--token', `${secret}\u0000`] } } },
        /`mcpServers\.fs\.args\.1` holds a NUL character/,
      ],
      [{ mcpServers: { fs: { command: 'x\u0000' } } }, /`mcpServers\.fs\.command` holds a NUL/],
    ];
    for (const [value, message] of cases) {
      const r = refusal(() => parseGatewayConfig(value));
      expect(r.code).toBe('ERR_MCP_CONFIG_INVALID');
      expect(r.message).toMatch(message);
      expect(r.message).not.toContain('SUPERSECRET');
    }
    // A header value with a tab, spaces and Latin-1 text is fine.
    expect(() =>
      parseGatewayConfig({
        mcpServers: { r: { url: 'http://a', headers: { 'X-Note': 'a\tb c é' } } },
      }),
    ).not.toThrow();
  });

  it('refuses text that is not JSON or names a key twice', () => {
    expect(refusal(() => parseGatewayConfigText('{')).code).toBe('ERR_MCP_CONFIG_INVALID');
    expect(
      refusal(() => parseGatewayConfigText('{"mcpServers":{"fs":{"command":"a","command":"b"}}}'))
        .code,
    ).toBe('ERR_MCP_CONFIG_INVALID');
  });
});

describe('mergeUpstreamTools', () => {
  const tool = (server: string, name: string, prefix = ''): UpstreamTool => ({
    name: `${prefix}${name}`,
    upstreamName: name,
    server,
    tool: { name, inputSchema: { type: 'object' } },
  });

  it('refuses a name two upstreams offer, and accepts it once one is prefixed', () => {
    const r = refusal(() => mergeUpstreamTools([[tool('a', 'search')], [tool('b', 'search')]]));
    expect(r.code).toBe('ERR_MCP_TOOL_CLASH');
    expect(r.message).toMatch(/`a` and `b`.*mandate\.prefix/);
    const merged = mergeUpstreamTools([[tool('a', 'search')], [tool('b', 'search', 'b_')]]);
    expect([...merged.byName.keys()].sort()).toEqual(['b_search', 'search']);
    expect(merged.descriptors.map((d) => `${d.server}/${d.name}`).sort()).toEqual([
      'a/search',
      'b/b_search',
    ]);
  });
});

describe('an upstream with a lease (gate 3)', () => {
  const secret = new TextEncoder().encode('sk_live_0123456789');
  const reader = { read: () => Promise.resolve(Uint8Array.from(secret)) };

  it('is refused without a broker: ERR_MCP_LEASE_UNAVAILABLE', async () => {
    const config = parseGatewayConfig({
      mcpServers: {
        pay: {
          command: 'never-run',
          mandate: { lease: { secret: 'stripe-refunds', env: 'STRIPE_KEY' } },
        },
      },
    });
    await expect(
      leasedUpstreamConfig(config.upstreams[0]!, undefined, silentLogger),
    ).rejects.toMatchObject({ code: 'ERR_MCP_LEASE_UNAVAILABLE' });
  });

  it('gets the templated secret as its environment variable or header (replacing one configured)', async () => {
    const config = parseGatewayConfig({
      mcpServers: {
        pay: { command: 'x', env: { A: '1' }, mandate: { lease: { secret: 's', env: 'KEY' } } },
        web: {
          url: 'http://a.example/mcp',
          headers: { authorization: 'operator', 'X-Team': 't' },
          mandate: { lease: { secret: 's', header: 'Authorization', template: 'Bearer {}' } },
        },
      },
    });
    const [pay, web] = config.upstreams;
    const stdio = (await leasedUpstreamConfig(pay!, reader, silentLogger)).config;
    expect(stdio.kind === 'stdio' && stdio.env).toEqual({ A: '1', KEY: 'sk_live_0123456789' });
    const http = (await leasedUpstreamConfig(web!, reader, silentLogger)).config;
    expect(http.kind === 'http' && http.headers).toEqual({
      'X-Team': 't',
      Authorization: 'Bearer sk_live_0123456789',
    });
    // The configuration itself never holds the value.
    expect(JSON.stringify(config.upstreams.map((u) => ({ ...u, url: null })))).not.toContain(
      'sk_live',
    );
  });

  it('refuses a template without exactly one `{}`, and a secret unfit to inject', async () => {
    const r = refusal(() =>
      parseGatewayConfig({
        mcpServers: {
          web: {
            url: 'http://a.example/mcp',
            mandate: { lease: { secret: 's', header: 'Authorization', template: 'Bearer' } },
          },
        },
      }),
    );
    expect(r.code).toBe('ERR_MCP_CONFIG_INVALID');
    expect(r.message).toMatch(/lease\.template/);
    const config = parseGatewayConfig({
      mcpServers: { pay: { command: 'x', mandate: { lease: { secret: 's', env: 'KEY' } } } },
    });
    for (const bad of ['short', 'line\nbreak-in-it'])
      await expect(
        leasedUpstreamConfig(
          config.upstreams[0]!,
          { read: () => Promise.resolve(new TextEncoder().encode(bad)) },
          silentLogger,
        ),
      ).rejects.toMatchObject({ code: 'ERR_PROXY_SECRET_UNFIT' });
  });
});
