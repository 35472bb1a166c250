// Lease contexts and leases for the PostgreSQL provider's tests: a real verified chain (the
// support agent of gate-world), lease ids as the broker makes them.
import { randomBytes } from '../../src/crypto/index.js';
import { toHex } from '../../src/encoding/index.js';
import type { Lease, LeaseContext } from '../../src/broker/index.js';
import { gateWorld } from '../helpers/gate-world.js';

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export const newLeaseId = (): string => `lease_${toHex(randomBytes(16))}`;

export async function leaseFixtures() {
  const world = await gateWorld({ subAgents: 0 });
  const chain = world.supportChain;
  const holder = world.support.identity.identifier;
  const context = (
    resource: string,
    options: { leaseId?: string; expiresAt?: number; now?: number } = {},
  ): LeaseContext => {
    const now = options.now ?? nowSeconds();
    return {
      leaseId: options.leaseId ?? newLeaseId(),
      holder,
      chain,
      resource,
      scope: [],
      nowSeconds: now,
      expiresAt: options.expiresAt ?? now + 600,
    };
  };
  const lease = (issued: LeaseContext, handle: string): Lease => ({
    id: issued.leaseId,
    kind: 'postgres',
    holder,
    chainIds: [],
    resource: issued.resource,
    scope: [],
    createdAt: issued.nowSeconds,
    expiresAt: issued.expiresAt,
    maxExpiresAt: issued.expiresAt + 3600,
    renewals: 0,
    state: 'active',
    handle,
  });
  return { context, lease };
}
