// How to start the example MCP servers that ship in the package (the demo's upstreams).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A stdio server to spawn: `command` and its `args` (the `mcpServers` shape). */
export interface ServerCommand {
  readonly command: string;
  readonly args: readonly string[];
}

/**
 * The example refund server (`examples/refund-server.ts`), appending each refund it executes to
 * `ledger`. Built, it is a `.js` file beside this one; from the sources (tests, tsx) it is the
 * TypeScript file, run under tsx.
 */
export function refundServerCommand(ledger: string): ServerCommand {
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = fileURLToPath(
    new URL(`./refund-server.${fromSources ? 'ts' : 'js'}`, import.meta.url),
  );
  return {
    command: process.execPath,
    args: [...(fromSources ? ['--import', 'tsx'] : []), entry, ledger],
  };
}

/** The reference filesystem server (`@modelcontextprotocol/server-filesystem`) serving `folders`. */
export function filesystemServerCommand(folders: readonly string[]): ServerCommand {
  const entry = createRequire(import.meta.url).resolve(
    '@modelcontextprotocol/server-filesystem/dist/index.js',
  );
  return { command: process.execPath, args: [entry, ...folders] };
}
