import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ManualClock, MandateError } from '../core/index.js';
import { sha256 } from '../crypto/index.js';
import { MemoryVault, type SigningVault } from '../vault/index.js';
import {
  Identities,
  MemoryIdentityRepository,
  type Identifier,
  type LocalIdentity,
} from '../identity/index.js';
import {
  Authority,
  DEFAULT_MAX_CREDENTIAL_TTL_SECONDS,
  type AuthorityPolicy,
} from './authority.js';
import { MemoryAuthorityRepository, type StoredTicket } from './authority-repository.js';
import {
  constraintsFromAttributes,
  constraintsToAttributes,
  parseConstraint,
} from './constraints.js';
import { DEFAULT_CREDENTIAL_TTL_SECONDS, verifyCredential } from './credential.js';
import { parseEnrollmentTicket } from './enrollment-ticket.js';

const NOW = 1_800_000_000;
const ROUTE = '/ip4/127.0.0.1/tcp/4000/service/authority';
const utf8 = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Attributes from the CLI grammar (`tools=a,b`, `refund<=1000`), as canonical wire bytes; a
 * reserved `mandate.x:v` is the raw value `v`, as delegation.ts reads it.
 */
function attrs(...constraints: string[]): Map<string, Uint8Array> {
  const reserved = constraints.filter((c) => c.startsWith('mandate.'));
  const ordinary = constraints.filter((c) => !c.startsWith('mandate.'));
  const out = constraintsToAttributes(new Map(ordinary.map(parseConstraint)));
  for (const c of reserved) {
    const [name, value] = c.split(':') as [string, string];
    out.set(name, utf8.encode(value));
  }
  return out;
}

const text = (attributes: ReadonlyMap<string, Uint8Array>): Record<string, string> =>
  Object.fromEntries([...attributes].map(([name, value]) => [name, decoder.decode(value)]));

/** Records every ticket written, to prove the code itself never is. */
class RecordingRepository extends MemoryAuthorityRepository {
  readonly written: StoredTicket[] = [];
  override putTicket(ticket: StoredTicket): Promise<void> {
    this.written.push(ticket);
    return super.putTicket(ticket);
  }
}

interface Setup {
  readonly vault: MemoryVault;
  readonly identities: Identities;
  readonly repository: RecordingRepository;
  readonly authority: Authority;
  readonly authorityId: Identifier;
  readonly agents: LocalIdentity[];
  readonly withPolicy: (policy: Partial<AuthorityPolicy>, vault?: SigningVault) => Authority;
}

async function setup(policy: Partial<AuthorityPolicy> = {}, agentCount = 4): Promise<Setup> {
  const vault = new MemoryVault();
  const identities = new Identities({
    vault,
    repository: new MemoryIdentityRepository(),
    clock: new ManualClock(NOW),
  });
  const local = await identities.create({ name: 'authority' });
  const agents = await identities.createMany(agentCount, { namePrefix: 'agent-' });
  const repository = new RecordingRepository();
  const withPolicy = (p: Partial<AuthorityPolicy>, v: SigningVault = vault): Authority =>
    new Authority({
      identities,
      vault: v,
      repository,
      authority: 'authority',
      policy: p,
      route: ROUTE,
      clock: new ManualClock(NOW),
    });
  return {
    vault,
    identities,
    repository,
    authority: withPolicy(policy),
    authorityId: local.identity.identifier,
    agents,
    withPolicy,
  };
}

const codeOfTicket = (ticket: string): Uint8Array => parseEnrollmentTicket(ticket).code;

async function rejection(promise: Promise<unknown>): Promise<MandateError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof MandateError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

async function snapshot(repository: MemoryAuthorityRepository, codes: Uint8Array[]) {
  return {
    members: await repository.listMembers(),
    tickets: await Promise.all(codes.map((c) => repository.getTicketByCodeHash(sha256(c)))),
  };
}

const SHOP = ['tools=read_orders,issue_refund', 'refund<=1000'];

describe('Authority: tickets and redemption', () => {
  it('redeems a ticket for membership and a credential verifiers accept', async () => {
    const { authority, authorityId, agents, repository } = await setup();
    const ticket = await authority.createTicket(authorityId, {
      attributes: attrs(...SHOP),
      nowSeconds: NOW,
    });
    const parsed = parseEnrollmentTicket(ticket);
    expect(parsed.authority.identifier).toBe(authorityId);
    expect(parsed.route).toBe(ROUTE);
    expect(parsed.expiresAt).toBe(NOW + 600);

    const agent = agents[0]!.identity;
    const { member, credential } = await authority.redeem(
      { code: parsed.code, changeHistory: agent.changeHistory },
      NOW + 10,
    );
    expect(member).toMatchObject({
      identifier: agent.identifier,
      enroller: false,
      addedAt: NOW + 10,
      addedBy: authorityId,
    });
    expect(text(member.attributes)).toEqual({
      tools: '=issue_refund,read_orders',
      refund: '<=1000',
    });
    expect(await repository.getMember(agent.identifier)).toEqual(member);

    const verified = verifyCredential(credential, {
      nowSeconds: NOW + 10,
      authorities: new Map([[authorityId, parsed.authority]]),
      subject: agent,
    });
    expect(verified.issuer).toBe(authorityId);
    expect(verified.subject).toBe(agent.identifier);
    expect(text(verified.attributes)).toEqual(text(member.attributes));
    expect(verified.expiresAt - verified.createdAt).toBe(DEFAULT_CREDENTIAL_TTL_SECONDS);
  });

  it("remembers a remote member's history, so later credentials can be issued by identifier", async () => {
    const { authority, authorityId } = await setup();
    const elsewhere = new Identities({
      vault: new MemoryVault(),
      repository: new MemoryIdentityRepository(),
      clock: new ManualClock(NOW),
    });
    const remote = (await elsewhere.create({ name: 'remote' })).identity;
    const parsed = parseEnrollmentTicket(
      await authority.createTicket(authorityId, { attributes: attrs(...SHOP), nowSeconds: NOW }),
    );
    await authority.redeem({ code: parsed.code, changeHistory: remote.changeHistory }, NOW + 1);
    const later = await authority.issueCredential(remote.identifier, NOW + 2);
    expect(
      verifyCredential(later, {
        nowSeconds: NOW + 2,
        authorities: new Map([[authorityId, parsed.authority]]),
        subject: remote,
      }).subject,
    ).toBe(remote.identifier);
  });

  it('stores only the hash of the code, never the code', async () => {
    const { authority, authorityId, repository } = await setup();
    const tickets = await Promise.all(
      [1, 2, 3].map(() =>
        authority.createTicket(authorityId, { attributes: attrs(...SHOP), nowSeconds: NOW }),
      ),
    );
    expect(repository.written).toHaveLength(3);
    for (const [i, ticket] of tickets.entries()) {
      const code = codeOfTicket(ticket);
      const stored = repository.written[i]!;
      expect(stored.codeHash).toEqual(sha256(code));
      const hex = Buffer.from(code).toString('hex');
      const everything = [
        stored.codeHash,
        ...[...stored.attributes.keys()].map((k) => utf8.encode(k)),
        ...stored.attributes.values(),
      ];
      for (const bytes of everything) expect(Buffer.from(bytes).toString('hex')).not.toContain(hex);
      expect(await repository.getTicketByCodeHash(code)).toBeUndefined();
    }
  });

  it('refuses a second use of a one-use ticket and changes nothing', async () => {
    const { authority, authorityId, agents, repository } = await setup();
    const code = codeOfTicket(
      await authority.createTicket(authorityId, { attributes: attrs(...SHOP), nowSeconds: NOW }),
    );
    await authority.redeem({ code, changeHistory: agents[0]!.identity.changeHistory }, NOW);
    const before = await snapshot(repository, [code]);
    const error = await rejection(
      authority.redeem({ code, changeHistory: agents[1]!.identity.changeHistory }, NOW),
    );
    expect(error).toMatchObject({ code: 'ERR_TICKET_INVALID', kind: 'unauthorized' });
    expect(error.cause).toBe('unknown or used up');
    expect(await snapshot(repository, [code])).toEqual(before);
    expect(await repository.getMember(agents[1]!.identity.identifier)).toBeUndefined();
  });

  it('honours a three-use ticket exactly three times', async () => {
    const { authority, authorityId, agents, repository } = await setup();
    const code = codeOfTicket(
      await authority.createTicket(authorityId, {
        attributes: attrs(...SHOP),
        uses: 3,
        nowSeconds: NOW,
      }),
    );
    for (const [i, agent] of agents.slice(0, 3).entries()) {
      await authority.redeem({ code, changeHistory: agent.identity.changeHistory }, NOW);
      const left = await repository.getTicketByCodeHash(sha256(code));
      expect(left?.usesLeft).toBe(i < 2 ? 2 - i : undefined);
    }
    await expect(
      authority.redeem({ code, changeHistory: agents[3]!.identity.changeHistory }, NOW),
    ).rejects.toMatchObject({ code: 'ERR_TICKET_INVALID' });
    expect(await repository.listMembers()).toHaveLength(3);
  });

  it('honours a three-use ticket three times when four redeem at once', async () => {
    const { authority, authorityId, agents, repository } = await setup();
    const code = codeOfTicket(
      await authority.createTicket(authorityId, {
        attributes: attrs(...SHOP),
        uses: 3,
        nowSeconds: NOW,
      }),
    );
    const results = await Promise.allSettled(
      agents.map((agent) =>
        authority.redeem({ code, changeHistory: agent.identity.changeHistory }, NOW),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    const rejected = results.filter((r) => r.status === 'rejected');
    expect(rejected).toHaveLength(1);
    expect(rejected[0]!.reason).toMatchObject({ code: 'ERR_TICKET_INVALID' });
    expect(await repository.listMembers()).toHaveLength(3);
    expect(await repository.getTicketByCodeHash(sha256(code))).toBeUndefined();
  });

  it('refuses an expired ticket at its expiry, not a second before', async () => {
    const { authority, authorityId, agents, repository } = await setup();
    const create = () =>
      authority.createTicket(authorityId, {
        attributes: attrs(...SHOP),
        ttlSeconds: 60,
        nowSeconds: NOW,
      });
    const code = codeOfTicket(await create());
    const agent = agents[0]!.identity;
    const error = await rejection(
      authority.redeem({ code, changeHistory: agent.changeHistory }, NOW + 60),
    );
    expect(error.code).toBe('ERR_TICKET_INVALID');
    expect(error.cause).toBe('expired');
    expect(await repository.getMember(agent.identifier)).toBeUndefined();
    const fresh = codeOfTicket(await create());
    await authority.redeem({ code: fresh, changeHistory: agent.changeHistory }, NOW + 59);
    expect(await repository.getMember(agent.identifier)).toBeDefined();
  });

  it('gives the same answer for an unknown code, and for a code of the wrong length', async () => {
    const { authority, agents } = await setup();
    const changeHistory = agents[0]!.identity.changeHistory;
    for (const code of [new Uint8Array(32), new Uint8Array(16), new Uint8Array(0)]) {
      const error = await rejection(authority.redeem({ code, changeHistory }, NOW));
      expect(error).toMatchObject({ code: 'ERR_TICKET_INVALID', kind: 'unauthorized' });
      expect(error.message).toBe('the enrollment ticket is not valid');
    }
  });

  it('refuses a redeemer history that does not verify, without using the ticket', async () => {
    const { authority, authorityId, agents, repository } = await setup();
    const code = codeOfTicket(
      await authority.createTicket(authorityId, { attributes: attrs(...SHOP), nowSeconds: NOW }),
    );
    const tampered = agents[0]!.identity.changeHistory.slice();
    tampered[tampered.length - 1]! ^= 1;
    await expect(authority.redeem({ code, changeHistory: tampered }, NOW)).rejects.toMatchObject({
      code: 'ERR_IDENTITY_SIGNATURE_INVALID',
    });
    expect((await repository.getTicketByCodeHash(sha256(code)))?.usesLeft).toBe(1);
  });

  it('writes nothing when issuing the credential fails', async () => {
    const { vault, authorityId, agents, repository, withPolicy } = await setup();
    const failing: SigningVault = {
      generateSigningKey: (t) => vault.generateSigningKey(t),
      getSigningKey: (k) => vault.getSigningKey(k),
      deleteSigningKey: (k) => vault.deleteSigningKey(k),
      sign: () => Promise.reject(new Error('the HSM is unplugged')),
    };
    const authority = withPolicy({}, failing);
    const code = codeOfTicket(
      await authority.createTicket(authorityId, { attributes: attrs(...SHOP), nowSeconds: NOW }),
    );
    const before = await snapshot(repository, [code]);
    await expect(
      authority.redeem({ code, changeHistory: agents[0]!.identity.changeHistory }, NOW),
    ).rejects.toThrow('the HSM is unplugged');
    expect(await snapshot(repository, [code])).toEqual(before);
  });

  it('re-checks a ticket against the policy in force when it is redeemed', async () => {
    const { authority, authorityId, agents, repository, withPolicy } = await setup();
    const code = codeOfTicket(
      await authority.createTicket(authorityId, { attributes: attrs(...SHOP), nowSeconds: NOW }),
    );
    const stricter = withPolicy({
      grantable: constraintsFromAttributes(attrs('refund<=100', 'tools=read_orders,issue_refund')),
    });
    const error = await rejection(
      stricter.redeem({ code, changeHistory: agents[0]!.identity.changeHistory }, NOW),
    );
    expect(error.code).toBe('ERR_TICKET_INVALID');
    expect(error.cause).toMatchObject({ code: 'ERR_AUTHORITY_POLICY' });
    expect((await repository.getTicketByCodeHash(sha256(code)))?.usesLeft).toBe(1);
    expect(await repository.listMembers()).toEqual([]);
  });

  it('replaces an existing member with what the new ticket grants', async () => {
    const { authority, authorityId, agents, repository } = await setup();
    const agent = agents[0]!.identity;
    for (const attributes of [attrs(...SHOP), attrs('tools=read_orders')]) {
      const code = codeOfTicket(
        await authority.createTicket(authorityId, { attributes, nowSeconds: NOW }),
      );
      await authority.redeem({ code, changeHistory: agent.changeHistory }, NOW);
    }
    const member = await repository.getMember(agent.identifier);
    expect(text(member!.attributes)).toEqual({ tools: '=read_orders' });
    expect(await repository.listMembers()).toHaveLength(1);
  });

  it('checks ticket options', async () => {
    const { authority, authorityId } = await setup();
    const base = { attributes: attrs(...SHOP), nowSeconds: NOW };
    for (const options of [
      { ttlSeconds: 0 },
      { ttlSeconds: 7 * 24 * 3600 + 1 },
      { ttlSeconds: 1.5 },
      { uses: 0 },
      { uses: 1001 },
      { nowSeconds: -1 },
    ]) {
      await expect(
        authority.createTicket(authorityId, { ...base, ...options }),
      ).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
    }
    // Issue 8, vulnerability 7: a ticket's expiry is never compared with a time that is not
    // unix seconds, at creation or at redemption.
    const code = codeOfTicket(await authority.createTicket(authorityId, base));
    const { agents } = await setup({}, 1);
    for (const now of [Number.NaN, undefined, Infinity, -Infinity, NOW + 0.5]) {
      await expect(
        authority.createTicket(authorityId, { ...base, nowSeconds: now as number }),
      ).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
      await expect(
        authority.redeem({ code, changeHistory: agents[0]!.identity.changeHistory }, now as number),
      ).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
    }
    await authority.createTicket(authorityId, { ...base, ttlSeconds: 7 * 24 * 3600, uses: 1000 });
    await expect(
      authority.createTicket(authorityId, {
        ...base,
        attributes: new Map([['tools', utf8.encode('~x')]]),
      }),
    ).rejects.toMatchObject({ code: 'ERR_CONSTRAINT_UNKNOWN_KIND' });
    await expect(
      authority.createTicket(authorityId, {
        ...base,
        attributes: new Map([['Tools', utf8.encode('=x')]]),
      }),
    ).rejects.toMatchObject({ code: 'ERR_CONSTRAINT_SYNTAX' });
  });

  it('deletes expired tickets when it writes a new one', async () => {
    const { authority, authorityId, repository } = await setup();
    const old = codeOfTicket(
      await authority.createTicket(authorityId, {
        attributes: attrs(...SHOP),
        ttlSeconds: 60,
        nowSeconds: NOW,
      }),
    );
    await authority.createTicket(authorityId, { attributes: attrs(...SHOP), nowSeconds: NOW + 60 });
    expect(await repository.getTicketByCodeHash(sha256(old))).toBeUndefined();
  });
});

describe('Authority: enrollers', () => {
  async function withEnroller(held: string[] = SHOP) {
    const s = await setup();
    const enroller = s.agents[0]!.identity.identifier;
    await s.authority.addMember(s.authorityId, enroller, attrs(...held), {
      enroller: true,
      nowSeconds: NOW,
    });
    return { ...s, enroller };
  }

  it('lets an enroller create tickets for what it holds, or less', async () => {
    const { authority, enroller, agents, authorityId } = await withEnroller();
    for (const granted of [
      SHOP,
      ['tools=read_orders', 'refund<=10'],
      [...SHOP, 'region=eu'],
      ['tools=issue_refund', 'refund<=1000', 'refund_min>=5'],
    ]) {
      const code = codeOfTicket(
        await authority.createTicket(enroller, { attributes: attrs(...granted), nowSeconds: NOW }),
      );
      const { member, credential } = await authority.redeem(
        { code, changeHistory: agents[1]!.identity.changeHistory },
        NOW,
      );
      expect(member.addedBy).toBe(enroller);
      expect(member.enroller).toBe(false);
      const verified = verifyCredential(credential, {
        nowSeconds: NOW,
        authorities: new Map([[authorityId, await authority.identity()]]),
      });
      expect(text(verified.attributes)).toEqual(text(attrs(...granted)));
    }
  });

  it.each([
    ['a wider set', ['tools=read_orders,delete_orders', 'refund<=1000']],
    ['a higher limit', ['tools=read_orders', 'refund<=5000']],
    ['any tool', ['tools=*', 'refund<=1000']],
    ['another kind', ['tools=read_orders', 'refund>=0']],
    ['an omitted constraint (unrestricted refunds)', ['tools=read_orders']],
    ['nothing at all', []],
    ['a reserved attribute it lacks', [...SHOP, 'mandate.max-depth:9']],
  ])('refuses an enroller granting %s', async (_, granted) => {
    const { authority, enroller, repository } = await withEnroller();
    const error = await rejection(
      authority.createTicket(enroller, { attributes: attrs(...granted), nowSeconds: NOW }),
    );
    expect(error).toMatchObject({ code: 'ERR_TICKET_ATTRIBUTES_EXCEED', kind: 'forbidden' });
    expect(repository.written).toEqual([]);
  });

  // Issue 8, vulnerability 4: a missing `tools` grants no tool, so it bounds what is passed on.
  it('refuses an enroller that holds no `tools` granting tools', async () => {
    const { authority, enroller, repository } = await withEnroller(['refund<=1000']);
    const error = await rejection(
      authority.createTicket(enroller, {
        attributes: attrs('tools=read_orders', 'refund<=10'),
        nowSeconds: NOW,
      }),
    );
    expect(error).toMatchObject({ code: 'ERR_TICKET_ATTRIBUTES_EXCEED', kind: 'forbidden' });
    expect(repository.written).toEqual([]);
  });

  // Issue 8, vulnerability 3: a constraint scoped to a tool nobody granted is a mistake.
  it('refuses a constraint scoped to a tool no `tools` grants, by ticket or directly', async () => {
    const { authority, authorityId, agents, repository } = await withEnroller();
    for (const granted of [
      ['tools=read_orders', 'issue_refund#refund<=10'],
      ['issue_refund#refund<=10'],
    ]) {
      const error = await rejection(
        authority.createTicket(authorityId, { attributes: attrs(...granted), nowSeconds: NOW }),
      );
      expect(error).toMatchObject({ code: 'ERR_CONSTRAINT_TOOL_NOT_GRANTED' });
      const direct = await rejection(
        authority.addMember(authorityId, agents[2]!.identity.identifier, attrs(...granted), {
          nowSeconds: NOW,
        }),
      );
      expect(direct).toMatchObject({ code: 'ERR_CONSTRAINT_TOOL_NOT_GRANTED' });
    }
    expect(repository.written).toEqual([]);
    await authority.createTicket(authorityId, {
      attributes: attrs('tools=orders.refund,read_orders', 'orders.refund#amount<=10'),
      nowSeconds: NOW,
    });
  });

  it('passes reserved attributes on only exactly as the enroller holds them', async () => {
    const { authority, enroller } = await withEnroller([...SHOP, 'mandate.max-depth:1']);
    await authority.createTicket(enroller, {
      attributes: attrs(...SHOP, 'mandate.max-depth:1'),
      nowSeconds: NOW,
    });
    for (const granted of [SHOP, [...SHOP, 'mandate.max-depth:2']]) {
      await expect(
        authority.createTicket(enroller, { attributes: attrs(...granted), nowSeconds: NOW }),
      ).rejects.toMatchObject({ code: 'ERR_TICKET_ATTRIBUTES_EXCEED' });
    }
  });

  it('refuses an enroller making an enroller, by ticket or directly', async () => {
    const { authority, enroller, agents } = await withEnroller();
    await expect(
      authority.createTicket(enroller, {
        attributes: attrs(...SHOP),
        enroller: true,
        nowSeconds: NOW,
      }),
    ).rejects.toMatchObject({ code: 'ERR_ENROLLER_FORBIDDEN', kind: 'forbidden' });
    await expect(
      authority.addMember(enroller, agents[2]!.identity.identifier, attrs(...SHOP), {
        enroller: true,
        nowSeconds: NOW,
      }),
    ).rejects.toMatchObject({ code: 'ERR_ENROLLER_FORBIDDEN' });
  });

  it('lets only the authority and enrollers grant', async () => {
    const { authority, agents, enroller } = await withEnroller();
    const plain = agents[1]!.identity.identifier;
    await authority.addMember(enroller, plain, attrs('tools=read_orders', 'refund<=1'), {
      nowSeconds: NOW,
    });
    for (const by of [plain, agents[2]!.identity.identifier]) {
      await expect(
        authority.createTicket(by, { attributes: attrs('tools=read_orders'), nowSeconds: NOW }),
      ).rejects.toMatchObject({ code: 'ERR_ENROLLER_FORBIDDEN' });
      await expect(authority.removeMember(by, plain)).rejects.toMatchObject({
        code: 'ERR_ENROLLER_FORBIDDEN',
      });
    }
  });

  it('lets the authority make enrollers by ticket', async () => {
    const { authority, authorityId, agents } = await setup();
    const code = codeOfTicket(
      await authority.createTicket(authorityId, {
        attributes: attrs(...SHOP),
        enroller: true,
        nowSeconds: NOW,
      }),
    );
    const { member } = await authority.redeem(
      { code, changeHistory: agents[0]!.identity.changeHistory },
      NOW,
    );
    expect(member.enroller).toBe(true);
    await authority.createTicket(member.identifier, {
      attributes: attrs('tools=read_orders', 'refund<=1'),
      nowSeconds: NOW,
    });
  });

  it("voids an enroller's outstanding tickets when it is removed", async () => {
    const { authority, authorityId, enroller, agents, repository } = await withEnroller();
    const code = codeOfTicket(
      await authority.createTicket(enroller, { attributes: attrs(...SHOP), nowSeconds: NOW }),
    );
    expect(await authority.removeMember(authorityId, enroller)).toBe(true);
    const error = await rejection(
      authority.redeem({ code, changeHistory: agents[1]!.identity.changeHistory }, NOW),
    );
    expect(error.code).toBe('ERR_TICKET_INVALID');
    expect(error.cause).toMatchObject({ code: 'ERR_ENROLLER_FORBIDDEN' });
    expect(await repository.getMember(agents[1]!.identity.identifier)).toBeUndefined();
  });

  it('keeps enrollers from changing or removing other enrollers', async () => {
    const { authority, authorityId, enroller, agents, repository } = await withEnroller();
    const other = agents[1]!.identity.identifier;
    await authority.addMember(authorityId, other, attrs(...SHOP), { enroller: true });
    await expect(
      authority.addMember(enroller, other, attrs('tools=read_orders', 'refund<=1')),
    ).rejects.toMatchObject({ code: 'ERR_ENROLLER_FORBIDDEN' });
    await expect(authority.removeMember(enroller, other)).rejects.toMatchObject({
      code: 'ERR_ENROLLER_FORBIDDEN',
    });
    expect((await repository.getMember(other))?.enroller).toBe(true);
    // Plain members are fair game, and so is the enroller itself.
    const plain = agents[2]!.identity.identifier;
    await authority.addMember(enroller, plain, attrs('tools=read_orders', 'refund<=1'));
    expect(await authority.removeMember(enroller, plain)).toBe(true);
    expect(await authority.removeMember(enroller, plain)).toBe(false);
    expect(await authority.removeMember(enroller, enroller)).toBe(true);
  });

  it('refuses a malformed member identifier', async () => {
    const { authority, authorityId } = await setup();
    await expect(
      authority.addMember(authorityId, 'Inot-hex', attrs(...SHOP)),
    ).rejects.toMatchObject({ code: 'ERR_IDENTIFIER_INVALID' });
  });

  it('grants exactly what the rule says (property)', async () => {
    const { authority, enroller } = await withEnroller();
    const held = new Map([
      ['tools', new Set(['read_orders', 'issue_refund'])],
      ['refund', new Set(['1000'])],
    ]);
    const tools = ['read_orders', 'issue_refund', 'delete_orders'];
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.subarray(tools, { minLength: 1 }), { nil: undefined }),
        fc.option(fc.integer({ min: 0, max: 2000 }), { nil: undefined }),
        fc.boolean(),
        async (toolSet, limit, extra) => {
          const granted: string[] = [];
          if (toolSet !== undefined) granted.push(`tools=${[...toolSet].sort().join(',')}`);
          if (limit !== undefined) granted.push(`refund<=${limit}`);
          if (extra) granted.push('region=eu');
          const allowed =
            toolSet !== undefined &&
            toolSet.every((t) => held.get('tools')!.has(t)) &&
            limit !== undefined &&
            limit <= 1000;
          const outcome = await authority
            .createTicket(enroller, { attributes: attrs(...granted), nowSeconds: NOW })
            .then(
              () => 'created',
              (error: unknown) => (error instanceof MandateError ? error.code : 'other'),
            );
          expect(outcome).toBe(allowed ? 'created' : 'ERR_TICKET_ATTRIBUTES_EXCEED');
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('Authority: policy and issuing on request', () => {
  const grantable = constraintsFromAttributes(
    attrs('tools=read_orders,issue_refund', 'refund<=500'),
  );

  it.each([
    ['a limit above the policy', ['tools=read_orders', 'refund<=1000']],
    ['a tool outside the policy', ['tools=delete_orders', 'refund<=5']],
    ['an omitted constraint', ['tools=read_orders']],
  ])('refuses the authority itself granting %s', async (_, granted) => {
    const { authority, authorityId, agents } = await setup({ grantable });
    await expect(
      authority.createTicket(authorityId, { attributes: attrs(...granted), nowSeconds: NOW }),
    ).rejects.toMatchObject({ code: 'ERR_AUTHORITY_POLICY', kind: 'forbidden' });
    await expect(
      authority.addMember(authorityId, agents[0]!.identity.identifier, attrs(...granted)),
    ).rejects.toMatchObject({ code: 'ERR_AUTHORITY_POLICY' });
  });

  it('grants within the policy: the redeemer holds exactly what the ticket granted', async () => {
    const { authority, authorityId, agents } = await setup({ grantable });
    const granted = attrs('tools=read_orders', 'refund<=500', 'region=eu');
    const ticket = await authority.createTicket(authorityId, {
      attributes: granted,
      nowSeconds: NOW,
    });
    const agent = agents[0]!.identity;
    const { member, credential } = await authority.redeem(
      { code: codeOfTicket(ticket), changeHistory: agent.changeHistory },
      NOW + 1,
    );
    expect(text(member.attributes)).toEqual(text(granted));
    const authorities = new Map([[authorityId, await authority.identity()]]);
    const verified = verifyCredential(credential, {
      nowSeconds: NOW + 1,
      authorities,
      subject: agent,
    });
    expect(text(verified.attributes)).toEqual(text(granted));
  });

  it('issues a member its stored attributes, and refuses a TTL beyond the policy', async () => {
    const { authority, authorityId, agents, withPolicy } = await setup({
      maxCredentialTtlSeconds: 7200,
      defaultCredentialTtlSeconds: 600,
    });
    const agent = agents[0]!.identity;
    await authority.addMember(authorityId, agent.identifier, attrs(...SHOP), { nowSeconds: NOW });
    const authorities = new Map([[authorityId, await authority.identity()]]);
    const window = (bytes: Uint8Array): number => {
      const v = verifyCredential(bytes, { nowSeconds: NOW, authorities, subject: agent });
      expect(text(v.attributes)).toEqual(text(attrs(...SHOP)));
      return v.expiresAt - v.createdAt;
    };
    expect(window(await authority.issueCredential(agent.identifier, NOW))).toBe(600);
    expect(window(await authority.issueCredential(agent, NOW, { ttlSeconds: 100 }))).toBe(100);
    expect(window(await authority.issueCredential(agent, NOW, { ttlSeconds: 7200 }))).toBe(7200);
    // Never cut short in silence: a caller asking for more than the maximum is told.
    for (const ttlSeconds of [7201, 999_999]) {
      await expect(authority.issueCredential(agent, NOW, { ttlSeconds })).rejects.toMatchObject({
        code: 'ERR_CREDENTIAL_TTL_TOO_LONG',
        kind: 'invalid',
      });
    }
    expect(authority.checkCredentialTtl(7200)).toBe(7200);
    await expect(authority.issueCredential(agent, NOW, { ttlSeconds: 0 })).rejects.toMatchObject({
      code: 'ERR_ARGUMENT_INVALID',
    });
    // A policy narrowed after the member was added applies to what is issued now.
    const stricter = withPolicy({ grantable });
    await expect(stricter.issueCredential(agent, NOW)).rejects.toMatchObject({
      code: 'ERR_AUTHORITY_POLICY',
    });
    expect(withPolicy({}).policy.maxCredentialTtlSeconds).toBe(DEFAULT_MAX_CREDENTIAL_TTL_SECONDS);
  });

  it('refuses to issue to a non-member', async () => {
    const { authority, agents } = await setup();
    const error = await rejection(authority.issueCredential(agents[0]!.identity, NOW));
    expect(error).toMatchObject({ code: 'ERR_MEMBER_NOT_FOUND', kind: 'not_found' });
  });

  it.each<Partial<AuthorityPolicy>>([
    { maxCredentialTtlSeconds: 0 },
    { maxCredentialTtlSeconds: 31 * 24 * 3600 },
    { maxCredentialTtlSeconds: 600, defaultCredentialTtlSeconds: 601 },
    { defaultCredentialTtlSeconds: -1 },
  ])('refuses the policy %o', async (policy) => {
    const { withPolicy } = await setup({}, 1);
    expect(() => withPolicy(policy)).toThrow(
      expect.objectContaining({ code: 'ERR_ARGUMENT_INVALID' }),
    );
  });

  it('needs a local authority identity', async () => {
    const { identities, repository, vault } = await setup({}, 1);
    const other = new Identities({
      vault: new MemoryVault(),
      repository: new MemoryIdentityRepository(),
    });
    await other.import((await identities.get('authority')).identity.changeHistory);
    const remote = new Authority({
      identities: other,
      vault,
      repository,
      authority: (await identities.get('authority')).identity.identifier,
    });
    await expect(remote.identifier()).rejects.toMatchObject({ code: 'ERR_IDENTITY_NOT_LOCAL' });
  });
});
