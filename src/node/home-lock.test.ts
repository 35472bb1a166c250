import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
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
} from './home-lock.js';

const home = () => mkdtempSync(join(tmpdir(), 'mandate-home-lock-'));
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
    expect(readFile(dir)).toMatch(new RegExp(`^${process.pid} [0-9]+\\n$`));
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
    expect(readFile(dir)).toMatch(new RegExp(`^${process.pid} [0-9]+\\n$`));
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
    expect(readFileSync(join(dir, NODE_LOCK_FILE), 'utf8')).toMatch(
      new RegExp(`^${process.pid} [0-9]+\\n$`),
    );
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

  it('names its holder by pid and start time: a reused pid, its own pid after a restart in a container, or a FIFO do not lock a home out', async () => {
    const dir = home();
    const path = join(dir, NODE_LOCK_FILE);
    // This process's own pid with another start time: a container's pid 1 killed and started
    // again. Stale: taken over.
    writeFileSync(path, `${process.pid} 1\n`);
    lockNodeHome(dir).release();
    // The old form (a pid alone) naming this process: it cannot have written that. Stale.
    writeFileSync(path, `${process.pid}\n`);
    lockNodeHome(dir).release();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], {
      stdio: 'ignore',
    });
    try {
      // A live process whose start time is not the one recorded: its pid was reused. Stale.
      writeFileSync(path, `${child.pid!} 1\n`);
      lockNodeHome(dir).release();
      // The live process itself, as it would write it: held.
      const start = readFileSync(`/proc/${child.pid!}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
      writeFileSync(path, `${child.pid!} ${start}\n`);
      expect(codeOf(() => lockNodeHome(dir))).toBe('ERR_HOME_LOCKED');
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    // A FIFO in the lock's place is never opened (it would block): removed and taken over.
    removeQuietly(path);
    expect(spawnSync('mkfifo', [path]).status).toBe(0);
    lockNodeHome(dir).release();
    expect(existsSync(path)).toBe(false);
  });
});

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Not there.
  }
}

function readFile(dir: string): string {
  return readFileSync(join(dir, ENFORCEMENT_LOCK_FILE), 'utf8');
}
