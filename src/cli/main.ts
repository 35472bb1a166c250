import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { createOutput, reportError, reportUsageError } from './output.js';
import { openHome, PASSPHRASE_ENV } from './home.js';
import { registerIdentityCommands } from './commands/identity.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerAuthorityCommands } from './commands/authority.js';
import { registerTicketCommands } from './commands/ticket.js';
import { registerCredentialCommands } from './commands/credential.js';
import { registerRevokeCommands } from './commands/revoke.js';
import { registerDelegateCommands } from './commands/delegate.js';
import { registerChainCommands } from './commands/chain.js';
import { registerNodeCommands } from './commands/node.js';
import { registerChannelCommands } from './commands/channel.js';
import { registerTrustCommands } from './commands/trust.js';
import { registerGateCommands } from './commands/gate.js';
import { registerApprovalCommands } from './commands/approvals.js';
import { registerPolicyCommands } from './commands/policy.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerSecretCommands } from './commands/secret.js';
import { registerLeaseCommands } from './commands/lease.js';
import { registerBrokerCommands } from './commands/broker.js';
import { registerBrokerJwksCommand } from './commands/broker-jwks.js';
import { registerProxyCommands } from './commands/proxy.js';
import { registerGatewayCommands } from './commands/gateway.js';
import { registerDashboardCommand } from './commands/dashboard.js';
import { registerUpCommand } from './commands/up.js';
import { invalid } from '../core/internal.js';
import { ManualClock, systemClock, type Clock } from '../core/index.js';
import type { CliContext } from './context.js';
import { configureLogging, LogFormat, LogLevel } from './logging.js';

const DEFAULT_HOME = './.mandate';

export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('mandate')
    .description('Mandate: cryptographic identity, delegation and audit for swarms of AI agents')
    .option('--home <dir>', 'state directory (default ./.mandate, or $MANDATE_HOME)')
    .option('--json', 'machine-readable output on stdout')
    .option('--debug', 'print stacks and causes of errors')
    .option('-q, --quiet', 'only warnings and errors on stderr (no notes, no info logs)')
    .option('-v, --verbose', 'debug logs as well')
    .option(
      '--log-format <format>',
      'log lines of long-running commands: text or json (default text, or $MANDATE_LOG_FORMAT)',
    )
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .exitOverride()
    // Usage errors go through the one error funnel below, not commander's own printer.
    .configureOutput({ outputError: () => undefined });

  // One context per run, made when the first action needs it (after options are parsed).
  let made: CliContext | undefined;
  const context = (): CliContext => {
    if (made !== undefined) return made;
    const opts = program.opts<{
      home?: string;
      json?: boolean;
      debug?: boolean;
      quiet?: boolean;
      verbose?: boolean;
      logFormat?: string;
    }>();
    const homeDir = resolve(opts.home ?? process.env.MANDATE_HOME ?? DEFAULT_HOME);
    if (opts.quiet === true && opts.verbose === true)
      throw invalid('ERR_ARGUMENT_INVALID', '`--quiet` and `--verbose` exclude each other');
    configureLogging({
      format: parseLogFormat(opts.logFormat ?? process.env.MANDATE_LOG_FORMAT),
      level:
        opts.quiet === true
          ? LogLevel.warn
          : opts.verbose === true
            ? LogLevel.debug
            : LogLevel.info,
    });
    const out = createOutput(opts.json === true, opts.debug === true, opts.quiet === true);
    const clock = clockFromEnvironment(process.env.MANDATE_NOW_SECONDS);
    made = {
      out,
      homeDir,
      clock,
      openHome: () => openHome(homeDir, { clock, passphrase: process.env[PASSPHRASE_ENV] }),
    };
    return made;
  };

  registerIdentityCommands(program, context);
  registerDemoCommand(program, context);
  registerAuthorityCommands(program, context);
  registerTicketCommands(program, context);
  registerCredentialCommands(program, context);
  registerRevokeCommands(program, context);
  registerDelegateCommands(program, context);
  registerChainCommands(program, context);
  registerNodeCommands(program, context);
  registerChannelCommands(program, context);
  registerTrustCommands(program, context);
  registerGateCommands(program, context);
  registerApprovalCommands(program, context);
  registerPolicyCommands(program, context);
  registerAuditCommands(program, context);
  registerSecretCommands(program, context);
  registerLeaseCommands(program, context);
  registerBrokerCommands(program, context);
  registerBrokerJwksCommand(program, context);
  registerProxyCommands(program, context);
  registerGatewayCommands(program, context);
  registerDashboardCommand(program, context);
  registerUpCommand(program, context);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return made?.out.exitCode ?? 0;
  } catch (error) {
    const opts = program.opts<{ debug?: boolean; json?: boolean }>();
    if (error instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      if (error.exitCode === 0) return 0;
      return reportUsageError(
        `${error.message.replace(/^error: /, '')} (see \`mandate --help\`)`,
        opts.json === true || argv.includes('--json'),
      );
    }
    return reportError(error, { debug: opts.debug === true, json: opts.json === true });
  }
}

function parseLogFormat(value: string | undefined): LogFormat {
  if (value === undefined || value === '') return LogFormat.text;
  if (value === LogFormat.text || value === LogFormat.json) return value;
  throw invalid(
    'ERR_ARGUMENT_INVALID',
    `the log format must be \`text\` or \`json\`, not \`${value}\``,
  );
}

/** The version in this package's package.json (two folders up from src/cli or dist/cli). */
function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  const version = (JSON.parse(text) as { version?: unknown }).version;
  return typeof version === 'string' ? version : 'unknown';
}

/**
 * MANDATE_NOW_SECONDS pins the clock (unix seconds) for reproducible scripts and tests; the
 * default is the system clock.
 */
function clockFromEnvironment(value: string | undefined): Clock {
  if (value === undefined || value === '') return systemClock;
  if (!/^\d{1,12}$/.test(value))
    throw invalid('ERR_ARGUMENT_INVALID', '`MANDATE_NOW_SECONDS` must be unix seconds');
  return new ManualClock(Number(value));
}
