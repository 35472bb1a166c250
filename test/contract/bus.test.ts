import { InProcessBus } from '../../src/bus/index.js';
import { busContract } from './bus-contract.js';

// The bus contract against each implementation: in process (the publisher's own bus), and over a
// secure channel (the authority's bus served by its BusService, followed by a ChannelBusSubscriber).

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
