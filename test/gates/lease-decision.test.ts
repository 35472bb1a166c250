import { describe, expect, it } from 'vitest';
import { DenySet } from '../../src/credentials/index.js';
import { Gate, leaseSecretName } from '../../src/gates/index.js';
import { bundleOf, gateWorld, GATE_NOW, HeldBundleSource } from '../helpers/gate-world.js';
import { LEASE_POLICIES } from '../helpers/broker-world.js';

// Gate.decideLease directly: the chain lock's window and deny-set checks and the bundle lock.

const payments = { kind: 'jwt', resource: 'payments-api', scope: [] } as const;

describe('Gate.decideLease', () => {
  it('names the secret KIND/RESOURCE', () => {
    expect(leaseSecretName(payments)).toBe('jwt/payments-api');
  });

  it('honours the window constraints of the chain', async () => {
    const w = await gateWorld({
      root: [
        'tools=read_orders,issue_refund,deploy',
        'secrets=*',
        `hours=@${GATE_NOW}..${GATE_NOW + 100}`,
      ],
    });
    const gate = new Gate({
      bundles: new HeldBundleSource(bundleOf(LEASE_POLICIES)),
      denySet: w.denySet,
    });
    expect(gate.decideLease(w.supportChain, payments, { nowSeconds: GATE_NOW + 50 })).toMatchObject(
      {
        decision: 'allow',
        lock: null,
        policies: ['payments-api'],
      },
    );
    const late = gate.decideLease(w.supportChain, payments, { nowSeconds: GATE_NOW + 200 });
    expect(late).toMatchObject({ decision: 'deny', lock: 'chain', code: 'ERR_GATE_CHAIN_DENIED' });
    expect(late.reasons[0]).toContain('hours');
  });

  it('fails closed on a stale deny-set and an unknown secret', async () => {
    const w = await gateWorld({ root: ['tools=read_orders,issue_refund,deploy', 'secrets=*'] });
    const stale = new Gate({
      bundles: new HeldBundleSource(bundleOf(LEASE_POLICIES)),
      denySet: new DenySet({ maxStalenessSeconds: 10 }),
    });
    expect(
      stale.decideLease(w.supportChain, payments, { nowSeconds: GATE_NOW + 20 }),
    ).toMatchObject({
      decision: 'deny',
      lock: 'chain',
      code: 'ERR_DENY_SET_STALE',
    });
    const gate = new Gate({
      bundles: new HeldBundleSource(bundleOf(LEASE_POLICIES)),
      denySet: w.denySet,
    });
    expect(
      gate.decideLease(
        w.supportChain,
        { kind: 'jwt', resource: 'unknown', scope: [] },
        { nowSeconds: GATE_NOW + 20 },
      ),
    ).toMatchObject({
      decision: 'deny',
      lock: 'policy',
      code: 'ERR_GATE_POLICY_DENIED',
      policies: [],
    });
  });
});
