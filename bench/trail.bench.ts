/**
 * Verifying an exported trail offline against its floor, measured in the same run:
 *   node --import tsx bench/run.ts
 * The trail: 16 agents, each under its own chain (authority → agent, logged once in a chain record
 * before its first invocation), 1,000 calls in all, each an invocation naming its chain by hash
 * signed by the agent and a decision countersigned by the enforcement point (2,016 records), one
 * checkpoint. `verifyTrailExport` parses the export's text and checks the log
 * (Merkle root, checkpoint signature) and every record (signatures, chains at each record's time
 * through the chain cache, each signer's attestation once through a key cache, links, nonces).
 * The floor: the Ed25519 verifications the trail contains — one per record, one per distinct
 * chain's credential, one per distinct signer's key attestation (the agents' and the gateway's),
 * one for the checkpoint — alone, over 32-byte digests (libsodium).
 */
import {
  CompactRange,
  EnforcerSigner,
  formatExportLine,
  hashLeaf,
  InvocationSigner,
  noteSignerFromVault,
  noteVerifierKey,
  signCheckpoint,
  verifyTrailExport,
} from '../src/audit/index.js';
import { ed25519KeyPairFromSeed, sha256, signEd25519, verifyEd25519 } from '../src/crypto/index.js';
import { MemoryVault } from '../src/vault/index.js';
import { Identities, MemoryIdentityRepository, Purpose } from '../src/identity/index.js';
import {
  chainFromCredential,
  issueCredential,
  type CredentialIssuer,
} from '../src/credentials/index.js';
import { group, type TableRow } from './harness.js';

const AGENTS = 16;
const CALLS = 1000;

/** The bench trail: its records, the export's text and what verifying it needs. */
export async function benchTrail() {
  const now = Math.floor(Date.now() / 1000);
  const vault = new MemoryVault();
  const identities = new Identities({
    vault,
    repository: new MemoryIdentityRepository(),
    clock: { nowSeconds: () => now },
  });
  const party = async (name: string) => {
    const local = await identities.create({ name });
    const { verified, keyId } = await identities.purposeKey(name, Purpose.credentials);
    const issuer: CredentialIssuer = {
      identity: local.identity,
      credentialKeyId: keyId,
      credentialKeyAttestation: verified.attestation,
    };
    return { identity: local.identity, issuer, keyId };
  };
  const authority = await party('authority');
  const gateway = await party('gateway');
  const enforcer = new EnforcerSigner(vault, gateway.issuer);
  const agents = [];
  for (let a = 0; a < AGENTS; a++) {
    const agent = await party(`agent-${a}`);
    const chain = chainFromCredential(
      await issueCredential(
        vault,
        authority.issuer,
        agent.identity,
        new Map([['tools', new TextEncoder().encode('issue_refund')]]),
        { nowSeconds: now, ttlSeconds: 3600 },
      ),
      agent.identity,
    );
    agents.push({ chain, signer: new InvocationSigner(vault, agent.issuer) });
  }
  const records: Uint8Array[] = [];
  for (let i = 0; i < CALLS; i++) {
    const agent = agents[i % AGENTS]!;
    // Each chain logged once, before the first invocation naming it by hash (as the gate does).
    if (i < AGENTS) records.push((await enforcer.signChain(agent.chain, now)).bytes);
    const invocation = await agent.signer.sign({
      chain: agent.chain,
      tool: 'issue_refund',
      server: 'orders',
      args: { order: `o-${i}`, amount: 40 },
      nowSeconds: now,
    });
    const decision = await enforcer.signDecision({
      invocation: invocation.hash,
      agent: invocation.record.agent,
      decision: 'allow',
      lock: null,
      code: null,
      reasons: [],
      policies: ['small-refunds'],
      bundle: 'b'.repeat(64),
      escalation: null,
      approval: null,
      decidedAt: now,
    });
    records.push(invocation.bytes, decision.bytes);
  }
  const origin = 'bench/trail';
  const range = new CompactRange();
  for (const r of records) range.append(hashLeaf(r));
  const key = await vault.getSigningKey(authority.keyId);
  const checkpoint = await signCheckpoint(
    { origin, treeSize: records.length, rootHash: range.root(), extensions: [] },
    [noteSignerFromVault(vault, key, origin)],
  );
  const text = `${records.map((r, i) => formatExportLine(i, r)).join('\n')}\n`;
  const options = {
    text,
    checkpoint,
    verifiers: [noteVerifierKey(origin, key.publicKey)],
    authorities: new Map([[authority.identity.identifier, authority.identity]]),
    enforcers: new Map([[gateway.identity.identifier, gateway.identity]]),
  };
  return { records, options };
}

export async function trailBenchmarks(): Promise<TableRow[]> {
  const { records, options } = await benchTrail();
  const first = verifyTrailExport(options);
  if (!first.ok) throw new Error(`the bench trail does not verify: ${first.problem.code}`);
  // The floor: as many Ed25519 verifications as the trail holds, over 32-byte digests — one per
  // record (the 16 chain records included), per chain's credential, per signer's attestation,
  // and the checkpoint's.
  const signatures = records.length + AGENTS + (AGENTS + 1) + 1;
  const pair = ed25519KeyPairFromSeed(new Uint8Array(32).fill(3));
  const digest = sha256(new Uint8Array(300).fill(0x61));
  const signature = signEd25519(pair.secretKey, digest);
  const results = await group('trail-verify')
    .add(
      'floor',
      () => {
        for (let i = 0; i < signatures; i++) verifyEd25519(pair.publicKey, digest, signature);
      },
      { label: `raw floor: ${signatures} Ed25519 verifications (libsodium)` },
    )
    .add('verify', () => verifyTrailExport(options), {
      label: `verifyTrailExport: ${records.length} records (${AGENTS} chain records), 1 checkpoint`,
    })
    .run({ rounds: 5, roundMs: 1500, warmupMs: 500, batchMs: 200 });
  const verify = results.get('verify');
  return [
    {
      what: `verify an exported trail offline (${records.length} signed records), per record`,
      usPerOp: verify.usPerOp / records.length,
      baseline: 'raw Ed25519 verifications it contains, per record',
      baselineUsPerOp: results.get('floor').usPerOp / records.length,
      ratio: results.ratio('verify', 'floor'),
      target: `${Math.round((1e6 * records.length) / verify.usPerOp).toLocaleString('en-US')} records/s (≥ 0.8× the floor's rate: ratio ≤ 1.25×)`,
    },
  ];
}
