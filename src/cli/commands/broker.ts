import type { Command } from 'commander';
import { invalid } from '../../core/internal.js';
import { parseJsonNoDuplicateKeys } from '../../encoding/index.js';
import { NodeServiceName, type BrokerNodeOptions, type NodeConfig } from '../../node/index.js';
import type { CliContext } from '../context.js';
import { readTextArgument } from '../input.js';
import { homeBrokerJwtKey } from './broker-jwks.js';
import { brokerAuditSink } from './lease.js';
import { given, nodeConfigOf, nodeOptions, runNode, type NodeStartOptions } from './node.js';
import { POSTGRES_URL_ENV, postgresAdminUrl } from './broker-postgres.js';

export { brokerIssuerOf } from '../../node/internal.js';

/** Largest `--proxy-bindings` file read. */
const MAX_BINDINGS_BYTES = 256 * 1024;

type BrokerStartOptions = NodeStartOptions & {
  postgres?: string;
  http?: string;
  postgresFile?: string;
  postgresRolePrefix?: string;
  proxyBindings?: string;
};

export function registerBrokerCommands(program: Command, context: () => CliContext): void {
  const start = program
    .command('broker')
    .description('gate 3: a broker that leases short-lived, scoped secrets over secure channels')
    .command('start')
    .description('run a broker node until SIGINT or SIGTERM (logs on stderr)')
    .option('--listen <host:port>', 'where to listen, e.g. 127.0.0.1:4300')
    .option(
      '--postgres <url>',
      `the admin connection for PostgreSQL role leases (other local users can read a password given here in the process list: prefer --postgres-file or ${POSTGRES_URL_ENV})`,
    )
    .option(
      '--postgres-file <file>',
      'read the PostgreSQL admin connection string from this file (mode 0600)',
    )
    .option(
      '--postgres-role-prefix <prefix>',
      'the first part of leased role names (default mandate_lease_)',
    )
    .option('--http <host:port>', 'serve the JWKS, the token-exchange endpoint and /revoked here')
    .option(
      '--proxy-bindings <file>',
      'a JSON array of injection bindings: serve `proxy` leases and the injecting egress proxy',
    );
  nodeOptions(start, 'register at the relay node at this route');
  start.action((opts: BrokerStartOptions) => runBrokerStart(context(), opts));
}

/** `--proxy-bindings FILE`: a JSON array of injection bindings (checked by the provider). */
function readBindings(file: string): unknown[] {
  const text = readTextArgument(file, '`--proxy-bindings`', MAX_BINDINGS_BYTES);
  const value = parseJsonNoDuplicateKeys(text, 'ERR_PROXY_BINDING_INVALID', `\`${file}\``, 8);
  if (!Array.isArray(value))
    throw invalid('ERR_PROXY_BINDING_INVALID', `\`${file}\` must hold a JSON array of bindings`);
  return value as unknown[];
}

/**
 * `broker start`: a node whose channel listener (`api`, credential holders of this home's trust
 * anchors) delivers to the `broker` service (src/node/broker-node.ts). The flags and files are
 * read here: the PostgreSQL admin connection, the proxy bindings; the broker's token key and audit
 * sink follow this home's conventions (`broker jwks`, `lease`).
 */
export async function runBrokerStart(ctx: CliContext, opts: BrokerStartOptions): Promise<void> {
  const warn = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  // The flags' (or MANDATE_POSTGRES_URL's) connection first: a bad file fails at once, and the
  // argv warning comes before anything else is checked.
  const postgresFromFlags = postgresAdminUrl(opts, process.env, warn);
  const config = nodeConfigOf(opts, {
    services: [NodeServiceName.broker],
    broker: given({
      http: opts.http,
      postgresFile: opts.postgresFile,
      postgresRolePrefix: opts.postgresRolePrefix,
      proxyBindings: opts.proxyBindings,
    }),
  });
  await runNode(ctx, config, { broker: brokerNodeOptions(config, postgresFromFlags, warn) });
}

/**
 * What the broker service takes from the CLI for `config`: the PostgreSQL admin connection
 * (`postgresFromFlags`, the flags' or MANDATE_POSTGRES_URL's, else `broker.postgresFile`), the
 * proxy bindings read from `broker.proxyBindings`; the token key and audit sink follow this
 * home's conventions (`broker jwks`, `lease`).
 */
export function brokerNodeOptions(
  config: NodeConfig,
  postgresFromFlags: string | undefined,
  warn: (line: string) => void,
): BrokerNodeOptions {
  // Else `broker.postgresFile` of the config file (below the environment in precedence).
  const postgres =
    postgresFromFlags ??
    (config.broker.postgresFile === undefined
      ? undefined
      : postgresAdminUrl({ postgresFile: config.broker.postgresFile }, {}, warn));
  const bindings =
    config.broker.proxyBindings === undefined
      ? undefined
      : readBindings(config.broker.proxyBindings);
  return {
    jwtKey: (home) => homeBrokerJwtKey(home),
    auditSink: (home, identity) => brokerAuditSink(home, identity),
    ...(postgres === undefined ? {} : { postgresUrl: postgres }),
    ...(bindings === undefined ? {} : { proxyBindings: bindings }),
  };
}
