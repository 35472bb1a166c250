import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/index.js';
import { sha256 } from '../../src/crypto/index.js';
import { MemoryVault } from '../../src/vault/index.js';
import { Identities, MemoryIdentityRepository } from '../../src/identity/index.js';
import { Authority } from '../../src/credentials/authority.js';
import { MemoryAuthorityRepository } from '../../src/credentials/authority-repository.js';
import { constraintsToAttributes, parseConstraint } from '../../src/credentials/constraints.js';
import { parseEnrollmentTicket } from '../../src/credentials/enrollment-ticket.js';
import { SqliteDatabase } from '../../src/store/sqlite-database.js';
import {
  AUTHORITY_MIGRATION_SQL,
  SqliteAuthorityRepository,
} from '../../src/store/sqlite-authority-repository.js';
import { runAuthorityRepositoryContract } from './authority-repository-contract.js';

function openSqlite(): { database: SqliteDatabase; repository: SqliteAuthorityRepository } {
  const database = new SqliteDatabase(':memory:', [
    { version: 1, name: 'authority', sql: AUTHORITY_MIGRATION_SQL },
  ]);
  return { database, repository: new SqliteAuthorityRepository(database) };
}

runAuthorityRepositoryContract('memory', () => ({ repository: new MemoryAuthorityRepository() }));
runAuthorityRepositoryContract('sqlite', () => {
  const { database, repository } = openSqlite();
  return {
    repository,
    close: () => {
      database.close();
    },
  };
});

describe('SQLite authority repository', () => {
  it('reports a hand-edited row as ERR_STORE_CORRUPT', async () => {
    const { database, repository } = openSqlite();
    database.db
      .prepare('INSERT INTO authority_members VALUES (?, ?, 0, 1, ?)')
      .run(`I${'0'.repeat(64)}`, Buffer.from([0xff]), `I${'0'.repeat(64)}`);
    await expect(repository.listMembers()).rejects.toMatchObject({ code: 'ERR_STORE_CORRUPT' });
    database.db
      .prepare('UPDATE authority_members SET attributes = ?, added_by = ?')
      .run(Buffer.from([0xa0]), 'not-an-identifier');
    await expect(repository.getMember(`I${'0'.repeat(64)}`)).rejects.toMatchObject({
      code: 'ERR_STORE_CORRUPT',
    });
    database.close();
  });

  it('refuses a code hash that is not 32 bytes', async () => {
    const { database, repository } = openSqlite();
    await expect(
      repository.putTicket({
        codeHash: new Uint8Array(31),
        attributes: new Map(),
        enroller: false,
        expiresAt: 2,
        usesLeft: 1,
        createdBy: `I${'0'.repeat(64)}`,
        createdAt: 1,
      }),
    ).rejects.toThrow(/CHECK constraint/);
    database.close();
  });
});

describe('Authority on SQLite', () => {
  const NOW = 1_800_000_000;

  async function open() {
    const { database, repository } = openSqlite();
    const vault = new MemoryVault();
    const identities = new Identities({
      vault,
      repository: new MemoryIdentityRepository(),
      clock: new ManualClock(NOW),
    });
    const local = await identities.create({ name: 'authority' });
    const agents = await identities.createMany(4);
    const authority = new Authority({ identities, vault, repository, authority: 'authority' });
    const attributes = constraintsToAttributes(
      new Map(['tools=read_orders,issue_refund', 'refund<=1000'].map(parseConstraint)),
    );
    return {
      database,
      repository,
      authority,
      authorityId: local.identity.identifier,
      agents,
      attributes,
    };
  }

  it('honours a three-use ticket three times when four redeem at once', async () => {
    const { database, repository, authority, authorityId, agents, attributes } = await open();
    const { code } = parseEnrollmentTicket(
      await authority.createTicket(authorityId, { attributes, uses: 3, nowSeconds: NOW }),
    );
    const results = await Promise.allSettled(
      agents.map((agent) =>
        authority.redeem({ code, changeHistory: agent.identity.changeHistory }, NOW),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    const rejected = results.filter((r) => r.status === 'rejected');
    expect(rejected.map((r) => (r.reason as { code?: string }).code)).toEqual([
      'ERR_TICKET_INVALID',
    ]);
    expect(await repository.listMembers()).toHaveLength(3);
    expect(await repository.getTicketByCodeHash(sha256(code))).toBeUndefined();
    database.close();
  });

  it('never writes a code to the database, only its hash', async () => {
    const { database, authority, authorityId, agents, attributes } = await open();
    const codes = [];
    for (let i = 0; i < 3; i++) {
      codes.push(
        parseEnrollmentTicket(
          await authority.createTicket(authorityId, { attributes, uses: 2, nowSeconds: NOW }),
        ).code,
      );
    }
    await authority.redeem(
      { code: codes[0]!, changeHistory: agents[0]!.identity.changeHistory },
      NOW,
    );
    // Every page of the database, free pages and all.
    const image = database.db.serialize();
    for (const code of codes) {
      expect(image.indexOf(Buffer.from(code))).toBe(-1);
      expect(image.indexOf(Buffer.from(sha256(code)))).toBeGreaterThan(-1);
    }
    database.close();
  });
});
