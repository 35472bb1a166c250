import { ErrorKind, isMandateError, type ErrorKind as Kind } from '../core/index.js';
import { escapeControlCharacters } from '../encoding/index.js';

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
  /** Progress and notes for people: stderr, never part of --json output; none with --quiet. */
  note(text: string): void;
}

/**
 * Everything the CLI prints passes through here, and much of it came from outside: a chain's
 * purposes, a credential's attribute values, a peer's attributes, names in error messages. No
 * control or bidi control character reaches the terminal raw, so nothing printed can move the
 * cursor, rewrite a line (a DENY repainted as ALLOW) or reorder text. Human text keeps its line
 * feeds (a one-line field escapes them: formatFields); JSON keeps its value (the escapes are
 * JSON's own, and JSON.stringify already escapes C0 in strings).
 */
function printable(text: string): string {
  return escapeControlCharacters(text, '\n');
}

export function createOutput(json: boolean, debug: boolean, quiet = false): Output {
  return {
    json,
    debug,
    exitCode: 0,
    result(value, human) {
      process.stdout.write(
        `${printable(json ? JSON.stringify(value, jsonReplacer, 2) : human())}\n`,
      );
    },
    note(text) {
      if (!quiet) process.stderr.write(`${printable(text)}\n`);
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
    if (debug && error.stack !== undefined) process.stderr.write(`${printable(error.stack)}\n`);
    if (debug && error.cause !== undefined)
      process.stderr.write(
        `caused by: ${printable(error.cause instanceof Error ? (error.cause.stack ?? error.cause.message) : JSON.stringify(error.cause))}\n`,
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
      `${printable(error instanceof Error ? (error.stack ?? error.message) : String(error))}\n`,
    );
  return EXIT_CODES.internal;
}

/** A command line the CLI cannot parse: `ERR_USAGE`, exit 2, through the same funnel. */
export function reportUsageError(message: string, json: boolean): number {
  printError('ERR_USAGE', 'usage', message, json);
  return EXIT_CODES.usage;
}

function printError(code: string, kind: string, message: string, json: boolean): void {
  // One line, whatever a message quotes; the JSON form keeps its value, escaped alike.
  process.stderr.write(`error[${code}]: ${escapeControlCharacters(message)}\n`);
  if (json)
    process.stdout.write(
      `${escapeControlCharacters(JSON.stringify({ error: { code, kind, message } }))}\n`,
    );
}

/** Aligned `key: value` lines for human output; a value stays on its line (escaped). */
export function formatFields(
  fields: readonly (readonly [string, string | number | boolean])[],
): string {
  const lines = fields.map(([k, v]): [string, string] => [
    escapeControlCharacters(k),
    escapeControlCharacters(String(v)),
  ]);
  const width = Math.max(...lines.map(([k]) => k.length)) + 1;
  return lines.map(([k, v]) => `${`${k}:`.padEnd(width + 1)}${v}`).join('\n');
}
