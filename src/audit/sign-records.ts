// Signing audit records with a credential purpose key (the key credentials and attestations use):
// the agent signs its invocation, the enforcement point its decision, outcome, lease and trace
// records. docs/spec/audit.md, "Records".
import type { SigningVault } from '../vault/index.js';
import { invalid } from '../core/internal.js';
import { randomBytes, sha256Utf8 } from '../crypto/index.js';
import { Purpose, type VerifiedPurposeKey } from '../identity/index.js';
import type { CredentialIssuer } from '../credentials/index.js';
import { credentialSigningKey, signWithCredentialKey } from '../credentials/internal.js';
import {
  auditRecordHash,
  auditRecordHashOfText,
  chainHashOf,
  checkAuditRecord,
  keptText,
  jsonDigest,
  MAX_RECORD_LIST_ITEMS,
  MAX_RECORD_TEXT_CHARS,
  nonceText,
  signedText,
  signatureText,
  toBase64Url,
  unsignedText,
  type UnsignedText,
} from './record-codec.js';
import { utf8Bytes } from '../encoding/index.js';
import {
  CHAIN_RECORD_TYPE,
  CHAIN_REF_INVOCATION_RECORD_TYPE,
  DECISION_RECORD_TYPE,
  INVOCATION_RECORD_TYPE,
  LEASE_RECORD_TYPE,
  OUTCOME_RECORD_TYPE,
  TRACE_RECORD_TYPE,
  type AuditRecord,
  type ChainRecord,
  type DecisionRecord,
  type ChainRefInvocationRecord,
  type InvocationRecord,
  type InvocationReport,
  type VerbatimInvocationRecord,
  type LeaseRecord,
  type OutcomeRecord,
  type RecordHash,
  type TraceRecord,
} from './records.js';

/**
 * A record as signed: its entry bytes, the parsed record, and its hash. (An enforcement point's
 * records compute `hash` on its first read, from the text signed — the same value; read it as a
 * property: an object spread of such a record does not copy it.)
 */
export interface SignedRecord<R extends AuditRecord = AuditRecord> {
  readonly bytes: Uint8Array;
  readonly record: R;
  readonly hash: RecordHash;
}

/**
 * An enforcement point's signed record, its hash computed when first read (then kept): most of
 * them (a decision, an outcome) are appended and returned without anyone reading it — one
 * SHA-256 of the record saved per call (measured: about 0.9 µs per decision). The hash is of the
 * signed text, a string: what the entry bytes were written from, whatever a caller does to
 * `bytes` afterwards.
 */
class LazilyHashedRecord<R extends AuditRecord> implements SignedRecord<R> {
  readonly bytes: Uint8Array;
  readonly record: R;
  #text: string | undefined;
  #hash: RecordHash | undefined;

  constructor(bytes: Uint8Array, record: R, text: string) {
    this.bytes = bytes;
    this.record = record;
    this.#text = text;
  }

  get hash(): RecordHash {
    if (this.#hash === undefined) {
      this.#hash = auditRecordHashOfText(this.#text!);
      this.#text = undefined;
    }
    return this.#hash;
  }

  /** As the plain object an invocation's signed record is: `{ bytes, record, hash }`. */
  toJSON(): { bytes: Uint8Array; record: R; hash: RecordHash } {
    return { bytes: this.bytes, record: this.record, hash: this.hash };
  }
}

/** One input the agent received, as given to {@link signInvocation}. */
export interface InputToReport {
  readonly name: string;
  readonly value: unknown;
  /** Put the value itself in the record (default: only its digest). */
  readonly disclose?: boolean;
}

/** What {@link signInvocation} signs. */
export interface InvocationToSign {
  /** The delegation chain bytes the agent presents (its actor is the signer). */
  readonly chain: Uint8Array;
  readonly tool: string;
  readonly server?: string;
  /** The call's JSON arguments: only their digest is in the record. */
  readonly args: unknown;
  readonly nowSeconds: number;
  /** The hash of this agent's previous invocation record (none: its first). */
  readonly previous?: RecordHash | null;
  /** Inputs and reasoning the agent reports (e.g. with a call it expects to escalate). */
  readonly report?: {
    readonly inputs: readonly InputToReport[];
    readonly reasoning: string;
  };
  /** 16 bytes; default fresh random bytes. Fixed only for golden vectors. */
  readonly nonce?: Uint8Array;
  /**
   * `hash` (default): the record names the chain by its SHA-256 (`mandate/invocation/v2`), and
   * the enforcement point, which gets the chain beside the record, logs it once in a chain
   * record; `verbatim`: the record carries the chain itself (`mandate/invocation/v1`).
   */
  readonly chainForm?: 'hash' | 'verbatim';
}

// `body` is the caller's fresh object: it becomes the record (its `signature` set), no copy.
// `lazyHash`: the hash computed when first read (an enforcement point's records).
function signedRecord<R extends AuditRecord>(
  body: Omit<R, 'signature'>,
  unsigned: UnsignedText,
  signature: { keyType: 'ed25519' | 'p256'; value: string },
  lazyHash: boolean,
): SignedRecord<R> {
  const record = body as unknown as R;
  (record as { signature?: unknown }).signature = signature;
  // What the strict reader would refuse is never written to the log (the same checks as
  // parseAuditRecord's, on the value: the bytes are its JCS by construction).
  checkAuditRecord(record);
  const text = signedText(unsigned, signature);
  const bytes = utf8Bytes(text);
  if (lazyHash) return new LazilyHashedRecord(bytes, record, text);
  return { bytes, record, hash: auditRecordHash(bytes) };
}

/**
 * Signs a record now, without a promise, when the vault can (`signNow`: the key is in memory);
 * `undefined` otherwise (then {@link signRecord}). What signWithCredentialKey signs: SHA-256 of
 * the record's JCS text without `signature`, with the credential key. `body` is a fresh object
 * the record is made of.
 */
function signRecordNow<R extends AuditRecord>(
  vault: SigningVault,
  issuer: CredentialIssuer,
  key: VerifiedPurposeKey,
  body: Omit<R, 'signature'>,
  lazyHash: boolean,
): SignedRecord<R> | undefined {
  if (vault.signNow === undefined) return undefined;
  if (key.key.purpose !== Purpose.credentials)
    throw invalid('ERR_PURPOSE_KEY_WRONG_PURPOSE', 'the issuer key is not a credential key');
  const unsigned = unsignedText(body);
  const raw = vault.signNow(issuer.credentialKeyId, sha256Utf8(unsigned.signingText));
  if (raw === undefined) return undefined;
  return signedRecord(
    body,
    unsigned,
    { keyType: key.key.signingKey.keyType, value: signatureText(raw) },
    lazyHash,
  );
}

async function signRecord<R extends AuditRecord>(
  vault: SigningVault,
  issuer: CredentialIssuer,
  key: VerifiedPurposeKey,
  body: Omit<R, 'signature'>,
  lazyHash: boolean,
): Promise<SignedRecord<R>> {
  const now = signRecordNow(vault, issuer, key, body, lazyHash);
  if (now !== undefined) return now;
  const unsigned = unsignedText(body);
  const sig = await signWithCredentialKey(vault, issuer, key, utf8.encode(unsigned.signingText));
  return signedRecord(
    body,
    unsigned,
    { keyType: sig.keyType, value: signatureText(sig.bytes) },
    lazyHash,
  );
}

const utf8 = new TextEncoder();

// An agent presents the same chain, and a signer the same attestation, call after call: their
// base64url text is kept (by the bytes object, checked equal to a copy), so every record carries
// the same string — and the codec's caches of long strings find it without hashing it again.
const blobTexts = new WeakMap<Uint8Array, { readonly copy: Uint8Array; readonly text: string }>();

function blobText(bytes: Uint8Array): string {
  return keptText(blobTexts, bytes, toBase64Url);
}

function reportOf(report: InvocationToSign['report']): InvocationReport | undefined {
  if (report === undefined) return undefined;
  const given: unknown = report.inputs;
  const inputs: readonly InputToReport[] = report.inputs;
  if (!Array.isArray(given) || given.length > MAX_RECORD_LIST_ITEMS)
    throw invalid('ERR_ARGUMENT_INVALID', `a report holds at most ${MAX_RECORD_LIST_ITEMS} inputs`);
  if (typeof report.reasoning !== 'string' || report.reasoning.length > MAX_RECORD_TEXT_CHARS)
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `the reasoning is at most ${MAX_RECORD_TEXT_CHARS} characters`,
    );
  return {
    inputs: inputs.map((input) => {
      const digest = jsonDigest(input.value);
      return input.disclose === true
        ? { name: input.name, digest, value: input.value }
        : { name: input.name, digest };
    }),
    reasoning: report.reasoning,
  };
}

/**
 * The agent signs an invocation before sending it: its chain verbatim, the tool, the arguments'
 * digest, a fresh nonce, the time and the previous invocation's hash, with its credential purpose
 * key (in `vault`, attested by `issuer.credentialKeyAttestation`). To keep one agent's chain
 * linear under concurrency use {@link InvocationSigner}. Errors: the issuer's key as for issuing
 * (`ERR_PURPOSE_KEY_*`, `ERR_CREDENTIAL_SIGNATURE_INVALID`), `ERR_AUDIT_RECORD_MALFORMED` for a
 * value outside the record's bounds (a tool name over 256 characters, …).
 */
export async function signInvocation(
  vault: SigningVault,
  issuer: CredentialIssuer,
  invocation: InvocationToSign,
): Promise<SignedRecord<InvocationRecord>> {
  const key = await credentialSigningKey(vault, issuer, invocation.nowSeconds);
  return signInvocationWithKey(vault, issuer, key, invocation, invocation.previous ?? null);
}

// Nonces come from the CSPRNG 256 at a time (one getrandom call instead of one per invocation);
// each is used once and the pool is never reused. A nonce is a view of the pool, read once into
// the record's hex (a copy of 16 bytes is an array on V8's heap, which toHex's Buffer view then
// moved off it: 0.67 µs more per invocation, measured).
let noncePool: Uint8Array = new Uint8Array(0);
let noncePoolAt = 0;
function freshNonce(): Uint8Array {
  if (noncePoolAt + 16 > noncePool.length) {
    noncePool = randomBytes(16 * 256);
    noncePoolAt = 0;
  }
  noncePoolAt += 16;
  return noncePool.subarray(noncePoolAt - 16, noncePoolAt);
}

// No spread of conditional literals into one: V8 built a slow object from that (about 6 µs per
// record, measured).
// `previous` is given apart (InvocationSigner's head): no copy of the caller's object to set it.
function invocationBody(
  issuer: CredentialIssuer,
  invocation: Omit<InvocationToSign, 'previous'>,
  previous: RecordHash | null,
): Omit<InvocationRecord, 'signature'> {
  const nonce = invocation.nonce ?? freshNonce();
  if (!(nonce instanceof Uint8Array) || nonce.length !== 16)
    throw invalid('ERR_ARGUMENT_INVALID', 'a nonce is 16 bytes');
  if (!(invocation.chain instanceof Uint8Array))
    throw invalid('ERR_ARGUMENT_INVALID', '`chain` must be bytes');
  const report = reportOf(invocation.report);
  const form = invocation.chainForm ?? 'hash';
  if (form !== 'hash' && form !== 'verbatim')
    throw invalid('ERR_ARGUMENT_INVALID', '`chainForm` must be `hash` or `verbatim`');
  // The members both forms share, assigned onto the form's own (no spread of a conditional).
  const members = {
    agent: issuer.identity.identifier,
    tool: invocation.tool,
    server: invocation.server ?? null,
    argumentsDigest: jsonDigest(invocation.args),
    nonce: nonceText(nonce),
    issuedAt: invocation.nowSeconds,
    previous,
    attestation: blobText(issuer.credentialKeyAttestation),
  };
  const body:
    Omit<ChainRefInvocationRecord, 'signature'> | Omit<VerbatimInvocationRecord, 'signature'> =
    form === 'hash'
      ? Object.assign(
          {
            type: CHAIN_REF_INVOCATION_RECORD_TYPE,
            chainHash: chainHashOf(invocation.chain),
          } as const,
          members,
        )
      : Object.assign(
          { type: INVOCATION_RECORD_TYPE, chain: blobText(invocation.chain) } as const,
          members,
        );
  if (report !== undefined) (body as { report?: InvocationReport }).report = report;
  return body;
}

function signInvocationWithKey(
  vault: SigningVault,
  issuer: CredentialIssuer,
  key: VerifiedPurposeKey,
  invocation: Omit<InvocationToSign, 'previous'>,
  previous: RecordHash | null,
): Promise<SignedRecord<InvocationRecord>> {
  return signRecord(vault, issuer, key, invocationBody(issuer, invocation, previous), false);
}

// A signer checks its key once (credentialSigningKey: the attestation, the purpose, the rotation
// rule, the vault holding it) and reuses it while `now` lies in the attestation's window — the
// same rule credentialSigningKey applies to `issuer.verifiedKey`.
function reusableKey(
  key: VerifiedPurposeKey | undefined,
  now: number,
): VerifiedPurposeKey | undefined {
  return key !== undefined && key.createdAt <= now + 60 && now < key.expiresAt ? key : undefined;
}

async function keyAt(
  vault: SigningVault,
  issuer: CredentialIssuer,
  key: VerifiedPurposeKey | undefined,
  now: number,
): Promise<VerifiedPurposeKey> {
  return reusableKey(key, now) ?? credentialSigningKey(vault, issuer, now);
}

/**
 * An agent's invocation signer that keeps its hash chain: each `sign` names the invocation signed
 * just before it as `previous`, in call order, even when calls overlap — the agent's invocations
 * form one linear chain. The credential key is checked once per attestation window (not per call).
 * Send the records in the order `sign` resolves them; an enforcement point accepts only the
 * successor of the head it holds.
 */
export class InvocationSigner {
  readonly #vault: SigningVault;
  readonly #issuer: CredentialIssuer;
  #key: VerifiedPurposeKey | undefined;
  #head: RecordHash | null;
  #tail: Promise<unknown> = Promise.resolve();
  /** Signings queued on `#tail` and not yet settled. */
  #busy = 0;

  /** `previous`: the head to continue from (the hash of this agent's last logged invocation). */
  constructor(vault: SigningVault, issuer: CredentialIssuer, previous: RecordHash | null = null) {
    this.#vault = vault;
    this.#issuer = issuer;
    this.#head = previous;
  }

  /** The hash of the last invocation signed (`null` before the first). */
  get head(): RecordHash | null {
    return this.#head;
  }

  /** Signs the next invocation of this agent's chain (`previous` is set by the signer). */
  sign(invocation: Omit<InvocationToSign, 'previous'>): Promise<SignedRecord<InvocationRecord>> {
    // Nothing in flight, the key checked and in memory: sign now, no promise chain.
    if (this.#busy === 0) {
      const key = reusableKey(this.#key, invocation.nowSeconds);
      if (key !== undefined) {
        try {
          const signed = signRecordNow(
            this.#vault,
            this.#issuer,
            key,
            invocationBody(this.#issuer, invocation, this.#head),
            false,
          );
          if (signed !== undefined) {
            this.#head = signed.hash;
            return Promise.resolve(signed);
          }
        } catch (error) {
          return Promise.reject(error instanceof Error ? error : new Error(String(error)));
        }
      }
    }
    this.#busy++;
    const next = this.#tail.then(async () => {
      const verified = await keyAt(this.#vault, this.#issuer, this.#key, invocation.nowSeconds);
      this.#key = verified;
      const signed = await signInvocationWithKey(
        this.#vault,
        this.#issuer,
        verified,
        invocation,
        this.#head,
      );
      this.#head = signed.hash;
      return signed;
    });
    // A failed signing leaves the head where it was; the next call continues from it.
    const done = (): void => {
      this.#busy--;
    };
    this.#tail = next.then(done, done);
    return next;
  }
}

/**
 * The enforcement point's signer: its identity's credential key (checked once per attestation
 * window), for decision, outcome, lease and trace records.
 */
export class EnforcerSigner {
  readonly #vault: SigningVault;
  readonly #issuer: CredentialIssuer;
  #key: VerifiedPurposeKey | undefined;

  constructor(vault: SigningVault, issuer: CredentialIssuer) {
    this.#vault = vault;
    this.#issuer = issuer;
  }

  /** The enforcement point's identifier. */
  get identifier(): string {
    return this.#issuer.identity.identifier;
  }

  #sign<R extends AuditRecord>(
    type: R['type'],
    body: Omit<R, 'type' | 'signature' | 'enforcer' | 'attestation'>,
    now: number,
  ): Promise<SignedRecord<R>> {
    // One spread into a fresh literal (nested spreads made V8 build a slow object, measured).
    const full = {
      type,
      ...body,
      enforcer: this.#issuer.identity.identifier,
      attestation: blobText(this.#issuer.credentialKeyAttestation),
    } as unknown as Omit<R, 'signature'>;
    // The key checked and in memory: sign now, no promise chain.
    const key = reusableKey(this.#key, now);
    if (key !== undefined) {
      try {
        const signed = signRecordNow<R>(this.#vault, this.#issuer, key, full, true);
        if (signed !== undefined) return Promise.resolve(signed);
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    }
    return keyAt(this.#vault, this.#issuer, this.#key, now).then((verified) => {
      this.#key = verified;
      return signRecord<R>(this.#vault, this.#issuer, verified, full, true);
    });
  }

  /**
   * Signs a chain record for `chain` (`loggedAt` is its time): what an enforcement point logs
   * once per distinct chain, before the first invocation naming it by hash.
   */
  signChain(chain: Uint8Array, loggedAt: number): Promise<SignedRecord<ChainRecord>> {
    if (!(chain instanceof Uint8Array))
      return Promise.reject(invalid('ERR_ARGUMENT_INVALID', '`chain` must be bytes'));
    return this.#sign<ChainRecord>(
      CHAIN_RECORD_TYPE,
      {
        chain: blobText(chain),
        chainHash: chainHashOf(chain),
        loggedAt,
      },
      loggedAt,
    );
  }

  /** Signs a decision record (`decidedAt` is its time). */
  signDecision(
    body: Omit<DecisionRecord, 'type' | 'signature' | 'enforcer' | 'attestation'>,
  ): Promise<SignedRecord<DecisionRecord>> {
    return this.#sign<DecisionRecord>(DECISION_RECORD_TYPE, body, body.decidedAt);
  }

  /** Signs an outcome record (`completedAt` is its time). */
  signOutcome(
    body: Omit<OutcomeRecord, 'type' | 'signature' | 'enforcer' | 'attestation'>,
  ): Promise<SignedRecord<OutcomeRecord>> {
    return this.#sign<OutcomeRecord>(OUTCOME_RECORD_TYPE, body, body.completedAt);
  }

  /** Signs a lease reference record (`at` is its time). */
  signLease(
    body: Omit<LeaseRecord, 'type' | 'signature' | 'enforcer' | 'attestation'>,
  ): Promise<SignedRecord<LeaseRecord>> {
    return this.#sign<LeaseRecord>(LEASE_RECORD_TYPE, body, body.at);
  }

  /** Signs a decision trace record (`recordedAt` is its time). */
  signTrace(
    body: Omit<TraceRecord, 'type' | 'signature' | 'enforcer' | 'attestation'>,
  ): Promise<SignedRecord<TraceRecord>> {
    return this.#sign<TraceRecord>(TRACE_RECORD_TYPE, body, body.recordedAt);
  }
}
