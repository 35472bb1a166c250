import type { Command } from 'commander';

import { invalid } from '../../core/internal.js';
import { parseTcpPeer } from '../../routing/internal.js';
import { startLocalEgressProxy } from '../../node/index.js';
import type { CliContext } from '../context.js';
import { untilSignal, type NodeOptions } from '../node-runtime.js';
import { stderrLogger } from '../logging.js';
import { collect } from '../parse.js';
import { withOpenChannel } from './channel.js';

type ProxyOptions = NodeOptions & { broker: string; listen: string };

const DEFAULT_LISTEN = '127.0.0.1:8480';
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * `mandate proxy`: the agent's side of injection (docs/spec/broker.md §6). It opens a secure
 * channel to the broker node as `--identity` and serves plain HTTP on loopback; the agent's
 * process sends its upstream calls there (`HTTP_PROXY=http://127.0.0.1:PORT`, or the upstream
 * host in `Host`). Which hosts get which secret is the broker's business: the leases this
 * identity holds (`mandate lease proxy …`) — a host without one is answered 403
 * `ERR_PROXY_HOST_NOT_BOUND` and nothing is sent.
 */
export function registerProxyCommands(program: Command, context: () => CliContext): void {
  program
    .command('proxy')
    .description(
      "run the agent's egress proxy: plain HTTP on loopback, forwarded over a secure channel to the broker, which injects the secrets this identity leased",
    )
    .requiredOption('--broker <route>', 'route to the broker node, e.g. /ip4/127.0.0.1/tcp/4000')
    .requiredOption('--identity <name>', 'the local identity to present (the lease holder)')
    .option('--credential <file>', 'a credential to present (repeatable)', collect)
    .option(
      '--listen <host:port>',
      'where the agent reaches the proxy (loopback only)',
      DEFAULT_LISTEN,
    )
    .action((opts: ProxyOptions) => runProxy(context(), opts));
}

/** Runs until SIGINT or SIGTERM; the home's deny-set stays live, as in `channel open`. */
export async function runProxy(ctx: CliContext, opts: ProxyOptions): Promise<void> {
  const { host, port } = parseTcpPeer(opts.listen);
  // Whoever reaches the proxy acts with the identity's leases: never beyond this machine.
  if (!LOOPBACK.has(host))
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `\`--listen\` must be a loopback address, not \`${host}\``,
    );
  await withOpenChannel(ctx, opts.broker, opts, async ({ channel, router, reopen }) => {
    const logger = stderrLogger();
    const proxy = await startLocalEgressProxy({
      router,
      channel,
      reopen,
      listen: { host, port },
      logger,
    });
    try {
      logger.info('proxy: listening', { url: proxy.url, broker: channel.peer.identifier });
      ctx.out.result({ url: proxy.url, broker: channel.peer.identifier }, () => proxy.url);
      logger.info('stopping', { signal: await untilSignal() });
    } finally {
      await proxy.close();
    }
  });
}
