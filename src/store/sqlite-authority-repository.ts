import type { Statement } from 'better-sqlite3';
import { internal } from '../core/internal.js';
import { CborMap, decodeCbor, encodeCbor } from '../encoding/index.js';
import { isIdentifier, type Identifier } from '../identity/index.js';
import type {
  AuthorityRepository,
  Member,
  StoredTicket,
  CredentialAttributes,
} from '../credentials/index.js';
import type { SqliteDatabase } from './sqlite-database.js';

/**
 * One authority's members and tickets. Attributes are a CBOR map, text name → byte value, sorted
 * by name. A ticket row exists only while it has uses left, and holds SHA-256 of the code, never
 * the code.
 */
export const AUTHORITY_MIGRATION_SQL = `
  CREATE TABLE authority_members (
    identifier TEXT PRIMARY KEY,
    attributes BLOB NOT NULL,
    enroller INTEGER NOT NULL CHECK (enroller IN (0, 1)),
    added_at INTEGER NOT NULL,
    added_by TEXT NOT NULL
  ) STRICT;
  CREATE TABLE authority_tickets (
    code_hash BLOB PRIMARY KEY CHECK (length(code_hash) = 32),
    attributes BLOB NOT NULL,
    enroller INTEGER NOT NULL CHECK (enroller IN (0, 1)),
    expires_at INTEGER NOT NULL,
    uses_left INTEGER NOT NULL CHECK (uses_left >= 0),
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX authority_tickets_expires_at ON authority_tickets (expires_at);
`;

interface MemberRow {
  identifier: string;
  attributes: Buffer;
  enroller: number;
  added_at: number;
  added_by: string;
}

interface TicketRow {
  code_hash: Buffer;
  attributes: Buffer;
  enroller: number;
  expires_at: number;
  uses_left: number;
  created_by: string;
  created_at: number;
}

/** AuthorityRepository on SQLite; statements are prepared once. */
export class SqliteAuthorityRepository implements AuthorityRepository {
  readonly #database: SqliteDatabase;
  readonly #getMember: Statement<[string], MemberRow>;
  readonly #putMember: Statement<[string, Buffer, number, number, string]>;
  readonly #deleteMember: Statement<[string]>;
  readonly #listMembers: Statement<[], MemberRow>;
  readonly #putTicket: Statement<[Buffer, Buffer, number, number, number, string, number]>;
  readonly #getTicket: Statement<[Buffer], TicketRow>;
  readonly #useTicket: Statement<[Buffer, number], TicketRow>;
  readonly #deleteUsedUp: Statement<[Buffer]>;
  readonly #deleteExpired: Statement<[number]>;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    const db = database.db;
    this.#getMember = db.prepare('SELECT * FROM authority_members WHERE identifier = ?');
    this.#putMember = db.prepare(`
      INSERT INTO authority_members (identifier, attributes, enroller, added_at, added_by)
      VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (identifier) DO UPDATE SET attributes = excluded.attributes,
        enroller = excluded.enroller, added_at = excluded.added_at, added_by = excluded.added_by`);
    this.#deleteMember = db.prepare('DELETE FROM authority_members WHERE identifier = ?');
    this.#listMembers = db.prepare('SELECT * FROM authority_members ORDER BY identifier');
    this.#putTicket = db.prepare(`
      INSERT OR REPLACE INTO authority_tickets
        (code_hash, attributes, enroller, expires_at, uses_left, created_by, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?)`);
    this.#getTicket = db.prepare('SELECT * FROM authority_tickets WHERE code_hash = ?');
    // One statement checks and decrements, so two redemptions can never both take the last use.
    this.#useTicket = db.prepare(`
      UPDATE authority_tickets SET uses_left = uses_left - 1
      WHERE code_hash = ? AND expires_at > ? AND uses_left > 0
      RETURNING *`);
    this.#deleteUsedUp = db.prepare(
      'DELETE FROM authority_tickets WHERE code_hash = ? AND uses_left = 0',
    );
    this.#deleteExpired = db.prepare('DELETE FROM authority_tickets WHERE expires_at <= ?');
  }

  getMember(identifier: Identifier): Promise<Member | undefined> {
    return read(() => {
      const row = this.#getMember.get(identifier);
      return row === undefined ? undefined : toMember(row);
    });
  }

  async putMember(member: Member): Promise<void> {
    await this.#database.write(() =>
      this.#putMember.run(
        member.identifier,
        encodeAttributes(member.attributes),
        member.enroller ? 1 : 0,
        member.addedAt,
        member.addedBy,
      ),
    );
  }

  async deleteMember(identifier: Identifier): Promise<boolean> {
    const result = await this.#database.write(() => this.#deleteMember.run(identifier));
    return result.changes > 0;
  }

  listMembers(): Promise<Member[]> {
    return read(() => this.#listMembers.all().map(toMember));
  }

  async putTicket(ticket: StoredTicket): Promise<void> {
    await this.#database.write(() =>
      this.#putTicket.run(
        toBuffer(ticket.codeHash),
        encodeAttributes(ticket.attributes),
        ticket.enroller ? 1 : 0,
        ticket.expiresAt,
        ticket.usesLeft,
        ticket.createdBy,
        ticket.createdAt,
      ),
    );
  }

  getTicketByCodeHash(codeHash: Uint8Array): Promise<StoredTicket | undefined> {
    return read(() => {
      const row = this.#getTicket.get(toBuffer(codeHash));
      return row === undefined ? undefined : toTicket(row);
    });
  }

  consumeTicket(codeHash: Uint8Array, nowSeconds: number): Promise<StoredTicket | undefined> {
    const key = toBuffer(codeHash);
    return this.#database.transaction(() => {
      const row = this.#useTicket.get(key, nowSeconds);
      if (row === undefined) return Promise.resolve(undefined);
      if (row.uses_left === 0) this.#deleteUsedUp.run(key);
      return Promise.resolve(toTicket(row));
    });
  }

  async deleteExpiredTickets(nowSeconds: number): Promise<number> {
    const result = await this.#database.write(() => this.#deleteExpired.run(nowSeconds));
    return result.changes;
  }

  transaction<T>(work: () => Promise<T>): Promise<T> {
    return this.#database.transaction(work);
  }
}

/** A synchronous read as a promise: a corrupt row rejects rather than throws. */
function read<T>(statement: () => T): Promise<T> {
  return new Promise((resolve) => {
    resolve(statement());
  });
}

function encodeAttributes(attributes: CredentialAttributes): Buffer {
  const entries = [...attributes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return toBuffer(encodeCbor(new CborMap(entries)));
}

function decodeAttributes(bytes: Buffer): Map<string, Uint8Array> {
  const corrupt = (): never => {
    throw internal('ERR_STORE_CORRUPT', 'an authority row has malformed attributes');
  };
  let value;
  try {
    value = decodeCbor(new Uint8Array(bytes));
  } catch {
    return corrupt();
  }
  if (!(value instanceof CborMap)) return corrupt();
  const attributes = new Map<string, Uint8Array>();
  for (const [name, attribute] of value.entries) {
    if (typeof name !== 'string' || !(attribute instanceof Uint8Array)) return corrupt();
    attributes.set(name, attribute);
  }
  return attributes;
}

function toIdentifier(text: string): Identifier {
  if (!isIdentifier(text))
    throw internal('ERR_STORE_CORRUPT', 'an authority row has a malformed identifier');
  return text;
}

function toMember(row: MemberRow): Member {
  return {
    identifier: toIdentifier(row.identifier),
    attributes: decodeAttributes(row.attributes),
    enroller: row.enroller === 1,
    addedAt: row.added_at,
    addedBy: toIdentifier(row.added_by),
  };
}

function toTicket(row: TicketRow): StoredTicket {
  return {
    codeHash: new Uint8Array(row.code_hash),
    attributes: decodeAttributes(row.attributes),
    enroller: row.enroller === 1,
    expiresAt: row.expires_at,
    usesLeft: row.uses_left,
    createdBy: toIdentifier(row.created_by),
    createdAt: row.created_at,
  };
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
