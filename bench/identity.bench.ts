/**
 * Identity hot paths against their raw crypto floors, measured in the same run:
 *   node --import tsx bench/identity.bench.ts
 * The floor of creating an agent identity is what its primitives cost alone: two Ed25519 keygens
 * (primary, credential key), one X25519 keygen, three Ed25519 signatures (the change, two
 * attestations) and three SHA-256 of ~100 bytes. The floor of verifying a history is its
 * signature verifications.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, SecureArena, verifyEd25519 } from '../src/crypto/index.js';
import {
  Identities,
  MemoryIdentityRepository,
  verifyChangeHistory,
} from '../src/identity/index.js';
import { createIdentity, rotateIdentity } from '../src/identity/create-identity.js';
import { MemoryVault, SoftwareVault } from '../src/vault/index.js';
import { openSqliteStore } from '../src/store/index.js';
import { IdentityProvisioner } from '../src/node/index.js';
import { identityCreationFloor } from './floors.js';
import { group, median, type TableRow } from './harness.js';

const PER_CALL = 100;
const SQLITE_BATCH = 500;

export async function identityBenchmarks(): Promise<TableRow[]> {
  const rows: TableRow[] = [];

  // --- creation -----------------------------------------------------------------------------
  {
    const floor = identityCreationFloor(PER_CALL);
    const memory = new Identities({
      vault: new MemoryVault(),
      repository: new MemoryIdentityRepository(),
    });
    const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-'));
    const store = openSqliteStore(join(dir, 'bench.db'));
    const kek = new SecureArena().allocateFrom(randomBytes(32));
    const sqlite = new Identities({
      vault: new SoftwareVault({ repository: store.vaultKeys, kek }),
      repository: store.identities,
    });
    const results = await group('identity-create')
      .add('floor', floor, { label: 'raw floor: 2 Ed25519 + 1 X25519 keygen, 3 signs, 3 SHA-256' })
      .add('memory', () => memory.createMany(PER_CALL, { batchSize: PER_CALL }), {
        label: 'create agent identity (memory vault)',
      })
      .add('sqlite', () => sqlite.createMany(SQLITE_BATCH, { batchSize: SQLITE_BATCH }), {
        label: `create agent identity (sealed vault + SQLite, batches of ${SQLITE_BATCH})`,
      })
      .run();
    const floorUs = results.get('floor').usPerOp / PER_CALL;
    for (const [id, perCall, target] of [
      ['memory', PER_CALL, '≤ 1.25×'],
      ['sqlite', SQLITE_BATCH, '≤ 1.6×'],
    ] as const) {
      // Calls create different numbers of identities: scale the per-round ratio to one identity.
      rows.push({
        what: results.get(id).label,
        usPerOp: results.get(id).usPerOp / perCall,
        baseline: 'raw floor',
        baselineUsPerOp: floorUs,
        ratio: (results.ratio(id, 'floor') * PER_CALL) / perCall,
        target,
      });
    }
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }

  // --- verification -------------------------------------------------------------------------
  {
    const vault = new MemoryVault();
    const created = await createIdentity(vault, { nowSeconds: 1_800_000_000 });
    let current = created;
    for (let i = 1; i <= 2; i++)
      current = await rotateIdentity(vault, current.identity, current.primaryKey.keyId, {
        nowSeconds: 1_800_000_000 + i,
      });
    const one = created.identity.changeHistory;
    const three = current.identity.changeHistory;
    const sigs = current.identity.changes.flatMap((c, i) => {
      const out: [Uint8Array, Uint8Array, Uint8Array][] = [
        [c.primaryPublicKey.bytes, c.changeHash, c.signature],
      ];
      if (i > 0)
        out.push([
          current.identity.changes[i - 1]!.primaryPublicKey.bytes,
          c.changeHash,
          c.previousSignature!,
        ]);
      return out;
    });
    const first = sigs[0]!;
    const results = await group('identity-verify')
      .add('floor1', () => verifyEd25519(first[0], first[1], first[2]), {
        label: 'raw floor: 1 Ed25519 verify',
      })
      .add('verify1', () => verifyChangeHistory(one), { label: 'verify a 1-change history' })
      .add(
        'floor3',
        () => {
          for (const [k, m, s] of sigs) verifyEd25519(k, m, s);
        },
        { label: 'raw floor: 5 Ed25519 verifies' },
      )
      .add('verify3', () => verifyChangeHistory(three), {
        label: 'verify a 3-change history (2 rotations)',
      })
      .run();
    rows.push(
      {
        what: results.get('verify1').label,
        usPerOp: results.get('verify1').usPerOp,
        baseline: 'raw floor: 1 verify',
        baselineUsPerOp: results.get('floor1').usPerOp,
        ratio: results.ratio('verify1', 'floor1'),
        target: '≤ 1.15×',
      },
      {
        what: results.get('verify3').label,
        usPerOp: results.get('verify3').usPerOp,
        baseline: 'raw floor: 5 verifies',
        baselineUsPerOp: results.get('floor3').usPerOp,
        ratio: results.ratio('verify3', 'floor3'),
        target: '≤ 1.15×',
      },
    );
  }

  // --- agents per second: provisionIdentities on 1 and 2 worker threads, sealed vault + SQLite --
  // Both provisioners run side by side and take turns within each round (the order alternates),
  // so the 2-vs-1 ratio is taken between runs moments apart, as every other ratio here.
  {
    const quick = process.env.MANDATE_BENCH_QUICK === '1';
    const rounds = quick ? 2 : 5;
    const perRound = quick ? 500 : 2_000;
    const setUp = (workers: number) => {
      const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-'));
      const store = openSqliteStore(join(dir, 'bench.db'));
      const kek = new SecureArena().allocateFrom(randomBytes(32));
      const provisioner = IdentityProvisioner.start(
        { identities: store.identities, vaultKeys: store.vaultKeys, kek },
        { workers },
      );
      const rate = async (count: number): Promise<number> => {
        const started = performance.now();
        await provisioner.provision({ count });
        return count / ((performance.now() - started) / 1000);
      };
      const close = async (): Promise<void> => {
        await provisioner.close();
        store.close();
        rmSync(dir, { recursive: true, force: true });
      };
      return { rate, close };
    };
    const one = setUp(1);
    const two = setUp(2);
    try {
      // Workers start once per provisioner (a node keeps them): warm them up before timing.
      await one.rate(1_000);
      await two.rate(1_000);
      const oneRates: number[] = [];
      const twoRates: number[] = [];
      const ratios: number[] = [];
      for (let round = 0; round < rounds; round++) {
        const first = round % 2 === 0 ? one : two;
        const a = await first.rate(perRound);
        const b = await (first === one ? two : one).rate(perRound);
        const [oneRate, twoRate] = first === one ? [a, b] : [b, a];
        oneRates.push(oneRate);
        twoRates.push(twoRate);
        ratios.push(oneRate / twoRate); // µs per agent on 2 workers ÷ on 1
      }
      const oneRate = median(oneRates);
      const twoRate = median(twoRates);
      const total = (rounds * perRound).toLocaleString('en-US');
      rows.push(
        {
          what: `provision agents, 1 worker thread (sealed vault + SQLite; ${total} in rounds of ${perRound.toLocaleString('en-US')})`,
          usPerOp: 1e6 / oneRate,
          target: `${Math.round(oneRate).toLocaleString('en-US')} agents/s`,
        },
        {
          what: `provision agents, 2 worker threads (same rounds, turns alternating with 1 worker)`,
          usPerOp: 1e6 / twoRate,
          baseline: '1 worker thread',
          baselineUsPerOp: 1e6 / oneRate,
          ratio: median(ratios),
          target: `${Math.round(twoRate).toLocaleString('en-US')} agents/s`,
        },
      );
    } finally {
      await one.close();
      await two.close();
    }
  }
  return rows;
}
