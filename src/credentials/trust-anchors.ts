import type { Identifier } from '../identity/index.js';

/**
 * The authorities a node trusts to issue root credentials, by identifier. Their change
 * histories live with the other identities; this is only the list. An enrollment ticket adds
 * its authority here when it is redeemed: the ticket is how the trust anchor arrives.
 */
export interface TrustAnchorRepository {
  addTrustAnchor(identifier: Identifier, addedAt: number): Promise<void>;
  removeTrustAnchor(identifier: Identifier): Promise<boolean>;
  listTrustAnchors(): Promise<Identifier[]>;
}

export class MemoryTrustAnchorRepository implements TrustAnchorRepository {
  readonly #anchors = new Map<Identifier, number>();

  addTrustAnchor(identifier: Identifier, addedAt: number): Promise<void> {
    if (!this.#anchors.has(identifier)) this.#anchors.set(identifier, addedAt);
    return Promise.resolve();
  }

  removeTrustAnchor(identifier: Identifier): Promise<boolean> {
    return Promise.resolve(this.#anchors.delete(identifier));
  }

  listTrustAnchors(): Promise<Identifier[]> {
    return Promise.resolve([...this.#anchors.keys()]);
  }
}
