import type { Logger } from '../core/index.js';
import type { DenySet } from '../credentials/index.js';
import type { VerifiedIdentity } from '../identity/index.js';
import type { SecureChannelOptions } from '../channel/index.js';
import { homeChannelOptions, type Home } from '../node/internal.js';
import type { CliContext } from './context.js';
import { readBytesArgument } from './input.js';

// The node's runtime pieces live in src/node/node-runtime.ts; the commands that reach a node
// (channel, lease, ticket, gateway, proxy, authority) use them from here.
export {
  API,
  ECHO,
  connectRoute,
  listenTcp,
  parseDialRoute,
  toListener,
  untilSignal,
} from '../node/internal.js';

export interface NodeOptions {
  identity: string;
  credential?: string[];
}

/**
 * `--identity` and `--credential FILE…` as this process's side of secure channels (see
 * homeChannelOptions): the files are read here, the rest is the node's.
 */
export async function channelOptions(
  ctx: CliContext,
  home: Home,
  opts: NodeOptions,
  logger: Logger,
  denySet: DenySet,
): Promise<{
  identity: VerifiedIdentity;
  options: SecureChannelOptions;
  credentials: readonly Uint8Array[];
}> {
  return homeChannelOptions(home, {
    identity: opts.identity,
    credentialChains: (opts.credential ?? []).map((file) => readBytesArgument(file, 'credential')),
    denySet,
    clock: ctx.clock,
    logger,
  });
}
