import { statSync } from 'node:fs';
import { join } from 'node:path';
import { forbidden } from '../core/internal.js';
import { systemClock, type Clock, type Logger } from '../core/index.js';
import { Identities, Purpose } from '../identity/index.js';
import { openKek, SoftwareVault } from '../vault/index.js';
import { SecretStore } from '../broker/index.js';
import { openSqliteStore, type SqliteStore } from '../store/index.js';
import { DenySetWatcher } from './deny-set-watcher.js';
import { provisionIdentities, type ProvisionOptions } from './provision.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import {
  Authority,
  DenySet,
  trustedIdentifiers,
  type CredentialIssuer,
  type DenySetRepository,
  type TrustAnchorRepository,
} from '../credentials/index.js';

/** How old a one-shot command's deny-set view may be: it is read fresh for every command. */
const LOCAL_DENY_SET_STALENESS_SECONDS = 60;
/**
 * How long a running process's live view may go without reading the store (a poll a second)
 * before every check fails closed.
 */
export const LIVE_DENY_SET_STALENESS_SECONDS = 10;

/** The environment variable that switches the vault's KEK from the key file to a passphrase. */
export const PASSPHRASE_ENV = 'MANDATE_VAULT_PASSPHRASE';

/**
 * A Mandate home on the embedded default: `mandate.db` (SQLite, WAL) holds identities and
 * sealed keys; the key-encryption key comes from `vault.key` (0600, created on first use) or,
 * when MANDATE_VAULT_PASSPHRASE is set, from scrypt over the passphrase and `vault.salt`. The
 * first open records which, and a verifier of the KEK; later opens must match it (openKek).
 */
export interface Home {
  readonly dir: string;
  readonly store: SqliteStore;
  readonly vault: SoftwareVault;
  readonly identities: Identities;
  readonly trustAnchors: TrustAnchorRepository;
  /**
   * The authorities a verifier in this home trusts, with their histories: the `all` anchors, and
   * with `forIdentity` (a local identity holding or presenting what is verified) those scoped to
   * it. Every verifier of the CLI gets its authorities here.
   */
  trustedAuthorities(options?: {
    readonly forIdentity?: Identifier;
  }): Promise<Map<Identifier, VerifiedIdentity>>;
  /** The authority's durable deny-set (this home's revocations). */
  readonly denySetRepository: DenySetRepository;
  /** A verifier's view of this home's deny-set as of `nowSeconds`, for a one-shot command. */
  denySet(nowSeconds: number): Promise<DenySet>;
  /**
   * The live deny-set of a process that verifies peers over the network (nodes, relays, the
   * authority, channel commands): a snapshot now, then the store polled for revocations made
   * later (`watcher.denySet`, updated in place). `stop()` it before `close()`.
   */
  watchDenySet(options?: {
    readonly logger?: Logger;
    readonly clock?: Clock;
    readonly pollIntervalMs?: number;
  }): Promise<DenySetWatcher>;
  /** The broker's sealed secret store (values sealed under this home's KEK). */
  readonly secrets: SecretStore;
  /** The authority service for a local authority identity (name or identifier). */
  authority(ref: string, route?: string): Authority;
  /** Bulk creation on worker threads (see provisionIdentities). */
  provision(options: ProvisionOptions): Promise<Identifier[]>;
  close(): void;
}

export async function openHome(
  dir: string,
  options: { readonly clock?: Clock; readonly passphrase?: string | undefined } = {},
): Promise<Home> {
  assertHomeNotShared(dir);
  const store = openSqliteStore(join(dir, 'mandate.db'));
  try {
    const kek = await openKek({
      repository: store.vaultKeys,
      keyFile: join(dir, 'vault.key'),
      saltFile: join(dir, 'vault.salt'),
      passphrase: options.passphrase,
      passphraseName: PASSPHRASE_ENV,
    });
    const vault = new SoftwareVault({ repository: store.vaultKeys, kek });
    const identities = new Identities({
      vault,
      repository: store.identities,
      clock: options.clock ?? systemClock,
    });
    return {
      dir,
      store,
      vault,
      identities,
      trustAnchors: store.trustAnchors,
      trustedAuthorities: async (trustOptions) => {
        const out = new Map<Identifier, VerifiedIdentity>();
        const anchors = await store.trustAnchors.listTrustAnchors();
        for (const id of trustedIdentifiers(anchors, trustOptions))
          out.set(id, (await identities.get(id)).identity);
        return out;
      },
      denySetRepository: store.denySet,
      secrets: new SecretStore({
        repository: store.brokerSecrets,
        kek,
        clock: options.clock ?? systemClock,
      }),
      denySet: async (nowSeconds) =>
        // The local repository is the source of truth: a snapshot taken now is fresh.
        DenySet.fromSnapshot(await store.denySet.snapshot(nowSeconds), {
          maxStalenessSeconds: LOCAL_DENY_SET_STALENESS_SECONDS,
        }),
      watchDenySet: (watchOptions = {}) =>
        DenySetWatcher.start({
          repository: store.denySet,
          maxStalenessSeconds: LIVE_DENY_SET_STALENESS_SECONDS,
          clock: watchOptions.clock ?? options.clock ?? systemClock,
          ...(watchOptions.logger === undefined ? {} : { logger: watchOptions.logger }),
          ...(watchOptions.pollIntervalMs === undefined
            ? {}
            : { pollIntervalMs: watchOptions.pollIntervalMs }),
        }),
      authority: (ref, route) =>
        new Authority({
          identities,
          vault,
          repository: store.authority,
          authority: ref,
          clock: options.clock ?? systemClock,
          ...(route === undefined ? {} : { route }),
        }),
      provision: (provisionOptions) =>
        provisionIdentities(
          { identities: store.identities, vaultKeys: store.vaultKeys, kek },
          provisionOptions,
        ),
      close() {
        vault.destroy(); // wipes every unsealed key held in guarded memory
        store.close();
        kek.destroy();
      },
    };
  } catch (error) {
    store.close();
    throw error;
  }
}

/**
 * A home identity as a credential issuer: its credential purpose key's id and attestation,
 * verified now (so the signer does not verify it again). `who` is a name or identifier the
 * home knows, or an identity it holds the keys of.
 */
export async function credentialIssuerOf(
  home: Home,
  who: string | VerifiedIdentity,
): Promise<CredentialIssuer> {
  const ref = typeof who === 'string' ? who : who.identifier;
  const known = await home.identities.get(ref);
  const { verified, keyId } = await home.identities.purposeKey(known, Purpose.credentials);
  return {
    identity: known.identity,
    credentialKeyId: keyId,
    credentialKeyAttestation: verified.attestation,
    verifiedKey: verified,
  };
}

/**
 * Refuses a home another local user could change: its folder writable by everyone, or its
 * database writable by everyone or owned by another user (but root). Whoever can write them
 * controls the home's trust anchors, identities, approvals and log; the vault's key file has its
 * own, stricter check (`ERR_VAULT_KEY_FILE_INSECURE`). A home that does not exist yet is created
 * private (0700, its files 0600).
 */
function assertHomeNotShared(dir: string): void {
  const uid = process.getuid?.();
  const check = (path: string, what: string, ownerToo: boolean): void => {
    let stat;
    try {
      stat = statSync(path);
    } catch {
      return; // not there yet: created private
    }
    const worldWritable = (stat.mode & 0o002) !== 0;
    const foreign = ownerToo && uid !== undefined && stat.uid !== uid && stat.uid !== 0;
    if (worldWritable || foreign)
      throw forbidden(
        'ERR_HOME_INSECURE',
        `the home's ${what} \`${path}\` ${worldWritable ? `is writable by every user (mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')})` : 'belongs to another user'}: anyone who can write it controls this home's identities, trust and log; make it yours and not world-writable (chmod o-w)`,
      );
  };
  check(dir, 'folder', false);
  check(join(dir, 'mandate.db'), 'database', true);
}
