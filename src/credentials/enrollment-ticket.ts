import { invalid } from '../core/internal.js';
import {
  decodeCbor,
  encodeCbor,
  expectArray,
  expectBytes,
  expectUint,
  decodeBase64Strict,
  hasControlCharacters,
  toBase64Url,
} from '../encoding/index.js';
import { MAX_CHANGE_HISTORY_BYTES } from '../identity/internal.js';
import { verifyChangeHistory, type VerifiedIdentity } from '../identity/index.js';

/**
 * Enrollment tickets: the text a person copies to enroll a new agent.
 *
 *   ticket = "mandate1." base64url-without-padding( CBOR
 *              [ 1, authority_change_history: bstr, route: tstr, code: bstr32, expires_at: uint ] )
 *
 * The ticket carries the trust anchor: the authority's whole change history, verified on parse,
 * so its identifier is computed from it and never taken on trust (Ockam's tickets carry the
 * histories the same way, as hex of a comma-separated string). The route says where to reach the
 * authority; it is opaque here. The one-time code is a secret: the authority keeps only its hash.
 */

export const ENROLLMENT_TICKET_PREFIX = 'mandate1.';
export const ENROLLMENT_TICKET_VERSION = 1;
export const ENROLLMENT_CODE_BYTES = 32;
export const MAX_ROUTE_CHARS = 1024;
/** A full-size change history plus room for the other fields. */
const MAX_TICKET_BYTES = MAX_CHANGE_HISTORY_BYTES + 4096;
export const MAX_ENROLLMENT_TICKET_CHARS =
  ENROLLMENT_TICKET_PREFIX.length + Math.ceil((MAX_TICKET_BYTES * 4) / 3);

const MALFORMED = 'ERR_TICKET_MALFORMED';

/**
 * What an enrollment ticket carries: the authority, the route to it, the one-time code and the expiry.
 */
export interface EnrollmentTicketFields {
  readonly authority: VerifiedIdentity;
  readonly route: string;
  readonly code: Uint8Array;
  readonly expiresAt: number;
}

/** A parsed ticket. The code is a getter over a private field, so logging the ticket omits it. */
export class EnrollmentTicket implements EnrollmentTicketFields {
  readonly #code: Uint8Array;

  /** @internal use parseEnrollmentTicket */
  constructor(
    readonly authority: VerifiedIdentity,
    readonly route: string,
    code: Uint8Array,
    readonly expiresAt: number,
  ) {
    this.#code = code;
  }

  /** The one-time code: send it to the authority, never log or store it. */
  get code(): Uint8Array {
    return this.#code;
  }
}

/**
 * The text form of a ticket (what `Authority.createTicket` returns). Throws
 * `ERR_ARGUMENT_INVALID` for a code of the wrong size, a bad expiry or route.
 */
export function formatEnrollmentTicket(fields: EnrollmentTicketFields): string {
  if (fields.code.length !== ENROLLMENT_CODE_BYTES)
    throw invalid('ERR_ARGUMENT_INVALID', `the code must be ${ENROLLMENT_CODE_BYTES} bytes`);
  if (!Number.isSafeInteger(fields.expiresAt) || fields.expiresAt < 0)
    throw invalid('ERR_ARGUMENT_INVALID', '`expiresAt` must be a non-negative integer');
  checkRoute(fields.route, 'ERR_ARGUMENT_INVALID');
  const payload = encodeCbor([
    ENROLLMENT_TICKET_VERSION,
    fields.authority.changeHistory,
    fields.route,
    fields.code,
    fields.expiresAt,
  ]);
  return ENROLLMENT_TICKET_PREFIX + toBase64Url(payload);
}

/**
 * Ticket text → EnrollmentTicket. Whitespace around the text (a copied line end) is ignored.
 * Structure errors are `ERR_TICKET_MALFORMED`; a history that does not verify fails with the
 * identity layer's own code (`ERR_IDENTITY_*`). Expiry is not checked here: the authority
 * decides, and a caller may warn early with `expiresAt`.
 */
export function parseEnrollmentTicket(text: string): EnrollmentTicket {
  const trimmed = text.trim();
  if (trimmed.length > MAX_ENROLLMENT_TICKET_CHARS)
    throw invalid(
      MALFORMED,
      `an enrollment ticket has at most ${MAX_ENROLLMENT_TICKET_CHARS} characters`,
    );
  if (!trimmed.startsWith(ENROLLMENT_TICKET_PREFIX))
    throw invalid(MALFORMED, `an enrollment ticket starts with \`${ENROLLMENT_TICKET_PREFIX}\``);
  const payload = decodeBase64url(trimmed.slice(ENROLLMENT_TICKET_PREFIX.length));
  const value = decodeCbor(payload, {
    errorCode: MALFORMED,
    what: 'enrollment ticket',
    maxBytes: MAX_TICKET_BYTES,
    maxDepth: 2,
  });
  if (!Array.isArray(value) || value.length === 0)
    throw invalid(MALFORMED, 'an enrollment ticket is a non-empty array');
  const version = value[0];
  if (version !== ENROLLMENT_TICKET_VERSION)
    throw invalid(
      MALFORMED,
      `enrollment ticket version must be ${ENROLLMENT_TICKET_VERSION}, found ${typeof version === 'number' || typeof version === 'bigint' ? `\`${version}\`` : 'another type'}`,
    );
  const fields = expectArray(value, MALFORMED, 'enrollment ticket', 5, 5);
  const history = expectBytes(fields[1], MALFORMED, 'authority change history');
  const route = fields[2];
  if (typeof route !== 'string') throw invalid(MALFORMED, 'the route must be a text string');
  checkRoute(route, MALFORMED);
  const code = expectBytes(fields[3], MALFORMED, 'one-time code', ENROLLMENT_CODE_BYTES);
  const expiresAt = expectUint(fields[4], MALFORMED, 'expires_at');
  const authority = verifyChangeHistory(history);
  return new EnrollmentTicket(authority, route, code, expiresAt);
}

function checkRoute(route: string, code: 'ERR_TICKET_MALFORMED' | 'ERR_ARGUMENT_INVALID'): void {
  if (route.length > MAX_ROUTE_CHARS)
    throw invalid(code, `a route has at most ${MAX_ROUTE_CHARS} characters`);
  // Control characters would let a route rewrite the terminal that shows it.
  if (hasControlCharacters(route))
    throw invalid(code, 'a route must not contain control or bidi control characters');
}

/** Strict base64url: the URL-safe alphabet, no padding, and the one canonical encoding. */
function decodeBase64url(text: string): Uint8Array {
  const bytes = decodeBase64Strict(text, 'base64url');
  if (bytes === undefined)
    throw invalid(MALFORMED, 'an enrollment ticket is not canonical base64url (unpadded)');
  return bytes;
}
