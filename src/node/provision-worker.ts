// A worker thread of `provisionIdentities`: creates agent identities with a SoftwareVault under
// the same KEK as the main thread and hands back sealed keys and histories, batch by batch.
import { parentPort } from 'node:worker_threads';
import { ErrorKind, isMandateError } from '../core/index.js';
import { SecureArena, wipe, type SecretBytes } from '../crypto/index.js';
import { Identities, MemoryIdentityRepository, Purpose } from '../identity/index.js';
import {
  InMemorySealedKeyRepository,
  SoftwareVault,
  type SealedKeyRecord,
} from '../vault/index.js';
import type {
  ProvisionClose,
  ProvisionInit,
  ProvisionReply,
  ProvisionRequest,
} from './provision-protocol.js';

/** Keeps what the vault seals, so the batch's records can be handed back. */
class CollectingRepository extends InMemorySealedKeyRepository {
  readonly records: SealedKeyRecord[] = [];
  override async putKey(record: SealedKeyRecord): Promise<void> {
    await super.putKey(record);
    this.records.push(record);
  }
}

const port = parentPort;
if (port === null) throw new Error('provision-worker runs only as a worker thread');

let kek: SecretBytes | undefined;

port.on('message', (message: ProvisionInit | ProvisionRequest | ProvisionClose) => {
  if (message.type === 'init') {
    kek = new SecureArena(64).allocateFrom(message.kek);
    wipe(message.kek);
    return;
  }
  if (message.type === 'close') {
    kek?.destroy();
    port.close();
    return;
  }
  void create(message).then((reply) => {
    port.postMessage(reply);
  });
});

async function create(request: ProvisionRequest): Promise<ProvisionReply> {
  if (kek === undefined) {
    return {
      type: 'failed',
      batch: request.batch,
      code: 'ERR_INTERNAL',
      kind: ErrorKind.internal,
      message: 'worker not initialised',
    };
  }
  const repository = new CollectingRepository();
  const vault = new SoftwareVault({ repository, kek, cacheKeys: request.count * 3 + 8 });
  const identityRepository = new MemoryIdentityRepository();
  const identities = new Identities({ vault, repository: identityRepository });
  try {
    const created = await identities.createMany(request.count, {
      batchSize: request.count,
      keyType: request.keyType,
    });
    const out = [];
    for (const { identity } of created) {
      const stored = await identityRepository.getIdentity(identity.identifier);
      const purposeKeys = [];
      for (const purpose of [Purpose.credentials, Purpose.secureChannel]) {
        const key = await identityRepository.getPurposeKey(identity.identifier, purpose);
        if (key !== undefined) purposeKeys.push(key);
      }
      if (stored !== undefined) out.push({ identity: stored, purposeKeys });
    }
    return { type: 'created', batch: request.batch, identities: out, keys: repository.records };
  } catch (error) {
    return {
      type: 'failed',
      batch: request.batch,
      code: isMandateError(error) ? error.code : 'ERR_INTERNAL',
      kind: isMandateError(error) ? error.kind : ErrorKind.internal,
      message: isMandateError(error) ? error.message : 'unexpected error in a provisioning worker',
    };
  } finally {
    // Unsealed keys are needed no longer: the main thread stores the sealed records.
    vault.destroy();
  }
}
