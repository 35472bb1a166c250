import { toHex } from '../encoding/index.js';
import type { SigningKeyType } from '../vault/index.js';
import type { Change, Identifier, PublicSigningKey } from './model.js';

const issued = Symbol('VerifiedIdentity');

/**
 * A change history whose every hash link and signature has been checked. The only ways to get
 * one are `verifyChangeHistory` (bytes from anywhere) and this layer's own create and rotate
 * functions, which build it from signatures they just made.
 */
export class VerifiedIdentity {
  readonly identifier: Identifier;
  /** The change history exactly as received or created: what is stored and exported. */
  readonly changeHistory: Uint8Array;
  readonly changes: readonly Change[];

  /** @internal use verifyChangeHistory */
  constructor(
    token: typeof issued,
    identifier: Identifier,
    changeHistory: Uint8Array,
    changes: readonly Change[],
  ) {
    if (token !== issued)
      throw new TypeError('VerifiedIdentity is created by verifyChangeHistory only');
    this.identifier = identifier;
    this.changeHistory = changeHistory;
    this.changes = changes;
  }

  get latestChange(): Change {
    // A verified history has at least one change.
    return this.changes[this.changes.length - 1]!;
  }

  get latestChangeHash(): Uint8Array {
    return this.latestChange.changeHash;
  }

  get primaryPublicKey(): PublicSigningKey {
    return this.latestChange.primaryPublicKey;
  }

  get keyType(): SigningKeyType {
    return this.latestChange.primaryPublicKey.keyType;
  }

  /** A plain summary for display and `--json` output. */
  describe(): IdentitySummary {
    return {
      identifier: this.identifier,
      keyType: this.keyType,
      changes: this.changes.map((c) => ({
        changeHash: toHex(c.changeHash),
        previousChange: c.previousChange === null ? null : toHex(c.previousChange),
        keyType: c.primaryPublicKey.keyType,
        primaryPublicKey: toHex(c.primaryPublicKey.bytes),
        revokeAllPurposeKeys: c.revokeAllPurposeKeys,
        attestationsValidFrom: c.attestationsValidFrom,
        attestationsValidUntil: c.attestationsValidUntil,
      })),
    };
  }
}

/**
 * The JSON-friendly form of a {@link VerifiedIdentity} (hex bytes), as `VerifiedIdentity.summary()` gives it.
 */
export interface IdentitySummary {
  readonly identifier: Identifier;
  readonly keyType: SigningKeyType;
  readonly changes: readonly {
    readonly changeHash: string;
    readonly previousChange: string | null;
    readonly keyType: SigningKeyType;
    readonly primaryPublicKey: string;
    readonly revokeAllPurposeKeys: boolean;
    readonly attestationsValidFrom: number;
    readonly attestationsValidUntil: number;
  }[];
}

/** @internal for this layer's constructors */
export function issueVerifiedIdentity(
  identifier: Identifier,
  changeHistory: Uint8Array,
  changes: readonly Change[],
): VerifiedIdentity {
  return new VerifiedIdentity(issued, identifier, changeHistory, changes);
}
