import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { createOutput, EXIT_CODES, reportError } from './output.js';
import { openHome, PASSPHRASE_ENV } from './home.js';
import { registerIdentityCommands } from './commands/identity.js';
import { registerDemoCommand } from './commands/demo.js';
import type { CliContext } from './context.js';

const DEFAULT_HOME = './.mandate';

export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('mandate')
    .description('Mandate: cryptographic identity, delegation and audit for swarms of AI agents')
    .option('--home <dir>', 'state directory (default ./.mandate, or $MANDATE_HOME)')
    .option('--json', 'machine-readable output on stdout')
    .option('--debug', 'print stacks and causes of errors')
    .exitOverride()
    // Usage errors go through the one error funnel below, not commander's own printer.
    .configureOutput({ outputError: () => undefined });

  const context = (): CliContext => {
    const opts = program.opts<{ home?: string; json?: boolean; debug?: boolean }>();
    const homeDir = resolve(opts.home ?? process.env.MANDATE_HOME ?? DEFAULT_HOME);
    const out = createOutput(opts.json === true, opts.debug === true);
    return {
      out,
      homeDir,
      openHome: () => openHome(homeDir, { passphrase: process.env[PASSPHRASE_ENV] }),
    };
  };

  registerIdentityCommands(program, context);
  registerDemoCommand(program, context);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      if (error.exitCode === 0) return 0;
      process.stderr.write(
        `error[ERR_USAGE]: ${error.message.replace(/^error: /, '')} (see \`mandate --help\`)\n`,
      );
      return EXIT_CODES.usage;
    }
    return reportError(error, program.opts<{ debug?: boolean }>().debug === true);
  }
}
