// One worker of the parallel-creation benchmark: creates agent identities for a fixed time.
import { parentPort, workerData } from 'node:worker_threads';
import { Identities, MemoryIdentityRepository } from '../src/identity/index.js';
import { MemoryVault } from '../src/vault/index.js';

const { seconds } = workerData as { seconds: number };
const identities = new Identities({
  vault: new MemoryVault(),
  repository: new MemoryIdentityRepository(),
});
await identities.createMany(200); // warm-up
const end = performance.now() + seconds * 1000;
let count = 0;
while (performance.now() < end) {
  await identities.createMany(100, { batchSize: 100 });
  count += 100;
}
parentPort?.postMessage(count);
