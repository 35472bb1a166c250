import { conflict, unavailable } from '../core/internal.js';
import { MandateError } from '../core/index.js';
import { TransportType, type Address } from './address.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from './envelope.js';
import type { ConnectionHandle, Router, Transport } from './router.js';
import { createSeededPrng } from './seeded-prng.js';

/** Where MemoryTransports find each other by listener name; one per test. */
export class MemoryNetwork {
  readonly listeners = new Map<string, MemoryTransport>();
}

/**
 * Test-only fault injection: each envelope a transport sends is dropped with `dropRate`, else
 * delivered twice with `duplicateRate`, and held back behind the next one with `reorderRate`.
 * Decisions come from a seeded xorshift generator, so a seed replays the same faults.
 */
export interface FaultOptions {
  readonly seed: number;
  readonly dropRate?: number;
  readonly duplicateRate?: number;
  readonly reorderRate?: number;
}

/**
 * Options of {@link MemoryTransport}: `faults` makes it drop, duplicate and reorder envelopes
 * (seeded, so a seed replays the same faults), for testing code over a lossy network.
 */
export interface MemoryTransportOptions {
  readonly faults?: FaultOptions;
}

/**
 * What a {@link MemoryTransport} with faults has done so far.
 */
export interface FaultStats {
  sent: number;
  dropped: number;
  duplicated: number;
  reordered: number;
}

/** One direction of a link: the far end's handle and the envelope held back for reordering. */
interface Direction {
  target: ConnectionHandle | undefined;
  held: Uint8Array | undefined;
}

interface Link {
  closed: boolean;
  readonly ends: ConnectionHandle[];
}

interface Outgoing {
  readonly id: string;
  readonly link: Link;
  readonly direction: Direction;
}

const closedError = (): MandateError =>
  unavailable('ERR_TRANSPORT_CLOSED', 'memory connection is closed');

/**
 * Connects routers in one process. Envelopes are encoded on send and decoded on arrival, so the
 * codec runs as over a network and no bytes are shared; delivery is asynchronous and in order
 * (unless faults are configured).
 */
export class MemoryTransport implements Transport {
  readonly type = TransportType.memory;
  readonly stats: FaultStats = { sent: 0, dropped: 0, duplicated: 0, reordered: 0 };
  readonly #router: Router;
  readonly #network: MemoryNetwork;
  readonly #faults: FaultOptions | undefined;
  readonly #random: (() => number) | undefined;
  readonly #outgoing = new Map<string, Outgoing>();
  readonly #links = new Set<Link>();
  readonly #names = new Set<string>();
  #closed = false;

  constructor(router: Router, network: MemoryNetwork, options: MemoryTransportOptions = {}) {
    this.#router = router;
    this.#network = network;
    this.#faults = options.faults;
    this.#random = options.faults === undefined ? undefined : createSeededPrng(options.faults.seed);
    router.registerTransport(this);
  }

  /** Makes this router reachable at `/memory/NAME`. */
  listen(name: string): Address {
    if (this.#closed) throw closedError();
    if (this.#network.listeners.has(name)) {
      throw conflict('ERR_TRANSPORT_EXISTS', `memory listener \`${name}\` already exists`);
    }
    this.#network.listeners.set(name, this);
    this.#names.add(name);
    return { type: TransportType.memory, value: name };
  }

  /** The id (on this router) of the connection to listener `name`, made on first use. */
  connect(name: string): string {
    if (this.#closed) throw closedError();
    return this.#connectLink(name).id;
  }

  #connectLink(name: string): Outgoing {
    if (this.#closed) throw closedError();
    const existing = this.#outgoing.get(name);
    if (existing !== undefined && !existing.link.closed) return existing;
    const peer = this.#network.listeners.get(name);
    if (peer === undefined || peer.#closed) {
      throw unavailable('ERR_TRANSPORT_UNREACHABLE', `no memory listener \`${name}\``);
    }
    const link: Link = { closed: false, ends: [] };
    const toPeer: Direction = { target: undefined, held: undefined };
    const toUs: Direction = { target: undefined, held: undefined };
    const ours = this.#router.attachConnection('memory', {
      send: (envelope) =>
        Promise.resolve().then(() => {
          this.#transmit(link, toPeer, envelope);
        }),
    });
    const theirs = peer.#router.attachConnection('memory', {
      send: (envelope) =>
        Promise.resolve().then(() => {
          peer.#transmit(link, toUs, envelope);
        }),
    });
    toPeer.target = theirs;
    toUs.target = ours;
    link.ends.push(ours, theirs);
    this.#links.add(link);
    peer.#links.add(link);
    const outgoing: Outgoing = { id: ours.id, link, direction: toPeer };
    this.#outgoing.set(name, outgoing);
    return outgoing;
  }

  async send(address: Address, envelope: Envelope): Promise<void> {
    const { link, direction } = this.#connectLink(address.value);
    await Promise.resolve();
    this.#transmit(link, direction, envelope);
  }

  #transmit(link: Link, direction: Direction, envelope: Envelope): void {
    if (link.closed || this.#closed) throw closedError();
    const bytes = encodeEnvelope(envelope);
    this.stats.sent++;
    const random = this.#random;
    const faults = this.#faults;
    if (random === undefined || faults === undefined) {
      this.#deliver(link, direction, bytes);
      return;
    }
    if (random() < (faults.dropRate ?? 0)) {
      this.stats.dropped++;
      return;
    }
    const copies = random() < (faults.duplicateRate ?? 0) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    if (direction.held === undefined && random() < (faults.reorderRate ?? 0)) {
      this.stats.reordered++;
      direction.held = bytes;
      // Released behind the next envelope, or on the next turn if none comes.
      setImmediate(() => {
        this.#release(link, direction);
      });
      if (copies === 2) this.#deliver(link, direction, bytes);
      return;
    }
    for (let i = 0; i < copies; i++) this.#deliver(link, direction, bytes);
    this.#release(link, direction);
  }

  #release(link: Link, direction: Direction): void {
    const held = direction.held;
    direction.held = undefined;
    if (held !== undefined) this.#deliver(link, direction, held);
  }

  #deliver(link: Link, direction: Direction, bytes: Uint8Array): void {
    const copy = bytes.slice();
    queueMicrotask(() => {
      const target = direction.target;
      if (link.closed || target === undefined) return;
      let envelope: Envelope;
      try {
        envelope = decodeEnvelope(copy);
      } catch {
        return;
      }
      // A test transport: a full mailbox does not hold it (it has no reading to stop).
      void target.receive(envelope);
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    for (const name of this.#names) this.#network.listeners.delete(name);
    this.#names.clear();
    for (const link of this.#links) {
      link.closed = true;
      for (const end of link.ends) end.detach();
    }
    this.#links.clear();
    this.#outgoing.clear();
    return Promise.resolve();
  }
}
