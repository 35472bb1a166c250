/**
 * The one error type Mandate throws on purpose. `code` is API (stable, listed in docs/errors.md,
 * asserted by tests); `message` is for people and may change. Messages are lowercase, one line,
 * no final period, with user values in backticks, and never carry a secret.
 */
export const ErrorKind = {
  invalid: 'invalid',
  unauthorized: 'unauthorized',
  forbidden: 'forbidden',
  notFound: 'not_found',
  conflict: 'conflict',
  exhausted: 'exhausted',
  timeout: 'timeout',
  unavailable: 'unavailable',
  unsupported: 'unsupported',
  internal: 'internal',
} as const;
export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];

/**
 * A stable error code, `ERR_` and upper-case words; every code is listed in docs/errors.md.
 */
export type ErrorCode = `ERR_${string}`;

/**
 * The one error type Mandate throws on purpose. `code` is API (stable, listed in
 * docs/errors.md); `kind` groups codes by what the caller can do about them (`invalid`,
 * `unauthorized`, `forbidden`, `not_found`, `conflict`, `exhausted`, `timeout`, `unavailable`,
 * `unsupported`, `internal`); `message` is for people and may change. `toJSON` gives
 * `{ code, kind, message }` and never a secret or a stack.
 *
 * @example
 * ```ts
 * try {
 *   verifyChangeHistory(bytes);
 * } catch (error) {
 *   if (error instanceof MandateError && error.kind === ErrorKind.invalid) {
 *     console.error(`rejected: ${error.code}`);
 *   } else throw error;
 * }
 * ```
 */
export class MandateError extends Error {
  override readonly name = 'MandateError';
  readonly code: ErrorCode;
  readonly kind: ErrorKind;

  constructor(code: ErrorCode, kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.kind = kind;
  }

  toJSON(): { code: ErrorCode; kind: ErrorKind; message: string } {
    return { code: this.code, kind: this.kind, message: this.message };
  }
}

/**
 * Whether `value` is a {@link MandateError}, and with `code` also whether it has that code.
 * Branch on codes, never on messages.
 *
 * @example
 * ```ts
 * if (isMandateError(error, 'ERR_IDENTITY_NOT_FOUND')) return undefined;
 * ```
 */
export function isMandateError(value: unknown, code?: ErrorCode): value is MandateError {
  return value instanceof MandateError && (code === undefined || value.code === code);
}

/** Shorthands keep call sites one line long and the kind consistent for a family of codes. */
export const invalid = (code: ErrorCode, message: string, cause?: unknown): MandateError =>
  new MandateError(code, ErrorKind.invalid, message, cause === undefined ? undefined : { cause });
export const conflict = (code: ErrorCode, message: string): MandateError =>
  new MandateError(code, ErrorKind.conflict, message);
export const notFound = (code: ErrorCode, message: string): MandateError =>
  new MandateError(code, ErrorKind.notFound, message);
export const unsupported = (code: ErrorCode, message: string): MandateError =>
  new MandateError(code, ErrorKind.unsupported, message);
export const internal = (code: ErrorCode, message: string, cause?: unknown): MandateError =>
  new MandateError(code, ErrorKind.internal, message, cause === undefined ? undefined : { cause });
export const unauthorized = (code: ErrorCode, message: string, cause?: unknown): MandateError =>
  new MandateError(
    code,
    ErrorKind.unauthorized,
    message,
    cause === undefined ? undefined : { cause },
  );
export const forbidden = (code: ErrorCode, message: string, cause?: unknown): MandateError =>
  new MandateError(code, ErrorKind.forbidden, message, cause === undefined ? undefined : { cause });
export const exhausted = (code: ErrorCode, message: string, cause?: unknown): MandateError =>
  new MandateError(code, ErrorKind.exhausted, message, cause === undefined ? undefined : { cause });
export const timeout = (code: ErrorCode, message: string, cause?: unknown): MandateError =>
  new MandateError(code, ErrorKind.timeout, message, cause === undefined ? undefined : { cause });
export const unavailable = (code: ErrorCode, message: string, cause?: unknown): MandateError =>
  new MandateError(
    code,
    ErrorKind.unavailable,
    message,
    cause === undefined ? undefined : { cause },
  );
