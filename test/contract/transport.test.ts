import { createServer } from 'node:net';
import { MemoryNetwork, MemoryTransport } from '../../src/routing/memory-transport.js';
import { Router, TcpTransport, TransportType } from '../../src/routing/index.js';
import { transportContract } from './transport-contract.js';

const network = new MemoryNetwork();
let names = 0;

transportContract({
  name: 'memory',
  node: () => {
    const router = new Router();
    return { router, transport: new MemoryTransport(router, network) };
  },
  listen: (node) => {
    if (!(node.transport instanceof MemoryTransport)) throw new Error('not a memory node');
    return Promise.resolve(node.transport.listen(`node-${String(++names)}`));
  },
  connect: (node, address) => {
    if (!(node.transport instanceof MemoryTransport)) throw new Error('not a memory node');
    return node.transport.connect(address.value);
  },
  nowhere: () => Promise.resolve({ type: TransportType.memory, value: 'nobody-listens-here' }),
});

transportContract({
  name: 'tcp',
  node: () => {
    const router = new Router();
    return { router, transport: new TcpTransport(router) };
  },
  listen: async (node) => {
    if (!(node.transport instanceof TcpTransport)) throw new Error('not a tcp node');
    return (await node.transport.listen()).address;
  },
  connect: (node, address) => {
    if (!(node.transport instanceof TcpTransport)) throw new Error('not a tcp node');
    return node.transport.connect(address.value);
  },
  // A port that was free a moment ago: listen on 0, close.
  nowhere: async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const bound = server.address();
    await new Promise((resolve) => server.close(resolve));
    if (bound === null || typeof bound === 'string') throw new Error('no port');
    return { type: TransportType.tcp, value: `127.0.0.1:${String(bound.port)}` };
  },
});
