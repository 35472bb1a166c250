import { invalid } from '../core/internal.js';
import { isIdentifier, type Identifier } from '../identity/index.js';

/**
 * Where a trust anchor counts (docs/spec/enrollment.md §Trust anchors):
 * - `all`: every verifier of the node trusts the authority (the node's own authority, added by
 *   `authority init`, and any authority added explicitly with `trust add`);
 * - `identity:<identifier>`: the authority is trusted only where that local identity holds or
 *   presents the credential or chain — its own enrollment (`ticket redeem` adds this). An
 *   authority that enrolled one identity is not thereby trusted to vouch for anyone else.
 */
export type TrustScope = 'all' | `identity:${Identifier}`;

/**
 * The scope of an anchor every verifier of the node trusts.
 */
export const TRUST_SCOPE_ALL = 'all' satisfies TrustScope;
const IDENTITY_SCOPE_PREFIX = 'identity:';

/**
 * One trusted authority and where it counts.
 */
export interface TrustAnchor {
  readonly identifier: Identifier;
  readonly scope: TrustScope;
  /** Unix seconds. */
  readonly addedAt: number;
}

/** The scope of an anchor trusted for `identifier` only. */
export function identityScope(identifier: Identifier): TrustScope {
  return `${IDENTITY_SCOPE_PREFIX}${identifier}`;
}

/** `all` or `identity:<identifier>`, else ERR_ARGUMENT_INVALID. */
export function parseTrustScope(text: string): TrustScope {
  if (text === TRUST_SCOPE_ALL) return TRUST_SCOPE_ALL;
  const id = text.startsWith(IDENTITY_SCOPE_PREFIX) ? text.slice(IDENTITY_SCOPE_PREFIX.length) : '';
  if (!isIdentifier(id))
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      'a trust scope is `all` or `identity:` followed by an identifier',
    );
  return identityScope(id);
}

/**
 * The authorities a verifier trusts: every `all` anchor, and with `forIdentity` (the local
 * identity that holds or presents what is verified) also the anchors scoped to it. Each
 * authority once, in the anchors' order.
 */
export function trustedIdentifiers(
  anchors: readonly TrustAnchor[],
  options: { readonly forIdentity?: Identifier } = {},
): Identifier[] {
  const own = options.forIdentity === undefined ? undefined : identityScope(options.forIdentity);
  const out = new Set<Identifier>();
  for (const anchor of anchors)
    if (anchor.scope === TRUST_SCOPE_ALL || anchor.scope === own) out.add(anchor.identifier);
  return [...out];
}

/**
 * The trust anchors of a node: which authorities it trusts to issue root credentials, and where
 * (a scope). Their change histories live with the other identities; this is only the list. One
 * authority may be an anchor in several scopes, one row each.
 */
export interface TrustAnchorRepository {
  /** Adds the anchor; false (and the first `addedAt` kept) when it is there already. */
  addTrustAnchor(anchor: TrustAnchor): Promise<boolean>;
  /** Removes the authority's anchors in `scope`, or in every scope; how many were removed. */
  removeTrustAnchors(identifier: Identifier, scope?: TrustScope): Promise<number>;
  /** Every anchor, in the order they were added. */
  listTrustAnchors(): Promise<TrustAnchor[]>;
}

/** Checks what a repository is asked to store: an identifier, a scope, unix seconds. */
export function checkTrustAnchor(anchor: TrustAnchor): TrustAnchor {
  if (!isIdentifier(anchor.identifier))
    throw invalid('ERR_ARGUMENT_INVALID', 'a trust anchor needs an identifier');
  if (!Number.isSafeInteger(anchor.addedAt) || anchor.addedAt < 0)
    throw invalid('ERR_ARGUMENT_INVALID', '`addedAt` must be a non-negative integer');
  return {
    identifier: anchor.identifier,
    scope: parseTrustScope(anchor.scope),
    addedAt: anchor.addedAt,
  };
}

/**
 * A {@link TrustAnchorRepository} in memory, for tests and ephemeral nodes.
 */
export class MemoryTrustAnchorRepository implements TrustAnchorRepository {
  readonly #anchors: TrustAnchor[] = [];

  // async: a malformed anchor rejects, as with a store, rather than throwing at the call.
  // eslint-disable-next-line @typescript-eslint/require-await
  async addTrustAnchor(anchor: TrustAnchor): Promise<boolean> {
    const checked = checkTrustAnchor(anchor);
    if (this.#anchors.some((a) => a.identifier === checked.identifier && a.scope === checked.scope))
      return false;
    this.#anchors.push(checked);
    return true;
  }

  removeTrustAnchors(identifier: Identifier, scope?: TrustScope): Promise<number> {
    const before = this.#anchors.length;
    const kept = this.#anchors.filter(
      (a) => a.identifier !== identifier || (scope !== undefined && a.scope !== scope),
    );
    this.#anchors.splice(0, before, ...kept);
    return Promise.resolve(before - kept.length);
  }

  listTrustAnchors(): Promise<TrustAnchor[]> {
    return Promise.resolve([...this.#anchors]);
  }
}
