// Approvals through MCP elicitation: the gateway asks the person behind the agent's client (the
// SDK Client declaring elicitation, through the channel transport with a human approver), and the
// call goes through only on a signed approval record by a human the gate's authorities vouch for,
// bound to the call's argument digest — verified exactly like one given out of band.
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  ElicitRequestSchema,
  type ElicitRequest,
  type ElicitResult,
} from '@modelcontextprotocol/sdk/types.js';
import { ManualClock } from '../../src/core/index.js';
import { Identities, MemoryIdentityRepository, Purpose } from '../../src/identity/index.js';
import {
  ChainVerifier,
  chainFromCredential,
  constraintsToAttributes,
  issueCredential,
  parseConstraint,
  type CredentialIssuer,
} from '../../src/credentials/index.js';
import { answerApproval, signApprovalAnswer } from '../../src/gates/index.js';
import {
  APPROVAL_ANSWER_META_KEY,
  APPROVAL_REQUEST_META_KEY,
  APPROVER_CAPABILITY,
  approvalSigner,
  type ElicitedApproval,
} from '../../src/mcp/index.js';
import {
  mcpWorld,
  metaOf,
  SHOP_POLICIES,
  TEST_SERVER_COMMAND,
  textOf,
} from '../helpers/mcp-world.js';

type World = Awaited<ReturnType<typeof mcpWorld>>;
const worlds: World[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close();
});

type Handler = (request: ElicitRequest) => ElicitResult | Promise<ElicitResult>;

async function shop(gateway: Parameters<typeof mcpWorld>[0] = {}) {
  const w = await mcpWorld({
    servers: {
      shop: { command: TEST_SERVER_COMMAND.command, args: [...TEST_SERVER_COMMAND.args, 'shop'] },
    },
    policies: SHOP_POLICIES,
    ...gateway,
  });
  worlds.push(w);
  const agent = await w.agent('sub-a', ['tools=refund,refunds_done', 'refund#amount<=400']);
  const dana = approvalSigner({
    approver: w.danaChain,
    signer: w.dana.issuer,
    vault: w.vault,
    clock: w.clock,
  });
  /**
   * An SDK Client declaring elicitation, answering with `handler`; what it was shown is kept.
   * `approver`: the human signing on the transport (default dana), none, or `forge`: none, and
   * the client declares the approver capability itself and answers as it likes (a compromised
   * agent speaking to the gateway directly).
   */
  const connect = async (
    handler: Handler | undefined,
    approver: ReturnType<typeof approvalSigner> | 'forge' | null = dana,
  ) => {
    const shown: ElicitRequest[] = [];
    const client = new Client(
      { name: 'ide', version: '1' },
      handler === undefined
        ? {}
        : {
            capabilities: {
              elicitation: {},
              ...(approver === 'forge' ? { experimental: { [APPROVER_CAPABILITY]: {} } } : {}),
            },
          },
    );
    if (handler !== undefined)
      client.setRequestHandler(ElicitRequestSchema, async (request) => {
        shown.push(request);
        return handler(request);
      });
    const { client: connected } = await w.connect(agent, {
      client,
      ...(approver === null || approver === 'forge' ? {} : { approver }),
    });
    const refund = (order: string, amount: number) =>
      connected.callTool({ name: 'refund', arguments: { order, amount } });
    const done = async () =>
      textOf(await connected.callTool({ name: 'refunds_done', arguments: {} }));
    return { client: connected, shown, refund, done };
  };
  return { w, agent, dana, connect };
}

describe('approvals through MCP elicitation', () => {
  it('a person accepts: the approval is signed by the human, bound to the call, and the call runs once', async () => {
    const { w, agent, connect } = await shop();
    const { shown, refund, done } = await connect(() => ({
      action: 'accept',
      content: { reason: 'the customer called' },
    }));
    expect(textOf(await refund('o-1', 300))).toBe('refunded 300 on o-1');
    expect(shown).toHaveLength(1);
    const message = shown[0]!.params.message;
    // What the person saw: the tool, its server, the arguments, the @approval text, the id; no policy ids.
    expect(message).toContain('tool: refund (server shop)');
    expect(message).toContain('arguments: {"amount":300,"order":"o-1"}');
    expect(message).toContain('why: refunds above 100 need a person');
    expect(message).not.toContain('refund-large');
    const [record] = await w.approvals.list();
    expect(message).toContain(`approval id: ${record!.id}`);
    expect(record).toMatchObject({
      status: 'used',
      agent: agent.identity.identifier,
      answer: {
        approver: w.dana.identity.identifier,
        decision: 'approve',
        reason: 'the customer called',
      },
    });
    // Single use: the same call again needs a person again (a new request, asked again).
    expect(textOf(await refund('o-1', 300))).toBe('refunded 300 on o-1');
    expect(shown).toHaveLength(2);
    expect(await done()).toBe('o-1:300,o-1:300');
    // The trail: escalation, then the call with the human's approval and its trace record.
    const decisions = (await w.log.readEntries(0, w.log.size))
      .map((e) => JSON.parse(new TextDecoder().decode(e.record)) as Record<string, unknown>)
      .filter((r) => r['type'] === 'mandate/decision/v1')
      .map((r) => [r['decision'], (r['approval'] as { approver?: string } | null)?.approver]);
    expect(decisions.slice(0, 2)).toEqual([
      ['approval_required', undefined],
      ['allow', w.dana.identity.identifier],
    ]);
  });

  it('a person declines: a signed denial, the call is denied and never reaches the server', async () => {
    const { connect } = await shop();
    const { refund, done } = await connect(() => ({ action: 'decline' }));
    expect(metaOf(await refund('o-1', 300))).toMatchObject({
      decision: 'deny',
      code: 'ERR_APPROVAL_DENIED',
      lock: 'approval',
    });
    expect(await done()).toBe('');
  });

  it('cancel, a timeout, or a client without elicitation: the approval stays out of band', async () => {
    const { w, connect } = await shop({ gateway: { approvalTimeoutMs: 300 } });
    const cancelled = await connect(() => ({ action: 'cancel' }));
    const waiting = metaOf(await cancelled.refund('o-1', 300));
    expect(waiting).toMatchObject({
      decision: 'approval_required',
      code: 'ERR_MCP_APPROVAL_REQUIRED',
      elicitation: { action: 'cancel' },
    });
    // Out of band still works: Dana approves with `mandate approvals approve`'s function.
    await answerApproval(w.approvals, {
      id: waiting!.approval!,
      decision: 'approve',
      reason: 'checked',
      approver: w.danaChain,
      signer: w.dana.issuer,
      vault: w.vault,
      nowSeconds: w.clock.nowSeconds(),
    });
    expect(textOf(await cancelled.refund('o-1', 300))).toBe('refunded 300 on o-1');

    // A person who never answers: the elicitation times out, the call is answered.
    const silent = await connect(() => new Promise<never>(() => undefined));
    expect(metaOf(await silent.refund('o-2', 200))).toMatchObject({
      decision: 'approval_required',
      elicitation: { action: 'timeout' },
    });
    // No elicitation capability: nothing is asked.
    const plain = await connect(undefined);
    const plainMeta = metaOf(await plain.refund('o-3', 200));
    expect(plainMeta?.decision).toBe('approval_required');
    expect(plainMeta?.elicitation).toBeUndefined();
    // Elicitation but no approver on the agent's side: nothing is asked either.
    const noApprover = await connect(() => ({ action: 'accept' }), null);
    const noApproverMeta = metaOf(await noApprover.refund('o-4', 200));
    expect(noApproverMeta?.elicitation).toBeUndefined();
    expect(noApprover.shown).toHaveLength(0);
    // (The last session of this agent to sign asks: its head is the gateway's.)
    expect(await noApprover.done()).toBe('o-1:300');
  });

  it("an accept from the agent's own client approves nothing: unsigned, self-signed, another call's, or an untrusted human", async () => {
    const { w, agent, connect } = await shop();
    const requestOf = (r: ElicitRequest) =>
      (r.params._meta as Record<string, unknown>)[APPROVAL_REQUEST_META_KEY] as ElicitedApproval;
    const cases: [string, (request: ElicitedApproval) => Promise<unknown>, string][] = [
      ['unsigned', () => Promise.resolve(undefined), 'ERR_MCP_APPROVAL_UNSIGNED'],
      [
        'dana signs other arguments',
        (request) =>
          signApprovalAnswer(
            { ...request, argumentsDigest: 'ab'.repeat(32) },
            {
              decision: 'approve',
              reason: 'altered',
              approver: w.danaChain,
              signer: w.dana.issuer,
              vault: w.vault,
              nowSeconds: w.clock.nowSeconds(),
            },
          ),
        'ERR_APPROVAL_SIGNATURE_INVALID',
      ],
      [
        'the agent claims to be its approver',
        async (request) => ({
          ...(await signApprovalAnswer(request, {
            decision: 'approve',
            reason: 'me',
            approver: w.danaChain,
            signer: w.dana.issuer,
            vault: w.vault,
            nowSeconds: w.clock.nowSeconds(),
          })),
          approver: agent.identity.identifier,
        }),
        'ERR_APPROVAL_SELF',
      ],
    ];
    let order = 0;
    for (const [what, forge, code] of cases) {
      const { client, shown } = await connect(async (r) => {
        const forged = await forge(requestOf(r));
        return {
          action: 'accept',
          ...(forged === undefined ? {} : { _meta: { [APPROVAL_ANSWER_META_KEY]: forged } }),
        };
      }, 'forge');
      const result = await client.callTool({
        name: 'refund',
        arguments: { order: `o-${++order}`, amount: 250 },
      });
      expect(shown, what).toHaveLength(1);
      expect(metaOf(result), what).toMatchObject({
        decision: 'approval_required',
        elicitation: { action: 'accept', code },
      });
    }

    // A human=true credential from an authority the gateway does not trust.
    const clock = new ManualClock(w.now);
    const identities = new Identities({
      vault: w.vault,
      repository: new MemoryIdentityRepository(),
      clock,
    });
    const party = async (name: string): Promise<CredentialIssuer> => {
      const local = await identities.create({ name });
      const { verified, keyId } = await identities.purposeKey(name, Purpose.credentials);
      return {
        identity: local.identity,
        credentialKeyId: keyId,
        credentialKeyAttestation: verified.attestation,
      };
    };
    const rogue = await party('rogue-authority');
    const mallory = await party('mallory');
    const credential = await issueCredential(
      w.vault,
      rogue,
      mallory.identity,
      constraintsToAttributes(new Map([parseConstraint('human=true')])),
      { nowSeconds: w.now, ttlSeconds: 3600 },
    );
    const bytes = chainFromCredential(credential, mallory.identity);
    const malloryChain = new ChainVerifier({
      authorities: new Map([[rogue.identity.identifier, rogue.identity]]),
    }).verify(bytes, { nowSeconds: w.now, presenter: mallory.identity.identifier });
    const untrusted = await connect(
      () => ({ action: 'accept' }),
      approvalSigner({ approver: malloryChain, signer: mallory, vault: w.vault, clock }),
    );
    expect(metaOf(await untrusted.refund('o-9', 250))).toMatchObject({
      decision: 'approval_required',
      elicitation: { action: 'accept', code: 'ERR_APPROVAL_SIGNATURE_INVALID' },
    });
    // Nothing was approved, nothing ran.
    expect((await w.approvals.list()).every((r) => r.status === 'pending')).toBe(true);
    expect(await untrusted.done()).toBe('');
  });

  it('the form is answered with other arguments: what runs is what the person was shown and signed', async () => {
    const { connect } = await shop();
    const { refund, done } = await connect(() => ({
      action: 'accept',
      content: { reason: 'ok', arguments: '{"amount":1,"order":"o-9"}' },
    }));
    expect(textOf(await refund('o-1', 300))).toBe('refunded 300 on o-1');
    expect(await done()).toBe('o-1:300');
  });

  it('arguments the gateway hides are shown as their digest', async () => {
    const { connect } = await shop({ gateway: { showArguments: () => false } });
    const { shown, refund } = await connect(() => ({ action: 'accept' }));
    expect(textOf(await refund('o-1', 300))).toBe('refunded 300 on o-1');
    expect(shown[0]!.params.message).toMatch(/arguments: hidden, SHA-256 [0-9a-f]{64}/);
    expect(shown[0]!.params.message).not.toContain('o-1');
  });
});
