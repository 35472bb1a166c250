// Lock files in a home, each naming the process that holds it (pid and start time); a lock left
// by a process that is gone is taken over. Two kinds:
//
// `enforcement.lock`: one enforcement point per home at a time. An enforcement point keeps each
// agent's logged head (the hash of its last invocation) in memory and accepts only that head's
// successor; two points over one home's log — two gateways, or `gate call` beside a running
// gateway — would each accept a successor of the same head, and the log would hold a forked
// agent chain that `audit verify` then reports as tampering.
//
// `node.lock`: one whole node (`mandate up`) per home. Two would run two authorities, relays and
// brokers over one database (and `up --demo` would rewrite the demo home under the node serving
// it). A whole node holds its home alone, so a node that runs single services (`node start`,
// `relay start`, …) refuses a home `up` holds, and `up` refuses a home such a node runs on: each
// of those registers itself with a file of its own under `service-nodes/`, naming its process
// the same way. Single-service nodes do not refuse one another (a relay and a member node may
// share a home).
import {
  closeSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import type { ErrorCode } from '../core/index.js';
import { conflict, forbidden } from '../core/internal.js';
import { readRegularFile } from './regular-file.js';

/** The lock file, in the home's folder. */
export const ENFORCEMENT_LOCK_FILE = 'enforcement.lock';

/** The whole node's lock file (`mandate up`), in the home's folder. */
export const NODE_LOCK_FILE = 'node.lock';

/** The demo scenario's lock file (`mandate demo`, `mandate up --demo`), beside `<home>/demo`. */
export const DEMO_LOCK_FILE = 'demo.lock';

/** The folder, in the home's, where each running single-service node has a file naming it. */
export const SERVICE_NODES_DIR = 'service-nodes';

/** One kind of home lock: its file and the error naming a holder. */
interface LockKind {
  readonly file: string;
  busy(homeDir: string, holder: number | undefined): Error;
}

const ENFORCEMENT: LockKind = {
  file: ENFORCEMENT_LOCK_FILE,
  busy: (homeDir, holder) =>
    conflict(
      'ERR_HOME_ENFORCEMENT_BUSY',
      `another enforcement point (a gateway, or \`gate call\`) is running on the home ${homeDir}${heldBy(holder)}: one at a time, so that each agent's invocations stay one chain in the log; stop it first (if no such process runs, remove ${join(homeDir, ENFORCEMENT_LOCK_FILE)})`,
    ),
};

const NODE: LockKind = {
  file: NODE_LOCK_FILE,
  busy: (homeDir, holder) =>
    conflict(
      'ERR_HOME_LOCKED',
      `a node (\`mandate up\`) is running on the home ${homeDir}${heldBy(holder)}: one node per home; stop it first, or use another --home (if no such process runs, remove ${join(homeDir, NODE_LOCK_FILE)})`,
    ),
};

const DEMO: LockKind = {
  file: DEMO_LOCK_FILE,
  busy: (homeDir, holder) =>
    conflict(
      'ERR_HOME_LOCKED',
      `the demo scenario (\`mandate demo\` or \`mandate up --demo\`) is running in ${join(homeDir, 'demo')}${heldBy(holder)}: it recreates that folder, one run at a time; wait for it or stop it first (if no such process runs, remove ${join(homeDir, DEMO_LOCK_FILE)})`,
    ),
};

const heldBy = (holder: number | undefined): string =>
  holder === undefined ? '' : ` in process ${holder}`;

const serviceNodeBusy = (homeDir: string, holder: Holder, file: string): Error =>
  conflict(
    'ERR_HOME_LOCKED',
    `a single-service node (\`node start\`, \`relay start\`, \`authority start\`, \`broker start\`, \`gateway start\` or \`dashboard\`) is running on the home ${homeDir}${heldBy(holder.pid)}: \`up\` holds a home alone, and \`mandate demo\` recreates it; stop it first, or use another --home (if no such process runs, remove ${file})`,
  );

/** A held home lock. */
export interface HomeLock {
  /** Gives the lock up (idempotent; leaves a lock another process took over alone). */
  release(): void;
}

/**
 * Takes the home's enforcement lock for this process, or throws `ERR_HOME_ENFORCEMENT_BUSY`
 * naming the process that holds it (another process alive, or this one through another
 * enforcement point).
 */
export function lockEnforcement(homeDir: string): HomeLock {
  return lockHome(homeDir, ENFORCEMENT);
}

/**
 * Takes the home's node lock for this process (a whole node, `mandate up`), or throws
 * `ERR_HOME_LOCKED` naming the process that holds it, or a single-service node running there.
 */
export function lockNodeHome(homeDir: string): HomeLock {
  const lock = lockHome(homeDir, NODE);
  // The lock first, then the registrations (registerServiceNode does the reverse): of an `up`
  // and a single-service node starting at once, whichever looks second sees the other, so they
  // never both run (both may refuse).
  try {
    assertNoServiceNode(homeDir);
  } catch (error) {
    lock.release();
    throw error;
  }
  return lock;
}

/**
 * Takes the home's demo lock for this process (`mandate demo`, `up --demo`: the run that
 * recreates `<home>/demo`, held for the whole run), or throws `ERR_HOME_LOCKED` naming the
 * process that holds it. The lock lies beside the folder it guards, which the run wipes.
 */
export function lockDemo(homeDir: string): HomeLock {
  return lockHome(homeDir, DEMO);
}

/** Registrations this process has made: with its pid and the time, a name of its own. */
let registrations = 0;

/**
 * Registers this process as a single-service node on the home (`node start`, `relay start`, …)
 * until released, so that a whole node (`up`) is refused there meanwhile; throws
 * `ERR_HOME_LOCKED` when a whole node holds the home already, `ERR_HOME_INSECURE` when the
 * home's `service-nodes` is there but not a folder. Any number may be registered at once.
 * Creates the home's folder (0700) when it is not there yet.
 */
export function registerServiceNode(homeDir: string): HomeLock {
  mkdirSync(homeDir, { recursive: true, mode: 0o700 });
  const dir = join(homeDir, SERVICE_NODES_DIR);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  // Looked at even when made just now: what was there already must be a folder (a file made
  // mkdir fail with EEXIST, a link to a folder elsewhere let it pass).
  serviceNodesFolderIsThere(homeDir);
  const name = `${process.pid}.${Date.now()}.${++registrations}`;
  const path = join(dir, name);
  // Written beside the folder, then renamed in: a reader never sees it half written.
  const own = join(homeDir, `${SERVICE_NODES_DIR}.${name}`);
  writeOwnHolder(own);
  try {
    renameSync(own, path);
  } catch (error) {
    removeQuietly(own);
    throw error;
  }
  const registration: HomeLock = {
    release: () => {
      removeQuietly(path);
    },
  };
  try {
    assertFree(homeDir, NODE);
  } catch (error) {
    registration.release();
    throw error;
  }
  return registration;
}

/**
 * Throws `ERR_HOME_LOCKED` when a node serves the home: a whole node (another live process, or
 * this one), or a single-service node (`ERR_HOME_INSECURE` when the home's `service-nodes` is
 * not a folder). What `mandate demo` checks before it recreates a home.
 */
export function assertHomeNotServed(homeDir: string): void {
  assertFree(homeDir, NODE);
  assertNoServiceNode(homeDir);
}

/** Throws `ERR_HOME_LOCKED` naming a registered single-service node of the home that still runs. */
function assertNoServiceNode(homeDir: string): void {
  const serviceNode = liveServiceNode(homeDir);
  if (serviceNode !== undefined)
    throw serviceNodeBusy(homeDir, serviceNode.holder, serviceNode.path);
}

/**
 * Whether the home's `service-nodes` is there (false: none ever registered); throws
 * `ERR_HOME_INSECURE` when it is there but not a folder. Looked at with lstat: a link to a folder
 * elsewhere is refused too, since the registrations `up` goes by would then be whatever that
 * folder holds (this home's hidden, or a folder too large to read), and what names no process
 * there would be removed as stale: another folder's files.
 */
function serviceNodesFolderIsThere(homeDir: string): boolean {
  const dir = join(homeDir, SERVICE_NODES_DIR);
  let stat: Stats;
  try {
    stat = lstatSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  if (stat.isDirectory()) return true;
  throw forbidden(
    'ERR_HOME_INSECURE',
    `the home's \`${dir}\` is ${fileKind(stat)}, not a folder: single-service nodes register there so that \`up\` does not run beside them, and a home's registrations must be in the home; remove it (the next single-service node makes the folder again)`,
  );
}

const fileKind = (stat: Stats): string =>
  stat.isSymbolicLink()
    ? 'a symbolic link'
    : stat.isFile()
      ? 'a file'
      : stat.isFIFO()
        ? 'a named pipe'
        : 'a special file';

/**
 * A registered single-service node of the home that still runs, if any; throws
 * `ERR_HOME_INSECURE` when `service-nodes` is not a folder. Registrations left by processes that
 * are gone (or naming nobody, or not regular files) are removed on the way.
 */
function liveServiceNode(homeDir: string): { holder: Holder; path: string } | undefined {
  if (!serviceNodesFolderIsThere(homeDir)) return undefined;
  const dir = join(homeDir, SERVICE_NODES_DIR);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    // Removed since: none registered. Anything else (unreadable) must not pass for none.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  for (const name of names) {
    const path = join(dir, name);
    const holder = holderOf(path);
    if (holder !== undefined && running(holder)) return { holder, path };
    removeQuietly(path);
  }
  return undefined;
}

/** A new file at `path` naming this process (pid and start time), as a lock or registration holds it. */
function writeOwnHolder(path: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, OWN.start === undefined ? `${OWN.pid}\n` : `${OWN.pid} ${OWN.start}\n`);
  } finally {
    closeSync(fd);
  }
}

function lockHome(homeDir: string, kind: LockKind): HomeLock {
  // A home not made yet is made here (0700), as the commands that open it would: its lock is the
  // first thing written there (`mandate demo` on a new home failed with ENOENT).
  mkdirSync(homeDir, { recursive: true, mode: 0o700 });
  const path = join(homeDir, kind.file);
  // The lock appears whole: written to a file of this process's own, then linked into place
  // (which fails when one is there), so no reader ever sees it half written.
  const own = `${path}.${process.pid}.${Date.now()}`;
  writeOwnHolder(own);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(own, path);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const holder = holderOf(path);
        if (attempt >= 2 || (holder !== undefined && running(holder))) {
          // Naming nobody and not removable: a folder (or the like) in the lock's place.
          if (holder === undefined) notALockFile(path, kind.busy(homeDir, undefined));
          throw kind.busy(homeDir, holder?.pid);
        }
        // Left by a process that is gone: taken over, if it still names that process now.
        if (sameHolder(holderOf(path), holder)) removeQuietly(path);
      }
    }
  } finally {
    removeQuietly(own);
  }
  let released = false;
  return {
    release: () => {
      if (released) return;
      released = true;
      if (sameHolder(holderOf(path), OWN)) removeQuietly(path);
    },
  };
}

/**
 * Throws when `path`, in a lock's place, is not a file (a folder, say): no process holds it, so
 * the busy message would mislead — `busy` gives the error's code.
 */
function notALockFile(path: string, busy: Error): void {
  let stats: Stats;
  try {
    stats = lstatSync(path);
  } catch {
    return;
  }
  if (stats.isFile()) return;
  const what = stats.isDirectory()
    ? 'a folder'
    : stats.isSymbolicLink()
      ? 'a symbolic link'
      : 'not a regular file';
  throw conflict(
    (busy as Error & { code: ErrorCode }).code,
    `${path} is ${what}, not a lock file: no process holds it, but nothing can take the lock while it is there; remove it (\`rm -r ${path}\`) and try again`,
  );
}

/** A lock's holder: a process id and, where the system tells it, that process's start time. */
interface Holder {
  readonly pid: number;
  readonly start: string | undefined;
}

/**
 * The start time of process `pid` (Linux: field 22 of /proc/PID/stat, clock ticks since boot),
 * undefined where there is none to read. With the pid it names one process: a pid reused by
 * another process, or this process's own pid in a container restarted after a kill (pid 1 again),
 * is not the holder.
 */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const field = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return field !== undefined && /^[0-9]+$/.test(field) ? field : undefined;
  } catch {
    return undefined;
  }
}

const OWN: Holder = { pid: process.pid, start: startTimeOf(process.pid) };

/**
 * A lock or registration file is `PID START\n`, at most 32 bytes: read no further than this, so a
 * huge file in its place (or one that never ends, in /proc) costs nothing.
 */
const MAX_HOLDER_FILE_BYTES = 64;

/**
 * The holder a lock file names, undefined when it names none: gone, unreadable, too large, or
 * not a regular file — a symbolic link is not followed (it may name a FIFO, a device, /proc,
 * another process's lock), and a FIFO is never waited on.
 */
function holderOf(path: string): Holder | undefined {
  let text: string;
  try {
    const read = readRegularFile(path, MAX_HOLDER_FILE_BYTES, { noFollow: true });
    if (!('bytes' in read)) return undefined;
    text = read.bytes.toString('utf8');
  } catch {
    return undefined;
  }
  const match = /^([1-9][0-9]{0,9})(?: ([0-9]+))?\n?$/.exec(text);
  if (match === null) return undefined;
  const pid = Number(match[1]);
  return Number.isSafeInteger(pid) ? { pid, start: match[2] } : undefined;
}

/** The same holder, or both none (a lock that names nobody). */
const sameHolder = (a: Holder | undefined, b: Holder | undefined): boolean =>
  a === undefined || b === undefined ? a === b : a.pid === b.pid && a.start === b.start;

/**
 * Whether the holder still runs: this process when the lock names it (pid and start time), or
 * another live process with that pid and, where both are known, that start time.
 */
function running(holder: Holder): boolean {
  if (holder.pid === OWN.pid) return holder.start === OWN.start;
  if (!alive(holder.pid)) return false;
  const start = startTimeOf(holder.pid);
  return holder.start === undefined || start === undefined || start === holder.start;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Gone already.
  }
}

/**
 * Throws `ERR_HOME_ENFORCEMENT_BUSY` when a running enforcement point (another live process, or
 * this one) holds the home's lock: what a one-off enforcement (`gate call`, whose whole decision
 * is one SQLite transaction reading the stored heads) checks instead of taking the lock, so that
 * such calls still run side by side while a gateway's calls would fork.
 */
export function assertNoEnforcementLock(homeDir: string): void {
  assertFree(homeDir, ENFORCEMENT);
}

function assertFree(homeDir: string, kind: LockKind): void {
  const holder = holderOf(join(homeDir, kind.file));
  if (holder !== undefined && running(holder)) throw kind.busy(homeDir, holder.pid);
}
