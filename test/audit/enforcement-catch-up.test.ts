// A long-running enforcement point on one home (the MCP gateway) and `mandate revoke` in another
// process: a call made after the revocation was committed is refused at once — not allowed until
// the deny-set's next poll, which would also leave the trail failing `audit verify` (the
// revocation record earlier in the log than an invocation it covers). Found by an outside attack.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AuditLog,
  EnforcerSigner,
  InvocationSigner,
  MemoryAuditLogRepository,
  MemoryAuditTrailRepository,
} from '../../src/audit/index.js';
import { ChainVerifier, DenyEntryKind } from '../../src/credentials/index.js';
import { Gate, MemoryApprovalRepository, MemoryBudgetRepository } from '../../src/gates/index.js';
import { DenySetWatcher, EnforcementPoint } from '../../src/node/index.js';
import { openSqliteStore } from '../../src/store/index.js';
import { GATE_NOW, HeldBundleSource, bundleOf, gateWorld } from '../helpers/gate-world.js';

const NOW = GATE_NOW + 20;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function world(catchUp: boolean) {
  const w = await gateWorld({ subAgents: 1 });
  const path = join(mkdtempSync(join(tmpdir(), 'mandate-catch-up-')), 'mandate.db');
  const ours = openSqliteStore(path);
  const revoker = openSqliteStore(path); // `mandate revoke` in another process
  cleanups.push(() => {
    ours.close();
  });
  cleanups.push(() => {
    revoker.close();
  });
  const clock = { nowSeconds: () => NOW };
  // A poll interval no test waits for: only a catch-up can bring a revocation in.
  const watcher = await DenySetWatcher.start({
    repository: ours.denySet,
    maxStalenessSeconds: 86_400,
    pollIntervalMs: 3_600_000,
    clock,
  });
  cleanups.push(() => watcher.stop());
  const denySet = watcher.denySet;
  const bundles = new HeldBundleSource(bundleOf());
  const log = await AuditLog.open({
    repository: new MemoryAuditLogRepository(),
    origin: 'example.com/audit/catch-up',
  });
  const point = await EnforcementPoint.open({
    enforcement: {
      gate: new Gate({ catalog: w.catalog, bundles, denySet }),
      bundles,
      approvals: new MemoryApprovalRepository(),
      budgets: new MemoryBudgetRepository(),
      denySet,
      authorities: w.authorities,
    },
    chains: new ChainVerifier({ authorities: w.authorities, denySet }),
    authorities: w.authorities,
    log,
    trail: new MemoryAuditTrailRepository(),
    signer: new EnforcerSigner(w.vault, w.authority.issuer),
    ...(catchUp ? { catchUp: () => watcher.catchUp() } : {}),
  });
  const sub = w.subAgents[0]!;
  const agent = new InvocationSigner(w.vault, sub.issuer);
  const args = { order: 'o-1' };
  const call = async () => {
    const signed = await agent.sign({
      chain: sub.bytes,
      tool: 'read_orders',
      server: 'orders',
      args,
      nowSeconds: NOW,
    });
    return point.submit(signed.bytes, args, NOW, sub.bytes);
  };
  const revoke = () =>
    revoker.denySet.append(
      [
        {
          kind: DenyEntryKind.identity,
          id: sub.identity.identifier,
          revokedAt: NOW,
          expiresAt: NOW + 86_400,
        },
      ],
      NOW,
    );
  return { call, revoke, log };
}

describe('an enforcement point with a deny-set catch-up', () => {
  it('refuses the very next call after a revocation another process committed', async () => {
    const { call, revoke, log } = await world(true);
    expect((await call()).decision.decision).toBe('allow');
    const size = log.size;
    await revoke();
    await expect(call()).rejects.toMatchObject({ code: 'ERR_REVOKED' });
    // Refused before anything was logged.
    expect(log.size).toBe(size);
  });

  it('without it, the same call goes through until the next poll (the hole it closes)', async () => {
    const { call, revoke } = await world(false);
    expect((await call()).decision.decision).toBe('allow');
    await revoke();
    expect((await call()).decision.decision).toBe('allow');
  });
});
