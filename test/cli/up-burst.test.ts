// `mandate up` stopped by SIGTERM in the middle of a burst of tool calls (issue 14, "Bad input
// and faults"): real processes throughout — the node with the MCP gateway in front of the
// reference filesystem server, two unmodified MCP clients each launching `mandate mcp connect`.
// Nothing the gateway acknowledged may be lost: every call answered is in the home's log with its
// invocation, its allow decision and its outcome, the log verifies offline under the checkpoint
// the node signed as it stopped, and the calls the node never answered fail at the client with a
// clear error instead of hanging.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { jsonDigest } from '../../src/audit/index.js';
import { killChildren, startMandate } from '../helpers/processes.js';
import { CliHome, closeMcpClients, connectMcpCli } from '../helpers/mcp-cli.js';
import { metaOf, textOf } from '../helpers/mcp-world.js';

afterEach(async () => {
  await closeMcpClients();
  await killChildren();
});

/** Calls in the burst, over all agents. */
const CALLS = 200;
/** Agents, each its own `mcp connect` process (its own secure channel and session). */
const AGENTS = 2;
/** Calls each agent keeps in flight. */
const CONCURRENCY = 12;
/** SIGTERM goes to the node once this many calls were answered. */
const ANSWERED_BEFORE_SIGTERM = 40;
/** Bound on one call at the client: a call the node never answers must not hang past it. */
const CALL_TIMEOUT_MS = 30_000;
/** How long the node may take from SIGTERM to its exit (its stop is bounded by 10 s). */
const EXIT_TIMEOUT_MS = 30_000;

interface Call {
  readonly n: number;
  readonly tool: 'read_text_file' | 'list_directory';
  readonly args: { path: string };
  /** What a successful answer holds. */
  readonly expected: string;
}

/** What became of one call at the client. */
type Settled =
  | { readonly call: Call; readonly answered: CallToolResult }
  | { readonly call: Call; readonly failed: unknown };

interface LoggedCall {
  readonly invocation: string;
  readonly agent: string;
  readonly tool: string;
  readonly argumentsDigest: string;
  readonly decision: { readonly decision: string } | null;
  readonly outcome: { readonly status: string; readonly error: string | null } | null;
  readonly covered: boolean | null;
}

describe('mandate up: SIGTERM during a burst of calls', () => {
  it('loses nothing it acknowledged: every answered call is logged, the log verifies, the rest fail fast', async () => {
    const h = new CliHome('mandate-up-burst');
    // One file or folder per call, so each call's arguments (and answer) are its own.
    const files = mkdtempSync(join(tmpdir(), 'mandate-up-burst-files-'));
    const calls: Call[] = [];
    for (let n = 0; n < CALLS; n++) {
      if (n % 4 === 3) {
        const dir = join(files, 'allowed', `d${n}`);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, `in-${n}.txt`), '');
        calls.push({ n, tool: 'list_directory', args: { path: dir }, expected: `in-${n}.txt` });
      } else {
        const file = join(files, 'allowed', `f${n}.txt`);
        mkdirSync(join(files, 'allowed'), { recursive: true });
        writeFileSync(file, `contents of call ${n}`);
        calls.push({ n, tool: 'read_text_file', args: { path: file }, expected: `call ${n}` });
      }
    }
    const nodeConfig = h.path('node.json');
    writeFileSync(
      nodeConfig,
      JSON.stringify({ gateway: { config: h.writeFsGatewayConfig(files) } }),
    );

    // A fresh home: `up` sets up the authority, which also runs the gateway (its identity signs
    // the decisions: `audit verify`'s default enforcement point).
    const node = startMandate(h.dir, 'up', '--config', nodeConfig);
    await node.waitFor(/ up services=authority,relay,gateway,admin /, 120_000);
    const authority = /up: created the authority name=authority identifier=(I[0-9a-f]{64})/.exec(
      node.stderr(),
    )![1]!;
    const route = / listening address=\S+ route=(\S+)/.exec(node.stderr())![1]!;

    // The operator, beside the running node: a person, her agents, the signed catalog and policy.
    await h.ok('identity', 'create', '--name', 'dana');
    const tools = 'tools=read_text_file,list_directory,list_allowed_directories';
    await h.ok(
      'credential',
      'issue',
      '--to',
      'dana',
      '--attr',
      tools,
      '--attr',
      'human=true',
      '--out',
      h.path('dana.chain'),
    );
    const agents = Array.from({ length: AGENTS }, (_, i) => `agent-${i}`);
    for (const name of agents) {
      await h.ok('identity', 'create', '--name', name);
      await h.ok(
        'delegate',
        '--chain',
        h.path('dana.chain'),
        '--from',
        'dana',
        '--to',
        name,
        '--constraint',
        tools,
        '--constraint',
        `read_text_file#path=${files}/allowed/**`,
        '--purpose',
        'the burst',
        '--out',
        h.path(`${name}.chain`),
      );
    }
    await h.publishFsCatalog(files);

    const clients: Client[] = [];
    for (const name of agents) {
      const { client, log } = await connectMcpCli(h.dir, route, [
        '--identity',
        name,
        '--credential',
        h.path(`${name}.chain`),
        '--gateway',
        authority,
      ]);
      // The node follows the home's bundles: the tools appear once it has read the one published.
      await expect
        .poll(async () => (await client.listTools()).tools.map((t) => t.name), {
          timeout: 30_000,
          interval: 250,
        })
        .toContain('read_text_file');
      expect(log()).toContain('mcp connected');
      clients.push(client);
    }

    // The burst: each agent's share of the calls, CONCURRENCY of them in flight at a time; SIGTERM
    // once ANSWERED_BEFORE_SIGTERM have been answered, the workers still sending.
    let answered = 0;
    let signalledAt: number | undefined;
    const settled: Settled[] = [];
    const burst = clients.map(async (client, a) => {
      const queue = calls.filter((c) => c.n % AGENTS === a);
      const worker = async () => {
        for (let call = queue.shift(); call !== undefined; call = queue.shift()) {
          try {
            const result = (await client.callTool(
              { name: call.tool, arguments: call.args },
              undefined,
              { timeout: CALL_TIMEOUT_MS },
            )) as CallToolResult;
            settled.push({ call, answered: result });
            if (++answered === ANSWERED_BEFORE_SIGTERM) {
              signalledAt = Date.now();
              node.child.kill('SIGTERM');
            }
          } catch (error) {
            settled.push({ call, failed: error });
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    });
    await Promise.all(burst);
    expect(signalledAt, 'SIGTERM was sent').toBeDefined();
    const settledIn = Date.now() - signalledAt!;
    // The node's own bound on its stop is 10 s (`shutdownTimeoutMs`); its exit is awaited a while
    // longer, so a process that outlives its stop fails here rather than at the test's timeout.
    const code = await Promise.race([
      node.exited,
      new Promise<never>((_, reject) =>
        setTimeout(() => {
          reject(new Error(`the node did not exit after SIGTERM; stderr:\n${node.stderr()}`));
        }, EXIT_TIMEOUT_MS).unref(),
      ),
    ]);

    // A clean stop within the node's bound (past it, ERR_NODE_STOP_TIMEOUT and exit 9).
    expect(code, node.stderr()).toBe(0);
    expect(node.stderr()).toMatch(/stopping signal=SIGTERM/);
    expect(node.stderr()).toMatch(/ stopped\n$/);
    expect(node.stderr()).not.toMatch(
      /ERR_NODE_STOP_TIMEOUT|outcome not logged|stopping a part failed/,
    );
    // Every call settled, none by the client's own timeout: the node's going away is seen.
    expect(settled).toHaveLength(CALLS);
    expect(settledIn).toBeLessThan(CALL_TIMEOUT_MS);

    const acknowledged = settled.filter(
      (s): s is Extract<Settled, { answered: CallToolResult }> =>
        'answered' in s && s.answered.isError !== true,
    );
    // An answer that is not a success still names its invocation when the gateway decided it.
    const otherAnswers = settled.filter(
      (s): s is Extract<Settled, { answered: CallToolResult }> =>
        'answered' in s && s.answered.isError === true,
    );
    const failures = settled.filter(
      (s): s is Extract<Settled, { failed: unknown }> => 'failed' in s,
    );
    expect(acknowledged.length).toBeGreaterThanOrEqual(ANSWERED_BEFORE_SIGTERM);
    expect(failures.length, 'calls left when the node went away').toBeGreaterThan(0);
    for (const { call, answered: result } of acknowledged) {
      expect(textOf(result)).toContain(call.expected);
      expect(metaOf(result)).toMatchObject({ decision: 'allow', code: 'OK' });
    }
    // The node's going away, said plainly: the connection closed (or was already gone).
    for (const { failed } of failures) {
      if (failed instanceof McpError) {
        expect(failed.code, failed.message).not.toBe(ErrorCode.RequestTimeout);
        expect(failed.code, failed.message).toBe(ErrorCode.ConnectionClosed);
      } else expect(String(failed)).toMatch(/Not connected|Connection closed/);
    }

    // The trail, offline: it verifies under the checkpoint the node signed as it stopped (no
    // `audit checkpoint` here: a record past it would be ERR_AUDIT_RECORDS_UNCOVERED).
    const verified = await h.ok<{ ok: boolean; records: number }>('audit', 'verify');
    expect(verified.ok).toBe(true);
    const { calls: logged } = await h.ok<{ calls: LoggedCall[] }>(
      'audit',
      'query',
      '--limit',
      '100000',
    );
    const byInvocation = new Map(logged.map((c) => [c.invocation, c]));
    // Every call answered with a success: its invocation, allow decision and outcome, as called.
    for (const { call, answered: result } of acknowledged) {
      const invocation = metaOf(result)?.invocation;
      const entry = invocation === undefined ? undefined : byInvocation.get(invocation);
      expect(entry, `call ${call.n} answered but not in the log`).toBeDefined();
      expect(entry).toMatchObject({
        tool: call.tool,
        argumentsDigest: jsonDigest(call.args),
        decision: { decision: 'allow' },
        outcome: { status: 'ok' },
        covered: true,
      });
    }
    // Every other answer that names an invocation names one the log holds, decided.
    for (const { call, answered: result } of otherAnswers) {
      const invocation = metaOf(result)?.invocation;
      if (invocation === undefined) continue;
      expect(byInvocation.get(invocation), `call ${call.n}`).toMatchObject({
        tool: call.tool,
        argumentsDigest: jsonDigest(call.args),
      });
    }
    // Nothing half-written: each logged call has its decision, each allowed one its outcome.
    for (const entry of logged) {
      expect(entry.decision, entry.invocation).not.toBeNull();
      if (entry.decision?.decision === 'allow')
        expect(entry.outcome, entry.invocation).not.toBeNull();
      expect(entry.covered).toBe(true);
    }
    // The log holds no call nobody made: at most one logged call per call of the burst.
    expect(logged.length).toBeLessThanOrEqual(CALLS);
  }, 300_000);
});
