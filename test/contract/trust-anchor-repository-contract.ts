import { describe, expect, it } from 'vitest';
import { isMandateError } from '../../src/core/index.js';
import {
  identityScope,
  trustedIdentifiers,
  type TrustAnchor,
  type TrustAnchorRepository,
  type TrustScope,
} from '../../src/credentials/trust-anchors.js';
import type { Identifier } from '../../src/identity/index.js';

const NOW = 1_800_000_000;

export const identifier = (n: number): Identifier => `I${n.toString(16).padStart(64, '0')}`;

async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  return 'resolved';
}

/** The suite every TrustAnchorRepository passes (memory, SQLite). */
export function runTrustAnchorRepositoryContract(
  name: string,
  open: () => { repository: TrustAnchorRepository; close?: () => void },
): void {
  describe(`TrustAnchorRepository contract: ${name}`, () => {
    const anchor = (n: number, scope: TrustScope = 'all', addedAt = NOW): TrustAnchor => ({
      identifier: identifier(n),
      scope,
      addedAt,
    });

    it('lists anchors in the order added, one row per authority and scope', async () => {
      const { repository, close } = open();
      expect(await repository.listTrustAnchors()).toEqual([]);
      expect(await repository.addTrustAnchor(anchor(1))).toBe(true);
      expect(await repository.addTrustAnchor(anchor(2, identityScope(identifier(9))))).toBe(true);
      expect(await repository.addTrustAnchor(anchor(2, 'all', NOW + 5))).toBe(true);
      // The same anchor again: nothing changes, the first time added is kept.
      expect(await repository.addTrustAnchor(anchor(1, 'all', NOW + 10))).toBe(false);
      expect(await repository.listTrustAnchors()).toEqual([
        anchor(1),
        anchor(2, identityScope(identifier(9))),
        anchor(2, 'all', NOW + 5),
      ]);
      close?.();
    });

    it('removes in one scope or in all of them, and says how many', async () => {
      const { repository, close } = open();
      await repository.addTrustAnchor(anchor(1));
      await repository.addTrustAnchor(anchor(2));
      await repository.addTrustAnchor(anchor(2, identityScope(identifier(8))));
      await repository.addTrustAnchor(anchor(2, identityScope(identifier(9))));
      expect(await repository.removeTrustAnchors(identifier(2), 'all')).toBe(1);
      expect(await repository.removeTrustAnchors(identifier(2), 'all')).toBe(0);
      expect(await repository.removeTrustAnchors(identifier(3))).toBe(0);
      expect(trustedIdentifiers(await repository.listTrustAnchors())).toEqual([identifier(1)]);
      expect(
        trustedIdentifiers(await repository.listTrustAnchors(), { forIdentity: identifier(9) }),
      ).toEqual([identifier(1), identifier(2)]);
      expect(await repository.removeTrustAnchors(identifier(2))).toBe(2);
      expect(await repository.listTrustAnchors()).toEqual([anchor(1)]);
      close?.();
    });

    it('refuses malformed anchors and stores nothing', async () => {
      const { repository, close } = open();
      const bad: TrustAnchor[] = [
        { ...anchor(1), identifier: 'I00' },
        { ...anchor(1), scope: 'everything' as TrustScope },
        { ...anchor(1), scope: 'identity:bob' as TrustScope },
        { ...anchor(1), addedAt: -1 },
        { ...anchor(1), addedAt: 1.5 },
      ];
      for (const a of bad)
        expect(await rejectionCode(repository.addTrustAnchor(a)), JSON.stringify(a)).toBe(
          'ERR_ARGUMENT_INVALID',
        );
      expect(await repository.listTrustAnchors()).toEqual([]);
      close?.();
    });
  });
}
