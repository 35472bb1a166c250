import { describe, expect, it } from 'vitest';
import type { ApprovalAnswer, ApprovalRecord, ApprovalRepository } from '../../src/gates/index.js';

const NOW = 1_800_000_000;

export function approvalRecord(overrides: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    id: 'a1',
    agent: `I${'a'.repeat(64)}`,
    chainHash: 'c'.repeat(64),
    tool: 'orders/issue_refund',
    argumentsDigest: 'd'.repeat(64),
    bundleVersion: 3,
    arguments: '{"amount":300,"order":"o-1"}',
    bundleHash: 'b'.repeat(64),
    reason: 'refunds above 200 need a person',
    policies: ['large-refunds'],
    createdAt: NOW,
    expiresAt: NOW + 900,
    status: 'pending',
    ...overrides,
  };
}

export function approvalAnswer(decision: 'approve' | 'deny' = 'approve'): ApprovalAnswer {
  return {
    approver: `I${'e'.repeat(64)}`,
    decision,
    reason: 'customer is known',
    answeredAt: NOW + 5,
    signed: '{}',
    signatureKeyType: 'ed25519',
    signature: '00',
    attestation: '00',
    approverChain: '00',
  };
}

export interface ApprovalRepositoryFixture {
  readonly repository: ApprovalRepository;
  close?(): void;
}

/** The contract every ApprovalRepository meets (memory, SQLite). */
export function runApprovalRepositoryContract(
  name: string,
  open: () => ApprovalRepositoryFixture,
): void {
  describe(`ApprovalRepository contract: ${name}`, () => {
    const withRepo = async (fn: (r: ApprovalRepository) => Promise<void>) => {
      const fixture = open();
      try {
        await fn(fixture.repository);
      } finally {
        fixture.close?.();
      }
    };

    it('creates, gets and refuses a taken id', () =>
      withRepo(async (r) => {
        await r.create(approvalRecord());
        expect(await r.get('a1')).toEqual(approvalRecord());
        await expect(r.create(approvalRecord())).rejects.toMatchObject({
          code: 'ERR_APPROVAL_EXISTS',
        });
        expect(await r.get('nope')).toBeUndefined();
      }));

    it('finds the open request for exactly one binding, never an expired or used one', () =>
      withRepo(async (r) => {
        const record = approvalRecord();
        await r.create(record);
        expect((await r.findOpen(record, NOW))?.id).toBe('a1');
        expect(
          await r.findOpen({ ...record, argumentsDigest: 'e'.repeat(64) }, NOW),
        ).toBeUndefined();
        expect(await r.findOpen({ ...record, bundleVersion: 4 }, NOW)).toBeUndefined();
        expect(await r.findOpen({ ...record, chainHash: 'f'.repeat(64) }, NOW)).toBeUndefined();
        expect(await r.findOpen(record, NOW + 900)).toBeUndefined();
        await r.create(approvalRecord({ id: 'a2', createdAt: NOW + 1 }));
        expect((await r.findOpen(record, NOW + 1))?.id).toBe('a2');
      }));

    it('answers a pending request once, and not after it expired', () =>
      withRepo(async (r) => {
        await r.create(approvalRecord());
        await r.create(approvalRecord({ id: 'late' }));
        expect(await r.answer('a1', approvalAnswer(), NOW + 5)).toBe(true);
        expect(await r.answer('a1', approvalAnswer('deny'), NOW + 6)).toBe(false);
        const stored = await r.get('a1');
        expect(stored).toMatchObject({ status: 'approved', answer: approvalAnswer() });
        expect(await r.answer('late', approvalAnswer(), NOW + 900)).toBe(false);
        expect(await r.answer('missing', approvalAnswer(), NOW)).toBe(false);
      }));

    it('consumes an approved request exactly once, even under concurrency', () =>
      withRepo(async (r) => {
        await r.create(approvalRecord());
        expect(await r.consume('a1', NOW + 6)).toBe(false); // still pending
        await r.answer('a1', approvalAnswer(), NOW + 5);
        const results = await Promise.all(
          Array.from({ length: 8 }, () => r.consume('a1', NOW + 6)),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await r.get('a1')).toMatchObject({ status: 'used', usedAt: NOW + 6 });
        expect(await r.findOpen(approvalRecord(), NOW + 7)).toBeUndefined();
      }));

    it('never consumes a denied or expired approval', () =>
      withRepo(async (r) => {
        await r.create(approvalRecord());
        await r.create(approvalRecord({ id: 'a2' }));
        await r.answer('a1', approvalAnswer('deny'), NOW + 5);
        await r.answer('a2', approvalAnswer(), NOW + 5);
        expect(await r.consume('a1', NOW + 6)).toBe(false);
        expect(await r.consume('a2', NOW + 900)).toBe(false);
        expect((await r.get('a1'))?.status).toBe('denied');
      }));

    it('counts the pending, unexpired requests of one agent', () =>
      withRepo(async (r) => {
        const other = `I${'f'.repeat(64)}` as const;
        await r.create(approvalRecord({ id: 'p1' }));
        await r.create(approvalRecord({ id: 'p2', expiresAt: NOW + 10 }));
        await r.create(approvalRecord({ id: 'p3' }));
        await r.create(approvalRecord({ id: 'q1', agent: other }));
        await r.answer('p3', approvalAnswer('deny'), NOW + 5);
        expect(await r.countPending(approvalRecord().agent, NOW + 5)).toBe(2);
        expect(await r.countPending(approvalRecord().agent, NOW + 10)).toBe(1);
        expect(await r.countPending(other, NOW + 5)).toBe(1);
        expect(await r.countPending(`I${'0'.repeat(64)}`, NOW)).toBe(0);
      }));

    it('lists newest first, by status, bounded', () =>
      withRepo(async (r) => {
        for (let i = 0; i < 5; i++)
          await r.create(approvalRecord({ id: `r${i}`, createdAt: NOW + i }));
        await r.answer('r1', approvalAnswer(), NOW + 5);
        expect((await r.list()).map((x) => x.id)).toEqual(['r4', 'r3', 'r2', 'r1', 'r0']);
        expect((await r.list({ status: 'approved' })).map((x) => x.id)).toEqual(['r1']);
        expect((await r.list({ limit: 2 })).map((x) => x.id)).toEqual(['r4', 'r3']);
      }));
  });
}
