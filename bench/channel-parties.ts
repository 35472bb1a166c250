/**
 * Party processes for the channel benchmarks (bench/channel-party.ts runs in each): started with
 * `node --import tsx`, driven over IPC one request at a time.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { WorldKeys } from './channel-world.js';

export type PartyCommand =
  | {
      readonly type: 'receiver';
      readonly keys: WorldKeys;
      readonly messageBytes: number;
      readonly ackEvery: number;
      /** Register at this relay under `name` instead of listening. */
      readonly relay?: { readonly port: number; readonly name: string };
    }
  | { readonly type: 'relay'; readonly keys: WorldKeys }
  /**
   * A peer to compare the channel with: a plain TCP server, or with `tls` a Node TLS 1.3 server,
   * whose every connection counts the bytes it reads and writes one ack byte per `ackEvery`
   * messages of `messageBytes`, the flow control of the channel traffic without a channel.
   */
  | {
      readonly type: 'peer-receiver';
      readonly messageBytes: number;
      readonly ackEvery: number;
      readonly tls?: PeerTls;
    }
  /**
   * The floor of any relay hop: a TCP server whose every connection gets a connection of its own
   * to 127.0.0.1:`targetPort`, the two joined both ways with `socket.pipe` (no parsing at all).
   */
  | { readonly type: 'forwarder'; readonly targetPort: number }
  /** With `memory`, two full collections run after the CPU time is read and before the heap is. */
  | { readonly type: 'usage'; readonly memory: boolean }
  | { readonly type: 'stop' };

/** A TLS server's settings: its key and certificate (PEM) and the one suite it offers. */
export interface PeerTls {
  readonly key: string;
  readonly cert: string;
  /** Node's `ciphers` string: TLS 1.3 suites are named there too (Node has no `ciphersuites`). */
  readonly ciphers: string;
}

export interface PartyUsage {
  /** User + system CPU time of the whole process so far, µs. */
  readonly cpuUs: number;
  readonly heapUsed: number;
  /** Memory of ArrayBuffers and Buffers (outside the V8 heap). */
  readonly arrayBuffers: number;
  readonly rss: number;
  /** Channels open or handshaking at the party's listener. */
  readonly channels: number;
}

export type PartyReply =
  | { readonly type: 'ready'; readonly port: number }
  | ({ readonly type: 'usage' } & PartyUsage)
  | { readonly type: 'stopped' }
  | { readonly type: 'error'; readonly message: string };

/** Profiling aid: e.g. `MANDATE_BENCH_PARTY_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'`. */
const EXTRA_EXEC_ARGV = (process.env.MANDATE_BENCH_PARTY_ARGS ?? '')
  .split(' ')
  .filter((a) => a !== '');
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ENTRY = fileURLToPath(new URL('./channel-party.ts', import.meta.url));

export class PartyProcess {
  readonly #child: ChildProcess;
  #waiting: { resolve: (reply: PartyReply) => void; reject: (error: Error) => void } | undefined;
  #exited = false;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (message: PartyReply) => {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      if (waiting === undefined) return;
      if (message.type === 'error') waiting.reject(new Error(`party: ${message.message}`));
      else waiting.resolve(message);
    });
    child.on('exit', (code) => {
      this.#exited = true;
      this.#waiting?.reject(new Error(`a party process exited (code ${code ?? 'none'})`));
      this.#waiting = undefined;
    });
  }

  static start(): PartyProcess {
    return new PartyProcess(
      fork(ENTRY, [], {
        cwd: ROOT,
        execArgv: ['--import', 'tsx', '--expose-gc', ...EXTRA_EXEC_ARGV],
        serialization: 'advanced',
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
  }

  request(command: PartyCommand): Promise<PartyReply> {
    if (this.#waiting !== undefined) throw new Error('one party request at a time');
    if (this.#exited) return Promise.reject(new Error('the party process has exited'));
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#child.send(command);
    });
  }

  /** Starts the role; resolves with the port it listens on (a receiver behind a relay: the relay's). */
  async start(
    command: Extract<
      PartyCommand,
      { type: 'receiver' } | { type: 'relay' } | { type: 'peer-receiver' } | { type: 'forwarder' }
    >,
  ): Promise<number> {
    const reply = await this.request(command);
    if (reply.type !== 'ready') throw new Error(`party answered ${reply.type}, not ready`);
    return reply.port;
  }

  async usage(memory = false): Promise<PartyUsage> {
    const reply = await this.request({ type: 'usage', memory });
    if (reply.type !== 'usage') throw new Error(`party answered ${reply.type}, not usage`);
    return reply;
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => {
      this.#child.once('exit', () => {
        resolve();
      });
    });
    // A party that does not wind down in time is ended: the benchmark is over either way.
    const timer = setTimeout(() => this.#child.kill(), 10_000);
    try {
      await this.request({ type: 'stop' });
    } catch {
      this.#child.kill();
    }
    await exited;
    clearTimeout(timer);
  }
}

/** global.gc when node runs with --expose-gc, else the same function exposed at run time. */
export function findGc(): (() => void) | undefined {
  const exposed: unknown = Reflect.get(globalThis, 'gc');
  const fn: unknown = typeof exposed === 'function' ? exposed : exposeGcNow();
  if (typeof fn !== 'function') return undefined;
  return () => {
    Reflect.apply(fn, undefined, []);
  };
}

function exposeGcNow(): unknown {
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc');
  } catch {
    return undefined;
  }
}
