import { conflict, invalid } from '../core/internal.js';
import { sha256 } from '../crypto/index.js';
import { toHex } from '../encoding/index.js';
import type { Identifier } from '../identity/index.js';
import { peekBundle } from './bundle.js';

/** One published bundle version: the signed bytes and what a repository records beside them. */
export interface StoredBundle {
  readonly version: number;
  readonly issuer: Identifier;
  /** Unix seconds: when the authority signed it. */
  readonly createdAt: number;
  /** Hex SHA-256 of `bytes`. */
  readonly hash: string;
  /** Unix seconds: when it was stored here. */
  readonly publishedAt: number;
  /** The SignedBundle bytes. */
  readonly bytes: Uint8Array;
}

/** A history row: a {@link StoredBundle} without its bytes. */
export type BundleSummary = Omit<StoredBundle, 'bytes'>;

/**
 * Where a home keeps its policy bundles: every published version (the history) and the latest.
 * Versions form one increasing line per repository (so also per issuer): `publishBundle` refuses,
 * atomically, a version not above the latest (`ERR_BUNDLE_NOT_NEWER`). A repository stores bytes;
 * it does not verify signatures: store only what verifyBundle accepted, and verify what you read
 * (a row edited in the database is refused then).
 */
export interface PolicyBundleRepository {
  /**
   * Stores a SignedBundle as the new latest version; its version, issuer, creation time and hash
   * are read from the bytes. `ERR_BUNDLE_NOT_NEWER` when its version is not above the latest.
   */
  publishBundle(bytes: Uint8Array, publishedAt: number): Promise<StoredBundle>;
  /** The latest version, or undefined when none was published. */
  latestBundle(): Promise<StoredBundle | undefined>;
  /** The latest version's number and hash only (what a poller compares), or undefined. */
  latestBundleVersion(): Promise<{ readonly version: number; readonly hash: string } | undefined>;
  /** One version of the history, or undefined. */
  getBundle(version: number): Promise<StoredBundle | undefined>;
  /** The history, oldest first. */
  listBundles(): Promise<BundleSummary[]>;
}

/**
 * What a repository records for `bytes`, read from them (`ERR_BUNDLE_MALFORMED`,
 * `ERR_BUNDLE_TOO_LARGE`): the checks every implementation applies before storing.
 */
export function bundleRecord(bytes: Uint8Array, publishedAt: number): StoredBundle {
  if (!(bytes instanceof Uint8Array))
    throw invalid('ERR_ARGUMENT_INVALID', 'a bundle is a byte array');
  if (!Number.isSafeInteger(publishedAt) || publishedAt < 0)
    throw invalid('ERR_ARGUMENT_INVALID', '`publishedAt` must be unix seconds');
  const peeked = peekBundle(bytes);
  return {
    version: peeked.version,
    issuer: peeked.issuer,
    createdAt: peeked.createdAt,
    hash: peeked.hash,
    publishedAt,
    bytes: Uint8Array.from(bytes),
  };
}

/** `ERR_BUNDLE_NOT_NEWER` for a version at or below the latest stored. */
export function bundleNotNewerError(version: number, latest: number): Error {
  return conflict(
    'ERR_BUNDLE_NOT_NEWER',
    `bundle version ${version} is not newer than the latest stored version ${latest}`,
  );
}

/** Whether `hash` is hex SHA-256 of `bytes` (what a store checks of each row it reads). */
export function bundleHashMatches(bytes: Uint8Array, hash: string): boolean {
  return toHex(sha256(bytes)) === hash;
}

/** A {@link PolicyBundleRepository} in memory, for tests and ephemeral nodes. */
export class MemoryPolicyBundleRepository implements PolicyBundleRepository {
  readonly #bundles: StoredBundle[] = [];

  // async: a malformed bundle rejects, as with a store, rather than throwing at the call.
  // eslint-disable-next-line @typescript-eslint/require-await
  async publishBundle(bytes: Uint8Array, publishedAt: number): Promise<StoredBundle> {
    const record = bundleRecord(bytes, publishedAt);
    const latest = this.#bundles.at(-1);
    if (latest !== undefined && record.version <= latest.version)
      throw bundleNotNewerError(record.version, latest.version);
    this.#bundles.push(record);
    return copy(record);
  }

  latestBundle(): Promise<StoredBundle | undefined> {
    const latest = this.#bundles.at(-1);
    return Promise.resolve(latest === undefined ? undefined : copy(latest));
  }

  latestBundleVersion(): Promise<{ version: number; hash: string } | undefined> {
    const latest = this.#bundles.at(-1);
    return Promise.resolve(
      latest === undefined ? undefined : { version: latest.version, hash: latest.hash },
    );
  }

  getBundle(version: number): Promise<StoredBundle | undefined> {
    const found = this.#bundles.find((b) => b.version === version);
    return Promise.resolve(found === undefined ? undefined : copy(found));
  }

  listBundles(): Promise<BundleSummary[]> {
    return Promise.resolve(
      this.#bundles.map((b) => ({
        version: b.version,
        issuer: b.issuer,
        createdAt: b.createdAt,
        hash: b.hash,
        publishedAt: b.publishedAt,
      })),
    );
  }
}

/** A caller may not change what is stored through what it was handed. */
function copy(bundle: StoredBundle): StoredBundle {
  return { ...bundle, bytes: Uint8Array.from(bundle.bytes) };
}
