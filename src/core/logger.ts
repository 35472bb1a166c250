/** Structured logging: implementations decide where lines go; fields never carry secrets. */
export type LogFields = Readonly<
  Record<string, string | number | boolean | bigint | null | undefined>
>;

/**
 * Where Mandate's services write structured log lines (pass your own to a service's `logger`
 * option; the default is silent). Messages are lowercase; `fields` never carry a secret.
 */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const noop = (): void => undefined;
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
