import { pino, stdTimeFunctions, type Logger as PinoLogger } from 'pino';
import type { LogFields, Logger } from '../core/index.js';
import { escapeControlCharacters } from '../encoding/index.js';

/** How the CLI's long-running commands log on stderr: people's lines, or JSON lines for machines. */
export const LogFormat = { text: 'text', json: 'json' } as const;
export type LogFormat = (typeof LogFormat)[keyof typeof LogFormat];

export const LogLevel = { debug: 'debug', info: 'info', warn: 'warn', error: 'error' } as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];

export interface LoggingOptions {
  readonly format: LogFormat;
  readonly level: LogLevel;
}

let configured: LoggingOptions = { format: LogFormat.text, level: LogLevel.info };

/** Set once per CLI run from `--log-format`, `--quiet` and `--verbose` (main.ts). */
export function configureLogging(options: LoggingOptions): void {
  configured = options;
}

/**
 * Logs to stderr through pino, one line per event with an ISO-8601 timestamp:
 * - `text`: `2026-12-02T01:00:00.000Z info message key=value …`;
 * - `json`: pino's JSON lines (`{"level":"info","time":"…","msg":"message","key":"value"}`).
 * Either way a line stays one line whatever a field holds (values can come from peers): control
 * and bidi characters are escaped as `\uXXXX`, as on every other CLI output.
 */
export function stderrLogger(options: LoggingOptions = configured): Logger {
  const destination =
    options.format === LogFormat.json
      ? {
          write: (line: string) =>
            process.stderr.write(`${escapeControlCharacters(line.trimEnd())}\n`),
        }
      : { write: (line: string) => process.stderr.write(textLine(line)) };
  const logger = pino(
    {
      level: options.level,
      base: null,
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return adapt(logger);
}

function adapt(logger: PinoLogger): Logger {
  const fieldsOf = (fields: LogFields | undefined): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields ?? {}))
      if (v !== undefined) out[k] = typeof v === 'bigint' ? v.toString() : v;
    return out;
  };
  return {
    debug: (message, fields) => {
      logger.debug(fieldsOf(fields), message);
    },
    info: (message, fields) => {
      logger.info(fieldsOf(fields), message);
    },
    warn: (message, fields) => {
      logger.warn(fieldsOf(fields), message);
    },
    error: (message, fields) => {
      logger.error(fieldsOf(fields), message);
    },
  };
}

/** One of pino's JSON lines as `TIME LEVEL message key=value …`. */
function textLine(json: string): string {
  const { time, level, msg, ...fields } = JSON.parse(json) as Record<string, unknown>;
  const rest = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const text = `${String(time)} ${String(level)} ${String(msg)}${rest === '' ? '' : ` ${rest}`}`;
  return `${escapeControlCharacters(text)}\n`;
}

/**
 * `logger`, whose debug and info lines can be held back for a while (`quiet(true)`) and are
 * counted meanwhile; warnings and errors always pass. `quiet(false)` logs how many were held.
 * `mandate up --demo` quiets its node while the swarm works through it: thousands of enrollments
 * and a checkpoint a second would bury the scenario's own lines.
 */
export function quietableLogger(logger: Logger): { logger: Logger; quiet(on: boolean): void } {
  let quiet = false;
  let held = 0;
  const unlessQuiet =
    (log: Logger['info']): Logger['info'] =>
    (message, fields) => {
      if (quiet) held++;
      else log(message, fields);
    };
  return {
    logger: {
      debug: unlessQuiet((message, fields) => {
        logger.debug(message, fields);
      }),
      info: unlessQuiet((message, fields) => {
        logger.info(message, fields);
      }),
      warn: (message, fields) => {
        logger.warn(message, fields);
      },
      error: (message, fields) => {
        logger.error(message, fields);
      },
    },
    quiet(on) {
      if (quiet && !on && held > 0) logger.info('log lines held back while quiet', { lines: held });
      quiet = on;
      held = 0;
    },
  };
}
