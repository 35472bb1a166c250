import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { conflict, internal, invalid, startSiblingWorker } from '../core/internal.js';
import { MandateError } from '../core/index.js';
import { wipe, type SecretBytes } from '../crypto/index.js';
import type { Identifier, IdentityRepository } from '../identity/index.js';
import { SigningKeyType, type SealedKeyRepository } from '../vault/index.js';
import type {
  ProvisionClose,
  ProvisionInit,
  ProvisionReply,
  ProvisionRequest,
  ProvisionResult,
} from './provision-protocol.js';

/**
 * Where {@link provisionIdentities} writes: the identity repository and the sealed-key repository, sharing transactions.
 */
export interface ProvisionTarget {
  /** Where identities and their purpose keys go; its `transaction` must also cover `vaultKeys`. */
  readonly identities: IdentityRepository;
  /** Where the sealed keys go (the SoftwareVault's repository). */
  readonly vaultKeys: SealedKeyRepository;
  /** The KEK the SoftwareVault of `vaultKeys` uses; lent to the workers, never kept. */
  readonly kek: SecretBytes;
}

/**
 * Options of {@link IdentityProvisioner}.
 */
export interface ProvisionerOptions {
  /** Worker threads (default: one per core; at most 16). */
  readonly workers?: number;
}

/**
 * Options of {@link provisionIdentities}: how many identities, in batches of what size, named how.
 */
export interface ProvisionOptions extends ProvisionerOptions {
  readonly count: number;
  /** Identities per worker request and per transaction (default 500). */
  readonly batchSize?: number;
  /** Names become `${namePrefix}${index}`; without it identities are unnamed. */
  readonly namePrefix?: string;
  readonly keyType?: SigningKeyType;
  readonly onProgress?: (done: number, total: number) => void;
}

const DEFAULT_BATCH_SIZE = 500;
/** Identities one call creates at most: a bound on its memory (their identifiers are returned). */
export const MAX_PROVISION_COUNT = 1_000_000;
const MAX_WORKERS = 16;

/**
 * Bulk creation of agent identities on every core: worker threads generate keys, histories and
 * attestations and seal the keys under the vault's KEK; this thread writes each batch — sealed
 * keys, histories, purpose keys — in one transaction, so a crash keeps whole batches only,
 * exactly as `Identities.createMany` does on one thread. No secret crosses a thread in the
 * clear except the KEK, handed to each worker once and wiped from the message.
 *
 * A provisioner keeps its workers between calls (a node that enrolls agents all day starts them
 * once); `provisionIdentities` is the one-shot form.
 */
export class IdentityProvisioner {
  readonly #target: ProvisionTarget;
  readonly #workers: Worker[];
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(target: ProvisionTarget, workers: Worker[]) {
    this.#target = target;
    this.#workers = workers;
  }

  static start(target: ProvisionTarget, options: ProvisionerOptions = {}): IdentityProvisioner {
    const count = options.workers ?? availableParallelism();
    if (!Number.isSafeInteger(count) || count < 1 || count > MAX_WORKERS) {
      throw invalid(
        'ERR_ARGUMENT_INVALID',
        `\`workers\` must be an integer from 1 to ${MAX_WORKERS}`,
      );
    }
    const workers = Array.from({ length: count }, () => startWorker());
    for (const worker of workers) {
      const kek = new Uint8Array(target.kek.expose());
      worker.postMessage({ type: 'init', kek } satisfies ProvisionInit); // cloned synchronously
      wipe(kek);
    }
    return new IdentityProvisioner(target, workers);
  }

  /** Creates `count` identities; calls on one provisioner run one after another. */
  provision(options: Omit<ProvisionOptions, 'workers'>): Promise<Identifier[]> {
    const run = this.#queue.then(() => this.#provision(options));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #provision(options: Omit<ProvisionOptions, 'workers'>): Promise<Identifier[]> {
    if (this.#closed) throw invalid('ERR_ARGUMENT_INVALID', 'the provisioner is closed');
    const { count } = options;
    checkCount(count);
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw invalid('ERR_ARGUMENT_INVALID', '`batchSize` must be a positive integer');
    }
    const keyType = options.keyType ?? SigningKeyType.ed25519;
    // Refuse a taken name before any worker starts: finding it in batch 7 would leave batches
    // 0–6 written and the caller with half a swarm. (The check in `store` still guards a race.)
    if (options.namePrefix !== undefined) {
      for (let i = 0; i < count; i++) {
        const name = `${options.namePrefix}${i}`;
        if ((await this.#target.identities.getIdentityByName(name)) !== undefined)
          throw conflict('ERR_IDENTITY_NAME_TAKEN', `an identity named \`${name}\` already exists`);
      }
    }
    const batches = Math.ceil(count / batchSize);
    const created: Identifier[] = new Array<Identifier>(count);
    let done = 0;
    let nextBatch = 0;
    // Each worker pulls the next batch as soon as it has handed one back, while this thread
    // writes the batches one transaction at a time in the order they arrive. A worker stays at
    // most one batch ahead of the writes, which bounds memory; the first failed write stops
    // every worker.
    let writes = Promise.resolve();
    let failed = false;
    await Promise.all(
      this.#workers.map(async (worker) => {
        let previousWrite = Promise.resolve();
        while (nextBatch < batches && !failed) {
          const batch = nextBatch++;
          const start = batch * batchSize;
          const request: ProvisionRequest = {
            type: 'create',
            batch,
            count: Math.min(batchSize, count - start),
            keyType,
          };
          const result = await ask(worker, request);
          await previousWrite;
          writes = writes.then(async () => {
            if (failed) return;
            try {
              await store(this.#target, result, start, options.namePrefix, created);
            } catch (error) {
              failed = true;
              throw error;
            }
            done += result.identities.length;
            options.onProgress?.(done, count);
          });
          previousWrite = writes;
        }
        await previousWrite;
      }),
    );
    await writes;
    return created;
  }

  /** Lets every worker wipe its copy of the KEK and exit. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    await Promise.all(this.#workers.map(stopWorker));
  }
}

/** One-shot bulk creation: starts a provisioner, provisions, and closes it. */
export async function provisionIdentities(
  target: ProvisionTarget,
  options: ProvisionOptions,
): Promise<Identifier[]> {
  const { count } = options;
  checkCount(count);
  // No more workers than batches: a small job need not start every core.
  const batches = Math.ceil(count / (options.batchSize ?? DEFAULT_BATCH_SIZE));
  const workers = Math.min(
    options.workers ?? availableParallelism(),
    Number.isFinite(batches) ? Math.max(1, batches) : 1,
  );
  const provisioner = IdentityProvisioner.start(target, { workers });
  try {
    return await provisioner.provision(options);
  } finally {
    await provisioner.close();
  }
}

async function store(
  target: ProvisionTarget,
  result: ProvisionResult,
  start: number,
  namePrefix: string | undefined,
  created: Identifier[],
): Promise<void> {
  await target.identities.transaction(async () => {
    if (target.vaultKeys.putKeys !== undefined) await target.vaultKeys.putKeys(result.keys);
    else for (const key of result.keys) await target.vaultKeys.putKey(key);
    for (const [i, { identity, purposeKeys }] of result.identities.entries()) {
      const name = namePrefix === undefined ? null : `${namePrefix}${start + i}`;
      if (name !== null && (await target.identities.getIdentityByName(name)) !== undefined) {
        throw conflict('ERR_IDENTITY_NAME_TAKEN', `an identity named \`${name}\` already exists`);
      }
      await target.identities.putIdentity({ ...identity, name }, purposeKeys);
      created[start + i] = identity.identifier;
    }
  });
}

function ask(worker: Worker, request: ProvisionRequest): Promise<ProvisionResult> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: ProvisionReply): void => {
      if (reply.batch !== request.batch) return;
      cleanup();
      if (reply.type === 'created') resolve(reply);
      else reject(new MandateError(reply.code, reply.kind, reply.message));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(internal('ERR_PROVISION_WORKER_FAILED', 'a provisioning worker thread failed', error));
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(
        internal(
          'ERR_PROVISION_WORKER_FAILED',
          `a provisioning worker thread exited with code ${code}`,
        ),
      );
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.once('error', onError);
    worker.once('exit', onExit);
    worker.postMessage(request);
  });
}

/** Lets the worker wipe its copy of the KEK and leave; terminates it if it does not. */
async function stopWorker(worker: Worker): Promise<void> {
  const exited = new Promise<void>((resolve) =>
    worker.once('exit', () => {
      resolve();
    }),
  );
  worker.postMessage({ type: 'close' } satisfies ProvisionClose);
  const timer = setTimeout(() => void worker.terminate(), 2000);
  await exited;
  clearTimeout(timer);
}

function startWorker(): Worker {
  return startSiblingWorker(import.meta.url, 'provision-worker');
}

function checkCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_PROVISION_COUNT) {
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `\`count\` must be an integer from 1 to ${MAX_PROVISION_COUNT.toLocaleString('en-US')}`,
    );
  }
}
