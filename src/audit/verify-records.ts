// Verifying audit records (docs/spec/audit.md, "Records"): the agent's signature on an invocation
// (under the credential key its chain's actor attested, the chain valid at the chosen time), the
// enforcement point's on the records it signs, and how a decision binds its invocation and the
// human approval it used. Pure and synchronous.
import { invalid, notFound, unauthorized } from '../core/internal.js';
import { fromHex, toHex } from '../encoding/index.js';
import { sha256 } from '../crypto/index.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import {
  verifyChain,
  type ChainVerifier,
  type DenySet,
  type VerifiedChain,
} from '../credentials/index.js';
import {
  credentialKeyHoldsAt,
  verifyCredentialKeySignature,
  type CredentialKeySignature,
} from '../credentials/internal.js';
import {
  auditRecordHash,
  blobBytes,
  chainHashOf,
  fromBase64Url,
  jsonDigest,
  readSignedRecord,
  signingBytesOf,
  signingHashOf,
  type SignedRecordRead,
} from './record-codec.js';
import {
  decodePurposeKeyAttestation,
  verifyChangeSignature,
  type DecodedSignature,
} from '../identity/internal.js';
import { Purpose, type PublicSigningKey, type VerifiedPurposeKey } from '../identity/index.js';
import type { ErrorCode } from '../core/index.js';
import {
  CHAIN_RECORD_TYPE,
  DECISION_RECORD_TYPE,
  INVOCATION_RECORD_TYPE,
  LEASE_RECORD_TYPE,
  OUTCOME_RECORD_TYPE,
  TRACE_RECORD_TYPE,
  type ChainRecord,
  type DecisionRecord,
  type InvocationRecord,
  type LeaseRecord,
  type OutcomeRecord,
  type RecordHash,
  type TraceRecord,
  isInvocationRecord,
} from './records.js';

const issued = Symbol('verified');

/**
 * Credential keys already verified, for a verifier that checks many records of the same signers:
 * keyed by signer, the length of the history the key was verified against, and the attestation.
 * Pass one `Map` (empty at first) to every call; it holds at most 10,000 keys.
 */
export type VerifiedKeyCache = Map<string, VerifiedPurposeKey>;

const MAX_CACHED_KEYS = 10_000;

/**
 * A signer's last key cache key, `${identifier}:${history length}:${attestation}`: records of one
 * signer carry the same attestation, so the key (and the hash a Map keeps in it) is built once,
 * not per record (it is hundreds of characters long).
 */
const MAX_LAST_CACHE_KEYS = 1024;
const lastCacheKeys = new Map<
  string,
  { readonly length: number; readonly attestation: string; readonly key: string }
>();

function keyCacheKey(signer: VerifiedIdentity, attestation: string): string {
  const length = signer.changes.length;
  const last = lastCacheKeys.get(signer.identifier);
  if (last !== undefined && last.length === length && last.attestation === attestation)
    return last.key;
  const key = `${signer.identifier}:${length}:${attestation}`;
  if (lastCacheKeys.size >= MAX_LAST_CACHE_KEYS) lastCacheKeys.clear();
  lastCacheKeys.set(signer.identifier, { length, attestation, key });
  return key;
}

// A record's signature is decoded into one reused buffer: it is only read by the verification
// (synchronous), never kept.
const signatureScratch = Buffer.allocUnsafeSlow(64);

/**
 * The bytes of a record's signature value. Its 86 characters were checked as canonical
 * base64url of 64 bytes when the record was read (record-codec's SIGNATURE_64): decoding is all
 * that is left of fromBase64Url, into the reused buffer. Anything else goes to fromBase64Url.
 */
function signatureBytes(value: string): Uint8Array {
  if (value.length !== 86) return fromBase64Url(value, 'signature');
  signatureScratch.write(value, 0, 'base64url');
  return signatureScratch;
}

/**
 * Record signatures under cached keys, left to be checked together: an offline verifier that
 * checks a whole log checks each record's other rules as it goes and the signatures in one run
 * afterwards (the same Ed25519 work, without the other work between the verifications). Each
 * check is kept with the line it belongs to (`line`, set by the caller before each record) and
 * what its failure throws. Hashes and signatures are kept in flat buffers and the rest as
 * references to what outlives the run (keys, identifiers, constants): thousands of checks add
 * no objects for the young generation's collections to copy.
 */
export class DeferredSignatures {
  /** The line the next checks belong to. */
  line = 0;
  #count = 0;
  #hashes = Buffer.allocUnsafeSlow(32 * 1024);
  #signatures = Buffer.allocUnsafeSlow(64 * 1024);
  #lines = new Int32Array(1024);
  /** Per check: the key, the signature's key type, the error code, `what`, the signer. */
  readonly #refs: unknown[] = [];

  add(
    key: PublicSigningKey,
    hash: Uint8Array,
    keyType: 'ed25519' | 'p256',
    signature: Uint8Array,
    code: ErrorCode,
    what: string,
    signer: Identifier,
  ): void {
    const n = this.#count;
    if (n === this.#lines.length) this.#grow();
    this.#hashes.set(hash, n * 32);
    this.#signatures.set(signature, n * 64);
    this.#lines[n] = this.line;
    // The key type as a constant (the record's own string would be kept alive).
    this.#refs.push(key, keyType === 'ed25519' ? 'ed25519' : 'p256', code, what, signer);
    this.#count = n + 1;
  }

  #grow(): void {
    const size = 2 * this.#lines.length;
    const hashes = Buffer.allocUnsafeSlow(32 * size);
    hashes.set(this.#hashes);
    this.#hashes = hashes;
    const signatures = Buffer.allocUnsafeSlow(64 * size);
    signatures.set(this.#signatures);
    this.#signatures = signatures;
    const lines = new Int32Array(size);
    lines.set(this.#lines);
    this.#lines = lines;
  }

  /**
   * Checks the signatures left, in the order they came; the first that does not verify is
   * returned with its line and the error verifyRecordSignature would have thrown for it (what
   * the verification threw, if it threw). None is left after.
   */
  settle(): { readonly line: number; readonly error: unknown } | undefined {
    const count = this.#count;
    const refs = this.#refs.splice(0);
    this.#count = 0;
    for (let i = 0; i < count; i++) {
      const r = 5 * i;
      const key = refs[r] as PublicSigningKey;
      const hash = this.#hashes.subarray(32 * i, 32 * i + 32);
      const signature: DecodedSignature = {
        keyType: refs[r + 1] as 'ed25519' | 'p256',
        bytes: this.#signatures.subarray(64 * i, 64 * i + 64),
      };
      let verified: boolean;
      try {
        verified = verifyChangeSignature(key, hash, signature);
      } catch (error) {
        return { line: this.#lines[i]!, error };
      }
      if (!verified)
        return {
          line: this.#lines[i]!,
          error: unauthorized(
            refs[r + 2] as ErrorCode,
            `${refs[r + 3] as string} signature does not verify under the credential key of \`${refs[r + 4] as string}\``,
          ),
        };
    }
    return undefined;
  }
}

/**
 * Whether a record's signature verifies under the key its own `attestation` names — whether that
 * key is trusted, or valid at any time, is not asked: this is evidence only, for locating an
 * edit. A signed member changed after signing (a time, an identity, a chain hash) or another
 * signer's attestation put in fails it; a record as its signer made it passes, whatever else is
 * wrong with it. A record not read this far (malformed, no attestation, another kind of key) is
 * left to the full checks (true).
 */
export function signedAsItSays(bytes: Uint8Array, text?: string): boolean {
  try {
    const read = readSignedRecord(bytes, text);
    const record = read.record as {
      readonly attestation?: unknown;
      readonly signature?: { readonly keyType: 'ed25519' | 'p256'; readonly value: string };
    };
    if (typeof record.attestation !== 'string' || record.signature === undefined) return true;
    const { key } = decodePurposeKeyAttestation(fromBase64Url(record.attestation, 'attestation'));
    if (key.purpose !== Purpose.credentials) return true;
    return verifyChangeSignature(key.signingKey, signingHashOf(read), {
      keyType: record.signature.keyType,
      bytes: signatureBytes(record.signature.value),
    });
  } catch {
    return true;
  }
}

/**
 * verifyCredentialKeySignature with a cache: a key verified before (same signer, same history
 * length, same attestation) is reused while `now` lies in its window and it was not under a
 * rotation grace window — the rule credentialSigningKey applies to a signer's reused key — so a
 * record costs one signature check instead of two.
 */
function verifyRecordSignature(
  signed: SignedRecordRead,
  signature: { readonly keyType: 'ed25519' | 'p256'; readonly value: string },
  attestationText: string,
  signer: VerifiedIdentity,
  options: {
    readonly nowSeconds: number;
    readonly rotationGraceSeconds?: number | undefined;
    readonly keys?: VerifiedKeyCache | undefined;
  },
  codes: { readonly untrusted: ErrorCode; readonly signature: ErrorCode },
  what: string,
  deferred: DeferredSignatures | undefined,
): CredentialKeySignature {
  const decoded = { keyType: signature.keyType, bytes: signatureBytes(signature.value) };
  const cacheKey = keyCacheKey(signer, attestationText);
  const now = options.nowSeconds;
  const cached = options.keys?.get(cacheKey);
  // (The purpose compared here too, for the type: credentialKeyHoldsAt checks it.)
  if (cached?.key.purpose === Purpose.credentials && credentialKeyHoldsAt(cached, now)) {
    const hash = signingHashOf(signed);
    if (deferred !== undefined) {
      // Checked later (the hash and signature copied out).
      deferred.add(
        cached.key.signingKey,
        hash,
        decoded.keyType,
        decoded.bytes,
        codes.signature,
        what,
        signer.identifier,
      );
      return { issuer: signer.identifier, issuerKey: cached, hash };
    }
    if (!verifyChangeSignature(cached.key.signingKey, hash, decoded))
      throw unauthorized(
        codes.signature,
        `${what} signature does not verify under the credential key of \`${signer.identifier}\``,
      );
    return { issuer: signer.identifier, issuerKey: cached, hash };
  }
  const verified = verifyCredentialKeySignature(
    signingBytesOf(signed),
    decoded,
    fromBase64Url(attestationText, 'attestation'),
    {
      nowSeconds: now,
      authorities: new Map([[signer.identifier, signer]]),
      ...(options.rotationGraceSeconds === undefined
        ? {}
        : { rotationGraceSeconds: options.rotationGraceSeconds }),
    },
    codes,
    what,
  );
  if (options.keys !== undefined) {
    if (options.keys.size >= MAX_CACHED_KEYS) options.keys.clear();
    options.keys.set(cacheKey, verified.issuerKey);
  }
  return verified;
}

/** What an enforcer's record is called in messages: its type's name (`decision`, …). */
const RECORD_WHAT = new Map<string, string>(
  [
    DECISION_RECORD_TYPE,
    OUTCOME_RECORD_TYPE,
    LEASE_RECORD_TYPE,
    TRACE_RECORD_TYPE,
    CHAIN_RECORD_TYPE,
  ].map((type) => [type, type.slice('mandate/'.length, -'/v1'.length)]),
);

function recordWhat(type: string): string {
  return RECORD_WHAT.get(type) ?? type.slice('mandate/'.length, -'/v1'.length);
}

/** The codes a record's signer and signature are refused with. */
const RECORD_SIGNATURE_CODES = {
  untrusted: 'ERR_AUDIT_SIGNER_MISMATCH',
  signature: 'ERR_AUDIT_SIGNATURE_INVALID',
} as const;

/** Options of {@link verifyInvocation}. */
export interface VerifyInvocationOptions {
  /** The trusted authorities the chain's root credential must come from. */
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  /**
   * Verify the chain through this cache instead (an enforcement point's; it carries its own
   * authorities and deny-set, which must be the same as `authorities`).
   */
  readonly chains?: ChainVerifier;
  readonly denySet?: DenySet;
  readonly knownIdentities?: ReadonlyMap<Identifier, VerifiedIdentity>;
  readonly rotationGraceSeconds?: number;
  /**
   * The time the chain and the agent's key must be valid at: an enforcement point's clock; by
   * default the record's own `issuedAt` (an offline verifier checks the chain as it stood then).
   */
  readonly nowSeconds?: number;
  /** Credential keys verified by earlier calls (see {@link VerifiedKeyCache}). */
  readonly keys?: VerifiedKeyCache;
  /**
   * For an invocation naming its chain by hash (`mandate/invocation/v2`): the chain the agent
   * presents beside it (a gate's channel, a CLI flag); it must have the named hash
   * (`ERR_AUDIT_CHAIN_MISMATCH`). Ignored for an invocation carrying its chain.
   */
  readonly chain?: Uint8Array;
  /**
   * Chains already checked against their hashes, by hex SHA-256 (an offline verifier's, from the
   * log's chain records): looked up before `chain`, no hash taken again.
   */
  readonly loggedChains?: ReadonlyMap<string, Uint8Array>;
}

/**
 * The chain bytes an invocation stands on, and their hex SHA-256 when known without hashing: a
 * v1 record's own, a logged chain, or the one presented beside a v2 record (checked).
 */
function invocationChain(
  record: InvocationRecord,
  options: VerifyInvocationOptions,
): { readonly bytes: Uint8Array; readonly hash?: string } {
  if (record.type === INVOCATION_RECORD_TYPE) return { bytes: blobBytes(record.chain, 'chain') };
  const logged = options.loggedChains?.get(record.chainHash);
  if (logged !== undefined) return { bytes: logged, hash: record.chainHash };
  if (options.chain === undefined)
    throw notFound(
      'ERR_AUDIT_CHAIN_UNKNOWN',
      `the invocation names chain ${record.chainHash.slice(0, 12)}…, which was not given (nor logged before it)`,
    );
  if (!(options.chain instanceof Uint8Array) || toHex(sha256(options.chain)) !== record.chainHash)
    throw invalid(
      'ERR_AUDIT_CHAIN_MISMATCH',
      `the chain given is not the one the invocation names (${record.chainHash.slice(0, 12)}…)`,
    );
  return { bytes: options.chain, hash: record.chainHash };
}

/** An invocation whose signature and chain verified (only {@link verifyInvocation} makes one). */
export class VerifiedInvocation {
  /** @internal use verifyInvocation */
  constructor(
    token: typeof issued,
    /** The entry bytes as received. */
    readonly bytes: Uint8Array,
    readonly record: InvocationRecord,
    /** Hex SHA-256 of `bytes`. */
    readonly hash: RecordHash,
    /** The agent's delegation chain, verified at the chosen time. */
    readonly chain: VerifiedChain,
    /** The chain bytes (decoded from the record). */
    readonly chainBytes: Uint8Array,
    /** The agent's credential key as it verified. */
    readonly signer: CredentialKeySignature,
  ) {
    if (token !== issued)
      throw new TypeError('VerifiedInvocation is created by verifyInvocation only');
  }

  get agent(): Identifier {
    return this.record.agent;
  }

  /** Hex SHA-256 of the chain bytes (what a `mandate/invocation/v2` record names). */
  get chainHash(): string {
    return this.record.type === INVOCATION_RECORD_TYPE
      ? chainHashOf(this.chainBytes)
      : this.record.chainHash;
  }
}

/**
 * Verifies an invocation record from its entry bytes: strictly parsed (`ERR_AUDIT_RECORD_MALFORMED`,
 * `ERR_AUDIT_SIGNATURE_MISSING`, `ERR_AUDIT_RECORD_TYPE`), its chain verified at `nowSeconds` (or
 * the record's `issuedAt`) with the record's `agent` as the presenter (chain errors as
 * verifyChain's), the attestation's subject the agent (`ERR_AUDIT_SIGNER_MISMATCH`), the attestation
 * valid then (`ERR_PURPOSE_KEY_*`), and the signature over the record without `signature`
 * (`ERR_AUDIT_SIGNATURE_INVALID`).
 */
export function verifyInvocation(
  bytes: Uint8Array,
  options: VerifyInvocationOptions,
): VerifiedInvocation {
  return verifyInvocationHashed(bytes, options, auditRecordHash(bytes));
}

/**
 * verifyInvocation for a caller that already took `hash`, the hex SHA-256 of `bytes` (and, when
 * it has it, `text`: the bytes' strict UTF-8 decoding, see readSignedRecord).
 */
export function verifyInvocationHashed(
  bytes: Uint8Array,
  options: VerifyInvocationOptions,
  hash: RecordHash,
  text?: string,
  deferred?: DeferredSignatures,
): VerifiedInvocation {
  const signed = readSignedRecord(bytes, text);
  const record = signed.record;
  if (!isInvocationRecord(record))
    throw invalid('ERR_AUDIT_RECORD_TYPE', `expected an invocation record, got \`${record.type}\``);
  const now = options.nowSeconds ?? record.issuedAt;
  const { bytes: chainBytes, hash: chainHash } = invocationChain(record, options);
  const chain =
    options.chains !== undefined
      ? options.chains.verify(
          chainBytes,
          // Built whole, not by spreading a conditional literal (V8 makes a slower object).
          chainHash === undefined
            ? { nowSeconds: now, presenter: record.agent }
            : { nowSeconds: now, presenter: record.agent, hash: chainHash },
        )
      : verifyChain(chainBytes, {
          nowSeconds: now,
          authorities: options.authorities,
          presenter: record.agent,
          ...(options.denySet === undefined ? {} : { denySet: options.denySet }),
          ...(options.knownIdentities === undefined
            ? {}
            : { knownIdentities: options.knownIdentities }),
          ...(options.rotationGraceSeconds === undefined
            ? {}
            : { rotationGraceSeconds: options.rotationGraceSeconds }),
        });
  const identity = chain.identities.get(record.agent);
  if (identity === undefined)
    throw unauthorized(
      'ERR_AUDIT_SIGNER_MISMATCH',
      `the chain does not carry the history of \`${record.agent}\``,
    );
  const signer = verifyRecordSignature(
    signed,
    record.signature,
    record.attestation,
    identity,
    {
      nowSeconds: now,
      rotationGraceSeconds: options.rotationGraceSeconds,
      keys: options.keys,
    },
    RECORD_SIGNATURE_CODES,
    'invocation',
    deferred,
  );
  return new VerifiedInvocation(issued, bytes, record, hash, chain, chainBytes, signer);
}

/** A record the enforcement point signs. */
export type EnforcerRecord =
  DecisionRecord | OutcomeRecord | LeaseRecord | TraceRecord | ChainRecord;

/** A chain record's `chainHash` must be its chain's (`ERR_AUDIT_CHAIN_MISMATCH`). */
function checkChainRecord(record: ChainRecord): void {
  if (toHex(sha256(blobBytes(record.chain, 'chain'))) !== record.chainHash)
    throw invalid(
      'ERR_AUDIT_CHAIN_MISMATCH',
      `the chain record's \`chainHash\` is not the hash of its chain`,
    );
}

/** Options of {@link verifyEnforcerRecord}. */
export interface VerifyEnforcerRecordOptions {
  /** The enforcement points trusted to sign records, by identifier, with their verified histories. */
  readonly enforcers: ReadonlyMap<Identifier, VerifiedIdentity>;
  /**
   * The invocation the record is about, already verified: a decision, outcome or lease must name
   * its hash and agent, a trace its agent (`ERR_AUDIT_RECORD_MISMATCH`); a decision's disclosed
   * arguments must match its digest.
   */
  readonly invocation?: VerifiedInvocation;
  /**
   * Authorities for the approver's credential: needed to check a decision's approval (the
   * approver's chain and signature). Without them a decision carrying an approval fails
   * (`ERR_AUDIT_APPROVAL_INVALID`).
   */
  readonly authorities?: ReadonlyMap<Identifier, VerifiedIdentity>;
  /** The time the enforcer's key must be valid at; by default the record's own time. */
  readonly nowSeconds?: number;
  readonly rotationGraceSeconds?: number;
  /** Credential keys verified by earlier calls (see {@link VerifiedKeyCache}). */
  readonly keys?: VerifiedKeyCache;
}

/** A record the enforcement point signed, verified (only {@link verifyEnforcerRecord} makes one). */
export class VerifiedEnforcerRecord<R extends EnforcerRecord = EnforcerRecord> {
  /** @internal use verifyEnforcerRecord */
  constructor(
    token: typeof issued,
    readonly bytes: Uint8Array,
    readonly record: R,
    readonly hash: RecordHash,
    readonly signer: CredentialKeySignature,
  ) {
    if (token !== issued)
      throw new TypeError('VerifiedEnforcerRecord is created by verifyEnforcerRecord only');
  }
}

function recordTime(record: EnforcerRecord): number {
  switch (record.type) {
    case DECISION_RECORD_TYPE:
      return record.decidedAt;
    case OUTCOME_RECORD_TYPE:
      return record.completedAt;
    case LEASE_RECORD_TYPE:
      return record.at;
    case TRACE_RECORD_TYPE:
      return record.recordedAt;
    case CHAIN_RECORD_TYPE:
      return record.loggedAt;
  }
}

function mismatch(what: string): never {
  throw invalid('ERR_AUDIT_RECORD_MISMATCH', what);
}

function approvalInvalid(what: string): never {
  throw unauthorized('ERR_AUDIT_APPROVAL_INVALID', `the decision's approval: ${what}`);
}

function checkApproval(
  record: DecisionRecord,
  invocation: VerifiedInvocation | undefined,
  options: VerifyEnforcerRecordOptions,
): void {
  const approval = record.approval;
  if (approval === null) return;
  if (options.authorities === undefined) approvalInvalid('no authorities to check the approver');
  let signedFields: Record<string, unknown>;
  try {
    const chain = verifyChain(fromHex(approval.approverChain), {
      nowSeconds: approval.answeredAt,
      authorities: options.authorities,
      presenter: approval.approver,
    });
    if (chain.links.length > 0) approvalInvalid('the approver acted through a delegation');
    // The gates' rule (gates/request.ts rootIsHuman), which this layer cannot import: a trusted
    // authority marked the approver's own credential `human=true`.
    const human = chain.rootConstraints.get('human');
    if (human?.kind !== 'set' || human.values.length !== 1 || human.values[0] !== 'true')
      approvalInvalid('the approver is not marked `human=true` by a trusted authority');
    const identity = chain.identities.get(approval.approver);
    if (identity === undefined) approvalInvalid('the approver chain carries no history');
    verifyCredentialKeySignature(
      new TextEncoder().encode(approval.signed),
      { keyType: approval.signatureKeyType, bytes: fromHex(approval.signature) },
      fromHex(approval.attestation),
      { nowSeconds: approval.answeredAt, authorities: new Map([[approval.approver, identity]]) },
      { untrusted: 'ERR_AUDIT_APPROVAL_INVALID', signature: 'ERR_AUDIT_APPROVAL_INVALID' },
      'approval',
    );
    signedFields = JSON.parse(approval.signed) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ERR_AUDIT_APPROVAL_INVALID')
      throw error;
    approvalInvalid(error instanceof Error ? error.message : 'it does not verify');
  }
  const same = (key: string, value: unknown): void => {
    if (signedFields[key] !== value) approvalInvalid(`the signed \`${key}\` differs`);
  };
  same('id', approval.id);
  same('approver', approval.approver);
  same('decision', approval.decision);
  same('reason', approval.reason);
  same('answeredAt', approval.answeredAt);
  same('bundleHash', approval.shown.bundleHash);
  same('tool', approval.shown.tool);
  same('agent', record.agent);
  // What was shown: the arguments' digest (and their text, when disclosed, must have it).
  const shownArguments = approval.shown.arguments;
  const shownDigest =
    shownArguments === undefined
      ? approval.shown.argumentsDigest
      : toHex(sha256(new TextEncoder().encode(shownArguments)));
  if (
    approval.shown.argumentsDigest !== undefined &&
    approval.shown.argumentsDigest !== shownDigest
  )
    approvalInvalid('the arguments shown do not have the digest recorded');
  if (shownDigest !== signedFields.argumentsDigest)
    approvalInvalid('the arguments shown are not those signed');
  if (invocation !== undefined) same('argumentsDigest', invocation.record.argumentsDigest);
}

/**
 * Verifies a record the enforcement point signed (decision, outcome, lease, trace): strictly
 * parsed, its `enforcer` trusted (`ERR_AUDIT_SIGNER_UNTRUSTED`) and the subject of its attestation
 * (`ERR_AUDIT_SIGNER_MISMATCH`), the attestation valid at the record's time (`ERR_PURPOSE_KEY_*`),
 * the signature (`ERR_AUDIT_SIGNATURE_INVALID`); with `invocation`, the binding to it
 * (`ERR_AUDIT_RECORD_MISMATCH`); for a decision with an approval, the human's chain and signature
 * and that the signed text is this approval (`ERR_AUDIT_APPROVAL_INVALID`).
 */
export function verifyEnforcerRecord(
  bytes: Uint8Array,
  options: VerifyEnforcerRecordOptions,
): VerifiedEnforcerRecord {
  const { record, signer } = checkEnforcerRecord(bytes, options);
  return new VerifiedEnforcerRecord(issued, bytes, record, auditRecordHash(bytes), signer);
}

/**
 * verifyEnforcerRecord's checks, for a caller that needs neither the record's hash nor a
 * VerifiedEnforcerRecord (an offline trail verifier); `text` as in verifyInvocationHashed.
 */
export function checkEnforcerRecord(
  bytes: Uint8Array,
  options: VerifyEnforcerRecordOptions,
  text?: string,
  deferred?: DeferredSignatures,
): { readonly record: EnforcerRecord; readonly signer: CredentialKeySignature } {
  const signed = readSignedRecord(bytes, text);
  const record = signed.record;
  if (isInvocationRecord(record))
    throw invalid('ERR_AUDIT_RECORD_TYPE', 'an invocation is signed by its agent, not an enforcer');
  const identity = options.enforcers.get(record.enforcer);
  if (identity === undefined)
    throw unauthorized(
      'ERR_AUDIT_SIGNER_UNTRUSTED',
      `\`${record.enforcer}\` is not a trusted enforcement point`,
    );
  const signer = verifyRecordSignature(
    signed,
    record.signature,
    record.attestation,
    identity,
    {
      nowSeconds: options.nowSeconds ?? recordTime(record),
      rotationGraceSeconds: options.rotationGraceSeconds,
      keys: options.keys,
    },
    RECORD_SIGNATURE_CODES,
    recordWhat(record.type),
    deferred,
  );
  const invocation = options.invocation;
  if (record.type === CHAIN_RECORD_TYPE) {
    checkChainRecord(record);
    if (invocation !== undefined && invocation.chainHash !== record.chainHash)
      mismatch('the invocation names another chain');
  } else if (invocation !== undefined) {
    if (record.agent !== invocation.agent)
      mismatch(`the record's agent is not the invocation's \`${invocation.agent}\``);
    const named = record.type === TRACE_RECORD_TYPE ? record.resolvedBy : record.invocation;
    if (named !== invocation.hash) mismatch('the record names another invocation');
  }
  if (record.type === DECISION_RECORD_TYPE) {
    if (
      Object.hasOwn(record, 'arguments') &&
      invocation !== undefined &&
      jsonDigest(record.arguments) !== invocation.record.argumentsDigest
    )
      mismatch('the disclosed arguments do not match the invocation digest');
    checkApproval(record, invocation, options);
  }
  return { record, signer };
}
