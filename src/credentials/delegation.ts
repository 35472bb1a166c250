import {
  checkUnixSeconds,
  invalid,
  isUnixSeconds,
  forbidden,
  unauthorized,
} from '../core/internal.js';
import { MandateError } from '../core/index.js';
import { bytesEqual, toHex } from '../encoding/index.js';
import { randomBytes, sha256 } from '../crypto/index.js';
import type { SigningVault } from '../vault/index.js';
import {
  newerHistory,
  encodeSignature,
  historyIdentifier,
  verifyChangeSignature,
} from '../identity/internal.js';
import {
  Purpose,
  verifyChangeHistory,
  verifyPurposeKeyAttestation,
  type Identifier,
  type VerifiedIdentity,
  type VerifiedPurposeKey,
} from '../identity/index.js';
import {
  decodeChain,
  encodeChain,
  encodeLink,
  encodeLinkData,
  checkPurpose,
  LINK_NONCE_BYTES,
  MAX_CHAIN_LINKS,
  type DecodedLink,
} from './chain-codec.js';
import {
  assertScopedToolsGranted,
  checkConstraintsNarrower,
  checkRequest,
  constraintsFromAttributes,
  constraintsToAttributes,
  formatConstraint,
  HUMAN_ATTRIBUTE,
  requestScope,
  TOOLS_ATTRIBUTE,
  type AuthorizationRequest,
  type Constraint,
  type Constraints,
} from './constraints.js';
import {
  decodeCredential,
  verifyCredentialWith,
  type CredentialIssuer,
  type VerifiedCredential,
} from './credential.js';
import type { VerifiedAttestations } from './credential-key.js';
import { revocationIdOf, type RevocationId } from './revocation-id.js';
import type { DenySet } from './deny-set.js';

/** Attribute names in this namespace are chain metadata, never constraints on requests. */
export const RESERVED_PREFIX = 'mandate.';
/** How many links a root credential allows below it unless it says `mandate.max-depth`. */
export const DEFAULT_MAX_DEPTH = 3;

/** One verified link of a chain. */
export interface VerifiedLink {
  readonly issuer: Identifier;
  readonly subject: Identifier;
  readonly constraints: Constraints;
  readonly notBefore: number;
  /** The link's own expiry, or its parent's when it left it out. */
  readonly expiresAt: number;
  readonly depth: number;
  readonly purpose: string;
  readonly revocationId: RevocationId;
  /** SHA-256 of the link's signed data: what a child link names as its parent. */
  readonly hash: Uint8Array;
  readonly issuerKey: VerifiedPurposeKey;
}

const issued = Symbol('VerifiedChain');
// Set by VerifiedChain's static block: a chain's authorization plan, built on first use.
let planOf: (chain: VerifiedChain) => AuthorizationPlan;

/**
 * A root credential from a trusted authority plus delegation links, every one checked (see
 * verifyChain). Later calls re-check only what changes with time: expiry, the deny-set and the
 * request's constraints (`authorize`).
 */
export class VerifiedChain {
  /** @internal use verifyChain */
  constructor(
    token: typeof issued,
    readonly root: VerifiedCredential,
    readonly links: readonly VerifiedLink[],
    /** Root constraints (the credential's attributes minus the reserved namespace). */
    readonly rootConstraints: Constraints,
    readonly rootDepth: number,
    /** The chain exactly as received. */
    readonly bytes: Uint8Array,
    /** The identities the chain carries (each the newest version known), by identifier. */
    readonly identities: ReadonlyMap<Identifier, VerifiedIdentity>,
  ) {
    if (token !== issued) throw new TypeError('VerifiedChain is created by verifyChain only');
  }

  /** The agent that acts: the last subject. */
  get actor(): Identifier {
    return this.links.at(-1)?.subject ?? this.root.subject;
  }

  get notBefore(): number {
    this.#notBefore ??= Math.max(this.root.createdAt, ...this.links.map((l) => l.notBefore));
    return this.#notBefore;
  }

  get expiresAt(): number {
    this.#expiresAt ??= Math.min(this.root.expiresAt, ...this.links.map((l) => l.expiresAt));
    return this.#expiresAt;
  }

  // Computed once: a chain's parts never change after verification, and authorize reads these
  // on every call.
  #notBefore: number | undefined;
  #expiresAt: number | undefined;
  #plan: AuthorizationPlan | undefined;

  static {
    planOf = (chain) => (chain.#plan ??= buildPlan(chain.levels));
  }

  /** Remaining delegation depth below the actor. */
  get remainingDepth(): number {
    return this.links.at(-1)?.depth ?? this.rootDepth;
  }

  /** Every revocation id and identity a revocation of which voids this chain. */
  get revocationSubjects(): readonly string[] {
    if (this.#revocationSubjects === undefined) {
      const ids: string[] = [this.root.revocationId, this.root.issuer, this.root.subject];
      for (const l of this.links) ids.push(l.revocationId, l.issuer, l.subject);
      this.#revocationSubjects = Object.freeze([...new Set(ids)]);
    }
    return this.#revocationSubjects;
  }

  #revocationSubjects: readonly string[] | undefined;
  #levels: readonly Constraints[] | undefined;

  /** Each level's constraints, the root's first: what a decision evaluates, in order. */
  get levels(): readonly Constraints[] {
    this.#levels ??= Object.freeze([this.rootConstraints, ...this.links.map((l) => l.constraints)]);
    return this.#levels;
  }

  /** For each name, the constraint declared nearest to the actor (what a new link must narrow). */
  get effectiveConstraints(): Constraints {
    const out = new Map(this.rootConstraints);
    for (const l of this.links) for (const [name, c] of l.constraints) out.set(name, c);
    return out;
  }

  get hash(): Uint8Array {
    return this.links.at(-1)?.hash ?? this.root.hash;
  }

  #steps: readonly ChainStep[] | undefined;

  /** Who delegated to whom, why, under which constraints: built once, shown in every decision. */
  get steps(): readonly ChainStep[] {
    this.#steps ??= Object.freeze(buildSteps(this));
    return this.#steps;
  }
}

/**
 * Options of {@link verifyChain}: the time, the trusted authorities, optionally the presenter,
 * the deny-set, and newer histories the verifier knows.
 */
export interface VerifyChainOptions {
  readonly nowSeconds: number;
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  /** The identity presenting the chain; it must be the last subject. */
  readonly presenter?: Identifier;
  readonly denySet?: DenySet;
  readonly maxClockSkewSeconds?: number;
  readonly rotationGraceSeconds?: number;
  /**
   * Histories the verifier already knows. A history carried in the chain is only a claim: when
   * the verifier knows a longer one (the identity rotated since), the known one is used, so a
   * rotation — above all one that revokes purpose keys after a compromise — cannot be undone by
   * presenting the old history. A carried history that diverges from the known one is a fork.
   */
  readonly knownIdentities?: ReadonlyMap<Identifier, VerifiedIdentity>;
}

/**
 * bytes → VerifiedChain (docs/spec/delegation.md §Verification). Strict parsing and every carried
 * history first (the newer one the verifier knows wins); then the root credential (a trusted
 * authority's attested key, its subject's latest change); then link by link: principal alignment
 * (issuer = previous subject, parent hash = previous element), the signature by the issuer's
 * attested credential key, time (within the parent, within the signing key's attestation, against
 * now), depth, and that its constraints narrow those in force above it; then the presenter; and
 * last the deny-set, for every revocation id and identity in the chain. Any failure throws.
 *
 * @example
 * ```ts
 * const authorities = new Map([[authority.identifier, authority]]);
 * const chain = verifyChain(bytes, { nowSeconds: Math.floor(Date.now() / 1000), authorities, denySet });
 * const decision = authorize(chain, {
 *   action: 'orders.refund',
 *   args: new Map([['amount', '40']]),
 *   nowSeconds: Math.floor(Date.now() / 1000),
 * });
 * ```
 */
export function verifyChain(bytes: Uint8Array, options: VerifyChainOptions): VerifiedChain {
  return verifyChainWith(bytes, options, undefined);
}

/**
 * {@link verifyChain}, the root credential's attestation through `attestations` (a
 * ChainVerifier's: chains rooted at one authority carry the same attestation, verified once).
 */
export function verifyChainWith(
  bytes: Uint8Array,
  options: VerifyChainOptions,
  attestations: VerifiedAttestations | undefined,
): VerifiedChain {
  checkUnixSeconds(options.nowSeconds);
  const decoded = decodeChain(bytes);
  const identities = new Map<Identifier, VerifiedIdentity>();
  for (const history of decoded.histories) {
    // A carried history byte-identical to one the verifier already holds verified is that
    // identity: verifying it again would only repeat the same checks on the same bytes.
    const same = options.knownIdentities?.get(historyIdentifier(history));
    const fromChain =
      same !== undefined && bytesEqual(same.changeHistory, history)
        ? same
        : verifyChangeHistory(history);
    identities.set(
      fromChain.identifier,
      newerHistory(options.knownIdentities?.get(fromChain.identifier), fromChain),
    );
  }
  // What the chain carries (newest known) is what a longer chain carries on; lookups also see
  // the trusted authorities, whose own copies always win.
  const carried = new Map(identities);
  for (const [id, identity] of options.authorities) identities.set(id, identity);

  // 2. Signatures, starting with the root credential, whose subject's history must be in the
  // chain: the credential names that subject's latest change, which must be one of its changes.
  const rootSubject = identities.get(decodeCredential(decoded.root).subject);
  if (rootSubject === undefined) {
    throw invalid(
      'ERR_CHAIN_HISTORY_MISSING',
      "the chain lacks the change history of its root credential's subject",
    );
  }
  const root = verifyCredentialWith(
    decoded.root,
    {
      nowSeconds: options.nowSeconds,
      authorities: options.authorities,
      subject: rootSubject,
      ...(options.maxClockSkewSeconds === undefined
        ? {}
        : { maxClockSkewSeconds: options.maxClockSkewSeconds }),
      ...(options.rotationGraceSeconds === undefined
        ? {}
        : { rotationGraceSeconds: options.rotationGraceSeconds }),
    },
    attestations,
  );
  const rootAttributes = new Map(
    [...root.attributes].filter(([name]) => !name.startsWith(RESERVED_PREFIX)),
  );
  const rootConstraints = constraintsFromAttributes(rootAttributes);
  assertScopedToolsGranted(rootConstraints, undefined, 'the root credential: ');
  const rootDepth = readMaxDepth(root.attributes);

  const links: VerifiedLink[] = [];
  let parentSubject = root.subject;
  let parentHash = root.hash;
  let parentDepth = rootDepth;
  let parentExpiresAt = root.expiresAt;
  let parentNotBefore = root.createdAt;
  const effective = new Map(rootConstraints);
  for (const [index, link] of decoded.links.entries()) {
    const where = `link ${index + 1}`;
    const issuer: Identifier = `I${toHex(link.issuer)}`;
    const subject: Identifier = `I${toHex(link.subject)}`;
    // 3. Principal alignment.
    if (issuer !== parentSubject) {
      throw forbidden(
        'ERR_DELEGATION_PRINCIPAL_MISMATCH',
        `${where} is issued by \`${issuer}\`, but the delegated party is \`${parentSubject}\``,
      );
    }
    if (!bytesEqual(link.parent, parentHash)) {
      throw forbidden(
        'ERR_DELEGATION_PARENT_MISMATCH',
        `${where} does not name the element before it as its parent`,
      );
    }
    const issuerIdentity = identities.get(issuer);
    if (issuerIdentity === undefined)
      throw invalid(
        'ERR_CHAIN_HISTORY_MISSING',
        `the chain lacks the change history of \`${issuer}\``,
      );
    if (!identities.has(subject))
      throw invalid(
        'ERR_CHAIN_HISTORY_MISSING',
        `the chain lacks the change history of \`${subject}\``,
      );
    const issuerKey = verifyLinkSignature(link, issuerIdentity, options, where);
    // 4. Time.
    const expiresAt = link.expiresAt ?? parentExpiresAt;
    if (link.notBefore < parentNotBefore) {
      throw forbidden(
        'ERR_DELEGATION_AMPLIFIES',
        `${where} starts before its parent (not_before ${link.notBefore} < ${parentNotBefore})`,
      );
    }
    if (expiresAt > parentExpiresAt) {
      throw forbidden(
        'ERR_DELEGATION_AMPLIFIES',
        `${where} outlives its parent (expires ${expiresAt} > ${parentExpiresAt})`,
      );
    }
    checkWindow(link.notBefore, expiresAt, options, where);
    if (expiresAt > issuerKey.expiresAt) {
      throw invalid('ERR_DELEGATION_WINDOW', `${where} outlives the key that signed it`);
    }
    // 5. Depth.
    if (link.depth >= parentDepth) {
      throw forbidden(
        'ERR_DELEGATION_DEPTH',
        `${where} declares depth ${link.depth}, its parent allows at most ${parentDepth - 1}`,
      );
    }
    // 7. Subset (decoded here; the deny-set check, 6, runs once for the whole chain below).
    const constraints = decodeLinkConstraints(link, where);
    const narrower = checkConstraintsNarrower(constraints, effective);
    if (!narrower.ok) {
      throw forbidden(
        'ERR_DELEGATION_AMPLIFIES',
        `${where} widens constraint \`${narrower.name}\`: ${narrower.reason}`,
      );
    }
    assertScopedToolsGranted(constraints, effective.get(TOOLS_ATTRIBUTE), `${where}: `);
    const hash = sha256(link.data);
    links.push({
      issuer,
      subject,
      constraints,
      notBefore: link.notBefore,
      expiresAt,
      depth: link.depth,
      purpose: link.purpose,
      revocationId: revocationIdOf(issuer, hash),
      hash,
      issuerKey,
    });
    for (const [name, c] of constraints) effective.set(name, c);
    parentSubject = subject;
    parentHash = hash;
    parentDepth = link.depth;
    parentExpiresAt = expiresAt;
    parentNotBefore = link.notBefore;
  }
  if (options.presenter !== undefined && options.presenter !== parentSubject) {
    throw forbidden(
      'ERR_CHAIN_PRESENTER_MISMATCH',
      `the chain was delegated to \`${parentSubject}\`, not to the presenter \`${options.presenter}\``,
    );
  }
  const chain = new VerifiedChain(issued, root, links, rootConstraints, rootDepth, bytes, carried);
  // 6. Revocation of every link and every identity in the chain.
  options.denySet?.assertNoneRevoked(chain.revocationSubjects, options.nowSeconds);
  return chain;
}

function verifyLinkSignature(
  link: DecodedLink,
  issuer: VerifiedIdentity,
  options: VerifyChainOptions,
  where: string,
): VerifiedPurposeKey {
  const key = verifyPurposeKeyAttestation(issuer, link.attestation, {
    nowSeconds: options.nowSeconds,
    expectedPurpose: Purpose.credentials,
    ...(options.rotationGraceSeconds === undefined
      ? {}
      : { rotationGraceSeconds: options.rotationGraceSeconds }),
  });
  if (
    key.key.purpose !== Purpose.credentials ||
    !verifyChangeSignature(key.key.signingKey, sha256(link.data), link.signature)
  ) {
    throw unauthorized('ERR_DELEGATION_SIGNATURE_INVALID', `${where} has an invalid signature`);
  }
  return key;
}

function checkWindow(
  notBefore: number,
  expiresAt: number,
  options: VerifyChainOptions,
  where: string,
): void {
  const skew = options.maxClockSkewSeconds ?? 60;
  if (notBefore > options.nowSeconds + skew)
    throw invalid('ERR_DELEGATION_NOT_YET_VALID', `${where} is not valid before ${notBefore}`);
  if (options.nowSeconds >= expiresAt)
    throw unauthorized('ERR_DELEGATION_EXPIRED', `${where} expired at ${expiresAt}`);
}

function decodeLinkConstraints(link: DecodedLink, where: string): Constraints {
  for (const name of link.constraints.keys()) {
    if (name.startsWith(RESERVED_PREFIX))
      throw invalid(
        'ERR_DELEGATION_MALFORMED',
        `${where} uses the reserved constraint name \`${name}\``,
      );
  }
  return constraintsFromAttributes(link.constraints);
}

function readMaxDepth(attributes: ReadonlyMap<string, Uint8Array>): number {
  const raw = attributes.get(`${RESERVED_PREFIX}max-depth`);
  if (raw === undefined) return DEFAULT_MAX_DEPTH;
  const text = new TextDecoder().decode(raw);
  if (!/^(?:0|[1-9]\d?)$/.test(text))
    throw invalid(
      'ERR_CREDENTIAL_ATTRIBUTES_INVALID',
      '`mandate.max-depth` must be an integer from 0 to 99',
    );
  return Number(text);
}

// --- issuing a link ---------------------------------------------------------------------------

/**
 * Options of {@link delegate}: the subject, the link's constraints (each at most as wide as the
 * constraint in force above it), its purpose, lifetime and remaining depth.
 */
export interface DelegateOptions {
  readonly nowSeconds: number;
  readonly constraints: Constraints;
  readonly purpose?: string;
  /** Lifetime of the link; omitted, the link inherits its parent's expiry. */
  readonly ttlSeconds?: number;
  /** Remaining depth after this link (default: one less than the parent allows). */
  readonly depth?: number;
  /** The subject's verified identity; its history travels in the chain. */
  readonly subject: VerifiedIdentity;
}

/**
 * Extends a verified chain by a link signed by its actor. The same rules verifyChain applies are
 * applied here first, so a widening link is refused before it is ever signed
 * (`ERR_DELEGATION_AMPLIFIES`, naming the constraint).
 *
 * @example
 * ```ts
 * const link = await delegate(vault, issuer, chain, {
 *   subject: helper.identity,
 *   constraints: new Map([parseConstraint('tools=orders.refund'), parseConstraint('amount<=100')]),
 *   purpose: 'refunds under 100',
 *   ttlSeconds: 900,
 *   nowSeconds: Math.floor(Date.now() / 1000),
 * });
 * ```
 */
export async function delegate(
  vault: SigningVault,
  issuer: CredentialIssuer,
  chain: VerifiedChain,
  options: DelegateOptions,
): Promise<Uint8Array> {
  checkUnixSeconds(options.nowSeconds);
  if (issuer.identity.identifier !== chain.actor) {
    throw forbidden(
      'ERR_DELEGATION_PRINCIPAL_MISMATCH',
      `only \`${chain.actor}\`, the chain's last subject, may extend it`,
    );
  }
  if (chain.links.length >= MAX_CHAIN_LINKS)
    throw forbidden('ERR_DELEGATION_DEPTH', `a chain holds at most ${MAX_CHAIN_LINKS} links`);
  const depth = options.depth ?? chain.remainingDepth - 1;
  if (
    chain.remainingDepth <= 0 ||
    !Number.isSafeInteger(depth) ||
    depth < 0 ||
    depth >= chain.remainingDepth
  ) {
    throw forbidden(
      'ERR_DELEGATION_DEPTH',
      `the chain allows no further delegation at depth ${depth}`,
    );
  }
  const purpose = options.purpose ?? '';
  checkPurpose(purpose, 'ERR_ARGUMENT_INVALID');
  for (const name of options.constraints.keys()) {
    if (name.startsWith(RESERVED_PREFIX))
      throw invalid('ERR_DELEGATION_MALFORMED', `\`${name}\` is a reserved name`);
    // Only the authority marks a person (approvers, `Human` delegators): a link that says
    // `human=true` would mark an agent one, even if nothing it checks reads it.
    if (name === HUMAN_ATTRIBUTE)
      throw forbidden(
        'ERR_DELEGATION_HUMAN',
        '`human` is written by the authority only (`credential issue --attr human=true`): a link cannot mark its subject a person',
      );
  }
  const narrower = checkConstraintsNarrower(options.constraints, chain.effectiveConstraints);
  if (!narrower.ok) {
    throw forbidden(
      'ERR_DELEGATION_AMPLIFIES',
      `constraint \`${narrower.name}\` would widen the chain: ${narrower.reason}`,
    );
  }
  assertScopedToolsGranted(options.constraints, chain.effectiveConstraints.get(TOOLS_ATTRIBUTE));
  const notBefore = Math.max(options.nowSeconds, chain.notBefore);
  let expiresAt: number | null = null;
  if (options.ttlSeconds !== undefined) {
    if (!Number.isSafeInteger(options.ttlSeconds) || options.ttlSeconds <= 0)
      throw invalid('ERR_ARGUMENT_INVALID', '`ttlSeconds` must be a positive integer');
    expiresAt = options.nowSeconds + options.ttlSeconds;
    if (expiresAt > chain.expiresAt) {
      throw forbidden(
        'ERR_DELEGATION_AMPLIFIES',
        `the link would outlive its chain (${expiresAt} > ${chain.expiresAt})`,
      );
    }
  }
  const data = encodeLinkData({
    issuer: identifierBytes(issuer.identity),
    subject: identifierBytes(options.subject),
    parent: chain.hash,
    constraints: constraintsToAttributes(options.constraints),
    notBefore,
    expiresAt,
    depth,
    purpose,
    nonce: randomBytes(LINK_NONCE_BYTES),
  });
  const signature = await vault.sign(issuer.credentialKeyId, sha256(data));
  const keyType = (await vault.getSigningKey(issuer.credentialKeyId)).keyType;
  const link = encodeLink(
    data,
    encodeSignature(keyType, signature),
    issuer.credentialKeyAttestation,
  );
  const decoded = decodeChain(chain.bytes);
  // Every history the chain was verified with, plus the new link's two parties.
  const histories = new Map<Identifier, Uint8Array>();
  for (const [id, identity] of chain.identities) histories.set(id, identity.changeHistory);
  histories.set(issuer.identity.identifier, issuer.identity.changeHistory);
  histories.set(options.subject.identifier, options.subject.changeHistory);
  return encodeChain(decoded.root, [...decoded.linkBytes, link], [...histories.values()]);
}

/** A chain of length 0: a root credential with the histories a verifier needs. */
export function chainFromCredential(credential: Uint8Array, subject: VerifiedIdentity): Uint8Array {
  return encodeChain(credential, [], [subject.changeHistory]);
}

function identifierBytes(identity: VerifiedIdentity): Uint8Array {
  return identity.changes[0]!.changeHash;
}

// --- authorization -------------------------------------------------------------------------------

/**
 * One level of a verified chain in readable form (the root credential, then each link): who gave what to whom.
 */
export interface ChainStep {
  readonly issuer: Identifier;
  readonly subject: Identifier;
  readonly purpose: string;
  readonly constraints: readonly string[];
}

/**
 * The answer of {@link authorize}: `allow`, or `deny` naming the level (0 = the root credential)
 * and the constraint that refused, with a reason for people.
 */
export type Decision =
  | { readonly decision: 'allow'; readonly actor: Identifier; readonly chain: readonly ChainStep[] }
  | {
      readonly decision: 'deny';
      readonly actor: Identifier;
      readonly chain: readonly ChainStep[];
      readonly failed: {
        readonly link: number;
        readonly constraint: string | null;
        readonly reason: string;
      };
    };

/**
 * "May this chain do `request.action` with `request.args`?" Re-checks time and revocation, then
 * evaluates the CONJUNCTION of every link's constraints (the root's included) against the
 * request, so a gap in the subset check can never widen authority. Link 0 is the root credential.
 * Deny by default: some level must carry `tools` (a grant of the action), and every level that
 * does must accept it; a chain without `tools` allows nothing. A `nowSeconds` that is not unix
 * seconds (NaN, a missing clock, ±Infinity, a fraction) denies. Never throws for a denial; the
 * answer says which link and which constraint failed.
 *
 * @example
 * ```ts
 * const decision = authorize(chain, {
 *   action: 'github/create_issue',
 *   args: new Map([['repo', 'mandate']]),
 *   nowSeconds: Math.floor(Date.now() / 1000),
 * });
 * const reason = decision.decision === 'deny' ? decision.failed.reason : undefined;
 * ```
 */
export function authorize(
  chain: VerifiedChain,
  request: AuthorizationRequest,
  options: { readonly denySet?: DenySet } = {},
): Decision {
  if (!isUnixSeconds(request.nowSeconds))
    return denied(chain, 0, null, `the time \`${String(request.nowSeconds)}\` is not unix seconds`);
  if (request.nowSeconds < chain.notBefore)
    return denied(chain, 0, null, 'the chain is not valid yet');
  if (request.nowSeconds >= chain.expiresAt) return denied(chain, 0, null, 'the chain has expired');
  if (options.denySet !== undefined) {
    try {
      options.denySet.assertNoneRevoked(chain.revocationSubjects, request.nowSeconds);
    } catch (error) {
      return denied(
        chain,
        0,
        null,
        error instanceof MandateError
          ? `${error.code}: ${error.message}`
          : 'revocation check failed',
      );
    }
  }
  const plan = planOf(chain);
  if (!plan.granted)
    return denied(chain, 0, TOOLS_ATTRIBUTE, 'no credential or link grants any tool');
  // Every constraint of every level, in order, except those checkRequest passes for any request
  // (left out of the plan) or for any call of another tool (skipped here).
  const checks = plan.checks;
  const action = request.action;
  for (let i = 0; i < checks.length; i++) {
    const entry = checks[i]!;
    if (entry.tool !== undefined && entry.tool !== action) continue;
    const check = checkRequest(entry.name, entry.constraint, request);
    if (!check.ok) return denied(chain, entry.level, entry.name, check.reason);
  }
  return { decision: 'allow', actor: chain.actor, chain: chain.steps };
}

function denied(
  chain: VerifiedChain,
  link: number,
  constraint: string | null,
  reason: string,
): Decision {
  return {
    decision: 'deny',
    actor: chain.actor,
    chain: chain.steps,
    failed: { link, constraint, reason },
  };
}

/** What authorize evaluates for one chain, worked out once (see requestScope). */
interface AuthorizationPlan {
  /** Some level carries `tools`. */
  readonly granted: boolean;
  readonly checks: readonly {
    readonly level: number;
    readonly name: string;
    readonly constraint: Constraint;
    /** Checked only for calls of this tool; `undefined`: for every call. */
    readonly tool: string | undefined;
  }[];
}

function buildPlan(levels: readonly Constraints[]): AuthorizationPlan {
  let granted = false;
  const checks: AuthorizationPlan['checks'][number][] = [];
  for (let level = 0; level < levels.length; level++) {
    for (const [name, constraint] of levels[level]!) {
      if (name === TOOLS_ATTRIBUTE) granted = true;
      const scope = requestScope(name, constraint);
      if (scope === null) continue;
      checks.push(Object.freeze({ level, name, constraint, tool: scope }));
    }
  }
  return Object.freeze({ granted, checks: Object.freeze(checks) });
}

function buildSteps(chain: VerifiedChain): ChainStep[] {
  const format = (constraints: Constraints): string[] =>
    [...constraints].map(([n, c]: [string, Constraint]) => formatConstraint(n, c));
  return [
    {
      issuer: chain.root.issuer,
      subject: chain.root.subject,
      purpose: 'root credential',
      constraints: format(chain.rootConstraints),
    },
    ...chain.links.map((l) => ({
      issuer: l.issuer,
      subject: l.subject,
      purpose: l.purpose,
      constraints: format(l.constraints),
    })),
  ];
}
