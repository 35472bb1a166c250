import { isMandateError } from '../core/index.js';
import {
  AuditLog,
  type AuditLogOptions,
  type EnforcerSigner,
  type LeaseRecord,
  type SignedRecord,
} from '../audit/index.js';
import type { Lease, LeaseAuditSink } from '../broker/index.js';

/** Options of {@link AuditLogLeaseSink}. */
export interface AuditLogLeaseSinkOptions {
  /** The home's audit log (repository and origin), which other processes on the home append to too. */
  readonly log: AuditLogOptions;
  /** The broker's identity's credential key: it signs every lease record as `enforcer`. */
  readonly signer: EnforcerSigner;
}

/** How often an append is tried again after another writer (process) appended meanwhile. */
const CONFLICT_RETRIES = 5;

/**
 * The broker's {@link LeaseAuditSink}: each lease event becomes a `mandate/lease/v1` record
 * (docs/spec/audit.md) signed by the broker's identity (`EnforcerSigner.signLease`, as the
 * enforcement point's `recordLease`) and appended to the home's audit log; `record` resolves once
 * the record is durable. The record names the lease id, the holder and `KIND/RESOURCE`, never a
 * value. Other processes on the home (`mandate revoke`, `mandate lease revoke`) append to the
 * same log: when one did, the append fails with `ERR_AUDIT_LOG_CONFLICT` and nothing is
 * written, so the sink reopens the log at its new size and appends again.
 */
export class AuditLogLeaseSink implements LeaseAuditSink {
  readonly #options: AuditLogLeaseSinkOptions;
  #log: Promise<AuditLog> | undefined;
  #closed = false;

  constructor(options: AuditLogLeaseSinkOptions) {
    this.#options = options;
  }

  /** Signs and appends one record; resolves with it and its index once durable. */
  async append(
    event: Parameters<LeaseAuditSink['record']>[0],
  ): Promise<{ readonly record: SignedRecord<LeaseRecord>; readonly index: number }> {
    const record = await this.#options.signer.signLease(leaseRecordBody(event));
    for (let attempt = 0; ; attempt++) {
      const log = await (this.#log ??= AuditLog.open(this.#options.log));
      try {
        return { record, index: await log.append(record.bytes) };
      } catch (error) {
        if (
          !isMandateError(error, 'ERR_AUDIT_LOG_CONFLICT') ||
          attempt >= CONFLICT_RETRIES ||
          this.#closed
        )
          throw error;
        // Another process appended: reopen at the log's new size (once for all who saw it).
        if (this.#log !== undefined && (await this.#log) === log) {
          this.#log = undefined;
          await log.close().catch(() => undefined);
        }
      }
    }
  }

  async record(event: Parameters<LeaseAuditSink['record']>[0]): Promise<void> {
    await this.append(event);
  }

  /** Waits for the appends in flight and closes the log. */
  async close(): Promise<void> {
    this.#closed = true;
    const log = this.#log;
    this.#log = undefined;
    if (log !== undefined) await (await log).close();
  }
}

/** The lease record's body for an event: ids and names, never a value. */
export function leaseRecordBody(event: {
  readonly lease: Lease;
  readonly event: LeaseRecord['event'];
  readonly at: number;
}): Omit<LeaseRecord, 'type' | 'signature' | 'enforcer' | 'attestation'> {
  const { lease } = event;
  const ended = event.event === 'revoked' || event.event === 'expired';
  return {
    invocation: null,
    agent: lease.holder,
    lease: lease.id,
    resource: `${lease.kind}/${lease.resource}`,
    event: event.event,
    at: event.at,
    expiresAt: ended ? null : lease.expiresAt,
  };
}
