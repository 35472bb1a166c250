import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { json, run, type Run } from './cli.js';
import { FILESYSTEM_SERVER, FS_POLICIES } from './mcp-world.js';
import { startMandate } from './processes.js';
import { repoRoot } from './vectors.js';

// The MCP gateway from the CLI, across processes: a home driven by `mandate` commands (the
// operator's set-up, the signed catalog and policies), and an unmodified MCP client (the SDK's
// Client over StdioClientTransport) that launches `mandate mcp connect` on it. Call
// `closeMcpClients` in `afterEach` (before `killChildren`).

const clients: Client[] = [];

/** Closes every client {@link connectMcpCli} opened (each ends its `mcp connect` process). */
export async function closeMcpClients(): Promise<void> {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
}

/** A home in a fresh temporary folder, driven by in-process `mandate --home DIR --json` runs. */
export class CliHome {
  readonly dir: string;
  constructor(prefix = 'mandate-cli-mcp') {
    this.dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  }
  path(name: string): string {
    return join(this.dir, name);
  }
  run(...argv: string[]): Promise<Run> {
    return run('--home', this.dir, '--json', ...argv);
  }
  async ok<T = Record<string, unknown>>(...argv: string[]): Promise<T> {
    const r = await this.run(...argv);
    expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
    return json(r) as T;
  }
  /** `gateway.json` in the home: the reference filesystem server on `files` as upstream `fs`. */
  writeFsGatewayConfig(files: string): string {
    const file = this.path('gateway.json');
    writeFileSync(
      file,
      JSON.stringify({
        mcpServers: { fs: { command: process.execPath, args: [FILESYSTEM_SERVER, files] } },
      }),
    );
    return file;
  }
  /** A gateway config over the filesystem server on `files`; its catalog signed into the bundle. */
  async publishFsCatalog(files: string): Promise<{ tools: unknown[] }> {
    this.writeFsGatewayConfig(files);
    // The operator signs the upstreams' catalog into the bundle.
    const catalog = await this.ok<{ tools: unknown[] }>(
      'gateway',
      'catalog',
      '--config',
      this.path('gateway.json'),
    );
    writeFileSync(this.path('catalog.json'), JSON.stringify(catalog));
    writeFileSync(this.path('policies.cedar'), FS_POLICIES);
    await this.ok(
      'policy',
      'publish',
      this.path('policies.cedar'),
      '--catalog',
      this.path('catalog.json'),
    );
    return catalog;
  }
  /** `gateway start` on this home as `gateway`, presenting the credential file `credential`. */
  startGateway(port: number, credential: string, ...more: string[]) {
    return startMandate(
      this.dir,
      'gateway',
      'start',
      '--config',
      this.path('gateway.json'),
      '--listen',
      `127.0.0.1:${port}`,
      '--identity',
      'gateway',
      '--credential',
      this.path(credential),
      ...more,
    );
  }
}

/**
 * Connects `client` (default: a plain SDK Client) through `mandate --home HOME mcp connect ROUTE
 * ARGV…` launched by the SDK's StdioClientTransport; `log` is what that process wrote to stderr.
 */
export async function connectMcpCli(
  home: string,
  route: string,
  argv: readonly string[],
  client = new Client({ name: 'unmodified-client', version: '1' }),
): Promise<{ client: Client; log: () => string }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [
      '--import',
      'tsx',
      join(repoRoot, 'src', 'cli', 'bin.ts'),
      '--home',
      home,
      'mcp',
      'connect',
      route,
      ...argv,
    ],
    cwd: repoRoot,
    stderr: 'pipe',
  });
  let log = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  clients.push(client);
  await client.connect(transport);
  return { client, log: () => log };
}
