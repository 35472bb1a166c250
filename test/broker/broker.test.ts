import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isMandateError } from '../../src/core/index.js';
import { LeaseKind, LeaseState, type Lease } from '../../src/broker/index.js';
import { brokerWorld } from '../helpers/broker-world.js';
import { GATE_NOW } from '../helpers/gate-world.js';
import { revoke as denyRevoke } from '../helpers/deny-set.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function world(options?: Parameters<typeof brokerWorld>[0]) {
  const w = await brokerWorld(options);
  cleanups.push(w.cleanup);
  return w;
}

async function codeOf(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  throw new Error('expected a MandateError');
}

const payments = { kind: LeaseKind.jwt, resource: 'payments-api' } as const;

describe('Broker.lease', () => {
  it('grants a lease bounded by the default TTL, audited by id, the value never stored', async () => {
    const w = await world();
    const { broker } = w.open();
    const granted = await broker.lease<{ token: string }>(w.supportChain, {
      ...payments,
      scope: ['refunds'],
    });
    const { lease } = granted;
    const now = GATE_NOW + 10;
    expect(lease.id).toMatch(/^lease_[0-9a-f]{32}$/);
    expect(lease.holder).toBe(w.support.identity.identifier);
    expect(lease.chainIds).toContain(w.dana.identity.identifier);
    expect(lease.chainIds).toContain(w.support.identity.identifier);
    expect(lease.expiresAt).toBe(now + 300);
    // The horizon: the support chain's expiry (its link lasts 1 800 s), before the kind's lifetime.
    expect(lease.maxExpiresAt).toBe(w.supportChain.expiresAt);
    expect(granted.decision.decision).toBe('allow');
    expect(granted.decision.policies).toEqual(['payments-api']);
    expect(w.provider.issued[0]?.expiresAt).toBe(lease.expiresAt);
    expect(w.sink.events.map((e) => [e.event, e.lease.id])).toEqual([['granted', lease.id]]);
    expect(await broker.get(lease.id)).toEqual(lease);
    // The value went to the caller only: not in the database file.
    const { store } = w.open();
    store.database.db.pragma('wal_checkpoint(TRUNCATE)');
    const raw = readFileSync(join(w.dir, 'mandate.db')).toString('latin1');
    expect(raw).toContain(lease.id);
    expect(raw).not.toContain(granted.value.token);
  });

  it('refuses by the chain lock: no `secrets` grant, a secret not granted, a scope not granted', async () => {
    const w = await world();
    const { broker } = w.open();
    // robot's credential carries tools only: nothing may be leased.
    await expect(broker.lease(w.robotChain, payments)).rejects.toMatchObject({
      code: 'ERR_LEASE_DENIED',
      message: expect.stringContaining('chain lock') as unknown,
    });
    // The bundle permits jwt/analytics, the chain does not grant it.
    await expect(
      broker.lease(w.supportChain, { kind: LeaseKind.jwt, resource: 'analytics' }),
    ).rejects.toMatchObject({
      code: 'ERR_LEASE_DENIED',
      message: expect.stringContaining('`secrets` does not grant') as unknown,
    });
    await expect(
      broker.lease(w.supportChain, { ...payments, scope: ['admin'] }),
    ).rejects.toMatchObject({ message: expect.stringContaining('scope `admin`') as unknown });
    expect(w.provider.issued).toHaveLength(0);
    expect(w.sink.events).toHaveLength(0);
  });

  it('refuses by the bundle: deny by default, a forbid, and no bundle at all', async () => {
    const w = await world({
      root: ['tools=read_orders,issue_refund,deploy', 'human=true', 'secrets=*'],
    });
    const { broker } = w.open();
    await expect(
      broker.lease(w.supportChain, { kind: LeaseKind.jwt, resource: 'unlisted' }),
    ).rejects.toMatchObject({
      code: 'ERR_LEASE_DENIED',
      message: expect.stringContaining('policy lock') as unknown,
    });
    // Depth 2 (a sub-agent) may not lease the stripe proxy; depth 1 may.
    await broker.lease(w.supportChain, { kind: LeaseKind.proxy, resource: 'stripe' });
    await expect(
      broker.lease(w.subAgents[0]!.chain, { kind: LeaseKind.proxy, resource: 'stripe' }),
    ).rejects.toMatchObject({ message: expect.stringContaining('`no-deep-stripe`') as unknown });
    w.bundles.bundle = undefined;
    await expect(broker.lease(w.supportChain, payments)).rejects.toMatchObject({
      message: expect.stringContaining('bundle lock') as unknown,
    });
  });

  it('refuses a revoked or expired chain, and a kind without a provider', async () => {
    const w = await world();
    const { broker } = w.open();
    expect(
      await codeOf(
        broker.lease(w.supportChain, { kind: LeaseKind.postgres, resource: 'readonly' }),
      ),
    ).toBe('ERR_LEASE_KIND_UNAVAILABLE');
    w.clock.set(w.supportChain.expiresAt);
    expect(await codeOf(broker.lease(w.supportChain, payments))).toBe('ERR_LEASE_DENIED');
    w.clock.set(GATE_NOW + 20);
    denyRevoke(w.denySet, w.dana.identity.identifier, {
      identity: true,
      nowSeconds: GATE_NOW + 20,
      expiresAt: GATE_NOW + 10_000,
    });
    await expect(broker.lease(w.supportChain, payments)).rejects.toMatchObject({
      code: 'ERR_LEASE_DENIED',
      message: expect.stringContaining('ERR_REVOKED') as unknown,
    });
  });

  it('bounds the TTL: the kind maximum, the chain expiry (asked past it: refused; default: cut)', async () => {
    const w = await world();
    const { broker } = w.open();
    const sub = w.subAgents[0]!.chain; // expires GATE_NOW + 600
    expect(await codeOf(broker.lease(w.supportChain, { ...payments, ttlSeconds: 3601 }))).toBe(
      'ERR_LEASE_TTL_TOO_LONG',
    );
    expect(await codeOf(broker.lease(sub, { ...payments, ttlSeconds: 900 }))).toBe(
      'ERR_LEASE_BEYOND_CHAIN',
    );
    expect(await codeOf(broker.lease(sub, { ...payments, ttlSeconds: 0 }))).toBe(
      'ERR_LEASE_REQUEST_INVALID',
    );
    w.clock.set(GATE_NOW + 400);
    const { lease } = await broker.lease(sub, payments);
    expect(lease.expiresAt).toBe(sub.expiresAt);
    expect(lease.maxExpiresAt).toBe(sub.expiresAt);
  });

  it('checks the request shape', async () => {
    const w = await world();
    const { broker } = w.open();
    for (const bad of [
      { kind: 'ftp', resource: 'x' },
      { kind: LeaseKind.jwt, resource: '' },
      { kind: LeaseKind.jwt, resource: '/abs' },
      { kind: LeaseKind.jwt, resource: 'a b' },
      { kind: LeaseKind.jwt, resource: 'x', scope: ['a', 'a'] },
      { kind: LeaseKind.jwt, resource: 'x', scope: ['has space'] },
    ])
      expect(await codeOf(broker.lease(w.supportChain, bad as never))).toBe(
        'ERR_LEASE_REQUEST_INVALID',
      );
  });

  it('revokes the lease when its grant cannot be audited', async () => {
    const w = await world();
    const { broker } = w.open();
    w.sink.fail = true;
    expect(await codeOf(broker.lease(w.supportChain, payments))).toBe('ERR_BROKER_AUDIT_FAILED');
    const [lease] = await broker.list();
    expect(lease?.state).toBe(LeaseState.revoked);
    expect(lease?.endReason).toBe('audit-failed');
    expect(w.provider.revoked).toEqual([lease?.id]);
  });
});

describe('Broker.renew', () => {
  it('extends by the holder only, up to the horizon, then refuses', async () => {
    const w = await world();
    const { broker } = w.open({ limits: { jwt: { maxLifetimeSeconds: 700 } } });
    const { lease } = await broker.lease(w.supportChain, payments);
    expect(await codeOf(broker.renew(lease.id, w.danaChain))).toBe('ERR_LEASE_NOT_HOLDER');
    w.clock.advance(200);
    const first = await broker.renew<{ token: string }>(lease.id, w.supportChain);
    expect(first.lease.expiresAt).toBe(GATE_NOW + 10 + 200 + 300);
    expect(first.lease.renewals).toBe(1);
    expect(first.value?.token).toMatch(/^tok-/);
    w.clock.advance(250);
    const second = await broker.renew(lease.id, w.supportChain);
    expect(second.lease.expiresAt).toBe(lease.maxExpiresAt); // GATE_NOW + 10 + 700
    expect(await codeOf(broker.renew(lease.id, w.supportChain))).toBe(
      'ERR_LEASE_RENEWAL_EXHAUSTED',
    );
    expect(w.sink.events.map((e) => e.event)).toEqual(['granted', 'renewed', 'renewed']);
  });

  it('refuses an ended or expired lease, and re-decides', async () => {
    const w = await world();
    const { broker } = w.open();
    const a = (await broker.lease(w.supportChain, payments)).lease;
    const b = (await broker.lease(w.supportChain, payments)).lease;
    await broker.revoke(a.id);
    expect(await codeOf(broker.renew(a.id, w.supportChain))).toBe('ERR_LEASE_NOT_ACTIVE');
    w.bundles.bundle = undefined;
    expect(await codeOf(broker.renew(b.id, w.supportChain))).toBe('ERR_LEASE_DENIED');
    w.clock.advance(300);
    expect(await codeOf(broker.renew(b.id, w.supportChain))).toBe('ERR_LEASE_NOT_ACTIVE');
    expect(await codeOf(broker.renew('lease_nope', w.supportChain))).toBe('ERR_LEASE_ID_INVALID');
  });
});

describe('Broker revocation and expiry', () => {
  it('revoke is idempotent: one provider call, one audit record', async () => {
    const w = await world();
    const { broker } = w.open();
    const { lease } = await broker.lease(w.supportChain, payments);
    const first = await broker.revoke(lease.id, 'operator');
    const again = await broker.revoke(lease.id, 'operator');
    expect(first.state).toBe(LeaseState.revoked);
    expect(first.endReason).toBe('operator');
    expect(again).toEqual(first);
    expect(w.provider.revoked).toEqual([lease.id]);
    expect(w.sink.events.map((e) => e.event)).toEqual(['granted', 'revoked']);
    expect(await codeOf(broker.revoke(`lease_${'0'.repeat(32)}`))).toBe('ERR_LEASE_NOT_FOUND');
    const other = (await broker.lease(w.supportChain, payments)).lease;
    expect(
      await codeOf(broker.revoke(other.id, 'mine', { holder: w.dana.identity.identifier })),
    ).toBe('ERR_LEASE_NOT_HOLDER');
  });

  it('revokeMatching cascades: revoking the support agent kills its leases and its sub-agents', async () => {
    const w = await world();
    const { broker } = w.open();
    const danas = (await broker.lease(w.danaChain, payments)).lease;
    const supports = [
      (await broker.lease(w.supportChain, payments)).lease,
      (await broker.lease(w.supportChain, { kind: LeaseKind.proxy, resource: 'stripe' })).lease,
    ];
    const subs = (await broker.lease(w.subAgents[1]!.chain, payments)).lease;
    const ended = await broker.revokeMatching([w.support.identity.identifier]);
    expect(ended.map((l) => l.id).sort()).toEqual([...supports.map((l) => l.id), subs.id].sort());
    expect(ended.every((l) => l.endReason === 'holder-revoked')).toBe(true);
    expect((await broker.get(danas.id)).state).toBe(LeaseState.active);
    expect([...w.provider.revoked, ...w.proxy.revoked].sort()).toEqual(
      ended.map((l) => l.id).sort(),
    );
    expect(await broker.revokeMatching([w.support.identity.identifier])).toEqual([]);
    // A link's revocation id cascades too.
    const again = (await broker.lease(w.danaChain, payments)).lease;
    expect(
      (await broker.revokeMatching([w.danaChain.root.revocationId])).map((l) => l.id).sort(),
    ).toEqual([danas.id, again.id].sort());
  });

  it('revokeDenied ends the leases whose ids the deny-set names', async () => {
    const w = await world();
    const { broker } = w.open();
    const sub = (await broker.lease(w.subAgents[0]!.chain, payments)).lease;
    const other = (await broker.lease(w.subAgents[1]!.chain, payments)).lease;
    denyRevoke(w.denySet, w.subAgents[0]!.identity.identifier, {
      identity: true,
      nowSeconds: GATE_NOW + 10,
      expiresAt: GATE_NOW + 10_000,
    });
    const ended = await broker.revokeDenied((id) => w.denySet.isRevoked(id));
    expect(ended.map((l) => l.id)).toEqual([sub.id]);
    expect((await broker.get(other.id)).state).toBe(LeaseState.active);
  });

  it('expireDue ends what is due, audits it and tells the provider; used records a use', async () => {
    const w = await world();
    const { broker } = w.open();
    const short = (await broker.lease(w.supportChain, { ...payments, ttlSeconds: 60 })).lease;
    const long = (await broker.lease(w.supportChain, { ...payments, ttlSeconds: 600 })).lease;
    await broker.used(short.id);
    w.clock.advance(60);
    expect(await codeOf(broker.used(short.id))).toBe('ERR_LEASE_NOT_ACTIVE');
    const ended = await broker.expireDue();
    expect(ended.map((l) => l.id)).toEqual([short.id]);
    expect(ended[0]?.state).toBe(LeaseState.expired);
    expect(w.provider.revoked).toEqual([short.id]);
    expect((await broker.get(long.id)).state).toBe(LeaseState.active);
    expect(w.sink.events.map((e) => `${e.event}:${e.lease.id === short.id ? 's' : 'l'}`)).toEqual([
      'granted:s',
      'granted:l',
      'used:s',
      'expired:s',
    ]);
  });

  it('a provider that fails to revoke is asked again by finishPending', async () => {
    const w = await world();
    const { broker } = w.open();
    const { lease } = await broker.lease(w.supportChain, payments);
    w.provider.failRevoke = true;
    expect((await broker.revoke(lease.id)).state).toBe(LeaseState.revoked);
    expect(w.provider.live.has(lease.handle)).toBe(true);
    expect(await broker.finishPending()).toBe(0);
    w.provider.failRevoke = false;
    // The next attempt waits out its backoff (1 s after the first failure).
    expect(await broker.finishPending()).toBe(0);
    w.clock.advance(1);
    expect(await broker.finishPending()).toBe(1);
    expect(w.provider.live.has(lease.handle)).toBe(false);
    expect(await broker.finishPending()).toBe(0);
  });

  it('a revocation the provider keeps failing is retried with exponential backoff, logged once', async () => {
    const w = await world();
    const warnings: string[] = [];
    const logger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (message: string) => void warnings.push(message),
      error: () => undefined,
    };
    const { broker } = w.open({ logger });
    const { lease } = await broker.lease(w.supportChain, payments);
    w.provider.failRevoke = true;
    await broker.revoke(lease.id);
    // The timers' pass every second for ten seconds: attempts at 1, 3 and 7 s only.
    for (let second = 1; second <= 10; second++) {
      w.clock.advance(1);
      await broker.finishPending();
    }
    expect(w.provider.revokeCalls).toBe(4);
    expect(warnings.filter((m) => m.includes('provider revocation failed'))).toHaveLength(1);
    // Never more than MAX_PROVIDER_RETRY_SECONDS apart.
    for (let i = 0; i < 12; i++) {
      w.clock.advance(300);
      await broker.finishPending();
    }
    expect(w.provider.revokeCalls).toBe(4 + 12);
  });

  it('one stuck provider call holds up neither expiry nor the other revocations', async () => {
    const w = await world();
    const { broker } = w.open({ providerTimeoutMs: 20 });
    const stuck = (await broker.lease(w.supportChain, payments)).lease;
    const other = (await broker.lease(w.supportChain, payments)).lease;
    w.provider.hang.add(stuck.handle);
    // Both end in the store and the pass returns, though one provider call never answers.
    const ended = await broker.expireDue(other.expiresAt);
    expect(ended.map((l) => l.id).sort()).toEqual([stuck.id, other.id].sort());
    expect((await broker.get(stuck.id)).state).toBe(LeaseState.expired);
    expect(w.provider.revoked).toEqual([other.id]);
    // While the call runs, later passes do not start another one for the same lease.
    w.clock.advance(3600);
    expect(await broker.finishPending()).toBe(0);
    expect(w.provider.revokeCalls).toBe(2);
    // When it finally answers, it is recorded as done.
    w.provider.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(w.provider.revoked).toEqual([other.id, stuck.id]);
    const { store } = w.open();
    expect(await store.brokerLeases.pending(10)).toEqual([]);
  });

  it('survives a restart: leases persist, and expiry and revocation still happen', async () => {
    const w = await world();
    const first = w.open();
    const a = (await first.broker.lease(w.supportChain, { ...payments, ttlSeconds: 60 })).lease;
    const b = (await first.broker.lease(w.supportChain, { ...payments, ttlSeconds: 600 })).lease;
    // An orphan: the provider issued it but the broker crashed before storing the lease.
    w.provider.live.add('h-orphan');
    first.store.close();
    const second = w.open();
    expect(
      (await second.broker.list({ state: LeaseState.active })).map((l) => l.id).sort(),
    ).toEqual([a.id, b.id].sort());
    expect(await second.broker.reap()).toBe(1);
    expect(w.provider.live.has('h-orphan')).toBe(false);
    w.clock.advance(60);
    expect((await second.broker.expireDue()).map((l) => l.id)).toEqual([a.id]);
    expect(
      (await second.broker.revokeMatching([w.support.identity.identifier])).map((l) => l.id),
    ).toEqual([b.id]);
    expect(w.provider.revoked.sort()).toEqual([a.id, b.id].sort());
  });

  it('a lease ended by another process is finished by the running broker', async () => {
    const w = await world();
    const running = w.open();
    const { lease } = await running.broker.lease(w.supportChain, payments);
    // `mandate lease revoke` on the broker's home: no provider configured in that process.
    const cli = w.open({ providers: [] });
    expect((await cli.broker.revoke(lease.id, 'operator')).state).toBe(LeaseState.revoked);
    expect(w.provider.revoked).toEqual([]);
    expect(await running.broker.finishPending()).toBe(1);
    expect(w.provider.revoked).toEqual([lease.id]);
  });
});

describe('Broker properties', () => {
  it('a lease never ends after its chain, whatever the time and TTL asked', async () => {
    const w = await world();
    const { broker } = w.open();
    const chains = [w.danaChain, w.supportChain, w.subAgents[0]!.chain];
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 4000 }),
        fc.option(fc.integer({ min: 1, max: 4000 }), { nil: undefined }),
        async (which, offset, ttlSeconds) => {
          const chain = chains[which]!;
          w.clock.set(GATE_NOW + 10 + offset);
          let lease: Lease;
          try {
            lease = (
              await broker.lease(chain, {
                ...payments,
                ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
              })
            ).lease;
          } catch (error) {
            expect(isMandateError(error)).toBe(true);
            return;
          }
          expect(lease.expiresAt).toBeLessThanOrEqual(chain.expiresAt);
          expect(lease.maxExpiresAt).toBeLessThanOrEqual(chain.expiresAt);
          expect(lease.expiresAt).toBeGreaterThan(w.clock.nowSeconds());
        },
      ),
      { numRuns: 60 },
    );
  });

  it('revokeMatching kills exactly the active leases with a matching id', async () => {
    const w = await world();
    const { broker } = w.open();
    const chains = [w.danaChain, w.supportChain, w.subAgents[0]!.chain, w.subAgents[1]!.chain];
    const ids = [...new Set(chains.flatMap((c) => c.revocationSubjects))];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 6 }),
        fc.subarray(ids, { minLength: 1, maxLength: 3 }),
        async (holders, revoked) => {
          const leases = [];
          for (const h of holders) leases.push((await broker.lease(chains[h]!, payments)).lease);
          const before = await broker.list({ state: LeaseState.active });
          const ended = await broker.revokeMatching(revoked);
          const expected = before.filter((l) => l.chainIds.some((id) => revoked.includes(id)));
          expect(ended.map((l) => l.id).sort()).toEqual(expected.map((l) => l.id).sort());
          const after = await broker.list({ state: LeaseState.active });
          expect(after.every((l) => !l.chainIds.some((id) => revoked.includes(id)))).toBe(true);
          expect(after.length).toBe(before.length - expected.length);
          await broker.revokeMatching(ids); // a clean slate for the next run
          expect(leases.length).toBe(holders.length);
        },
      ),
      { numRuns: 30 },
    );
  });
});
