import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  assertNoEnforcementLock,
  assertNoNodeLock,
  ENFORCEMENT_LOCK_FILE,
  lockEnforcement,
  lockNodeHome,
  NODE_LOCK_FILE,
} from './enforcement-lock.js';

const home = () => mkdtempSync(join(tmpdir(), 'mandate-enforcement-lock-'));
const codeOf = (work: () => unknown): string => {
  try {
    work();
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
  return 'no error';
};

describe('the enforcement lock', () => {
  it('is held by one enforcement point at a time, and taken again once released', () => {
    const dir = home();
    const lock = lockEnforcement(dir);
    expect(readFile(dir)).toBe(`${process.pid}\n`);
    // A second one in this process, or a one-off call beside it: refused.
    expect(codeOf(() => lockEnforcement(dir))).toBe('ERR_HOME_ENFORCEMENT_BUSY');
    expect(
      codeOf(() => {
        assertNoEnforcementLock(dir);
      }),
    ).toBe('ERR_HOME_ENFORCEMENT_BUSY');
    lock.release();
    lock.release();
    expect(existsSync(join(dir, ENFORCEMENT_LOCK_FILE))).toBe(false);
    expect(
      codeOf(() => {
        assertNoEnforcementLock(dir);
      }),
    ).toBe('no error');
    lockEnforcement(dir).release();
  });

  it('refuses while another live process holds it; takes over one left by a process that is gone', async () => {
    const dir = home();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], {
      stdio: 'ignore',
    });
    try {
      writeFileSync(join(dir, ENFORCEMENT_LOCK_FILE), `${child.pid!}\n`);
      const busy = (() => {
        try {
          lockEnforcement(dir);
        } catch (error) {
          return error as Error & { code: string };
        }
        throw new Error('taken beside a live holder');
      })();
      expect(busy.code).toBe('ERR_HOME_ENFORCEMENT_BUSY');
      expect(busy.message).toContain(`in process ${child.pid!}`);
      expect(
        codeOf(() => {
          assertNoEnforcementLock(dir);
        }),
      ).toBe('ERR_HOME_ENFORCEMENT_BUSY');
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    // Its holder is gone: the lock is stale, and taken over.
    const lock = lockEnforcement(dir);
    expect(readFile(dir)).toBe(`${process.pid}\n`);
    lock.release();
    // A lock naming a process that exited long ago, or naming none: taken over too.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    writeFileSync(join(dir, ENFORCEMENT_LOCK_FILE), `${gone}\n`);
    lockEnforcement(dir).release();
    writeFileSync(join(dir, ENFORCEMENT_LOCK_FILE), 'not a pid');
    lockEnforcement(dir).release();
  });

  it('the node lock is the same kind of lock, of its own: one whole node per home', () => {
    const dir = home();
    const node = lockNodeHome(dir);
    expect(readFileSync(join(dir, NODE_LOCK_FILE), 'utf8')).toBe(`${process.pid}\n`);
    expect(codeOf(() => lockNodeHome(dir))).toBe('ERR_HOME_LOCKED');
    expect(
      codeOf(() => {
        assertNoNodeLock(dir);
      }),
    ).toBe('ERR_HOME_LOCKED');
    // Independent of the enforcement lock: a node may run the home's one enforcement point.
    const enforcement = lockEnforcement(dir);
    enforcement.release();
    node.release();
    expect(existsSync(join(dir, NODE_LOCK_FILE))).toBe(false);
    expect(
      codeOf(() => {
        assertNoNodeLock(dir);
      }),
    ).toBe('no error');
    // Left by a process that is gone: taken over.
    writeFileSync(join(dir, NODE_LOCK_FILE), `${spawnSync(process.execPath, ['-e', '0']).pid}\n`);
    lockNodeHome(dir).release();
  });
});

function readFile(dir: string): string {
  return readFileSync(join(dir, ENFORCEMENT_LOCK_FILE), 'utf8');
}
