// A home's audit log as the commands and the node's services name and sign it: the log is named
// after the authority that signs its checkpoints (docs/spec/audit.md).
import {
  AuditLog,
  noteSignerFromVault,
  noteVerifierKey,
  type NoteSigner,
  type NoteVerifierKey,
} from '../audit/index.js';
import { systemClock, type Clock } from '../core/index.js';
import { Purpose, type Identifier } from '../identity/index.js';
import type { Home } from './home.js';

/** The local name of a home's authority identity (`authority init`'s default). */
export const DEFAULT_AUTHORITY = 'authority';

/** The origin line of a home's log: the log is named after the authority that signs it. */
export function homeAuditOrigin(authority: Identifier): string {
  return `mandate/audit/${authority}`;
}

/**
 * The checkpoint key of the home's log, named after `authority` (an identity of this home): the
 * log's origin, the signer (the authority's credential key, through the vault: `signer()`, as
 * only an Ed25519 key can sign notes) and the verifier key an auditor holds.
 */
export async function homeLogKey(
  home: Home,
  authority: string,
): Promise<{ origin: string; signer: () => NoteSigner; verifier: NoteVerifierKey }> {
  const known = await home.identities.get(authority);
  const { keyId } = await home.identities.purposeKey(known, Purpose.credentials);
  const key = await home.vault.getSigningKey(keyId);
  const origin = homeAuditOrigin(known.identity.identifier);
  return {
    origin,
    signer: () => noteSignerFromVault(home.vault, key, origin),
    verifier: noteVerifierKey(origin, key.publicKey),
  };
}

/**
 * Signs a checkpoint of the home's log with its authority's key when the log holds more than the
 * latest checkpoint covers (records past it are the only ones an export can drop unnoticed);
 * returns the tree size signed, or undefined when there was nothing new. `log` is the caller's
 * open writer, if it has one; else the log is opened for this (its checkpoint dated by `clock`)
 * and closed again.
 */
export async function checkpointHomeLog(
  home: Home,
  log?: AuditLog,
  clock: Clock = systemClock,
): Promise<number | undefined> {
  const { origin, signer } = await homeLogKey(home, DEFAULT_AUTHORITY);
  const own = log ?? (await AuditLog.open({ repository: home.store.auditLog, origin, clock }));
  try {
    const latest = await home.store.auditLog.latestCheckpoint();
    if (own.size <= (latest?.treeSize ?? 0)) return undefined;
    await own.checkpoint([signer()]);
    return own.size;
  } finally {
    if (log === undefined) await own.close();
  }
}
