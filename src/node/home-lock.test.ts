import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  assertHomeNotServed,
  assertNoEnforcementLock,
  ENFORCEMENT_LOCK_FILE,
  lockDemo,
  lockEnforcement,
  lockNodeHome,
  NODE_LOCK_FILE,
  registerServiceNode,
  SERVICE_NODES_DIR,
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

  it('a folder in a lock’s place is named as such, not as a running process; once removed the lock is taken', () => {
    const dir = home();
    for (const [file, lock, code] of [
      [NODE_LOCK_FILE, lockNodeHome, 'ERR_HOME_LOCKED'],
      [ENFORCEMENT_LOCK_FILE, lockEnforcement, 'ERR_HOME_ENFORCEMENT_BUSY'],
    ] as const) {
      const path = join(dir, file);
      mkdirSync(path);
      writeFileSync(join(path, 'inside'), 'x');
      let refused: (Error & { code?: string }) | undefined;
      try {
        lock(dir);
      } catch (error) {
        refused = error as Error & { code?: string };
      }
      expect(refused?.code).toBe(code);
      expect(refused?.message).toContain(`${path} is a folder, not a lock file`);
      expect(refused?.message).not.toContain('running');
      // Nothing else was touched, and no file of this process's own was left behind.
      expect(readdirSync(path)).toEqual(['inside']);
      expect(readdirSync(dir).filter((f) => f.startsWith(`${file}.`))).toEqual([]);
      unlinkSync(join(path, 'inside'));
      spawnSync('rmdir', [path]);
      lock(dir).release();
    }
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
        assertHomeNotServed(dir);
      }),
    ).toBe('ERR_HOME_LOCKED');
    // Independent of the enforcement lock: a node may run the home's one enforcement point.
    const enforcement = lockEnforcement(dir);
    enforcement.release();
    node.release();
    expect(existsSync(join(dir, NODE_LOCK_FILE))).toBe(false);
    expect(
      codeOf(() => {
        assertHomeNotServed(dir);
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

describe('single-service nodes and the whole node (`up`)', () => {
  const registrations = (dir: string) => readdirSync(join(dir, SERVICE_NODES_DIR));
  const refusal = (work: () => unknown): Error & { code?: string } => {
    try {
      work();
    } catch (error) {
      return error as Error & { code?: string };
    }
    throw new Error('not refused');
  };

  it('several single-service nodes share a home; `up` is refused while any of them runs, and takes the home once all have stopped', () => {
    const dir = home();
    const relay = registerServiceNode(dir);
    const member = registerServiceNode(dir);
    expect(registrations(dir)).toHaveLength(2);
    for (const name of registrations(dir))
      expect(readFileSync(join(dir, SERVICE_NODES_DIR, name), 'utf8')).toMatch(
        new RegExp(`^${process.pid} [0-9]+\\n$`),
      );
    const refused = refusal(() => lockNodeHome(dir));
    expect(refused.code).toBe('ERR_HOME_LOCKED');
    expect(refused.message).toContain('a single-service node');
    expect(refused.message).toContain(`in process ${process.pid}`);
    // Refused whole: no node lock is left behind.
    expect(existsSync(join(dir, NODE_LOCK_FILE))).toBe(false);
    expect(
      refusal(() => {
        assertHomeNotServed(dir);
      }).code,
    ).toBe('ERR_HOME_LOCKED');
    relay.release();
    expect(codeOf(() => lockNodeHome(dir))).toBe('ERR_HOME_LOCKED');
    member.release();
    member.release();
    expect(registrations(dir)).toEqual([]);
    const node = lockNodeHome(dir);
    // And the reverse: a single-service node on a home `up` holds is refused, registering nothing.
    const late = refusal(() => registerServiceNode(dir));
    expect(late.code).toBe('ERR_HOME_LOCKED');
    expect(late.message).toContain('one node per home');
    expect(registrations(dir)).toEqual([]);
    node.release();
    registerServiceNode(dir).release();
  });

  it('makes a missing home folder private', () => {
    const dir = join(home(), 'fresh');
    registerServiceNode(dir).release();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, SERVICE_NODES_DIR)).mode & 0o777).toBe(0o700);
    // The locks too (`mandate demo` on a home not made yet failed with ENOENT).
    for (const lock of [lockNodeHome, lockDemo, lockEnforcement]) {
      const fresh = join(home(), 'a', 'b');
      lock(fresh).release();
      expect(statSync(fresh).mode & 0o777).toBe(0o700);
    }
  });

  it('ignores and removes registrations left by processes that are gone, or naming nobody; a live one of another process refuses `up`', async () => {
    const dir = home();
    const folder = join(dir, SERVICE_NODES_DIR);
    mkdirSync(folder);
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    writeFileSync(join(folder, 'gone'), `${gone}\n`);
    writeFileSync(join(folder, 'restarted'), `${process.pid} 1\n`);
    writeFileSync(join(folder, 'garbage'), 'not a pid');
    mkdirSync(join(folder, 'a-folder'));
    expect(spawnSync('mkfifo', [join(folder, 'a-fifo')]).status).toBe(0);
    lockNodeHome(dir).release();
    expect(registrations(dir)).toEqual(['a-folder']);
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], {
      stdio: 'ignore',
    });
    try {
      const start = readFileSync(`/proc/${child.pid!}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
      writeFileSync(join(folder, 'live'), `${child.pid!} ${start}\n`);
      expect(refusal(() => lockNodeHome(dir)).message).toContain(`in process ${child.pid!}`);
      // A live pid with another start time: reused by another process, stale.
      writeFileSync(join(folder, 'live'), `${child.pid!} 1\n`);
      lockNodeHome(dir).release();
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  });

  it('reads a lock or registration file no further than a holder could write, never through a symbolic link: huge files, links to them or to a FIFO name nobody and are removed (the links, not their targets)', () => {
    const dir = home();
    const folder = join(dir, SERVICE_NODES_DIR);
    mkdirSync(folder);
    const elsewhere = home();
    // Sparse: 2.5 GB by their size, no bytes on disk. Read whole they took seconds and gigabytes.
    const huge = join(elsewhere, 'huge');
    writeFileSync(huge, '');
    truncateSync(huge, 2_500_000_000);
    const fifo = join(elsewhere, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const peakKib = process.resourceUsage().maxRSS;
    const lock = join(dir, NODE_LOCK_FILE);
    writeFileSync(lock, '');
    truncateSync(lock, 2_500_000_000);
    writeFileSync(join(folder, 'huge'), '');
    truncateSync(join(folder, 'huge'), 2_500_000_000);
    symlinkSync(huge, join(folder, 'to-huge'));
    symlinkSync(fifo, join(folder, 'to-fifo'));
    lockNodeHome(dir).release();
    expect(registrations(dir)).toEqual([]);
    expect(existsSync(lock)).toBe(false);
    // A link in the lock's place, to a huge file or a FIFO: the link is taken over, its target kept.
    for (const target of [huge, fifo]) {
      symlinkSync(target, lock);
      lockNodeHome(dir).release();
      expect(existsSync(lock)).toBe(false);
      expect(existsSync(target)).toBe(true);
    }
    expect(statSync(huge).size).toBe(2_500_000_000);
    // A link to a file naming this very process, as a live holder writes it: still not a holder.
    const own = lockEnforcement(elsewhere);
    symlinkSync(join(elsewhere, ENFORCEMENT_LOCK_FILE), join(dir, ENFORCEMENT_LOCK_FILE));
    symlinkSync(join(elsewhere, ENFORCEMENT_LOCK_FILE), join(folder, 'to-live'));
    lockEnforcement(dir).release();
    lockNodeHome(dir).release();
    expect(registrations(dir)).toEqual([]);
    own.release();
    // None of it was read whole: the process's peak memory did not grow by the files' size.
    expect(process.resourceUsage().maxRSS - peakKib).toBeLessThan(256 * 1024);
  });

  it('refuses a home whose `service-nodes` is not a folder of its own: a file, a link to another folder, a FIFO', () => {
    const kept: string[] = [];
    const make = {
      file: (path: string) => {
        writeFileSync(path, `${process.pid}\n`);
      },
      'link to a folder': (path: string) => {
        const other = home();
        // Holding a live registration: `up` must not go by what such a link shows or hides.
        registerServiceNode(other);
        symlinkSync(join(other, SERVICE_NODES_DIR), path);
        // Nor remove, as names of nobody, the files of a folder it names (it once did).
        writeFileSync(join(other, SERVICE_NODES_DIR, 'notes.txt'), 'kept');
        kept.push(join(other, SERVICE_NODES_DIR, 'notes.txt'));
      },
      FIFO: (path: string) => {
        expect(spawnSync('mkfifo', [path]).status).toBe(0);
      },
    };
    for (const [what, put] of Object.entries(make)) {
      const dir = home();
      const path = join(dir, SERVICE_NODES_DIR);
      put(path);
      const registering = refusal(() => registerServiceNode(dir));
      expect(registering.code, what).toBe('ERR_HOME_INSECURE');
      expect(registering.message, what).toContain(`\`${path}\``);
      expect(refusal(() => lockNodeHome(dir)).code, what).toBe('ERR_HOME_INSECURE');
      // Refused whole: no node lock left behind, and nothing registered or removed.
      expect(existsSync(join(dir, NODE_LOCK_FILE)), what).toBe(false);
      expect(
        refusal(() => {
          assertHomeNotServed(dir);
        }).code,
        what,
      ).toBe('ERR_HOME_INSECURE');
      expect(readdirSync(dir), what).toEqual([SERVICE_NODES_DIR]);
      expect(lstatSync(path).isDirectory(), what).toBe(false);
    }
    expect(kept.map((file) => readFileSync(file, 'utf8'))).toEqual(['kept']);
  });

  it('an `up` and a single-service node starting at the same moment never both run', async () => {
    // Each makes its own mark first and then looks for the other's (`up` links node.lock, then
    // reads the registrations; a single-service node renames its registration in, then reads
    // node.lock): whichever looks second sees the other. Two processes try, round after round,
    // at the same instant of a shared schedule, and hold what they got for a while. Each records
    // the span it held the home on the machine's monotonic clock, which all processes share,
    // taken inside the span it actually held it: two spans that overlap are two nodes running.
    const dir = home();
    const script = `
      import { createInterface } from 'node:readline';
      import { lockNodeHome, registerServiceNode } from ${JSON.stringify(join(import.meta.dirname, 'home-lock.ts'))};
      const [dir, role, rounds, periodMs] = process.argv.slice(1);
      const lines = createInterface({ input: process.stdin });
      process.stdout.write('ready\\n');
      const t0 = Number(await new Promise((resolve) => lines.once('line', resolve)));
      lines.close();
      const spans = [];
      let refused = 0;
      for (let r = 0; r < Number(rounds); r++) {
        const at = t0 + r * Number(periodMs);
        while (Date.now() < at);
        let held;
        try {
          held = role === 'up' ? lockNodeHome(dir) : registerServiceNode(dir);
        } catch (error) {
          if (error.code !== 'ERR_HOME_LOCKED') throw error;
          refused++;
          continue;
        }
        const from = process.hrtime.bigint();
        while (Date.now() < at + Number(periodMs) / 2);
        spans.push([String(from), String(process.hrtime.bigint())]);
        held.release();
      }
      process.stdout.write(JSON.stringify({ spans, refused }) + '\\n');
    `;
    const rounds = 60;
    const run = (role: string) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script, dir, role, `${rounds}`, '20'],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      let out = '';
      const ready = new Promise<void>((resolve) => {
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.startsWith('ready\n')) resolve();
        });
      });
      const done = new Promise<{ spans: [bigint, bigint][]; refused: number }>((resolve, reject) =>
        child.once('exit', (code) => {
          if (code !== 0) {
            reject(new Error(`${role} exited ${String(code)}`));
            return;
          }
          const got = JSON.parse(out.split('\n')[1]!) as { spans: string[][]; refused: number };
          resolve({
            spans: got.spans.map(([from, to]) => [BigInt(from!), BigInt(to!)]),
            refused: got.refused,
          });
        }),
      );
      return { child, ready, done };
    };
    const up = run('up');
    const single = run('single');
    await Promise.all([up.ready, single.ready]);
    const t0 = `${Date.now() + 200}\n`;
    up.child.stdin.end(t0);
    single.child.stdin.end(t0);
    const [ups, singles] = await Promise.all([up.done, single.done]);
    expect(ups.spans.length + ups.refused).toBe(rounds);
    expect(singles.spans.length + singles.refused).toBe(rounds);
    const overlapping = ups.spans.filter(([from, to]) =>
      singles.spans.some(([otherFrom, otherTo]) => from < otherTo && otherFrom < to),
    );
    expect(overlapping).toEqual([]);
    // Not by refusing everything: whichever comes first in a round gets the home.
    expect(ups.spans.length + singles.spans.length).toBeGreaterThan(0);
    expect(existsSync(join(dir, NODE_LOCK_FILE))).toBe(false);
    expect(registrations(dir)).toEqual([]);
  }, 60_000);
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
