import { checkUnixSeconds, forbidden, invalid, notFound, unauthorized } from '../core/internal.js';
import { MandateError, systemClock, type Clock } from '../core/index.js';
import { bytesEqual } from '../encoding/index.js';
import { randomBytes, sha256, wipe } from '../crypto/index.js';
import type { SigningVault } from '../vault/index.js';
import {
  parseIdentifier,
  Purpose,
  verifyChangeHistory,
  type Identifier,
  type Identities,
  type KnownIdentity,
  type VerifiedIdentity,
} from '../identity/index.js';
import type { AuthorityRepository, Member, StoredTicket } from './authority-repository.js';
import {
  assertScopedToolsGranted,
  checkConstraintsNarrower,
  constraintsFromAttributes,
  type Constraints,
} from './constraints.js';
import {
  DEFAULT_CREDENTIAL_TTL_SECONDS,
  issueCredential,
  MAX_CREDENTIAL_TTL_SECONDS,
  type CredentialAttributes,
  type CredentialIssuer,
} from './credential.js';
import { RESERVED_PREFIX } from './delegation.js';
import { ENROLLMENT_CODE_BYTES, formatEnrollmentTicket } from './enrollment-ticket.js';

/** A ticket's lifetime unless `createTicket` is given one (Ockam's). */
export const DEFAULT_TICKET_TTL_SECONDS = 600;
/** The longest ticket lifetime: a week. */
export const MAX_TICKET_TTL_SECONDS = 7 * 24 * 3600;
/** The most redemptions one ticket may allow. */
export const MAX_TICKET_USES = 1000;
/** How long an authority reuses its own verified identity and credential key between checks. */
const ISSUER_CACHE_SECONDS = 10;
/** A day: a deny-list entry must outlive the credentials it voids, so keep the longest short. */
export const DEFAULT_MAX_CREDENTIAL_TTL_SECONDS = 24 * 3600;

/**
 * What an {@link Authority} issues: credential lifetimes and, optionally, the widest grant.
 */
export interface AuthorityPolicy {
  /** Longer requests are refused with `ERR_CREDENTIAL_TTL_TOO_LONG` (at most 30 days). */
  readonly maxCredentialTtlSeconds: number;
  /** Used when a request names no TTL, and for the credential a redemption returns. */
  readonly defaultCredentialTtlSeconds: number;
  /** When set, every grant must be within it (each name present and narrower-or-equal). */
  readonly grantable?: Constraints;
}

/**
 * Options of {@link Authority}.
 */
export interface AuthorityOptions {
  readonly identities: Identities;
  /** The vault holding the authority's credential purpose key. */
  readonly vault: SigningVault;
  readonly repository: AuthorityRepository;
  /** Name or identifier of the local identity that is the authority. */
  readonly authority: string;
  readonly policy?: Partial<AuthorityPolicy>;
  /** Where agents reach the authority, written into tickets (opaque here; may be empty). */
  readonly route?: string;
  /** For `addMember` when it is given no time (default: the system clock). */
  readonly clock?: Clock;
}

/**
 * Options of `Authority.createTicket`: the attributes the ticket grants, its lifetime and uses.
 */
export interface CreateTicketOptions {
  readonly attributes: CredentialAttributes;
  /** Make the redeemer an enroller; only the authority itself may (default false). */
  readonly enroller?: boolean;
  /** Default 600 s (Ockam's), at most 7 days. */
  readonly ttlSeconds?: number;
  /** Redemptions allowed, 1 to 1000 (default 1). */
  readonly uses?: number;
  readonly nowSeconds: number;
}

/**
 * What a redeemer presents to `Authority.redeem`: the ticket code and its own change history.
 */
export interface RedeemRequest {
  /** The ticket's one-time code. */
  readonly code: Uint8Array;
  /** The redeemer's change history: the credential's subject. */
  readonly changeHistory: Uint8Array;
}

/**
 * The result of `Authority.redeem`: the new member and its first credential.
 */
export interface Enrollment {
  readonly member: Member;
  /** The member's first credential (CredentialAndPurposeKey bytes). */
  readonly credential: Uint8Array;
}

/** One answer for unknown, expired, used-up and no-longer-grantable tickets. */
const ticketInvalid = (cause: unknown): MandateError =>
  unauthorized('ERR_TICKET_INVALID', 'the enrollment ticket is not valid', cause);

/**
 * An authority: a local identity that keeps members (identifier → attributes), hands out
 * one-time enrollment tickets and issues its members' credentials (Ockam's authority node,
 * research/ockam.md §3, without the transport: the network arrives with the channel layer).
 *
 * Differences from Ockam, on purpose:
 * - only SHA-256 of a ticket's code is stored, so a copy of the database enrolls nobody;
 * - enrollers are attenuated: they grant (by ticket or directly) only attributes at most as wide
 *   as their own, and never make enrollers (Ockam lets enrollers grant anything but the role);
 * - a ticket is re-checked against its creator's rights at redemption, so removing or narrowing
 *   an enroller voids or narrows its outstanding tickets;
 * - every failure to redeem is the same `ERR_TICKET_INVALID`; the local reason is its `cause`.
 *
 * Attributes are constraints (constraints.ts): a name a credential lacks is a dimension its
 * holder is NOT restricted in — except `tools`, whose absence grants no tool at all (deny by
 * default). So "at most as wide" means: every name the bound carries is in the grant and
 * narrower-or-equal (`checkConstraintsNarrower` alone lets a child omit a name, which is right
 * for a delegation link, where the parent's constraint still applies, but would make a root
 * credential unrestricted in that name), and a grant carries `tools` only if the bound does. A
 * constraint scoped to a tool (`TOOL#ARG`) must name a tool the grant's `tools` grants
 * (`ERR_CONSTRAINT_TOOL_NOT_GRANTED`). Reserved `mandate.` attributes (chain
 * metadata such as `mandate.max-depth`) pass from an enroller only exactly as it holds them.
 *
 * @example
 * ```ts
 * const authority = new Authority({
 *   identities,
 *   vault,
 *   repository: store.authority,
 *   authority: 'authority', // a local identity's name
 *   route: '/ip4/10.0.0.1/tcp/4000',
 * });
 * const me = await authority.identifier();
 * const ticket = await authority.createTicket(me, {
 *   attributes: constraintsToAttributes(new Map([parseConstraint('tools=orders.refund')])),
 *   nowSeconds: Math.floor(Date.now() / 1000),
 * });
 * // the agent: parseEnrollmentTicket(ticket), then redeem its code over a secure channel
 * ```
 */
export class Authority {
  readonly #identities: Identities;
  readonly #vault: SigningVault;
  readonly #repository: AuthorityRepository;
  readonly #ref: string;
  readonly #policy: AuthorityPolicy;
  readonly #route: string;
  readonly #clock: Clock;
  #cachedIssuer: { readonly issuer: CredentialIssuer; readonly at: number } | undefined;

  constructor(options: AuthorityOptions) {
    this.#identities = options.identities;
    this.#vault = options.vault;
    this.#repository = options.repository;
    this.#ref = options.authority;
    this.#policy = checkPolicy(options.policy ?? {});
    this.#route = options.route ?? '';
    this.#clock = options.clock ?? systemClock;
  }

  get policy(): AuthorityPolicy {
    return this.#policy;
  }

  /** The authority's verified identity: what verifiers and tickets carry as the trust anchor. */
  async identity(): Promise<VerifiedIdentity> {
    return (await this.#local()).identity;
  }

  async identifier(): Promise<Identifier> {
    return (await this.identity()).identifier;
  }

  /**
   * Creates a ticket and returns its text (the only place the one-time code ever appears).
   * `by` is the authority itself or an enroller; see the class comment for what each may grant.
   */
  async createTicket(by: Identifier, options: CreateTicketOptions): Promise<string> {
    const now = checkNow(options.nowSeconds);
    const ttl = checkCount(
      options.ttlSeconds ?? DEFAULT_TICKET_TTL_SECONDS,
      'ttlSeconds',
      MAX_TICKET_TTL_SECONDS,
    );
    const uses = checkCount(options.uses ?? 1, 'uses', MAX_TICKET_USES);
    const enroller = options.enroller ?? false;
    const authority = await this.identity();
    const code = randomBytes(ENROLLMENT_CODE_BYTES);
    try {
      const expiresAt = now + ttl;
      // Formatted first: a ticket that cannot be written out is never stored.
      const text = formatEnrollmentTicket({ authority, route: this.#route, code, expiresAt });
      const ticket: StoredTicket = {
        codeHash: sha256(code),
        attributes: new Map(options.attributes),
        enroller,
        expiresAt,
        usesLeft: uses,
        createdBy: by,
        createdAt: now,
      };
      await this.#repository.transaction(async () => {
        await this.#checkGrant(authority.identifier, by, ticket.attributes, enroller);
        // Housekeeping where tickets are written: expired ones are dead weight.
        await this.#repository.deleteExpiredTickets(now);
        await this.#repository.putTicket(ticket);
      });
      return text;
    } finally {
      wipe(code);
    }
  }

  /**
   * Redeems a ticket's code for membership and a first credential. In one repository
   * transaction: the ticket is used once, the redeemer becomes (or is replaced as) a member with
   * exactly the ticket's attributes and enroller flag, and the credential is issued; any failure
   * writes nothing. Unknown, expired, used-up or no-longer-grantable tickets are all
   * `ERR_TICKET_INVALID`. The code is looked up by its hash, never compared.
   */
  async redeem(request: RedeemRequest, nowSeconds: number): Promise<Enrollment> {
    const now = checkNow(nowSeconds);
    const subject = verifyChangeHistory(request.changeHistory);
    if (request.code.length !== ENROLLMENT_CODE_BYTES)
      throw ticketInvalid(`the code is not ${ENROLLMENT_CODE_BYTES} bytes`);
    const codeHash = sha256(request.code);
    const issuer = await this.#issuer();
    return this.#repository.transaction(async () => {
      const ticket = await this.#repository.consumeTicket(codeHash, now);
      if (ticket === undefined) {
        const expired = await this.#repository.getTicketByCodeHash(codeHash);
        throw ticketInvalid(expired === undefined ? 'unknown or used up' : 'expired');
      }
      try {
        await this.#checkGrant(
          issuer.identity.identifier,
          ticket.createdBy,
          ticket.attributes,
          ticket.enroller,
        );
      } catch (cause) {
        throw ticketInvalid(cause);
      }
      const member: Member = {
        identifier: subject.identifier,
        attributes: ticket.attributes,
        enroller: ticket.enroller,
        addedAt: now,
        addedBy: ticket.createdBy,
      };
      await this.#repository.putMember(member);
      // Remember the member's history, so later credentials can be issued by identifier; a
      // history older than or diverging from the one known is refused like any import.
      await this.#identities.import(request.changeHistory, {
        expectedIdentifier: subject.identifier,
      });
      const credential = await this.#issue(issuer, subject, member.attributes, now, undefined);
      return { member, credential };
    });
  }

  /**
   * Issues a credential to an existing member with its stored attributes, for `ttlSeconds` (at
   * most the policy's maximum: see checkCredentialTtl) or the policy's default. Give the member's verified identity when the caller has it (a secure channel
   * does); an identifier is resolved through the identities this authority knows.
   */
  async issueCredential(
    member: Identifier | VerifiedIdentity,
    nowSeconds: number,
    options: { readonly ttlSeconds?: number } = {},
  ): Promise<Uint8Array> {
    const now = checkNow(nowSeconds);
    const identifier = typeof member === 'string' ? member : member.identifier;
    const stored = await this.#repository.getMember(identifier);
    if (stored === undefined)
      throw notFound('ERR_MEMBER_NOT_FOUND', `\`${identifier}\` is not a member of this authority`);
    const subject =
      typeof member === 'string' ? (await this.#identities.get(member)).identity : member;
    // The policy may have narrowed since the member was added; a stored grant from before scoped
    // constraints had to name a granted tool is refused rather than issued.
    const constraints = constraintsFromAttributes(stored.attributes);
    assertScopedToolsGranted(withoutReserved(constraints), undefined);
    this.#checkPolicy(constraints);
    return this.#issue(await this.#issuer(), subject, stored.attributes, now, options.ttlSeconds);
  }

  /**
   * `ttlSeconds` if this authority may issue a credential that long: a positive integer of at
   * most `policy.maxCredentialTtlSeconds`. A longer request is refused, never cut short: a
   * caller asking for a month must not get a day without being told.
   */
  checkCredentialTtl(ttlSeconds: number): number {
    const ttl = checkCount(ttlSeconds, 'ttlSeconds', Number.MAX_SAFE_INTEGER);
    const max = this.#policy.maxCredentialTtlSeconds;
    if (ttl > max)
      throw invalid(
        'ERR_CREDENTIAL_TTL_TOO_LONG',
        `a credential lifetime of ${ttl} s is longer than this authority's maximum of ${max} s`,
      );
    return ttl;
  }

  /** The member with this identifier, if any. */
  member(identifier: Identifier): Promise<Member | undefined> {
    return this.#repository.getMember(identifier);
  }

  /** Adds or replaces a member directly; `by` is the authority or an enroller, as for tickets. */
  async addMember(
    by: Identifier,
    identifier: Identifier,
    attributes: CredentialAttributes,
    options: { readonly enroller?: boolean; readonly nowSeconds?: number } = {},
  ): Promise<Member> {
    const now = checkNow(options.nowSeconds ?? this.#clock.nowSeconds());
    parseIdentifier(identifier);
    const authority = await this.identifier();
    const member: Member = {
      identifier,
      attributes: new Map(attributes),
      enroller: options.enroller ?? false,
      addedAt: now,
      addedBy: by,
    };
    await this.#repository.transaction(async () => {
      await this.#checkGrant(authority, by, member.attributes, member.enroller);
      if (by !== authority) await this.#checkNotOtherEnroller(by, identifier);
      await this.#repository.putMember(member);
    });
    return member;
  }

  /**
   * Removes a member; true when there was one. Enrollers may remove members and themselves, not
   * other enrollers. Credentials already issued stay valid until they expire or are denied.
   */
  async removeMember(by: Identifier, identifier: Identifier): Promise<boolean> {
    const authority = await this.identifier();
    return this.#repository.transaction(async () => {
      if (by !== authority) {
        await this.#requireEnroller(by);
        await this.#checkNotOtherEnroller(by, identifier);
      }
      return this.#repository.deleteMember(identifier);
    });
  }

  async #local(): Promise<KnownIdentity> {
    const known = await this.#identities.find(this.#ref);
    if (known === undefined)
      throw notFound(
        'ERR_IDENTITY_NOT_FOUND',
        `this home has no authority identity \`${this.#ref}\` (\`mandate authority init\` creates one)`,
      );
    if (known.primaryKeyId === null) {
      throw invalid(
        'ERR_IDENTITY_NOT_LOCAL',
        `identity \`${known.identity.identifier}\` is not controlled by this vault`,
      );
    }
    return known;
  }

  /**
   * The authority's own identity and verified credential key, read and verified at most every
   * ISSUER_CACHE_SECONDS: an authority enrolling thousands of agents would otherwise verify its
   * own history and attestation for each. A rotation of the authority is seen within that time.
   */
  async #issuer(): Promise<CredentialIssuer> {
    const now = this.#clock.nowSeconds();
    const cached = this.#cachedIssuer;
    if (cached !== undefined && now >= cached.at && now - cached.at < ISSUER_CACHE_SECONDS)
      return cached.issuer;
    const known = await this.#local();
    const { verified, keyId } = await this.#identities.purposeKey(known, Purpose.credentials);
    const issuer: CredentialIssuer = {
      identity: known.identity,
      credentialKeyId: keyId,
      credentialKeyAttestation: verified.attestation,
      verifiedKey: verified,
    };
    this.#cachedIssuer = { issuer, at: now };
    return issuer;
  }

  #issue(
    issuer: CredentialIssuer,
    subject: VerifiedIdentity,
    attributes: CredentialAttributes,
    now: number,
    ttlSeconds: number | undefined,
  ): Promise<Uint8Array> {
    return issueCredential(this.#vault, issuer, subject, attributes, {
      nowSeconds: now,
      ttlSeconds:
        ttlSeconds === undefined
          ? this.#policy.defaultCredentialTtlSeconds
          : this.checkCredentialTtl(ttlSeconds),
    });
  }

  /**
   * May `by` grant these attributes (and the enroller flag)? The authority may grant anything
   * within policy; an enroller only what it holds, and never the enroller flag.
   */
  async #checkGrant(
    authority: Identifier,
    by: Identifier,
    attributes: CredentialAttributes,
    makeEnroller: boolean,
  ): Promise<void> {
    const constraints = constraintsFromAttributes(attributes);
    assertScopedToolsGranted(withoutReserved(constraints), undefined);
    if (by !== authority) {
      const grantor = await this.#requireEnroller(by);
      if (makeEnroller)
        throw forbidden('ERR_ENROLLER_FORBIDDEN', 'only the authority itself can make enrollers');
      const exceeded = exceedsGrantor(attributes, constraints, grantor.attributes);
      if (exceeded !== undefined) {
        throw forbidden(
          'ERR_TICKET_ATTRIBUTES_EXCEED',
          `enroller \`${by}\` cannot grant attribute \`${exceeded.name}\`: ${exceeded.reason}`,
        );
      }
    }
    this.#checkPolicy(constraints);
  }

  #checkPolicy(constraints: Constraints): void {
    const grantable = this.#policy.grantable;
    if (grantable === undefined) return;
    const check = checkWithin(constraints, grantable);
    if (!check.ok) {
      throw forbidden(
        'ERR_AUTHORITY_POLICY',
        `attribute \`${check.name}\` is outside what this authority grants: ${check.reason}`,
      );
    }
  }

  async #requireEnroller(by: Identifier): Promise<Member> {
    const grantor = await this.#repository.getMember(by);
    if (grantor === undefined || !grantor.enroller) {
      throw forbidden(
        'ERR_ENROLLER_FORBIDDEN',
        `\`${by}\` is neither this authority nor one of its enrollers`,
      );
    }
    return grantor;
  }

  async #checkNotOtherEnroller(by: Identifier, identifier: Identifier): Promise<void> {
    if (identifier === by) return;
    const target = await this.#repository.getMember(identifier);
    if (target?.enroller === true)
      throw forbidden('ERR_ENROLLER_FORBIDDEN', 'only the authority itself can change an enroller');
  }
}

type WithinCheck =
  { readonly ok: true } | { readonly ok: false; readonly name: string; readonly reason: string };

/** Every name of `bound` present in `grant` and narrower-or-equal; `grant` may add names. */
function checkWithin(grant: Constraints, bound: Constraints): WithinCheck {
  for (const name of bound.keys()) {
    if (!grant.has(name))
      return { ok: false, name, reason: 'it is missing, which would leave it unrestricted' };
  }
  return checkConstraintsNarrower(grant, bound);
}

/**
 * The constraints proper: reserved names (`mandate.…`) are chain metadata in their own format
 * (`mandate.max-depth`, a gate budget `mandate.budget:TOOL#ARG`), never read against calls, as
 * verifyChain leaves them out of the root's constraints.
 */
function withoutReserved(constraints: Constraints): Constraints {
  return new Map([...constraints].filter(([name]) => !name.startsWith(RESERVED_PREFIX)));
}

function exceedsGrantor(
  attributes: CredentialAttributes,
  constraints: Constraints,
  held: CredentialAttributes,
): { readonly name: string; readonly reason: string } | undefined {
  const reserved = new Set(
    [...attributes.keys(), ...held.keys()].filter((name) => name.startsWith(RESERVED_PREFIX)),
  );
  for (const name of [...reserved].sort()) {
    const granted = attributes.get(name);
    const own = held.get(name);
    if (granted === undefined || own === undefined || !bytesEqual(granted, own))
      return {
        name,
        reason: 'an enroller passes on reserved attributes only exactly as it holds them',
      };
  }
  const check = checkWithin(
    withoutReserved(constraints),
    withoutReserved(constraintsFromAttributes(held)),
  );
  return check.ok ? undefined : check;
}

function checkPolicy(policy: Partial<AuthorityPolicy>): AuthorityPolicy {
  const max = checkCount(
    policy.maxCredentialTtlSeconds ?? DEFAULT_MAX_CREDENTIAL_TTL_SECONDS,
    'maxCredentialTtlSeconds',
    MAX_CREDENTIAL_TTL_SECONDS,
  );
  const fallback = Math.min(DEFAULT_CREDENTIAL_TTL_SECONDS, max);
  const defaultTtl = checkCount(
    policy.defaultCredentialTtlSeconds ?? fallback,
    'defaultCredentialTtlSeconds',
    max,
  );
  if (policy.grantable === undefined)
    return { maxCredentialTtlSeconds: max, defaultCredentialTtlSeconds: defaultTtl };
  return {
    maxCredentialTtlSeconds: max,
    defaultCredentialTtlSeconds: defaultTtl,
    grantable: new Map(policy.grantable),
  };
}

function checkCount(value: number, name: string, max: number): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max)
    throw invalid('ERR_ARGUMENT_INVALID', `\`${name}\` must be an integer from 1 to ${max}`);
  return value;
}

function checkNow(nowSeconds: number): number {
  return checkUnixSeconds(nowSeconds);
}
