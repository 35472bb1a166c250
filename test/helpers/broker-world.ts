// A world for the broker: the gates' world (an authority, dana, her support agent and its
// sub-agents) with `secrets` grants, a bundle with `leaseSecret` policies, a manual clock, a
// SQLite store in a temporary folder, a provider that records what it is asked (a test double of
// the LeaseProvider interface, no fake server behind it) and an audit sink that records events.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/core/index.js';
import { randomBytes } from '../../src/crypto/index.js';
import { toHex } from '../../src/encoding/index.js';
import { Gate } from '../../src/gates/index.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/index.js';
import {
  Broker,
  LeaseKind,
  type BrokerOptions,
  type IssuedLease,
  type Lease,
  type LeaseAuditSink,
  type LeaseContext,
  type LeaseProvider,
} from '../../src/broker/index.js';
import { bundleOf, gateWorld, GATE_NOW, HeldBundleSource } from './gate-world.js';

export const LEASE_POLICIES = `
@id("payments-api")
permit(principal, action == Action::"leaseSecret", resource == Secret::"jwt/payments-api");

@id("stripe-proxy")
permit(principal, action == Action::"leaseSecret", resource == Secret::"proxy/stripe");

@id("no-deep-stripe")
forbid(principal, action == Action::"leaseSecret", resource == Secret::"proxy/stripe")
  when { principal.depth > 1 };

@id("analytics-db")
permit(principal, action == Action::"leaseSecret", resource == Secret::"jwt/analytics");
`;

/** A provider that records every call: the test double of a LeaseProvider. */
export class RecordingProvider implements LeaseProvider<{ readonly token: string }> {
  readonly issued: LeaseContext[] = [];
  readonly renewed: string[] = [];
  readonly revoked: string[] = [];
  /** Handles it holds (issued and not revoked), as a real provider would find them. */
  readonly live = new Set<string>();
  failRevoke = false;
  /** Every revoke call, failed or not. */
  revokeCalls = 0;
  /** Handles whose revoke hangs until `release()`: a provider call stuck on a server lock. */
  readonly hang = new Set<string>();
  readonly #held: (() => void)[] = [];

  constructor(readonly kind: LeaseKind = LeaseKind.jwt) {}

  /** When set, `issue` waits for it: a provider slower than the requester's patience. */
  issueGate: Promise<void> | undefined;

  async issue(context: LeaseContext): Promise<IssuedLease<{ readonly token: string }>> {
    if (this.issueGate !== undefined) await this.issueGate;
    this.issued.push(context);
    const handle = `h-${context.leaseId}`;
    this.live.add(handle);
    return { handle, value: { token: `tok-${toHex(randomBytes(8))}` } };
  }

  renew(lease: Lease): Promise<IssuedLease<{ readonly token: string }> | undefined> {
    this.renewed.push(lease.id);
    return Promise.resolve({
      handle: lease.handle,
      value: { token: `tok-${toHex(randomBytes(8))}` },
    });
  }

  /** Lets every hanging revoke finish. */
  release(): void {
    this.hang.clear();
    for (const finish of this.#held.splice(0)) finish();
  }

  revoke(lease: Lease): Promise<void> {
    this.revokeCalls++;
    if (this.hang.has(lease.handle))
      return new Promise((resolve) =>
        this.#held.push(() => {
          this.revoked.push(lease.id);
          this.live.delete(lease.handle);
          resolve();
        }),
      );
    if (this.failRevoke) return Promise.reject(new Error('provider down'));
    this.revoked.push(lease.id);
    this.live.delete(lease.handle);
    return Promise.resolve();
  }

  reap(live: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    for (const handle of [...this.live])
      if (!live.has(handle)) {
        this.live.delete(handle);
        removed++;
      }
    return Promise.resolve(removed);
  }
}

/** An audit sink that keeps the events (the broker's contract: ids, never values). */
export class RecordingSink implements LeaseAuditSink {
  readonly events: { lease: Lease; event: string; at: number }[] = [];
  fail = false;
  record(event: { lease: Lease; event: string; at: number }): Promise<void> {
    if (this.fail) return Promise.reject(new Error('log down'));
    this.events.push(event);
    return Promise.resolve();
  }
}

export async function brokerWorld(options: { root?: readonly string[]; policies?: string } = {}) {
  const world = await gateWorld({
    root: options.root ?? [
      'tools=read_orders,issue_refund,deploy',
      'human=true',
      'secrets=jwt/payments-api,proxy/stripe',
      'secret_scopes=refunds,read',
    ],
  });
  const clock = new ManualClock(GATE_NOW + 10);
  const bundles = new HeldBundleSource(bundleOf(options.policies ?? LEASE_POLICIES));
  const gate = new Gate({ bundles, denySet: world.denySet });
  const dir = mkdtempSync(join(tmpdir(), 'mandate-broker-'));
  const provider = new RecordingProvider();
  const proxy = new RecordingProvider(LeaseKind.proxy);
  const sink = new RecordingSink();
  const stores: SqliteStore[] = [];
  /** Opens the store (again) and a broker over it: a restart is `open()` after `close()`. */
  const open = (extra: Partial<BrokerOptions> = {}) => {
    const store = openSqliteStore(join(dir, 'mandate.db'));
    stores.push(store);
    const broker = new Broker({
      leases: store.brokerLeases,
      decide: (chain, ask, o) => gate.decideLease(chain, ask, o),
      providers: [provider, proxy],
      audit: sink,
      clock,
      ...extra,
    });
    return { store, broker };
  };
  const cleanup = () => {
    for (const store of stores) store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { ...world, clock, bundles, gate, dir, provider, proxy, sink, open, cleanup };
}
