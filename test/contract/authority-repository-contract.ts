import { describe, expect, it } from 'vitest';
import type { Identifier } from '../../src/identity/index.js';
import type {
  AuthorityRepository,
  Member,
  StoredTicket,
} from '../../src/credentials/authority-repository.js';

const id = (n: number): Identifier => `I${n.toString(16).padStart(64, '0')}`;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

const member = (n: number, overrides: Partial<Member> = {}): Member => ({
  identifier: id(n),
  attributes: new Map([
    ['tools', text('=read_orders')],
    ['refund', text('<=1000')],
  ]),
  enroller: false,
  addedAt: 1000 + n,
  addedBy: id(0),
  ...overrides,
});

const hash = (n: number): Uint8Array => new Uint8Array(32).fill(n);
const ticket = (n: number, overrides: Partial<StoredTicket> = {}): StoredTicket => ({
  codeHash: hash(n),
  attributes: new Map([['tools', text('=read_orders,issue_refund')]]),
  enroller: false,
  expiresAt: 2000,
  usesLeft: 1,
  createdBy: id(0),
  createdAt: 1000,
  ...overrides,
});

/** One contract for every AuthorityRepository implementation. */
export function runAuthorityRepositoryContract(
  name: string,
  create: () => { repository: AuthorityRepository; close?: () => void },
): void {
  describe(`AuthorityRepository contract: ${name}`, () => {
    it('stores, replaces, lists and deletes members', async () => {
      const { repository, close } = create();
      expect(await repository.getMember(id(1))).toBeUndefined();
      await repository.putMember(member(2));
      await repository.putMember(member(1, { enroller: true, attributes: new Map() }));
      expect(await repository.getMember(id(1))).toEqual(
        member(1, { enroller: true, attributes: new Map() }),
      );
      expect(await repository.getMember(id(2))).toEqual(member(2));
      const replaced = member(2, {
        attributes: new Map([['refund', text('<=5')]]),
        addedAt: 9999,
        addedBy: id(1),
      });
      await repository.putMember(replaced);
      expect(await repository.getMember(id(2))).toEqual(replaced);
      expect((await repository.listMembers()).map((m) => m.identifier)).toEqual([id(1), id(2)]);
      expect(await repository.deleteMember(id(1))).toBe(true);
      expect(await repository.deleteMember(id(1))).toBe(false);
      expect(await repository.listMembers()).toEqual([replaced]);
      close?.();
    });

    it('keeps attribute bytes exactly, including empty values and many names', async () => {
      const { repository, close } = create();
      const attributes = new Map<string, Uint8Array>([
        ['z', new Uint8Array([0, 255, 1])],
        ['a', new Uint8Array(0)],
        ...[...Array(50).keys()].map((i): [string, Uint8Array] => [`n${i}`, text(`=v${i}`)]),
      ]);
      await repository.putMember(member(3, { attributes }));
      const stored = await repository.getMember(id(3));
      expect(stored?.attributes).toEqual(attributes);
      close?.();
    });

    it('stores tickets by code hash', async () => {
      const { repository, close } = create();
      expect(await repository.getTicketByCodeHash(hash(1))).toBeUndefined();
      await repository.putTicket(ticket(1, { usesLeft: 3, enroller: true }));
      await repository.putTicket(ticket(2));
      expect(await repository.getTicketByCodeHash(hash(1))).toEqual(
        ticket(1, { usesLeft: 3, enroller: true }),
      );
      expect(await repository.getTicketByCodeHash(hash(2))).toEqual(ticket(2));
      expect(await repository.getTicketByCodeHash(hash(3))).toBeUndefined();
      close?.();
    });

    it('consumes a ticket exactly as many times as it has uses, then forgets it', async () => {
      const { repository, close } = create();
      await repository.putTicket(ticket(1, { usesLeft: 3 }));
      expect((await repository.consumeTicket(hash(1), 1500))?.usesLeft).toBe(2);
      expect((await repository.getTicketByCodeHash(hash(1)))?.usesLeft).toBe(2);
      expect((await repository.consumeTicket(hash(1), 1500))?.usesLeft).toBe(1);
      const last = await repository.consumeTicket(hash(1), 1500);
      expect(last).toEqual(ticket(1, { usesLeft: 0 }));
      expect(await repository.consumeTicket(hash(1), 1500)).toBeUndefined();
      expect(await repository.getTicketByCodeHash(hash(1))).toBeUndefined();
      close?.();
    });

    it('never consumes an expired or unknown ticket', async () => {
      const { repository, close } = create();
      await repository.putTicket(ticket(1, { expiresAt: 2000, usesLeft: 2 }));
      expect(await repository.consumeTicket(hash(1), 2000)).toBeUndefined();
      expect(await repository.consumeTicket(hash(1), 5000)).toBeUndefined();
      expect((await repository.getTicketByCodeHash(hash(1)))?.usesLeft).toBe(2);
      expect(await repository.consumeTicket(hash(9), 1000)).toBeUndefined();
      expect((await repository.consumeTicket(hash(1), 1999))?.usesLeft).toBe(1);
      close?.();
    });

    it('lets concurrent consumers take each use once', async () => {
      const { repository, close } = create();
      await repository.putTicket(ticket(1, { usesLeft: 5 }));
      const results = await Promise.all(
        [...Array(8).keys()].map(() =>
          repository.transaction(() => repository.consumeTicket(hash(1), 1500)),
        ),
      );
      expect(
        results
          .filter((r) => r !== undefined)
          .map((r) => r?.usesLeft)
          .sort(),
      ).toEqual([0, 1, 2, 3, 4]);
      close?.();
    });

    it('deletes expired tickets only', async () => {
      const { repository, close } = create();
      await repository.putTicket(ticket(1, { expiresAt: 1000 }));
      await repository.putTicket(ticket(2, { expiresAt: 1500 }));
      await repository.putTicket(ticket(3, { expiresAt: 2000 }));
      expect(await repository.deleteExpiredTickets(1500)).toBe(2);
      expect(await repository.getTicketByCodeHash(hash(1))).toBeUndefined();
      expect(await repository.getTicketByCodeHash(hash(2))).toBeUndefined();
      expect(await repository.getTicketByCodeHash(hash(3))).toBeDefined();
      expect(await repository.deleteExpiredTickets(1500)).toBe(0);
      close?.();
    });

    it('runs a transaction, returns its result, and rolls every write back on failure', async () => {
      const { repository, close } = create();
      await repository.putTicket(ticket(1, { usesLeft: 1 }));
      expect(
        await repository.transaction(async () => {
          await repository.putMember(member(7));
          return 42;
        }),
      ).toBe(42);
      await expect(
        repository.transaction(async () => {
          expect(await repository.consumeTicket(hash(1), 1500)).toBeDefined();
          await repository.putMember(member(8));
          await repository.deleteMember(id(7));
          // Nested: joins the outer transaction.
          await repository.transaction(() => repository.putTicket(ticket(2)));
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect((await repository.getTicketByCodeHash(hash(1)))?.usesLeft).toBe(1);
      expect(await repository.getTicketByCodeHash(hash(2))).toBeUndefined();
      expect(await repository.getMember(id(8))).toBeUndefined();
      expect(await repository.getMember(id(7))).toEqual(member(7));
      close?.();
    });

    it("keeps a concurrent write out of another task's transaction", async () => {
      const { repository, close } = create();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const failing = repository.transaction(async () => {
        await repository.putMember(member(1));
        await gate;
        throw new Error('rolled back');
      });
      const concurrent = repository.putMember(member(2));
      release();
      await expect(failing).rejects.toThrow('rolled back');
      await concurrent;
      expect(await repository.getMember(id(1))).toBeUndefined();
      expect(await repository.getMember(id(2))).toEqual(member(2));
      close?.();
    });

    it('is not changed when the caller mutates what it stored', async () => {
      const { repository, close } = create();
      const attributes = new Map([['tools', text('=a')]]);
      const codeHash = hash(4);
      await repository.putMember(member(1, { attributes }));
      await repository.putTicket(ticket(4, { codeHash, attributes }));
      attributes.get('tools')![1] = 0x78;
      attributes.set('extra', text('=b'));
      codeHash[0] = 99;
      expect((await repository.getMember(id(1)))?.attributes).toEqual(
        new Map([['tools', text('=a')]]),
      );
      expect((await repository.getTicketByCodeHash(hash(4)))?.attributes).toEqual(
        new Map([['tools', text('=a')]]),
      );
      close?.();
    });
  });
}
