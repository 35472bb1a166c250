import type { Command } from 'commander';

import { toHex } from '../../encoding/index.js';
import { formatConstraint } from '../../credentials/index.js';
import { decodeConstraintValue } from '../../credentials/internal.js';
import { openSecureChannel, type SecureChannel, type VerifiedPeer } from '../../channel/index.js';
import { localAddress, Router, TcpTransport } from '../../routing/index.js';
import type { DenySetWatcher } from '../../node/index.js';
import type { CliContext } from '../context.js';
import {
  channelOptions,
  connectRoute,
  ECHO,
  toListener,
  type NodeOptions,
} from '../node-runtime.js';
import { stderrLogger } from '../logging.js';
import { collect, parsePositiveInteger } from '../parse.js';
import { timeout } from '../../core/internal.js';

type ChannelPingOptions = NodeOptions & { count: string; message?: string };

export function registerChannelCommands(program: Command, context: () => CliContext): void {
  const channel = program.command('channel').description('secure channels');
  channel
    .command('open')
    .argument('<route>', 'route to a node, e.g. /ip4/127.0.0.1/tcp/4000')
    .description('open a secure channel, print the verified peer, and close it')
    .requiredOption('--identity <name>', 'the local identity to present')
    .option('--credential <file>', 'a credential to present (repeatable)', collect)
    .action((routeText: string, opts: NodeOptions) => runChannelOpen(context(), routeText, opts));
  channel
    .command('ping')
    .argument('<route>', 'route to a node, e.g. /ip4/127.0.0.1/tcp/4100/relay/bob')
    .description('open a secure channel and time round trips to the `echo` service')
    .requiredOption('--identity <name>', 'the local identity to present')
    .option('--credential <file>', 'a credential to present (repeatable)', collect)
    .option('--count <n>', 'how many round trips', '3')
    .option('--message <text>', 'the text each round trip carries (default `ping N`)')
    .action((routeText: string, opts: ChannelPingOptions) =>
      runChannelPing(context(), routeText, opts),
    );
}

/** An open secure channel to a route, and what opening it took. */
export interface OpenedChannel {
  readonly channel: SecureChannel;
  readonly router: Router;
  readonly handshakeMs: number;
  /** Opens another channel to the same route with the same options (closed with the first). */
  readonly reopen: () => Promise<SecureChannel>;
}

/**
 * Opens a secure channel to `routeText` as `opts.identity` and runs `use` with it. The home's
 * deny-set is live, as a node's is: a revocation made while `use` runs stops it. The channel is
 * closed, and the router, watcher and home released, however `use` ends.
 */
export async function withOpenChannel<T>(
  ctx: CliContext,
  routeText: string,
  opts: NodeOptions,
  use: (opened: OpenedChannel) => Promise<T>,
): Promise<T> {
  const logger = stderrLogger();
  const home = await ctx.openHome();
  const router = new Router();
  let watcher: DenySetWatcher | undefined;
  try {
    watcher = await home.watchDenySet({ logger });
    const { options } = await channelOptions(ctx, home, opts, logger, watcher.denySet);
    const transport = new TcpTransport(router, { logger });
    const open = (): Promise<SecureChannel> =>
      openSecureChannel(router, toListener(connectRoute(transport, routeText)), options);
    const opened = Date.now();
    const channel = await open();
    const handshakeMs = Date.now() - opened;
    const others = new Set<SecureChannel>();
    const reopen = async (): Promise<SecureChannel> => {
      const next = await open();
      others.add(next);
      next.onClose(() => others.delete(next));
      return next;
    };
    try {
      return await use({ channel, router, handshakeMs, reopen });
    } finally {
      await Promise.all([channel, ...others].map((c) => c.close()));
    }
  } finally {
    await router.close();
    await watcher?.stop();
    home.close();
  }
}

/** `channel open`: open a secure channel, print the verified peer, and close it. */
export async function runChannelOpen(
  ctx: CliContext,
  routeText: string,
  opts: NodeOptions,
): Promise<void> {
  await withOpenChannel(ctx, routeText, opts, ({ channel, handshakeMs }) => {
    const peer = describePeer(channel.peer);
    ctx.out.result({ route: routeText, peer, handshakeMs }, () =>
      peerLines(peer, handshakeMs).join('\n'),
    );
    return Promise.resolve();
  });
}

/** `channel ping`: time round trips to the `echo` service over a secure channel. */
export async function runChannelPing(
  ctx: CliContext,
  routeText: string,
  opts: ChannelPingOptions,
): Promise<void> {
  const count = parsePositiveInteger(opts.count, '--count');
  const message = opts.message;
  await withOpenChannel(ctx, routeText, opts, async ({ channel, router, handshakeMs }) => {
    let answer: (() => void) | undefined;
    router.registerWorker('ping', {
      handleMessage: () => {
        answer?.();
      },
    });
    channel.allow('ping');
    const rttsMs: number[] = [];
    for (let i = 0; i < count; i++) {
      const started = process.hrtime.bigint();
      const answered = new Promise<void>((resolve, reject) => {
        answer = resolve;
        setTimeout(() => {
          reject(timeout('ERR_PING_TIMEOUT', 'no echo within 10000 ms'));
        }, 10_000).unref();
      });
      await router.send({
        onwardRoute: [localAddress(channel.address), localAddress(ECHO)],
        returnRoute: [localAddress('ping')],
        payload: new TextEncoder().encode(message ?? `ping ${String(i)}`),
      });
      await answered;
      rttsMs.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    const peer = describePeer(channel.peer);
    ctx.out.result({ route: routeText, peer, handshakeMs, rttsMs }, () =>
      [
        ...peerLines(peer, handshakeMs),
        ...rttsMs.map((ms, i) => `echo ${String(i)}: ${ms.toFixed(2)} ms`),
      ].join('\n'),
    );
  });
}

function peerLines(peer: ReturnType<typeof describePeer>, handshakeMs: number): string[] {
  return [
    `peer ${peer.identifier}`,
    ...Object.entries(peer.attributes).map(([k, v]) => `  ${k}${v}`),
    `handshake ${String(handshakeMs)} ms`,
  ];
}

function describePeer(peer: VerifiedPeer): {
  identifier: string;
  attributes: Record<string, string>;
} {
  const attributes: Record<string, string> = {};
  for (const credential of peer.credentials) {
    for (const [name, value] of credential.attributes) {
      let text: string;
      try {
        text = formatConstraint(name, decodeConstraintValue(value)).slice(name.length);
      } catch {
        text = `0x${toHex(value)}`;
      }
      attributes[name] = text;
    }
  }
  return { identifier: peer.identifier, attributes };
}
