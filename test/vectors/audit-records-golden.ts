// Builds Mandate's golden audit record vectors (docs/spec/vectors/audit-records.json) from the
// delegation golden vectors' fixed identities, chains and times plus fixed nonces: Ed25519
// signatures are deterministic, so anyone can reproduce every byte. Regenerate the file with
//
//   npx tsx -e "import('./test/vectors/audit-records-golden.ts').then(async (m) => process.stdout.write(JSON.stringify(await m.buildAuditRecordVectors(), null, 2) + '\n'))" > docs/spec/vectors/audit-records.json
//
// and review the diff: a changed byte is a wire-format change.
import type { SigningVault } from '../../src/vault/index.js';
import { readFileSync } from 'node:fs';
import { fromHex, toHex } from '../../src/encoding/index.js';
import { ed25519KeyPairFromSeed, signEd25519 } from '../../src/crypto/index.js';
import { verifyChangeHistory, type Identifier } from '../../src/identity/index.js';
import type { CredentialIssuer } from '../../src/credentials/index.js';
import { EnforcerSigner, InvocationSigner, type SignedRecord } from '../../src/audit/index.js';
import { SigningKeyType } from '../../src/vault/index.js';

interface GoldenIdentity {
  primarySeed: string;
  credentialKeySeed: string;
  identifier: Identifier;
  changeHistory: string;
  credentialKeyAttestation: string;
}

export const delegationGolden = JSON.parse(
  readFileSync(new URL('../../docs/spec/vectors/delegation-chain.json', import.meta.url), 'utf8'),
) as {
  times: { t0: number; verifiedAt: number };
  identities: Record<'authority' | 'alice' | 'bob' | 'carol', GoldenIdentity>;
  chains: { bytes: string; actor: string; expiresAt: number }[];
};

/**
 * A signing vault over one fixed seed: the golden vectors' keys are public test seeds, so the
 * vault is an Ed25519 signer and nothing more (a MemoryVault cannot import a seed).
 */
export class SeedVault implements SigningVault {
  readonly #pair;
  constructor(seedHex: string) {
    this.#pair = ed25519KeyPairFromSeed(fromHex(seedHex));
  }
  generateSigningKey(): never {
    throw new Error('a seed vault holds one key');
  }
  getSigningKey(keyId: string) {
    return Promise.resolve({
      keyId,
      keyType: SigningKeyType.ed25519,
      publicKey: this.#pair.publicKey,
    });
  }
  sign(_keyId: string, message: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(signEd25519(this.#pair.secretKey, message));
  }
  deleteSigningKey(): Promise<void> {
    return Promise.resolve();
  }
}

export function goldenParty(name: 'authority' | 'alice' | 'bob' | 'carol') {
  const g = delegationGolden.identities[name];
  const identity = verifyChangeHistory(fromHex(g.changeHistory));
  const issuer: CredentialIssuer = {
    identity,
    credentialKeyId: `${name}-credential-key`,
    credentialKeyAttestation: fromHex(g.credentialKeyAttestation),
  };
  return { identity, issuer, vault: new SeedVault(g.credentialKeySeed) };
}

/** When the golden records are made: the delegation vectors' verification time. */
export const RECORDS_AT = delegationGolden.times.verifiedAt;
export const GOLDEN_ARGS = { order: 'o-4471', amount: 40, note: 'late delivery' };
const BUNDLE = 'b'.repeat(64);

function show(signed: SignedRecord) {
  return { text: new TextDecoder().decode(signed.bytes), hash: signed.hash };
}

/** The golden records: carol (at the end of authority → alice → bob → carol) and the authority as the enforcement point. */
export async function buildAuditRecordVectors() {
  const carol = goldenParty('carol');
  const enforcer = goldenParty('authority');
  const chain = fromHex(delegationGolden.chains[2]!.bytes);
  const agent = new InvocationSigner(carol.vault, carol.issuer);
  const first = await agent.sign({
    chain,
    tool: 'issue_refund',
    server: 'orders',
    args: GOLDEN_ARGS,
    nowSeconds: RECORDS_AT,
    nonce: new Uint8Array(16).fill(1),
    chainForm: 'verbatim',
  });
  const second = await agent.sign({
    chain,
    tool: 'issue_refund',
    server: 'orders',
    args: { ...GOLDEN_ARGS, amount: 900 },
    nowSeconds: RECORDS_AT + 5,
    nonce: new Uint8Array(16).fill(2),
    chainForm: 'verbatim',
    report: {
      inputs: [
        { name: 'user_message', value: 'refund my whole order, it never came', disclose: true },
        { name: 'tool_result:read_orders', value: { order: 'o-4471', total: 900 } },
      ],
      reasoning: 'the order total is 900 and the customer reports non-delivery',
    },
  });
  const signer = new EnforcerSigner(enforcer.vault, enforcer.issuer);
  const decision = await signer.signDecision({
    invocation: first.hash,
    agent: carol.identity.identifier,
    decision: 'allow',
    lock: null,
    code: null,
    reasons: [],
    policies: ['small-refunds'],
    bundle: BUNDLE,
    escalation: null,
    approval: null,
    arguments: GOLDEN_ARGS,
    decidedAt: RECORDS_AT,
  });
  const escalation = await signer.signDecision({
    invocation: second.hash,
    agent: carol.identity.identifier,
    decision: 'approval_required',
    lock: 'approval',
    code: null,
    reasons: ['refunds above 200 need a person'],
    policies: ['large-refunds'],
    bundle: BUNDLE,
    escalation: {
      id: '0'.repeat(32),
      reason: 'refunds above 200 need a person',
      policies: ['large-refunds'],
    },
    approval: null,
    decidedAt: RECORDS_AT + 5,
  });
  const outcome = await signer.signOutcome({
    invocation: first.hash,
    agent: carol.identity.identifier,
    status: 'ok',
    resultDigest: toHex(new Uint8Array(32).fill(0xcd)),
    error: null,
    leases: ['lease-1'],
    completedAt: RECORDS_AT + 1,
  });
  const lease = await signer.signLease({
    invocation: first.hash,
    agent: carol.identity.identifier,
    lease: 'lease-1',
    resource: 'vault:stripe/refunds',
    event: 'granted',
    at: RECORDS_AT,
    expiresAt: RECORDS_AT + 60,
  });
  const trace = await signer.signTrace({
    escalation: second.hash,
    resolvedBy: second.hash,
    agent: carol.identity.identifier,
    chainHash: toHex(new Uint8Array(32).fill(0xaa)),
    approval: '0'.repeat(32),
    policies: ['large-refunds'],
    report: second.record.report ?? null,
    resolution: {
      decision: 'deny',
      approver: delegationGolden.identities.alice.identifier,
      reason: 'not before the carrier confirms',
      answeredAt: RECORDS_AT + 30,
    },
    recordedAt: RECORDS_AT + 40,
  });
  // The chain by hash: the enforcement point's chain record, then carol's third invocation
  // (chained on the second) naming the chain by its SHA-256.
  const chainRecord = await signer.signChain(chain, RECORDS_AT + 50);
  const byHash = await agent.sign({
    chain,
    tool: 'issue_refund',
    server: 'orders',
    args: GOLDEN_ARGS,
    nowSeconds: RECORDS_AT + 50,
    nonce: new Uint8Array(16).fill(3),
  });
  return {
    about:
      'Mandate audit record golden vectors (docs/spec/audit.md, "Records"): the identities, chain (chains[2]: authority → alice → bob → carol) and times of docs/spec/vectors/delegation-chain.json, fixed nonces; carol signs the invocations (`invocation` and `nextInvocation` carry the chain verbatim, mandate/invocation/v1; `invocationByHash` names it by hash, mandate/invocation/v2, after `chainRecord`, signed by the enforcement point), the authority (as the enforcement point) the rest. `text` is the exact entry bytes (UTF-8), `hash` hex SHA-256 of them. Rebuilt byte for byte by test/audit/records.test.ts. Test keys only.',
    agent: carol.identity.identifier,
    enforcer: enforcer.identity.identifier,
    at: RECORDS_AT,
    arguments: GOLDEN_ARGS,
    invocation: show(first),
    nextInvocation: show(second),
    decision: show(decision),
    escalation: show(escalation),
    outcome: show(outcome),
    lease: show(lease),
    trace: show(trace),
    chainRecord: show(chainRecord),
    invocationByHash: show(byHash),
  };
}
