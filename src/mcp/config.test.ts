import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { parseGatewayConfig, parseGatewayConfigText } from './config.js';
import { mergeUpstreamTools } from './catalog.js';
import { Upstream, type UpstreamTool } from './upstream.js';

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

describe('Upstream with a lease (gate 3)', () => {
  it('does not start without a broker: ERR_MCP_LEASE_UNAVAILABLE', async () => {
    const config = parseGatewayConfig({
      mcpServers: {
        pay: {
          command: 'never-run',
          mandate: { lease: { secret: 'stripe-refunds', env: 'STRIPE_KEY' } },
        },
      },
    });
    const upstream = new Upstream(config.upstreams[0]!, {
      restart: config.restart,
      random: () => 0.5,
    });
    await expect(upstream.start()).rejects.toMatchObject({ code: 'ERR_MCP_LEASE_UNAVAILABLE' });
    expect(upstream.state).toBe('idle');
  });
});
