import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, MandateError } from '../core/index.js';
import { randomBytes } from '../crypto/index.js';
import { CborMap, decodeCbor, encodeCbor, fromHex, toHex } from '../encoding/index.js';
import { MemoryVault } from '../vault/index.js';
import {
  Identities,
  MemoryIdentityRepository,
  Purpose,
  type Identifier,
  type LocalIdentity,
  type VerifiedIdentity,
} from '../identity/index.js';
import {
  Authority,
  constraintsToAttributes,
  type AuthorityPolicy,
  decodeCredential,
  issueCredential,
  MemoryAuthorityRepository,
  parseConstraint,
  parseEnrollmentTicket,
  type EnrollmentTicket,
} from '../credentials/index.js';
import {
  openSecureChannel,
  prepareChannelIdentity,
  SecureChannelListener,
  TrustPolicies,
  type SecureChannel,
  type TrustPolicy,
} from '../channel/index.js';
import {
  localAddress,
  MemoryNetwork,
  MemoryTransport,
  Router,
  type Envelope,
  type MessageContext,
  type Worker,
} from '../routing/index.js';
import {
  EnrollmentService,
  fetchCredentialOverChannel,
  redeemTicketOverChannel,
  type EnrollmentEvent,
} from './enrollment-service.js';
import { freshDenySet, revoke } from '../../test/helpers/deny-set.js';

// The enrollment service and its client over the memory transport: an authority node, redeemer
// nodes with their own vaults, and impostors listening where the authority should be.

const NOW = 1_800_000_000;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Seen {
  readonly ctx: MessageContext;
  readonly envelope: Envelope;
}
function recorder(): Worker & { seen: Seen[] } {
  const seen: Seen[] = [];
  return {
    seen,
    handleMessage(ctx, envelope) {
      seen.push({ ctx, envelope });
    },
  };
}

/** One process's side: its own vault and identities, a router on the shared memory network. */
function node(network: MemoryNetwork, name: string, clock: ManualClock) {
  const vault = new MemoryVault();
  const identities = new Identities({ vault, repository: new MemoryIdentityRepository(), clock });
  const router = new Router();
  const transport = new MemoryTransport(router, network);
  transport.listen(name);
  cleanups.push(() => transport.close());
  const channelKey = async (local: LocalIdentity) =>
    prepareChannelIdentity(vault, {
      identity: local.identity,
      primaryKeyId: local.primaryKeyId,
      nowSeconds: clock.nowSeconds(),
    });
  /** A channel listener at `api` that trusts any identity and delivers to `enroll` only. */
  const listen = async (local: LocalIdentity) => {
    const listener = new SecureChannelListener(router, {
      ...(await channelKey(local)),
      verify: { authorities: new Map(), trustPolicy: TrustPolicies.anyIdentity() },
      deliverTo: ['enroll'],
      clock,
    });
    router.allowFromAnyConnection('api');
    cleanups.push(() => listener.close());
    return listener;
  };
  return { vault, identities, router, transport, channelKey, listen };
}

async function setup(policy?: Partial<AuthorityPolicy>) {
  const clock = new ManualClock(NOW);
  const network = new MemoryNetwork();
  const a = node(network, 'authority', clock);
  const authorityLocal = await a.identities.create({ name: 'authority' });
  const repository = new MemoryAuthorityRepository();
  const authority = new Authority({
    identities: a.identities,
    vault: a.vault,
    repository,
    authority: 'authority',
    route: '/memory/authority',
    clock,
    ...(policy === undefined ? {} : { policy }),
  });
  const ticket = async (uses = 1): Promise<EnrollmentTicket> =>
    parseEnrollmentTicket(
      await authority.createTicket(authorityLocal.identity.identifier, {
        attributes: constraintsToAttributes(new Map([parseConstraint('tools=read_orders')])),
        uses,
        nowSeconds: clock.nowSeconds(),
      }),
    );
  const events: EnrollmentEvent[] = [];
  /** The authority's deny-set (its listener here has none: the service's own check is tested). */
  const denySet = freshDenySet(NOW, 3_600);
  /** Starts the authority node: listener and enrollment service. */
  const start = async (local: LocalIdentity = authorityLocal) => {
    await a.listen(local);
    const service = new EnrollmentService(a.router, {
      authority,
      identities: a.identities,
      denySet,
      clock,
      onEvent: (e) => events.push(e),
    });
    cleanups.push(() => service.close());
    return service;
  };

  /** A redeemer node with identity `name`, connecting to memory listener `target`. */
  const redeemer = async (name: string) => {
    const r = node(network, name, clock);
    const local = await r.identities.create({ name });
    const open = async (
      target: string,
      trust: { anchor: VerifiedIdentity; policy?: TrustPolicy },
      as: LocalIdentity = local,
    ): Promise<SecureChannel> => {
      const connection = r.transport.connect(target);
      const anchors = new Map<Identifier, VerifiedIdentity>([
        [trust.anchor.identifier, trust.anchor],
      ]);
      const channel = await openSecureChannel(
        r.router,
        [localAddress(connection), localAddress('api')],
        {
          ...(await r.channelKey(as)),
          verify: {
            authorities: anchors,
            knownIdentities: anchors,
            trustPolicy: trust.policy ?? TrustPolicies.identifier(trust.anchor.identifier),
          },
          clock,
          handshakeTimeoutMs: 2_000,
        },
      );
      cleanups.push(() => channel.close());
      return channel;
    };
    const redeem = async (t: EnrollmentTicket, channel?: SecureChannel, code = t.code) =>
      redeemTicketOverChannel(
        r.router,
        channel ?? (await open('authority', { anchor: t.authority })),
        code,
        { authority: t.authority, subject: local.identity, clock },
      );
    /** Asks the authority for a fresh credential, through `channel` or a new one. */
    const fetch = async (channel?: SecureChannel, subject: VerifiedIdentity = local.identity) =>
      fetchCredentialOverChannel(
        r.router,
        channel ?? (await open('authority', { anchor: authorityLocal.identity })),
        { authority: authorityLocal.identity, subject, clock },
      );
    /** Sends raw bytes to `enroll` through `channel` and returns the decoded answer. */
    const raw = async (channel: SecureChannel, payload: Uint8Array): Promise<unknown> => {
      const answers = recorder();
      const address = `raw-${String(rawClients++)}`;
      r.router.registerWorker(address, answers);
      channel.allow(address);
      await r.router.send({
        onwardRoute: [localAddress(channel.address), localAddress('enroll')],
        returnRoute: [localAddress(address)],
        payload,
      });
      await until(() => answers.seen.length > 0);
      return decodeCbor(answers.seen[0]!.envelope.payload);
    };
    return { ...r, local, open, redeem, fetch, raw };
  };
  return {
    clock,
    network,
    a,
    authorityLocal,
    authority,
    repository,
    ticket,
    start,
    redeemer,
    events,
    denySet,
  };
}

let rawClients = 1;

/** Waits for `condition`, turning the event loop (no wall-clock sleeps). */
async function until(condition: () => boolean, turns = 2000): Promise<void> {
  for (let i = 0; i < turns && !condition(); i++)
    await new Promise((resolve) => setImmediate(resolve));
  if (!condition()) throw new Error('condition not reached');
}

async function rejection(promise: Promise<unknown>): Promise<MandateError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof MandateError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

const refused = (code: string) => [1, 2, code];

describe('EnrollmentService and redeemTicketOverChannel', () => {
  it('enrolls the channel peer and returns its verified credential', async () => {
    const w = await setup();
    await w.start();
    const t = await w.ticket();
    const dave = await w.redeemer('dave');
    const result = await dave.redeem(t);

    expect(result.verified.subject).toBe(dave.local.identity.identifier);
    expect(result.verified.issuer).toBe(w.authorityLocal.identity.identifier);
    expect(new TextDecoder().decode(result.verified.attributes.get('tools'))).toBe('=read_orders');
    expect(decodeCredential(result.credential).subject).toBe(dave.local.identity.identifier);
    expect(result.authority.identifier).toBe(w.authorityLocal.identity.identifier);
    // The authority enrolled the identity of the channel, with the ticket's attributes.
    const member = await w.authority.member(dave.local.identity.identifier);
    expect(member?.addedBy).toBe(w.authorityLocal.identity.identifier);
    expect(w.events).toEqual([{ type: 'enrolled', identifier: dave.local.identity.identifier }]);
  });

  it('refuses a used single-use ticket and a wrong code with ERR_TICKET_INVALID', async () => {
    const w = await setup();
    await w.start();
    const t = await w.ticket();
    const first = await w.redeemer('first');
    await first.redeem(t);
    const second = await w.redeemer('second');
    const again = await rejection(second.redeem(t));
    expect(again.code).toBe('ERR_TICKET_INVALID');
    expect(again.kind).toBe('unauthorized');
    expect(await w.authority.member(second.local.identity.identifier)).toBeUndefined();

    const fresh = await w.ticket();
    const wrong = await rejection(second.redeem(fresh, undefined, randomBytes(32)));
    expect(wrong.code).toBe('ERR_TICKET_INVALID');
    // The right code still works afterwards: a wrong guess consumes nothing.
    await second.redeem(fresh);
    expect(w.events.map((e) => e.type)).toEqual(['enrolled', 'refused', 'refused', 'enrolled']);
    // A ticket past its TTL: the same code.
    const late = await w.ticket();
    w.clock.advance(601);
    const expired = await rejection((await w.redeemer('late')).redeem(late));
    expect(expired.code).toBe('ERR_TICKET_INVALID');
  });

  it('refuses a message that did not come through a secure channel, even a valid code', async () => {
    const w = await setup();
    await w.start();
    const t = await w.ticket();
    const request = encodeCbor([1, 0, t.code]);

    // A local sender without a channel.
    const local = recorder();
    w.a.router.registerWorker('local-client', local);
    await w.a.router.send({
      onwardRoute: [localAddress('enroll')],
      returnRoute: [localAddress('local-client')],
      payload: request,
    });
    await until(() => local.seen.length > 0);
    expect(decodeCbor(local.seen[0]!.envelope.payload)).toEqual(
      refused('ERR_ENROLLMENT_FORBIDDEN'),
    );

    // Over the network in the clear: flow control drops it, as `enroll` is open to no connection…
    const eve = await w.redeemer('eve');
    const answers = recorder();
    eve.router.registerWorker('clear', answers);
    const connection = eve.transport.connect('authority');
    eve.router.allowFromConnection('clear', connection);
    const dropped = w.a.router.droppedCount;
    await eve.router.send({
      onwardRoute: [localAddress(connection), localAddress('enroll')],
      returnRoute: [localAddress('clear')],
      payload: request,
    });
    await until(() => w.a.router.droppedCount > dropped);
    // …and were it opened by mistake, the service itself refuses.
    w.a.router.allowFromAnyConnection('enroll');
    await eve.router.send({
      onwardRoute: [localAddress(connection), localAddress('enroll')],
      returnRoute: [localAddress('clear')],
      payload: request,
    });
    await until(() => answers.seen.length > 0);
    expect(decodeCbor(answers.seen[0]!.envelope.payload)).toEqual(
      refused('ERR_ENROLLMENT_FORBIDDEN'),
    );
    expect(answers.seen).toHaveLength(1);
    expect(await w.authority.member(eve.local.identity.identifier)).toBeUndefined();
    // Nothing was consumed: the ticket still enrolls through a channel.
    await eve.redeem(t);
    expect(w.events.at(-1)).toEqual({
      type: 'enrolled',
      identifier: eve.local.identity.identifier,
    });
  });

  it('answers malformed requests with ERR_ENROLLMENT_MALFORMED and consumes nothing', async () => {
    const w = await setup();
    await w.start();
    const t = await w.ticket();
    const mallory = await w.redeemer('mallory');
    const channel = await mallory.open('authority', { anchor: t.authority });
    const malformed = [
      new Uint8Array([0xff]), // not CBOR
      new Uint8Array(0),
      encodeCbor([1, 0]), // too short
      encodeCbor([1, 0, t.code, 0]), // too long
      encodeCbor([2, 0, t.code]), // version
      encodeCbor([1, 1, t.code]), // an answer, not a request
      encodeCbor([1, 7, t.code]), // unknown type
      encodeCbor([1, 0, t.code.subarray(0, 31)]), // a code of 31 bytes
      encodeCbor([1, 0, Buffer.from(t.code).toString('hex')]), // text, not bytes
      encodeCbor([1, 0, new Uint8Array(100)]), // beyond the bound
      encodeCbor([1, 3, new Uint8Array(0)]), // a renewal carries no body
      encodeCbor([1, 2]), // only a renewal has no body
      encodeCbor(new CborMap([[0, 1]])),
    ];
    for (const payload of malformed) {
      expect(await mallory.raw(channel, payload)).toEqual(refused('ERR_ENROLLMENT_MALFORMED'));
    }
    expect(await w.authority.member(mallory.local.identity.identifier)).toBeUndefined();
    // The well-formed request through the same channel still enrolls.
    const answer = await mallory.raw(channel, encodeCbor([1, 0, t.code]));
    expect(Array.isArray(answer) && answer.slice(0, 2)).toEqual([1, 1]);
  });

  it('neither enrolls nor renews a revoked identity, and refuses everyone on a stale deny-set', async () => {
    const w = await setup();
    await w.start();
    const t = await w.ticket();
    const dave = await w.redeemer('dave');
    await dave.redeem(await w.ticket());
    const mallory = await w.redeemer('mallory');
    for (const who of [dave, mallory])
      revoke(w.denySet, who.local.identity.identifier, {
        identity: true,
        expiresAt: NOW + 86_400,
        nowSeconds: NOW,
      });
    const renewal = await rejection(dave.fetch());
    expect(renewal.code).toBe('ERR_REVOKED');
    expect(renewal.kind).toBe('forbidden');
    expect(await rejection(mallory.redeem(t))).toMatchObject({ code: 'ERR_REVOKED' });
    expect(await w.authority.member(mallory.local.identity.identifier)).toBeUndefined();
    expect(w.events.filter((e) => e.type === 'refused').map((e) => e.reason)).toEqual([
      'ERR_REVOKED',
      'ERR_REVOKED',
    ]);
    // The refused redemption did not use the one-time ticket up.
    const carol = await w.redeemer('carol');
    await carol.redeem(t);
    // A deny-set not refreshed within its bound refuses everyone: fail closed.
    w.clock.advance(3_601);
    const stale = await rejection(carol.fetch());
    expect(stale.code).toBe('ERR_ENROLLMENT_FAILED');
    expect(await rejection(carol.redeem(await w.ticket()))).toMatchObject({
      code: 'ERR_ENROLLMENT_FAILED',
    });
  });

  it('maps a failure of the authority itself to ERR_ENROLLMENT_FAILED, without its message', async () => {
    const w = await setup();
    await w.a.listen(w.authorityLocal);
    const fault = () => Promise.reject(new Error('disk on fire at /var/db'));
    const service = new EnrollmentService(w.a.router, {
      // Fault injection: the authority's store is down (its member list still reads).
      authority: {
        redeem: fault,
        member: (identifier) => w.authority.member(identifier),
        issueCredential: fault,
      },
      identities: w.a.identities,
      denySet: w.denySet,
      clock: w.clock,
    });
    cleanups.push(() => service.close());
    const t = await w.ticket();
    const x = await w.redeemer('x');
    const error = await rejection(x.redeem(t));
    expect(error.code).toBe('ERR_ENROLLMENT_FAILED');
    expect(error.kind).toBe('unavailable');
    expect(error.message).not.toContain('disk');
    // The same for a member's renewal.
    await w.authority.addMember(
      w.authorityLocal.identity.identifier,
      x.local.identity.identifier,
      new Map(),
    );
    const renewal = await rejection(x.fetch());
    expect(renewal.code).toBe('ERR_ENROLLMENT_FAILED');
    expect(renewal.message).not.toContain('disk');
  });

  it('lets the redemption in flight finish when it closes', async () => {
    const w = await setup();
    await w.a.listen(w.authorityLocal);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered = false;
    const service = new EnrollmentService(w.a.router, {
      authority: {
        redeem: async (request, nowSeconds) => {
          entered = true;
          await gate;
          return w.authority.redeem(request, nowSeconds);
        },
        member: (identifier) => w.authority.member(identifier),
        issueCredential: (member, nowSeconds) => w.authority.issueCredential(member, nowSeconds),
      },
      identities: w.a.identities,
      denySet: w.denySet,
      clock: w.clock,
    });
    const t = await w.ticket();
    const dave = await w.redeemer('dave');
    const redeemed = dave.redeem(t);
    await until(() => entered);
    let closed = false;
    const closing = service.close().then(() => (closed = true));
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(false);
    release();
    await closing;
    expect((await redeemed).verified.subject).toBe(dave.local.identity.identifier);
  });

  it('sends the code to nobody but the ticket’s authority', async () => {
    const w = await setup();
    await w.start();
    const t = await w.ticket();
    // Eve listens with her own identity and an `enroll` worker that records everything.
    const impostor = node(w.network, 'impostor', w.clock);
    const eve = await impostor.identities.create({ name: 'eve' });
    await impostor.listen(eve);
    const stolen = recorder();
    impostor.router.registerWorker('enroll', stolen);

    const dave = await w.redeemer('dave');
    // The channel trusts only the ticket's authority: the handshake with Eve fails.
    const rejected = await rejection(dave.open('impostor', { anchor: t.authority }));
    expect(rejected.code).toBe('ERR_CHANNEL_PEER_REJECTED');
    // A channel opened with a lax policy: the client checks the peer before sending the code.
    const lax = await dave.open('impostor', {
      anchor: t.authority,
      policy: TrustPolicies.anyIdentity(),
    });
    expect(lax.peer.identifier).toBe(eve.identity.identifier);
    const mismatch = await rejection(dave.redeem(t, lax));
    expect(mismatch.code).toBe('ERR_ENROLLMENT_AUTHORITY_MISMATCH');
    expect(mismatch.kind).toBe('unauthorized');
    // Let any frame in flight arrive before judging what Eve received.
    await new Promise((resolve) => setImmediate(resolve));
    expect(stolen.seen).toEqual([]);
    // The ticket is intact: the real authority still enrolls dave.
    await dave.redeem(t);
    expect(await w.authority.member(dave.local.identity.identifier)).toBeDefined();
  });

  it('takes a newer authority history from the channel when the authority rotated', async () => {
    const w = await setup();
    const t = await w.ticket();
    w.clock.advance(10);
    const rotated = await w.a.identities.rotate('authority');
    expect(rotated.identity.changes).toHaveLength(2);
    await w.start(rotated);
    const dave = await w.redeemer('dave');
    const result = await dave.redeem(t);
    expect(result.authority.changes).toHaveLength(2);
    expect(result.verified.issuer).toBe(t.authority.identifier);
  });

  it('rejects answers outside the protocol, credentials that do not verify, and silence', async () => {
    const w = await setup();
    const t = await w.ticket();
    await w.a.listen(w.authorityLocal);
    // A stand-in authority service answering with whatever the case gives.
    let answer: ((ctx: MessageContext) => Promise<void>) | undefined;
    const requests: Uint8Array[] = [];
    w.a.router.registerWorker('enroll', {
      handleMessage: async (ctx, envelope) => {
        requests.push(envelope.payload);
        await answer?.(ctx);
      },
    });
    const dave = await w.redeemer('dave');
    const channel = await dave.open('authority', { anchor: t.authority });
    const issue = async (subject: VerifiedIdentity, vault: MemoryVault, identities: Identities) => {
      const key = await identities.purposeKey('authority', Purpose.credentials);
      const issuer = (await identities.get('authority')).identity;
      return issueCredential(
        vault,
        {
          identity: issuer,
          credentialKeyId: key.keyId,
          credentialKeyAttestation: key.verified.attestation,
        },
        subject,
        new Map(),
        { nowSeconds: NOW },
      );
    };
    const other = await w.redeemer('other');
    const forged = node(w.network, 'forger', w.clock);
    await forged.identities.create({ name: 'authority' });
    const cases: [string, Uint8Array][] = [
      ['ERR_ENROLLMENT_MALFORMED', new Uint8Array([0x00])],
      ['ERR_ENROLLMENT_MALFORMED', encodeCbor([1, 0, t.code])],
      ['ERR_ENROLLMENT_MALFORMED', encodeCbor([1, 2, 'ERR_SOMETHING_ELSE'])],
      ['ERR_ENROLLMENT_MALFORMED', encodeCbor([1, 1, new Uint8Array(20_000)])],
      // docs/spec/enrollment.md's example bytes
      ['ERR_TICKET_INVALID', fromHex('830102724552525f5449434b45545f494e56414c4944')],
      ['ERR_CREDENTIAL_MALFORMED', encodeCbor([1, 1, new Uint8Array(10)])],
      // A credential for someone else, and one from another issuer.
      [
        'ERR_CREDENTIAL_SUBJECT_MISMATCH',
        encodeCbor([1, 1, await issue(other.local.identity, w.a.vault, w.a.identities)]),
      ],
      [
        'ERR_CREDENTIAL_UNTRUSTED_ISSUER',
        encodeCbor([1, 1, await issue(dave.local.identity, forged.vault, forged.identities)]),
      ],
    ];
    for (const [code, payload] of cases) {
      answer = (ctx) => ctx.reply(payload);
      const error = await rejection(dave.redeem(t, channel));
      expect(error.code, code).toBe(code);
    }
    // Every request was docs/spec/enrollment.md's `[1, 0, code]`.
    expect(requests.map(toHex)).toEqual(cases.map(() => `8301005820${toHex(t.code)}`));
    // A renewal is `[1, 3]`, and the refusal of a non-member docs/spec/enrollment.md's example.
    requests.length = 0;
    answer = (ctx) => ctx.reply(fromHex('830102744552525f4d454d4245525f4e4f545f464f554e44'));
    const notMember = await rejection(dave.fetch(channel));
    expect(notMember.code).toBe('ERR_MEMBER_NOT_FOUND');
    expect(notMember.kind).toBe('not_found');
    expect(requests.map(toHex)).toEqual(['820103']);
    // No answer at all.
    answer = undefined;
    const silent = await rejection(
      redeemTicketOverChannel(dave.router, channel, t.code, {
        authority: t.authority,
        subject: dave.local.identity,
        clock: w.clock,
        timeoutMs: 200,
      }),
    );
    expect(silent.code).toBe('ERR_ENROLLMENT_TIMEOUT');
    expect(silent.kind).toBe('timeout');
  });

  it('checks its arguments before sending anything', async () => {
    const w = await setup();
    await w.start();
    const t = await w.ticket();
    const dave = await w.redeemer('dave');
    const channel = await dave.open('authority', { anchor: t.authority });
    const base = { authority: t.authority, subject: dave.local.identity };
    for (const [code, options] of [
      [new Uint8Array(31), base],
      [t.code, { ...base, timeoutMs: 0 }],
    ] as const) {
      const error = await rejection(redeemTicketOverChannel(dave.router, channel, code, options));
      expect(error.code).toBe('ERR_ARGUMENT_INVALID');
    }
    expect(w.events).toEqual([]);
  });
});

describe('renewal: fetchCredentialOverChannel', () => {
  it('issues a member a fresh credential with its stored attributes, as often as asked', async () => {
    const w = await setup({ defaultCredentialTtlSeconds: 30 });
    await w.start();
    const dave = await w.redeemer('dave');
    const first = await dave.redeem(await w.ticket());
    expect(first.verified.expiresAt).toBe(NOW + 30);

    w.clock.advance(20);
    const channel = await dave.open('authority', { anchor: w.authorityLocal.identity });
    const fresh = await dave.fetch(channel);
    expect(fresh.verified.subject).toBe(dave.local.identity.identifier);
    expect(fresh.verified.issuer).toBe(w.authorityLocal.identity.identifier);
    expect(new TextDecoder().decode(fresh.verified.attributes.get('tools'))).toBe('=read_orders');
    expect(fresh.verified.createdAt).toBe(NOW + 20);
    expect(fresh.verified.expiresAt).toBe(NOW + 50);
    expect(fresh.verified.revocationId).not.toBe(first.verified.revocationId);
    expect(fresh.authority.identifier).toBe(w.authorityLocal.identity.identifier);
    // The same channel serves the next renewal.
    w.clock.advance(20);
    expect((await dave.fetch(channel)).verified.expiresAt).toBe(NOW + 70);
    const identifier = dave.local.identity.identifier;
    expect(w.events).toEqual([
      { type: 'enrolled', identifier },
      { type: 'renewed', identifier, expiresAt: NOW + 50 },
      { type: 'renewed', identifier, expiresAt: NOW + 70 },
    ]);
  });

  it('refuses a non-member and a removed member with ERR_MEMBER_NOT_FOUND, storing nothing', async () => {
    const w = await setup();
    await w.start();
    const eve = await w.redeemer('eve');
    const stranger = await rejection(eve.fetch());
    expect(stranger.code).toBe('ERR_MEMBER_NOT_FOUND');
    expect(stranger.kind).toBe('not_found');
    // A stranger's history is not written to the authority's store.
    const known = await w.a.identities.get(eve.local.identity.identifier).catch(() => undefined);
    expect(known).toBeUndefined();

    const dave = await w.redeemer('dave');
    await dave.redeem(await w.ticket());
    await dave.fetch();
    await w.authority.removeMember(
      w.authorityLocal.identity.identifier,
      dave.local.identity.identifier,
    );
    const removed = await rejection(dave.fetch());
    expect(removed.code).toBe('ERR_MEMBER_NOT_FOUND');
    expect(w.events.filter((e) => e.type === 'refused')).toEqual([
      {
        type: 'refused',
        identifier: eve.local.identity.identifier,
        reason: 'ERR_MEMBER_NOT_FOUND',
      },
      {
        type: 'refused',
        identifier: dave.local.identity.identifier,
        reason: 'ERR_MEMBER_NOT_FOUND',
      },
    ]);
  });

  it('refuses a renewal that did not come through a secure channel', async () => {
    const w = await setup();
    await w.start();
    const dave = await w.redeemer('dave');
    await dave.redeem(await w.ticket());
    // A local sender, and a clear message over the network to an `enroll` opened by mistake.
    const answers = recorder();
    w.a.router.registerWorker('local-client', answers);
    await w.a.router.send({
      onwardRoute: [localAddress('enroll')],
      returnRoute: [localAddress('local-client')],
      payload: encodeCbor([1, 3]),
    });
    w.a.router.allowFromAnyConnection('enroll');
    dave.router.registerWorker('clear', answers);
    const connection = dave.transport.connect('authority');
    dave.router.allowFromConnection('clear', connection);
    await dave.router.send({
      onwardRoute: [localAddress(connection), localAddress('enroll')],
      returnRoute: [localAddress('clear')],
      payload: encodeCbor([1, 3]),
    });
    await until(() => answers.seen.length === 2);
    for (const { envelope } of answers.seen)
      expect(decodeCbor(envelope.payload)).toEqual(refused('ERR_ENROLLMENT_FORBIDDEN'));
    expect(w.events.filter((e) => e.type === 'renewed')).toEqual([]);
  });

  it('refuses a member’s older history once the authority knows a newer one, and records it', async () => {
    const w = await setup();
    await w.start();
    const dave = await w.redeemer('dave');
    await dave.redeem(await w.ticket());
    const anchor = { anchor: w.authorityLocal.identity };
    const before = await dave.open('authority', anchor);
    w.clock.advance(10);
    const rotated = await dave.identities.rotate('dave');
    // Renewing with the rotated history: the authority records it…
    const fresh = await dave.fetch(await dave.open('authority', anchor, rotated), rotated.identity);
    expect(fresh.verified.subject).toBe(dave.local.identity.identifier);
    const recorded = await w.a.identities.get(dave.local.identity.identifier);
    expect(recorded.identity.changes).toHaveLength(2);
    // …and from then on the rotated-out key gets nothing, even on a channel it opened before.
    const older = await rejection(dave.fetch(before));
    expect(older.code).toBe('ERR_IDENTITY_HISTORY_OLDER');
    expect(older.kind).toBe('conflict');
  });

  it('refuses a member whose attributes the authority no longer grants (ERR_AUTHORITY_POLICY)', async () => {
    const w = await setup();
    await w.a.listen(w.authorityLocal);
    // The same authority and store, its policy narrowed since the member was added.
    const narrowed = new Authority({
      identities: w.a.identities,
      vault: w.a.vault,
      repository: w.repository,
      authority: 'authority',
      clock: w.clock,
      policy: { grantable: new Map([parseConstraint('tools=write_orders')]) },
    });
    const service = new EnrollmentService(w.a.router, {
      authority: narrowed,
      identities: w.a.identities,
      denySet: w.denySet,
      clock: w.clock,
    });
    cleanups.push(() => service.close());
    const dave = await w.redeemer('dave');
    await w.authority.addMember(
      w.authorityLocal.identity.identifier,
      dave.local.identity.identifier,
      constraintsToAttributes(new Map([parseConstraint('tools=read_orders')])),
    );
    const error = await rejection(dave.fetch());
    expect(error.code).toBe('ERR_AUTHORITY_POLICY');
    expect(error.kind).toBe('forbidden');
  });

  it('asks nobody but the authority, and checks its arguments before sending', async () => {
    const w = await setup();
    await w.start();
    const impostor = node(w.network, 'impostor', w.clock);
    const eve = await impostor.identities.create({ name: 'eve' });
    await impostor.listen(eve);
    const stolen = recorder();
    impostor.router.registerWorker('enroll', stolen);
    const dave = await w.redeemer('dave');
    await dave.redeem(await w.ticket());
    const anchor = w.authorityLocal.identity;

    const rejected = await rejection(dave.open('impostor', { anchor }));
    expect(rejected.code).toBe('ERR_CHANNEL_PEER_REJECTED');
    const lax = await dave.open('impostor', { anchor, policy: TrustPolicies.anyIdentity() });
    const mismatch = await rejection(dave.fetch(lax));
    expect(mismatch.code).toBe('ERR_ENROLLMENT_AUTHORITY_MISMATCH');
    expect(mismatch.kind).toBe('unauthorized');
    await new Promise((resolve) => setImmediate(resolve));
    expect(stolen.seen).toEqual([]);

    const channel = await dave.open('authority', { anchor });
    const zero = await rejection(
      fetchCredentialOverChannel(dave.router, channel, {
        authority: anchor,
        subject: dave.local.identity,
        timeoutMs: 0,
      }),
    );
    expect(zero.code).toBe('ERR_ARGUMENT_INVALID');
    expect(w.events.map((e) => e.type)).toEqual(['enrolled']);
  });
});
