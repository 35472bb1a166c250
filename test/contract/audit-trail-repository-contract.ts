import { afterEach, describe, expect, it } from 'vitest';
import type { AuditTrailRepository, Escalation } from '../../src/audit/index.js';
import type { Identifier } from '../../src/identity/index.js';
import { isMandateError } from '../../src/core/index.js';

export interface AuditTrailFixture {
  readonly repository: AuditTrailRepository;
  readonly close?: () => void;
}

const A: Identifier = `I${'a'.repeat(64)}`;
const B: Identifier = `I${'b'.repeat(64)}`;
const h = (c: string): string => c.repeat(64);

async function codeOf(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  return 'no error';
}

function escalation(over: Partial<Escalation> = {}): Escalation {
  return {
    approval: 'ap1',
    agent: A,
    call: 'orders/issue_refund',
    argumentsDigest: h('d'),
    invocation: h('1'),
    index: 4,
    createdAt: 100,
    ...over,
  };
}

/** The contract every AuditTrailRepository passes (memory, SQLite). */
export function runAuditTrailRepositoryContract(name: string, make: () => AuditTrailFixture): void {
  describe(`AuditTrailRepository contract: ${name}`, () => {
    let fixture: AuditTrailFixture;
    const repo = (): AuditTrailRepository => {
      fixture = make();
      return fixture.repository;
    };
    afterEach(() => fixture.close?.());

    it('claims a nonce once per agent until it expires, then again', async () => {
      const r = repo();
      expect(await r.claimNonce(A, 'n1', 200, 100)).toBe(true);
      expect(await r.claimNonce(A, 'n1', 250, 150)).toBe(false);
      expect(await r.claimNonce(B, 'n1', 200, 100)).toBe(true);
      expect(await r.claimNonce(A, 'n1', 400, 200)).toBe(true);
      expect(await r.claimNonce(A, 'n1', 500, 399)).toBe(false);
    });

    it('gives exactly one of many concurrent claims of one nonce', async () => {
      const r = repo();
      const results = await Promise.all(
        Array.from({ length: 20 }, () => r.claimNonce(A, 'race', 1000, 10)),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('prunes only expired nonces', async () => {
      const r = repo();
      await r.claimNonce(A, 'old', 100, 0);
      await r.claimNonce(A, 'new', 300, 0);
      expect(await r.pruneNonces(100)).toBe(1);
      expect(await r.claimNonce(A, 'new', 400, 200)).toBe(false);
      expect(await r.claimNonce(A, 'old', 400, 200)).toBe(true);
    });

    it('keeps the highest head per agent and a monotonic indexed size', async () => {
      const r = repo();
      expect(await r.head(A)).toBeUndefined();
      expect(await r.indexedSize()).toBe(0);
      await r.putHeads(
        [
          { agent: A, hash: h('1'), index: 3 },
          { agent: B, hash: h('2'), index: 5 },
        ],
        6,
      );
      await r.putHeads([{ agent: A, hash: h('0'), index: 1 }], 2);
      expect(await r.head(A)).toEqual({ agent: A, hash: h('1'), index: 3 });
      expect(await r.head(B)).toEqual({ agent: B, hash: h('2'), index: 5 });
      expect(await r.indexedSize()).toBe(6);
      await r.putHeads([{ agent: A, hash: h('3'), index: 9 }], 10);
      expect(await r.head(A)).toEqual({ agent: A, hash: h('3'), index: 9 });
      expect(await r.indexedSize()).toBe(10);
    });

    it('stores escalations first-wins and finds the newest for a call', async () => {
      const r = repo();
      await r.putEscalation(escalation());
      await r.putEscalation(escalation({ invocation: h('9') }));
      expect(await r.escalation('ap1')).toEqual(escalation());
      await r.putEscalation(escalation({ approval: 'ap2', invocation: h('2'), index: 7 }));
      expect((await r.findEscalation(A, 'orders/issue_refund', h('d')))?.approval).toBe('ap2');
      expect(await r.findEscalation(B, 'orders/issue_refund', h('d'))).toBeUndefined();
      expect(await r.escalation('none')).toBeUndefined();
    });

    it('stores where chain records are, first-wins, in one batch', async () => {
      const r = repo();
      expect(await r.loggedChain(h('c'))).toBeUndefined();
      await r.putLoggedChains([
        { hash: h('c'), index: 3 },
        { hash: h('e'), index: 8 },
      ]);
      await r.putLoggedChains([{ hash: h('c'), index: 11 }]);
      expect(await r.loggedChain(h('c'))).toEqual({ hash: h('c'), index: 3 });
      expect(await r.loggedChain(h('e'))).toEqual({ hash: h('e'), index: 8 });
      expect(
        await codeOf(() =>
          r.putLoggedChains([
            { hash: h('f'), index: 1 },
            { hash: h('a'), index: -1 },
          ]),
        ),
      ).toBe('ERR_ARGUMENT_INVALID');
      expect(await r.loggedChain(h('f'))).toBeUndefined();
    });

    it('refuses bad input with a typed error and stores nothing', async () => {
      const r = repo();
      expect(await codeOf(() => r.claimNonce(A, '', 10, 0))).toBe('ERR_ARGUMENT_INVALID');
      expect(await codeOf(() => r.claimNonce(A, 'n', -1, 0))).toBe('ERR_ARGUMENT_INVALID');
      expect(
        await codeOf(() =>
          r.putHeads(
            [
              { agent: A, hash: h('1'), index: 1 },
              { agent: B, hash: h('1'), index: 1.5 },
            ],
            2,
          ),
        ),
      ).toBe('ERR_ARGUMENT_INVALID');
      expect(await r.head(A)).toBeUndefined();
      expect(await r.indexedSize()).toBe(0);
      expect(await codeOf(() => r.putEscalation(escalation({ approval: 'x'.repeat(2000) })))).toBe(
        'ERR_ARGUMENT_INVALID',
      );
    });
  });
}
