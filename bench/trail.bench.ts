/**
 * Verifying an exported trail offline against its floor, measured in the same run:
 *   node --import tsx bench/run.ts
 * The trail: 16 agents, each under its own chain (authority → agent, logged once in a chain record
 * before its first invocation), 1,000 calls in all, each an invocation naming its chain by hash
 * signed by the agent and a decision countersigned by the enforcement point (2,016 records), one
 * checkpoint. `verifyTrailExport` parses the export's text and checks the log
 * (Merkle root, checkpoint signature) and every record (signatures, chains at each record's time
 * through the chain cache, each signer's attestation once through a key cache, links, nonces).
 * The floor: the trail's own signatures, each checked once as floors.ts checks every signature
 * (SHA-256 of the bytes it signs, one Ed25519 verify, libsodium) — each record's, each signer's
 * key attestation (the agents' and the gateway's), the authority's attestation the chains carry,
 * each chain's credential and the agent history it carries — and the checkpoint's note signature.
 * Printed beside it, the earlier floor: as many verifications of one signature over a digest.
 */
import {
  CHECKPOINT_TIME_PREFIX,
  CompactRange,
  EnforcerSigner,
  formatExportLine,
  fromBase64Url,
  hashLeaf,
  parseNote,
  readAuditRecord,
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
  decodeChain,
  decodeCredential,
  issueCredential,
  type CredentialIssuer,
} from '../src/credentials/index.js';
import { toHex } from '../src/encoding/index.js';
import {
  attestationSigned,
  attestedKeySigned,
  floorOf,
  historySigned,
  type Signed,
} from './floors.js';
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
    agents.push({ chain, party: agent, signer: new InvocationSigner(vault, agent.issuer) });
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
    // Dated, as AuditLog.checkpoint dates every checkpoint: the records are judged by the
    // histories as they stood then.
    {
      origin,
      treeSize: records.length,
      rootHash: range.root(),
      extensions: [`${CHECKPOINT_TIME_PREFIX}${now + 1}`],
    },
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
  return { records, options, authority, gateway, agents, checkpoint, noteKey: key.publicKey };
}

/**
 * Every Ed25519 signature a verifier of the bench trail must check, each once: each record's
 * (over its signing bytes, under its signer's attested credential key), each signer's attestation
 * (16 agents and the gateway), the authority's attestation the chains' root credentials carry,
 * each chain's credential and the agent history it carries — as floors.ts's `Signed`, which a
 * floor checks as SHA-256 of the data and one Ed25519 verify. The checkpoint's note signature is
 * over its text itself (C2SP signed-note): returned apart.
 */
function trailSignatures(trail: Awaited<ReturnType<typeof benchTrail>>): {
  readonly signed: Signed[];
  readonly note: {
    readonly publicKey: Uint8Array;
    readonly text: Uint8Array;
    readonly signature: Uint8Array;
  };
} {
  const signed: Signed[] = trail.records.map((bytes) => {
    const { record, signingBytes } = readAuditRecord(bytes);
    return attestedKeySigned(
      fromBase64Url(record.attestation, 'attestation'),
      signingBytes,
      fromBase64Url(record.signature.value, 'signature'),
    );
  });
  for (const signer of [trail.gateway, ...trail.agents.map((a) => a.party)])
    signed.push(attestationSigned(signer.identity, signer.issuer.credentialKeyAttestation));
  const roots = trail.agents.map((a) => decodeCredential(decodeChain(a.chain).root));
  signed.push(attestationSigned(trail.authority.identity, roots[0]!.attestation));
  for (const [i, agent] of trail.agents.entries()) {
    const root = roots[i]!;
    if (toHex(root.attestation) !== toHex(roots[0]!.attestation))
      throw new Error('benchmark setup: the chains carry one authority attestation');
    signed.push(attestedKeySigned(root.attestation, root.data, root.signature.bytes));
    for (const history of decodeChain(agent.chain).histories)
      signed.push(...historySigned(history));
  }
  const note = parseNote(trail.checkpoint);
  if (note.signatures.length !== 1) throw new Error('benchmark setup: one checkpoint signature');
  return {
    signed,
    note: {
      publicKey: trail.noteKey,
      text: new TextEncoder().encode(note.text),
      signature: note.signatures[0]!.signature,
    },
  };
}

export async function trailBenchmarks(): Promise<TableRow[]> {
  const trail = await benchTrail();
  const { records, options } = trail;
  const first = verifyTrailExport(options);
  if (!first.ok) throw new Error(`the bench trail does not verify: ${first.problem.code}`);
  // The floor: the trail's own signatures, each checked once, raw (floors.ts's measure, as the
  // chain benchmarks take it: SHA-256 of the signed bytes and one Ed25519 verify).
  const { signed, note } = trailSignatures(trail);
  const signedFloor = floorOf(signed);
  if (!verifyEd25519(note.publicKey, note.text, note.signature))
    throw new Error('benchmark setup: the checkpoint signature fails');
  const floor = () => signedFloor() && verifyEd25519(note.publicKey, note.text, note.signature);
  const signatures = signed.length + 1;
  // The floor until 2026-12-05, kept for comparison: as many verifications of one signature
  // over one 32-byte digest (no hashing; one key and message, so branch predictors learn it).
  const pair = ed25519KeyPairFromSeed(new Uint8Array(32).fill(3));
  const digest = sha256(new Uint8Array(300).fill(0x61));
  const signature = signEd25519(pair.secretKey, digest);
  const results = await group('trail-verify')
    .add('floor', floor, {
      label: `raw floor: the trail's ${signatures} signatures, each SHA-256 of its bytes + Ed25519 verify (libsodium)`,
    })
    .add(
      'repeated',
      () => {
        for (let i = 0; i < signatures; i++) verifyEd25519(pair.publicKey, digest, signature);
      },
      { label: `${signatures} Ed25519 verifications of one signature over a 32-byte digest` },
    )
    .add('verify', () => verifyTrailExport(options), {
      label: `verifyTrailExport: ${records.length} records (${AGENTS} chain records), 1 checkpoint`,
    })
    .run({ rounds: 5, roundMs: 1500, warmupMs: 500, batchMs: 200 });
  const verify = results.get('verify');
  const what = `verify an exported trail offline (${records.length} signed records), per record`;
  return [
    {
      what,
      usPerOp: verify.usPerOp / records.length,
      baseline: "raw checks of the trail's own signatures, per record",
      baselineUsPerOp: results.get('floor').usPerOp / records.length,
      ratio: results.ratio('verify', 'floor'),
      target: `${Math.round((1e6 * records.length) / verify.usPerOp).toLocaleString('en-US')} records/s (≥ 0.8× the floor's rate: ratio ≤ 1.25×)`,
    },
    {
      what,
      usPerOp: verify.usPerOp / records.length,
      baseline: 'as many verifies of one signature over a digest (the earlier floor)',
      baselineUsPerOp: results.get('repeated').usPerOp / records.length,
      ratio: results.ratio('verify', 'repeated'),
      target: 'for comparison only',
    },
  ];
}
