import { InProcessBus } from '../../src/bus/index.js';
import {
  openSecureChannel,
  SecureChannelListener,
  TrustPolicies,
} from '../../src/channel/index.js';
import { notFound } from '../../src/core/internal.js';
import { BusService } from '../../src/node/bus-service.js';
import { ChannelBusSubscriber } from '../../src/node/channel-bus-subscriber.js';
import { localAddress, MemoryNetwork, MemoryTransport, Router } from '../../src/routing/index.js';
import { channelWorld } from '../helpers/channel-world.js';
import { busContract } from './bus-contract.js';

// The bus contract against each implementation: in process (the publisher's own bus), and over a
// secure channel (the authority's bus served by its BusService, followed by a ChannelBusSubscriber
// on another router, across a memory transport that encodes every envelope).

busContract({
  name: 'in-process',
  make: (options) => {
    const bus = new InProcessBus(options);
    return Promise.resolve({
      publisher: bus,
      subscriber: bus,
      close: () => {
        bus.close();
        return Promise.resolve();
      },
    });
  },
});

let networks = 0;

busContract({
  name: 'over a secure channel',
  make: async (options) => {
    const world = await channelWorld(Math.floor(Date.now() / 1000));
    const authority = await world.party('authority-node', null);
    const member = await world.party('member', null);
    const network = new MemoryNetwork();
    const name = `authority-${networks++}`;
    const authorityRouter = new Router();
    const authorityTransport = new MemoryTransport(authorityRouter, network);
    authorityTransport.listen(name);
    const memberRouter = new Router();
    const memberTransport = new MemoryTransport(memberRouter, network);
    const bus = new InProcessBus(options);
    const listener = new SecureChannelListener(authorityRouter, {
      staticKey: authority.staticKey,
      identityPayload: authority.identityPayload,
      verify: { authorities: new Map(), trustPolicy: TrustPolicies.anyIdentity() },
      deliverTo: ['bus'],
    });
    authorityRouter.allowFromAnyConnection('api');
    const service = new BusService(authorityRouter, {
      bus,
      authorize: (peer) =>
        peer.identifier === member.identity.identifier
          ? Promise.resolve()
          : Promise.reject(notFound('ERR_MEMBER_NOT_FOUND', 'not a member')),
    });
    const subscriber = new ChannelBusSubscriber({
      router: memberRouter,
      random: () => 0.5,
      connect: (onClosed) =>
        openSecureChannel(
          memberRouter,
          [localAddress(memberTransport.connect(name)), localAddress('api')],
          {
            staticKey: member.staticKey,
            identityPayload: member.identityPayload,
            verify: {
              authorities: new Map(),
              trustPolicy: TrustPolicies.identifier(authority.identity.identifier),
            },
            onEvent: (event) => {
              if (event.type === 'closed') onClosed();
            },
          },
        ),
    });
    return {
      publisher: bus,
      subscriber,
      close: async () => {
        await subscriber.stop();
        service.close();
        bus.close();
        await listener.close();
        await memberRouter.close();
        await authorityRouter.close();
      },
    };
  },
});
