// What the operator's thread (demo-node.ts) and the swarm's (demo-swarm-worker.ts) of `mandate up
// --demo`'s step 19 say to each other: the swarm's input, its messages, its result.
import type { Outcome } from './demo-gateway.js';

/** What the operator (demo-node.ts) hands the swarm. */
export interface SwarmInput {
  readonly demoDir: string;
  readonly route: string;
  /** One-time tickets the operator made: the human's, then one per agent. */
  readonly humanTicket: string;
  readonly agentTickets: readonly string[];
  readonly subAgents: number;
  readonly refunds: number;
  readonly refundAmount: number;
  readonly refundCap: number;
  /** Agents (every so many of the routine ones) that lease a JWT from the node's broker. */
  readonly leases: number;
  /** The audience of those JWTs (a bundle policy permits `Secret::"jwt/AUDIENCE"`). */
  readonly leaseAudience: string;
  /** The scope they ask for (the human's `secret_scopes`). */
  readonly leaseScope: string;
}

/** What the swarm saw of the node. */
export interface SwarmResult {
  readonly agents: number;
  readonly subAgents: number;
  readonly enrollment: { readonly count: number; readonly seconds: number };
  /**
   * Secure channels opened to the node (enrollments, MCP sessions, leases): the mean time from
   * the first handshake message to a verified peer, and handshakes per second of the time with at
   * least one in flight.
   */
  readonly handshakes: {
    readonly count: number;
    readonly meanMs: number;
    readonly perSecond: number;
  };
  readonly calls: {
    readonly count: number;
    readonly seconds: number;
    readonly p50Ms: number;
    readonly p99Ms: number;
  };
  readonly toolsListed: readonly string[];
  readonly decisions: Readonly<Record<string, number>>;
  readonly injected: { readonly refund: Outcome; readonly read: Outcome };
  readonly refunds: { readonly executed: number };
  /** JWT leases the node's broker gave, each over the agent's own secure channel. */
  readonly leases: { readonly count: number; readonly seconds: number };
  readonly revocation: {
    /** The revoked agent's lease, taken before the revocation (the operator checks it ended). */
    readonly leaseId: string;
    readonly before: Outcome;
    readonly nextCall: Outcome;
    readonly subAgentNextCall: Outcome;
    readonly latencyMs: number;
  };
}

/** Swarm → operator. */
export type SwarmMessage =
  | { readonly type: 'say'; readonly text: string }
  | {
      readonly type: 'progress';
      readonly label: string;
      readonly done: number;
      readonly total: number;
    }
  | { readonly type: 'revoke'; readonly identifier: string; readonly leaseId: string }
  | { readonly type: 'done'; readonly result: SwarmResult }
  | { readonly type: 'failed'; readonly message: string };

/** Operator → swarm: the revocation is committed (at this wall-clock time, in ms). */
export type OperatorMessage =
  | { readonly type: 'revoked'; readonly atMs: number }
  | { readonly type: 'revoke-failed'; readonly message: string };
