/** Structured logging: implementations decide where lines go; fields never carry secrets. */
export type LogFields = Readonly<
  Record<string, string | number | boolean | bigint | null | undefined>
>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const noop = (): void => undefined;
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
