import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openHome } from '../../src/cli/home.js';
import { Purpose } from '../../src/identity/index.js';
import { repoRoot } from '../helpers/vectors.js';

const BATCH = 500;

function countRows(path: string, table: string): number {
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      return db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${table}`).get()!.n;
    } finally {
      db.close();
    }
  } catch {
    return 0; // not created yet, or the schema is not there yet
  }
}

describe('crash safety (kill -9 during bulk creation)', () => {
  it('leaves only whole batches of whole identities', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mandate-crash-'));
    const dbPath = join(home, 'mandate.db');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(repoRoot, 'src', 'cli', 'bin.ts'),
        '--home',
        home,
        '--json',
        'identity',
        'create',
        '--count',
        '100000',
      ],
      {
        cwd: repoRoot,
        stdio: 'ignore',
      },
    );
    const exited = new Promise<void>((resolve) =>
      child.once('exit', () => {
        resolve();
      }),
    );
    const deadline = Date.now() + 60_000;
    while (countRows(dbPath, 'identities') < 2 * BATCH && Date.now() < deadline) await sleep(20);
    child.kill('SIGKILL');
    await exited;

    const identities = countRows(dbPath, 'identities');
    expect(identities).toBeGreaterThanOrEqual(2 * BATCH);
    expect(identities).toBeLessThan(100_000);
    expect(identities % BATCH).toBe(0);
    // Three vault keys per identity (primary, credential, secure channel): no orphan, no gap.
    expect(countRows(dbPath, 'vault_keys')).toBe(3 * identities);
    expect(
      countRows(
        dbPath,
        'identities WHERE credentials_key_id IS NOT NULL AND secure_channel_key_id IS NOT NULL',
      ),
    ).toBe(identities);

    const reopened = await openHome(home);
    try {
      let checked = 0;
      for (let offset = 0; offset < identities; offset += 1000) {
        for (const known of await reopened.identities.list({ limit: 1000, offset })) {
          await reopened.vault.sign(known.primaryKeyId!, new Uint8Array(32));
          for (const purpose of [Purpose.credentials, Purpose.secureChannel]) {
            const { keyId } = await reopened.identities.purposeKey(
              known.identity.identifier,
              purpose,
            );
            if (purpose === Purpose.credentials) await reopened.vault.getSigningKey(keyId);
            else await reopened.vault.getX25519Key(keyId);
          }
          checked++;
        }
      }
      expect(checked).toBe(identities);
    } finally {
      reopened.close();
    }
  }, 120_000);
});
