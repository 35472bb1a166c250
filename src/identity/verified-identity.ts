import { toHex } from '../encoding/index.js';
import type { SigningKeyType } from '../vault/index.js';
import { encodeChangeHistory, type EncodedChange } from './codec.js';
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
  /** The shorter histories {@link asOf} gave, by their number of changes. */
  #prefixes: Map<number, VerifiedIdentity> | undefined;

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

  /**
   * The history as it stood at `seconds` (Unix): its changes from the first up to, not
   * including, the first one dated later (`attestationsValidFrom`, the time its maker gave it) —
   * at least the first. A prefix of a verified history is verified (each change is checked
   * against the ones before it). This object when every change is that old; otherwise the same
   * object for the same prefix each time. For judging a signature made at a time a witness
   * vouches for: a rotation dated after it cannot have revoked the key it was made with.
   */
  asOf(seconds: number): VerifiedIdentity {
    let length = 1;
    while (length < this.changes.length && this.changes[length]!.attestationsValidFrom <= seconds)
      length++;
    if (length === this.changes.length) return this;
    this.#prefixes ??= new Map();
    let prefix = this.#prefixes.get(length);
    if (prefix === undefined) {
      const changes = this.changes.slice(0, length);
      prefix = new VerifiedIdentity(
        issued,
        this.identifier,
        encodeChangeHistory(encodedChanges(changes)),
        changes,
      );
      this.#prefixes.set(length, prefix);
    }
    return prefix;
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

/**
 * Verified changes as the history encodes them: each change's data and signature, and from the
 * second on the signature of the key before it.
 */
export function encodedChanges(changes: readonly Change[]): EncodedChange[] {
  return changes.map((c, i) => ({
    data: c.data,
    signature: { keyType: c.primaryPublicKey.keyType, bytes: c.signature },
    previousSignature:
      i === 0
        ? null
        : { keyType: changes[i - 1]!.primaryPublicKey.keyType, bytes: c.previousSignature! },
  }));
}

/** @internal for this layer's constructors */
export function issueVerifiedIdentity(
  identifier: Identifier,
  changeHistory: Uint8Array,
  changes: readonly Change[],
): VerifiedIdentity {
  return new VerifiedIdentity(issued, identifier, changeHistory, changes);
}
