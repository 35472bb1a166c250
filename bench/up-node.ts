/**
 * The node of the `up` benchmark, in a process of its own (started by up.bench.ts with
 * `--import tsx --expose-gc`), so that its memory is the node's alone: `startUp` — what
 * `mandate up` runs before it waits — over the demo home the benchmark made, with every service
 * `up` composes. Driven over IPC one request at a time:
 *
 * - `{ type: 'start', home }` → `{ type: 'ready', address }` (the channel listener's `host:port`);
 * - `{ type: 'usage' }` → after two full collections, the process's memory (`PartyUsage`, its
 *   `channels` left at 0: the benchmark counts the channels it opened);
 * - `{ type: 'stop' }` → the node stopped, `{ type: 'stopped' }`, exit.
 */
import { systemClock } from '../src/core/index.js';
import { configureLogging, LogFormat, LogLevel } from '../src/cli/logging.js';
import { openHome } from '../src/cli/home.js';
import { startUp } from '../src/cli/commands/up.js';
import type { CliContext } from '../src/cli/context.js';
import type { RunningNode } from '../src/node/index.js';
import { findGc, type PartyUsage } from './channel-parties.js';

export type UpNodeCommand =
  | { readonly type: 'start'; readonly home: string }
  | { readonly type: 'usage' }
  | { readonly type: 'stop' };

export type UpNodeReply =
  | { readonly type: 'ready'; readonly address: string }
  | ({ readonly type: 'usage' } & PartyUsage)
  | { readonly type: 'stopped' }
  | { readonly type: 'error'; readonly message: string };

const gc = findGc();
let node: RunningNode | undefined;

function reply(message: UpNodeReply): void {
  process.send?.(message);
}

async function start(home: string): Promise<UpNodeReply> {
  // Warnings and errors only: the node's info lines would interleave with the tables.
  configureLogging({ format: LogFormat.text, level: LogLevel.warn });
  const ctx: CliContext = {
    out: {
      json: true,
      debug: false,
      exitCode: 0,
      result: () => undefined,
      note: () => undefined,
    },
    homeDir: home,
    clock: systemClock,
    openHome: () => openHome(home, { clock: systemClock }),
  };
  // As `mandate --home <demo home> up`: the node serves the home the scenario left.
  ({ node } = await startUp(ctx, { agents: '0', rotate: '0' }));
  return { type: 'ready', address: node.listening.address };
}

function usage(): UpNodeReply {
  gc?.();
  gc?.();
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return {
    type: 'usage',
    cpuUs: cpu.user + cpu.system,
    heapUsed: memory.heapUsed,
    arrayBuffers: memory.arrayBuffers,
    rss: memory.rss,
    channels: 0,
  };
}

process.on('message', (command: UpNodeCommand) => {
  const answer = async (): Promise<UpNodeReply> => {
    switch (command.type) {
      case 'start':
        return start(command.home);
      case 'usage':
        return usage();
      case 'stop':
        await node?.stop();
        node = undefined;
        return { type: 'stopped' };
    }
  };
  answer().then(
    (message) => {
      reply(message);
      if (command.type === 'stop') process.disconnect();
    },
    (error: unknown) => {
      reply({ type: 'error', message: error instanceof Error ? error.message : String(error) });
    },
  );
});
