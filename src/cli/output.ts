import { ErrorKind, isMandateError, type ErrorKind as Kind } from '../core/index.js';

/** Exit codes by error kind: stable, documented in docs/errors.md. */
export const EXIT_CODES: Readonly<Record<Kind | 'usage', number>> = {
  [ErrorKind.internal]: 1,
  usage: 2,
  [ErrorKind.invalid]: 3,
  [ErrorKind.unauthorized]: 4,
  [ErrorKind.forbidden]: 5,
  [ErrorKind.notFound]: 6,
  [ErrorKind.conflict]: 7,
  [ErrorKind.exhausted]: 8,
  [ErrorKind.timeout]: 9,
  [ErrorKind.unavailable]: 10,
  [ErrorKind.unsupported]: 11,
};

export interface Output {
  readonly json: boolean;
  readonly debug: boolean;
  /** The process exit code for a command that answered without an error (e.g. a denial). */
  exitCode: number;
  /** Prints a result: JSON on stdout with --json, else the human text. */
  result(value: unknown, human: () => string): void;
  /** Progress and notes for people: stderr, never part of --json output. */
  note(text: string): void;
}

export function createOutput(json: boolean, debug: boolean): Output {
  return {
    json,
    debug,
    exitCode: 0,
    result(value, human) {
      process.stdout.write(json ? `${JSON.stringify(value, jsonReplacer, 2)}\n` : `${human()}\n`);
    },
    note(text) {
      process.stderr.write(`${text}\n`);
    },
  };
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/**
 * The one error funnel: `error[CODE]: message` on stderr, an exit code by kind, and a stack only
 * with --debug. With --json the same error is also printed on stdout as
 * `{"error":{"code","kind","message"}}`, so a script reading stdout always gets one JSON value.
 * Errors that are not MandateErrors are bugs: reported as ERR_INTERNAL without their message,
 * which could carry anything.
 */
export function reportError(
  error: unknown,
  options: { readonly debug: boolean; readonly json: boolean },
): number {
  const { debug, json } = options;
  if (isMandateError(error)) {
    printError(error.code, error.kind, error.message, json);
    if (debug && error.stack !== undefined) process.stderr.write(`${error.stack}\n`);
    if (debug && error.cause !== undefined)
      process.stderr.write(
        `caused by: ${error.cause instanceof Error ? (error.cause.stack ?? error.cause.message) : JSON.stringify(error.cause)}\n`,
      );
    return EXIT_CODES[error.kind];
  }
  printError(
    'ERR_INTERNAL',
    ErrorKind.internal,
    'unexpected internal error (run with --debug for details)',
    json,
  );
  if (debug)
    process.stderr.write(
      `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
  return EXIT_CODES.internal;
}

/** A command line the CLI cannot parse: `ERR_USAGE`, exit 2, through the same funnel. */
export function reportUsageError(message: string, json: boolean): number {
  printError('ERR_USAGE', 'usage', message, json);
  return EXIT_CODES.usage;
}

function printError(code: string, kind: string, message: string, json: boolean): void {
  process.stderr.write(`error[${code}]: ${message}\n`);
  if (json) process.stdout.write(`${JSON.stringify({ error: { code, kind, message } })}\n`);
}

/** Aligned `key: value` lines for human output. */
export function formatFields(
  fields: readonly (readonly [string, string | number | boolean])[],
): string {
  const width = Math.max(...fields.map(([k]) => k.length)) + 1;
  return fields.map(([k, v]) => `${`${k}:`.padEnd(width + 1)}${String(v)}`).join('\n');
}
