import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AuditLog,
  EnforcerSigner,
  parseAuditRecord,
  verifyEnforcerRecord,
} from '../audit/index.js';
import { LeaseKind, LeaseState, newLeaseId, type Lease } from '../broker/index.js';
import { openSqliteStore } from '../store/index.js';
import { AuditLogLeaseSink } from './lease-audit-sink.js';
import { gateWorld, GATE_NOW } from '../../test/helpers/gate-world.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('AuditLogLeaseSink', () => {
  it('appends signed lease records by id, and appends again after another writer', async () => {
    const w = await gateWorld();
    const dir = mkdtempSync(join(tmpdir(), 'mandate-lease-sink-'));
    const store = openSqliteStore(join(dir, 'mandate.db'));
    cleanups.push(() => {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const log = { repository: store.auditLog, origin: 'test/audit' };
    const sink = new AuditLogLeaseSink({
      log,
      signer: new EnforcerSigner(w.vault, w.robot.issuer),
    });
    const lease: Lease = {
      id: newLeaseId(),
      kind: LeaseKind.jwt,
      holder: w.support.identity.identifier,
      chainIds: w.supportChain.revocationSubjects,
      resource: 'payments-api',
      scope: [],
      createdAt: GATE_NOW,
      expiresAt: GATE_NOW + 300,
      maxExpiresAt: GATE_NOW + 1800,
      renewals: 0,
      state: LeaseState.active,
      handle: 'jti-secret-free',
    };
    const first = await sink.append({ lease, event: 'granted', at: GATE_NOW });
    expect(first.index).toBe(0);
    // Another process appends to the same log meanwhile.
    const other = await AuditLog.open(log);
    await other.append(new TextEncoder().encode('{"written":"elsewhere"}'));
    await other.close();
    const second = await sink.append({
      lease: { ...lease, state: LeaseState.revoked, endedAt: GATE_NOW + 5 },
      event: 'revoked',
      at: GATE_NOW + 5,
    });
    expect(second.index).toBe(2);
    await sink.close();
    const reader = await AuditLog.open(log);
    const entries = await reader.readEntries(0, reader.size);
    const records = [entries[0]!, entries[2]!].map((e) => parseAuditRecord(e.record));
    expect(records).toMatchObject([
      {
        type: 'mandate/lease/v1',
        lease: lease.id,
        event: 'granted',
        agent: lease.holder,
        resource: 'jwt/payments-api',
        expiresAt: GATE_NOW + 300,
        enforcer: w.robot.identity.identifier,
      },
      { event: 'revoked', expiresAt: null },
    ]);
    expect(new TextDecoder().decode(entries[0]!.record)).not.toContain('jti-secret-free');
    // The broker's signature holds (an outside verifier trusting the broker's identity).
    for (const e of [entries[0]!, entries[2]!])
      verifyEnforcerRecord(e.record, {
        enforcers: new Map([[w.robot.identity.identifier, w.robot.identity]]),
      });
  });
});
