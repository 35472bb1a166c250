import { SerialScope } from '../core/internal.js';
import { toHex } from '../encoding/index.js';
import type { Identifier } from '../identity/index.js';
import type { CredentialAttributes } from './credential.js';

/** A member of an authority: the attributes its credentials carry, and whether it may enroll. */
export interface Member {
  readonly identifier: Identifier;
  /** Constraint-valued attributes (`tools` → `=read_orders,issue_refund`, `refund` → `<=1000`). */
  readonly attributes: CredentialAttributes;
  /** An enroller may add members and create tickets for attributes it holds itself. */
  readonly enroller: boolean;
  readonly addedAt: number;
  /** The authority itself, or the enroller who added the member or created its ticket. */
  readonly addedBy: Identifier;
}

/**
 * An enrollment ticket as the authority keeps it: never the one-time code, only its SHA-256, so
 * a copy of the database enrolls nobody (Ockam stores the code in plaintext).
 */
export interface StoredTicket {
  /** SHA-256 of the 32-byte one-time code: the ticket's key. */
  readonly codeHash: Uint8Array;
  readonly attributes: CredentialAttributes;
  /** Whether redeeming makes the redeemer an enroller (only tickets the authority creates). */
  readonly enroller: boolean;
  /** The ticket is valid while `now < expiresAt`. */
  readonly expiresAt: number;
  /** Redemptions left, at least 1 while stored: a ticket is deleted with its last use. */
  readonly usesLeft: number;
  readonly createdBy: Identifier;
  readonly createdAt: number;
}

/**
 * Storage for one authority's members and tickets, implemented here in memory and in `store/`
 * on SQLite. `transaction` makes a group of calls atomic and isolated from concurrent
 * transactions: it is what makes a ticket's last use happen once.
 */
export interface AuthorityRepository {
  getMember(identifier: Identifier): Promise<Member | undefined>;
  /** Inserts or replaces the member with this identifier. */
  putMember(member: Member): Promise<void>;
  /** True when there was such a member. */
  deleteMember(identifier: Identifier): Promise<boolean>;
  /** Every member, ordered by identifier. */
  listMembers(): Promise<Member[]>;
  /** Inserts a ticket; a ticket with the same code hash is replaced. */
  putTicket(ticket: StoredTicket): Promise<void>;
  getTicketByCodeHash(codeHash: Uint8Array): Promise<StoredTicket | undefined>;
  /**
   * Uses a ticket once, atomically: if it exists, `nowSeconds < expiresAt` and `usesLeft > 0`,
   * decrements `usesLeft` (deleting the ticket when it reaches 0) and returns the ticket as it
   * is after this use; otherwise changes nothing and returns undefined (unknown, expired or
   * used up alike).
   */
  consumeTicket(codeHash: Uint8Array, nowSeconds: number): Promise<StoredTicket | undefined>;
  /** Deletes tickets with `expiresAt <= nowSeconds`; returns how many. */
  deleteExpiredTickets(nowSeconds: number): Promise<number>;
  /** Runs `work` atomically: all of its writes or none. Nested calls join the outer one. */
  transaction<T>(work: () => Promise<T>): Promise<T>;
}

/**
 * An AuthorityRepository in process memory, for tests and in-process swarms. Transactions are
 * serialised and roll back on failure like SQLite's, so the same contract holds; a write made
 * outside a transaction waits for the open one instead of being rolled back with it.
 */
export class MemoryAuthorityRepository implements AuthorityRepository {
  readonly #members = new Map<Identifier, Member>();
  readonly #tickets = new Map<string, StoredTicket>();
  /** Inside a transaction: how to undo each write, newest last (a rollback replays it backwards). */
  #undo: (() => void)[] | undefined;
  readonly #scope = new SerialScope();

  getMember(identifier: Identifier): Promise<Member | undefined> {
    return Promise.resolve(this.#members.get(identifier));
  }

  putMember(member: Member): Promise<void> {
    return this.#write(() => {
      this.#set(this.#members, member.identifier, copyMember(member));
    });
  }

  deleteMember(identifier: Identifier): Promise<boolean> {
    return this.#write(() => this.#delete(this.#members, identifier));
  }

  listMembers(): Promise<Member[]> {
    return Promise.resolve(
      [...this.#members.values()].sort((a, b) =>
        a.identifier < b.identifier ? -1 : a.identifier > b.identifier ? 1 : 0,
      ),
    );
  }

  putTicket(ticket: StoredTicket): Promise<void> {
    return this.#write(() => {
      this.#set(this.#tickets, toHex(ticket.codeHash), copyTicket(ticket));
    });
  }

  getTicketByCodeHash(codeHash: Uint8Array): Promise<StoredTicket | undefined> {
    return Promise.resolve(this.#tickets.get(toHex(codeHash)));
  }

  consumeTicket(codeHash: Uint8Array, nowSeconds: number): Promise<StoredTicket | undefined> {
    return this.#write(() => {
      const key = toHex(codeHash);
      const ticket = this.#tickets.get(key);
      if (ticket === undefined || nowSeconds >= ticket.expiresAt || ticket.usesLeft <= 0)
        return undefined;
      const used = { ...ticket, usesLeft: ticket.usesLeft - 1 };
      if (used.usesLeft === 0) this.#delete(this.#tickets, key);
      else this.#set(this.#tickets, key, used);
      return used;
    });
  }

  deleteExpiredTickets(nowSeconds: number): Promise<number> {
    return this.#write(() => {
      let deleted = 0;
      for (const [key, ticket] of this.#tickets) {
        if (ticket.expiresAt <= nowSeconds) {
          this.#delete(this.#tickets, key);
          deleted++;
        }
      }
      return deleted;
    });
  }

  transaction<T>(work: () => Promise<T>): Promise<T> {
    let undo: (() => void)[] = [];
    return this.#scope.transaction(work, {
      begin: () => {
        undo = [];
        this.#undo = undo;
      },
      commit: () => {
        this.#undo = undefined;
      },
      rollback: () => {
        for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
        this.#undo = undefined;
      },
    });
  }

  // Writes go through these two so a transaction can undo them in O(writes), not O(size).
  #set<K, V>(map: Map<K, V>, key: K, value: V): void {
    if (this.#undo !== undefined) {
      const had = map.has(key);
      const previous = map.get(key);
      this.#undo.push(() => {
        if (had) map.set(key, previous as V);
        else map.delete(key);
      });
    }
    map.set(key, value);
  }

  #delete<K, V>(map: Map<K, V>, key: K): boolean {
    if (!map.has(key)) return false;
    if (this.#undo !== undefined) {
      const previous = map.get(key) as V;
      this.#undo.push(() => map.set(key, previous));
    }
    return map.delete(key);
  }

  #write<T>(statement: () => T): Promise<T> {
    return this.#scope.write(statement);
  }
}

// Copies, so a caller mutating what it passed in cannot change what is stored.
function copyAttributes(attributes: CredentialAttributes): CredentialAttributes {
  return new Map([...attributes].map(([name, value]) => [name, value.slice()]));
}

function copyMember(member: Member): Member {
  return { ...member, attributes: copyAttributes(member.attributes) };
}

function copyTicket(ticket: StoredTicket): StoredTicket {
  return {
    ...ticket,
    codeHash: ticket.codeHash.slice(),
    attributes: copyAttributes(ticket.attributes),
  };
}
