import {
  constraintsToAttributes,
  parseConstraint,
  type Authority,
} from '../../credentials/index.js';
import type { Identifier, VerifiedIdentity } from '../../identity/index.js';
import {
  localAddress,
  MemoryNetwork,
  MemoryTransport,
  parseRoute,
  Router,
  type Envelope,
} from '../../routing/index.js';
import {
  openSecureChannel,
  prepareChannelIdentity,
  registerRelay,
  RelayService,
  SecureChannelListener,
  TrustPolicies,
  withCredentials,
  type SecureChannelOptions,
} from '../../channel/index.js';
import type { Home } from '../home.js';
import { invalid } from '../../core/internal.js';

export interface ChannelScenarioSummary {
  readonly channels: number;
  readonly handshakesPerSecond: number;
  /** How long the `channels` concurrent handshakes through the relay took, all together. */
  readonly handshakeSeconds: number;
  readonly echoed: number;
  readonly bytesRelayed: number;
  readonly plaintextSeenByRelay: boolean;
  readonly tamperedFrameDropped: boolean;
  /** After every credential's expiry: callers whose credentials were refreshed in-band, answered. */
  readonly refreshedStillAnswered: number;
  /** Callers that were not refreshed: their messages were dropped by the support agent. */
  readonly expiredCutOff: number;
}

const settle = async (turns = 20): Promise<void> => {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
};

/**
 * Step 8 of the demo: agents reach a support agent through a relay over end-to-end secure
 * channels (in-process routers joined by the memory transport). The relay counts what it
 * forwards and never sees a plaintext; a relay that flips a bit in one frame is caught.
 */
export async function runChannelScenario(
  home: Home,
  authority: Authority,
  agents: readonly Identifier[],
  nowSeconds: number,
  say: (text: string) => void,
): Promise<ChannelScenarioSummary> {
  const authorityId = await authority.identifier();
  const authorities = new Map([[authorityId, await authority.identity()]]);
  // The scenario moves the clock on once, past the first credentials' expiry.
  let now = nowSeconds;
  const clock = { nowSeconds: () => now };
  // Every party checks its peers against the home's deny-set, as nodes do; on the scenario's
  // clock, so it is polled again (`refresh`) whenever that clock moves.
  const watcher = await home.watchDenySet({ clock });
  const denySet = watcher.denySet;
  // Each party: a fresh X25519 key attested by its primary key, and a credential from the authority.
  const party = async (
    identity: VerifiedIdentity,
    primaryKeyId: string,
    grant: readonly string[],
  ): Promise<SecureChannelOptions & { readonly identity: VerifiedIdentity }> => {
    await authority.addMember(
      authorityId,
      identity.identifier,
      constraintsToAttributes(new Map(grant.map((g) => parseConstraint(g)))),
      { nowSeconds },
    );
    const credential = await authority.issueCredential(identity, nowSeconds);
    return {
      identity,
      ...(await prepareChannelIdentity(home.vault, {
        identity,
        primaryKeyId,
        credentials: [credential],
        nowSeconds,
      })),
      verify: { authorities, trustPolicy: TrustPolicies.credentialHolder(), denySet },
      clock,
    };
  };
  const local = async (ref: string) => {
    const known = await home.identities.get(ref);
    if (known.primaryKeyId === null)
      throw invalid('ERR_IDENTITY_NOT_LOCAL', `\`${ref}\` is not local`);
    return { identity: known.identity, primaryKeyId: known.primaryKeyId };
  };
  const network = new MemoryNetwork();
  const transports: MemoryTransport[] = [];
  const node = (name: string) => {
    const router = new Router();
    const transport = new MemoryTransport(router, network);
    transport.listen(name);
    transports.push(transport);
    return { router, transport };
  };
  try {
    // The relay node: a listener for registrations and the relay service, watching its traffic.
    const relayIdentity = (await home.identities.create({ name: 'relay-node', purposeKeys: false }))
      .identity;
    const relayNode = node('relay');
    const relayListener = new SecureChannelListener(
      relayNode.router,
      await party(relayIdentity, (await local('relay-node')).primaryKeyId, ['tools=relay']),
    );
    relayNode.router.allowFromAnyConnection('api');
    const relayService = new RelayService(relayNode.router, { listener: relayListener });
    let bytesRelayed = 0;
    const relayed: Uint8Array[] = [];
    let tamperNext = false;
    const send = relayNode.router.send.bind(relayNode.router);
    relayNode.router.send = (envelope: Envelope, options) => {
      bytesRelayed += envelope.payload.byteLength;
      relayed.push(envelope.payload);
      // The attack: a relay that flips one bit of one transport frame (type byte 1).
      if (tamperNext && envelope.payload[0] === 1) {
        tamperNext = false;
        const payload = envelope.payload.slice();
        payload[payload.length - 1]! ^= 1;
        return send({ ...envelope, payload }, options);
      }
      return send(envelope, options);
    };

    // The support agent registers `support` at the relay (its credential grants that name).
    const supportRef = agents[0]!;
    const support = await local(supportRef);
    const supportNode = node('support');
    const supportOptions = await party(support.identity, support.primaryKeyId, [
      'relay=support',
      'tools=read_orders',
    ]);
    const toRelay = supportNode.transport.connect('relay');
    const supportChannel = await openSecureChannel(
      supportNode.router,
      [localAddress(toRelay), localAddress('api')],
      supportOptions,
    );
    await registerRelay(supportNode.router, {
      channel: supportChannel,
      connection: toRelay,
      name: 'support',
    });
    const supportListener = new SecureChannelListener(supportNode.router, supportOptions);
    supportNode.router.registerWorker('echo', {
      async handleMessage(ctx, envelope) {
        await ctx.reply(envelope.payload);
      },
    });
    supportListener.allow('echo');

    // Agents open channels to `support` through the relay, concurrently, and each sends a message.
    const callers = agents.slice(1, Math.min(agents.length, 101));
    say(
      `8. ${callers.length} agents open end-to-end secure channels to the support agent through a relay`,
    );
    const started = process.hrtime.bigint();
    const channels = await Promise.all(
      callers.map(async (ref, i) => {
        const me = await local(ref);
        const n = node(`caller-${i}`);
        const route = [
          localAddress(n.transport.connect('relay')),
          ...parseRoute('/relay/support/service/api'),
        ];
        const options = await party(me.identity, me.primaryKeyId, ['tools=read_orders']);
        const channel = await openSecureChannel(n.router, route, options);
        return { router: n.router, channel, options };
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const secret = new TextEncoder().encode('order #4471: customer address 12 Example Street');
    let echoed = 0;
    for (const { router, channel } of channels) {
      router.registerWorker('inbox', {
        handleMessage(_ctx, envelope) {
          if (Buffer.from(envelope.payload).equals(Buffer.from(secret))) echoed++;
        },
      });
      channel.allow('inbox');
      await router.send({
        onwardRoute: [localAddress(channel.address), localAddress('echo')],
        returnRoute: [localAddress('inbox')],
        payload: secret,
      });
    }
    await settle(50);
    const plaintextSeenByRelay = relayed.some((p) => Buffer.from(p).includes(Buffer.from(secret)));

    // The tampering relay: one flipped bit, caught by the receiving end, nothing delivered.
    const victim = channels[0]!;
    const before = echoed;
    tamperNext = true;
    await victim.router.send({
      onwardRoute: [localAddress(victim.channel.address), localAddress('echo')],
      returnRoute: [localAddress('inbox')],
      payload: secret,
    });
    await settle(50);
    const tamperedFrameDropped = echoed === before && supportListener.droppedCount > 0;
    say(
      `   ${echoed}/${channels.length} echoed end to end; relay forwarded ${bytesRelayed} bytes so far, plaintext seen: ${plaintextSeenByRelay ? 'YES' : 'no'}`,
    );
    say(
      `   a relay flipping one bit of a frame → ${tamperedFrameDropped ? 'detected and dropped' : 'NOT DETECTED'}`,
    );

    // Credentials last an hour. Half an hour in, the authority issues fresh ones to the support
    // agent and to every other caller, which present them in-band on their open channels; then
    // the clock passes the first hour. The refreshed keep talking; the others are cut off.
    say('   credentials refreshed in-band on open channels; then the first credentials expire');
    now = nowSeconds + 1800;
    await watcher.refresh();
    const renew = async (options: (typeof channels)[number]['options']): Promise<Uint8Array> =>
      withCredentials(options.identityPayload, [
        await authority.issueCredential(options.identity, now),
      ]);
    // The support agent presents its renewal to its callers and to the relay, whose `support`
    // name holds only while the registration channel's credential grants it.
    const supportRenewed = await renew(supportOptions);
    await supportListener.refreshCredentials(supportRenewed);
    await supportChannel.refreshCredentials(supportRenewed);
    const refreshed = channels.filter((_, i) => i % 2 === 0);
    for (const { channel, options } of refreshed) {
      await channel.refreshCredentials(await renew(options));
    }
    await settle(50);
    now = nowSeconds + 3600 + 60;
    await watcher.refresh();
    const echoedBefore = echoed;
    const droppedBefore = supportListener.droppedCount;
    for (const { router, channel } of channels) {
      await router.send({
        onwardRoute: [localAddress(channel.address), localAddress('echo')],
        returnRoute: [localAddress('inbox')],
        payload: secret,
      });
    }
    await settle(50);
    const refreshedStillAnswered = echoed - echoedBefore;
    const expiredCutOff = supportListener.droppedCount - droppedBefore;
    say(
      `   ${refreshedStillAnswered}/${refreshed.length} refreshed callers still answered; ${expiredCutOff}/${channels.length - refreshed.length} with expired credentials cut off`,
    );

    for (const { channel } of channels) await channel.close();
    await supportChannel.close();
    await supportListener.close();
    relayService.close();
    await relayListener.close();
    return {
      channels: channels.length,
      handshakesPerSecond: Math.round(channels.length / seconds),
      handshakeSeconds: seconds,
      echoed: echoedBefore,
      bytesRelayed,
      plaintextSeenByRelay,
      tamperedFrameDropped,
      refreshedStillAnswered,
      expiredCutOff,
    };
  } finally {
    for (const t of transports) await t.close();
    await watcher.stop();
  }
}
