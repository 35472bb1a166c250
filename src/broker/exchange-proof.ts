// The agent's proof in an RFC 8693 token exchange (`subject_token`, docs/spec/broker.md §4.4):
// a JWS compact serialization signed with the agent's credential purpose key, the way the agent
// signs its invocations (audit sign-records.ts): over SHA-256 of the signed bytes, the key's
// attestation carried, the chain carried verbatim. The broker verifies it with the machinery
// verifyInvocation uses: a ChainVerifier (trusted authorities, deny-set, presenter) and
// verifyCredentialKeySignature.
import { conflict, exhausted, invalid, unauthorized } from '../core/internal.js';
import { type ErrorCode } from '../core/index.js';
import { parseJsonNoDuplicateKeys, toHex } from '../encoding/index.js';
import { randomBytes } from '../crypto/index.js';
import { isIdentifier, Purpose, type Identifier } from '../identity/index.js';
import type { ChainVerifier, CredentialIssuer, VerifiedChain } from '../credentials/index.js';
import {
  credentialSigningKey,
  signWithCredentialKey,
  verifyCredentialKeySignature,
} from '../credentials/internal.js';
import type { SigningVault } from '../vault/index.js';
import { checkJwtScope } from './jwt.js';

/** RFC 8693 `subject_token_type` of the proof. */
export const CHAIN_PROOF_TOKEN_TYPE = 'urn:mandate:params:oauth:token-type:chain-proof';
/** The proof's JWS `typ` header. */
export const CHAIN_PROOF_JWS_TYPE = 'mandate-chain-proof+jwt';
/** A proof lives at most this long (`exp − iat`). */
export const MAX_EXCHANGE_PROOF_TTL_SECONDS = 60;
/** What a proof lives unless its signer says otherwise. */
export const DEFAULT_EXCHANGE_PROOF_TTL_SECONDS = 30;
/** Bound on a proof's text (its chain dominates: a few KiB for three links). */
export const MAX_EXCHANGE_PROOF_CHARS = 64 * 1024;

/**
 * JWS `alg` of a proof, one per key type: not JOSE's EdDSA/ES256, because Mandate's credential
 * keys sign SHA-256 of the bytes (P-256: ECDSA over SHA-256 of that hash), as for credentials,
 * links and audit records. Private names (RFC 7515 §4.1.1): only the broker reads proofs.
 */
export const ChainProofAlg = {
  ed25519: 'Mandate-CK-Ed25519',
  p256: 'Mandate-CK-P256',
} as const;

const MALFORMED: ErrorCode = 'ERR_TOKEN_EXCHANGE_PROOF_MALFORMED';
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** What the agent asks for, and where: what a proof binds. */
export interface ExchangeProofRequest {
  /** The token endpoint's URL the proof is sent to (its `aud`). */
  readonly tokenEndpoint: string;
  /** RFC 8693 `audience`: where the minted token will be used. */
  readonly audience: string;
  /** RFC 8693 `scope`, as values (sent space-separated). */
  readonly scope: readonly string[];
}

/** What {@link signExchangeProof} signs. */
export interface ExchangeProofToSign extends ExchangeProofRequest {
  /** The chain bytes the agent presents (its actor is the signer). */
  readonly chain: Uint8Array;
  readonly nowSeconds: number;
  /** 1 to 60 (default 30). */
  readonly ttlSeconds?: number;
}

/** A proof the broker accepted (only {@link verifyExchangeProof} returns one). */
export interface VerifiedExchangeProof {
  /** The signer: the chain's actor. */
  readonly agent: Identifier;
  readonly chain: VerifiedChain;
  readonly audience: string;
  readonly scope: readonly string[];
  /** The proof's nonce (hex), claimed in the nonce store. */
  readonly jti: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

function base64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

function fromBase64Url(text: string, what: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1)
    throw invalid(MALFORMED, `the proof's ${what} is not base64url`);
  const bytes = new Uint8Array(Buffer.from(text, 'base64url'));
  if (base64Url(bytes) !== text)
    throw invalid(MALFORMED, `the proof's ${what} is not canonical base64url`);
  return bytes;
}

function checkTtl(ttl: number): void {
  if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_EXCHANGE_PROOF_TTL_SECONDS)
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `a proof lives 1 to ${MAX_EXCHANGE_PROOF_TTL_SECONDS} seconds`,
    );
}

/**
 * The agent signs a token-exchange proof: its identifier (`iss`), the token endpoint (`aud`), the
 * audience and scope it asks for, `iat`/`exp` (at most 60 s), a fresh nonce (`jti`), its chain
 * and its credential key's attestation, with its credential purpose key. Returns the JWS compact
 * text to send as `subject_token`. Errors: the key's as for signing invocations
 * (`ERR_PURPOSE_KEY_*`, `ERR_CREDENTIAL_SIGNATURE_INVALID`), `ERR_ARGUMENT_INVALID`,
 * `ERR_JWT_SCOPE_INVALID`.
 */
export async function signExchangeProof(
  vault: SigningVault,
  issuer: CredentialIssuer,
  proof: ExchangeProofToSign,
): Promise<string> {
  const ttl = proof.ttlSeconds ?? DEFAULT_EXCHANGE_PROOF_TTL_SECONDS;
  checkTtl(ttl);
  if (!(proof.chain instanceof Uint8Array))
    throw invalid('ERR_ARGUMENT_INVALID', '`chain` must be bytes');
  checkJwtScope(proof.scope);
  const key = await credentialSigningKey(vault, issuer, proof.nowSeconds);
  if (key.key.purpose !== Purpose.credentials)
    throw invalid('ERR_PURPOSE_KEY_WRONG_PURPOSE', 'the issuer key is not a credential key');
  const header = { alg: ChainProofAlg[key.key.signingKey.keyType], typ: CHAIN_PROOF_JWS_TYPE };
  const claims = {
    iss: issuer.identity.identifier,
    aud: proof.tokenEndpoint,
    iat: proof.nowSeconds,
    exp: proof.nowSeconds + ttl,
    jti: toHex(randomBytes(16)),
    audience: proof.audience,
    scope: proof.scope.join(' '),
    chain: base64Url(proof.chain),
    attestation: base64Url(issuer.credentialKeyAttestation),
  };
  const signingInput = `${base64Url(utf8.encode(JSON.stringify(header)))}.${base64Url(utf8.encode(JSON.stringify(claims)))}`;
  const signature = await signWithCredentialKey(vault, issuer, key, utf8.encode(signingInput));
  return `${signingInput}.${base64Url(signature.bytes)}`;
}

/**
 * Where the broker remembers the nonces of proofs it accepted, until they expire. A proof issued
 * before `since` is refused: the store cannot know whether it was used (a broker that restarts
 * with an empty store would otherwise take a proof captured just before again).
 */
export interface ProofNonceStore {
  /** Unix seconds: the store remembers every proof accepted from then on. */
  readonly since: number;
  /** `true` if `jti` was not claimed before (it is now, until `expiresAt`); `false` if it was. */
  claim(jti: string, expiresAt: number, nowSeconds: number): Promise<boolean>;
}

/**
 * An in-memory nonce store with bounded memory: at most `maxEntries` live nonces (default
 * 100,000: at the 60 s maximum lifetime, ~1,600 exchanges a second). Full of live nonces, it
 * refuses (`ERR_TOKEN_EXCHANGE_BUSY`) rather than forget one.
 */
export class MemoryProofNonceStore implements ProofNonceStore {
  readonly since: number;
  readonly #max: number;
  /** jti → expiry, in insertion order (close to expiry order: lifetimes are ≤ 60 s). */
  readonly #nonces = new Map<string, number>();

  constructor(options: { readonly nowSeconds: number; readonly maxEntries?: number }) {
    const max = options.maxEntries ?? 100_000;
    if (!Number.isSafeInteger(max) || max < 1)
      throw invalid('ERR_ARGUMENT_INVALID', '`maxEntries` must be a positive integer');
    if (!Number.isSafeInteger(options.nowSeconds) || options.nowSeconds < 0)
      throw invalid('ERR_ARGUMENT_INVALID', '`nowSeconds` must be unix seconds');
    this.since = options.nowSeconds;
    this.#max = max;
  }

  get size(): number {
    return this.#nonces.size;
  }

  claim(jti: string, expiresAt: number, nowSeconds: number): Promise<boolean> {
    // Drop expired nonces from the front (cheap, amortised); when full, scan them all.
    for (const [id, until] of this.#nonces) {
      if (until > nowSeconds) break;
      this.#nonces.delete(id);
    }
    const until = this.#nonces.get(jti);
    if (until !== undefined && until > nowSeconds) return Promise.resolve(false);
    if (this.#nonces.size >= this.#max) {
      for (const [id, t] of this.#nonces) if (t <= nowSeconds) this.#nonces.delete(id);
      if (this.#nonces.size >= this.#max)
        return Promise.reject(
          exhausted('ERR_TOKEN_EXCHANGE_BUSY', 'too many token exchanges in flight; retry shortly'),
        );
    }
    this.#nonces.set(jti, expiresAt);
    return Promise.resolve(true);
  }
}

/** Options of {@link verifyExchangeProof}. */
export interface VerifyExchangeProofOptions {
  /** Trusted authorities and the live deny-set, with its cache of verified chains. */
  readonly chains: ChainVerifier;
  readonly nonces: ProofNonceStore;
  readonly nowSeconds: number;
  /** How far in the future `iat` may be (default 30 s). */
  readonly maxClockSkewSeconds?: number;
  readonly rotationGraceSeconds?: number;
}

interface ProofClaims {
  readonly iss: Identifier;
  readonly aud: string;
  readonly iat: number;
  readonly exp: number;
  readonly jti: string;
  readonly audience: string;
  readonly scope: string;
  readonly chain: string;
  readonly attestation: string;
}

const CLAIM_NAMES = [
  'iss',
  'aud',
  'iat',
  'exp',
  'jti',
  'audience',
  'scope',
  'chain',
  'attestation',
] as const;

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch (cause) {
    throw invalid(MALFORMED, `the proof's ${what} is not UTF-8`, cause);
  }
  const value = parseJsonNoDuplicateKeys(text, MALFORMED, `the proof's ${what}`, 4);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(MALFORMED, `the proof's ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function exactKeys(value: Record<string, unknown>, names: readonly string[], what: string): void {
  const keys = Object.keys(value);
  if (keys.length !== names.length || !names.every((n) => Object.hasOwn(value, n)))
    throw invalid(MALFORMED, `the proof's ${what} must have exactly: ${names.join(', ')}`);
}

function readClaims(value: Record<string, unknown>): ProofClaims {
  exactKeys(value, CLAIM_NAMES, 'claims');
  const { iss, aud, iat, exp, jti, audience, scope, chain, attestation } = value;
  const isString = (v: unknown): v is string => typeof v === 'string';
  const isSeconds = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
  if (
    !isString(iss) ||
    !isIdentifier(iss) ||
    !isString(aud) ||
    !isSeconds(iat) ||
    !isSeconds(exp) ||
    !isString(jti) ||
    !/^[0-9a-f]{32}$/.test(jti) ||
    !isString(audience) ||
    !isString(scope) ||
    !isString(chain) ||
    !isString(attestation)
  )
    throw invalid(MALFORMED, "the proof's claims have the wrong types");
  return { iss, aud, iat, exp, jti, audience, scope, chain, attestation };
}

/** Strict scope text: values separated by single spaces, none empty (`""` for no scope). */
export function parseScopeText(text: string): string[] {
  if (text === '') return [];
  const values = text.split(' ');
  checkJwtScope(values);
  return values;
}

/**
 * The broker verifies a token-exchange proof against the request it came with, in this order
 * (cheap checks before signatures, the nonce claimed last so unsigned junk cannot fill the
 * store): strict parse (`ERR_TOKEN_EXCHANGE_PROOF_MALFORMED`); binding — `aud` is this token
 * endpoint, `audience` and `scope` are those of the request (`ERR_TOKEN_EXCHANGE_PROOF_MISMATCH`);
 * lifetime — `exp − iat` 1 to 60 s, `iat` not in the future beyond the skew
 * (`ERR_TOKEN_EXCHANGE_PROOF_LIFETIME`); freshness — `exp` after now and `iat` not before the
 * nonce store's `since` (`ERR_TOKEN_EXCHANGE_PROOF_EXPIRED`); the chain, with the signer as
 * presenter, against the trusted authorities and the deny-set (verifyChain's errors:
 * `ERR_DELEGATION_*`, `ERR_CHAIN_*`, `ERR_REVOKED`, …); the signature under the signer's attested
 * credential key (`ERR_TOKEN_EXCHANGE_SIGNER_MISMATCH`, `ERR_PURPOSE_KEY_*`,
 * `ERR_TOKEN_EXCHANGE_SIGNATURE_INVALID`); and last the nonce
 * (`ERR_TOKEN_EXCHANGE_PROOF_REPLAYED`, `ERR_TOKEN_EXCHANGE_BUSY`).
 */
export async function verifyExchangeProof(
  proof: string,
  request: ExchangeProofRequest,
  options: VerifyExchangeProofOptions,
): Promise<VerifiedExchangeProof> {
  const now = options.nowSeconds;
  if (typeof proof !== 'string' || proof.length > MAX_EXCHANGE_PROOF_CHARS)
    throw invalid(
      MALFORMED,
      `a proof is a string of at most ${MAX_EXCHANGE_PROOF_CHARS} characters`,
    );
  const parts = proof.split('.');
  if (parts.length !== 3)
    throw invalid(MALFORMED, 'a proof is a JWS compact serialization (three parts)');
  const [headerText, payloadText, signatureText] = parts as [string, string, string];
  const header = parseJson(fromBase64Url(headerText, 'header'), 'header');
  exactKeys(header, ['alg', 'typ'], 'header');
  if (header.typ !== CHAIN_PROOF_JWS_TYPE)
    throw invalid(MALFORMED, `the proof's \`typ\` must be \`${CHAIN_PROOF_JWS_TYPE}\``);
  const keyType =
    header.alg === ChainProofAlg.ed25519
      ? 'ed25519'
      : header.alg === ChainProofAlg.p256
        ? 'p256'
        : undefined;
  if (keyType === undefined)
    throw invalid(
      MALFORMED,
      `the proof's \`alg\` must be \`${ChainProofAlg.ed25519}\` or \`${ChainProofAlg.p256}\``,
    );
  const claims = readClaims(parseJson(fromBase64Url(payloadText, 'claims'), 'claims'));
  const signature = fromBase64Url(signatureText, 'signature');
  const chainBytes = fromBase64Url(claims.chain, 'chain');
  const attestation = fromBase64Url(claims.attestation, 'attestation');

  const requestScope = request.scope.join(' ');
  if (claims.aud !== request.tokenEndpoint)
    throw unauthorized(
      'ERR_TOKEN_EXCHANGE_PROOF_MISMATCH',
      'the proof was signed for another token endpoint',
    );
  if (claims.audience !== request.audience)
    throw unauthorized(
      'ERR_TOKEN_EXCHANGE_PROOF_MISMATCH',
      'the proof was signed for another audience than the request asks for',
    );
  if (claims.scope !== requestScope)
    throw unauthorized(
      'ERR_TOKEN_EXCHANGE_PROOF_MISMATCH',
      'the proof was signed for another scope than the request asks for',
    );
  const scope = parseScopeText(claims.scope);

  const skew = options.maxClockSkewSeconds ?? 30;
  if (
    claims.exp <= claims.iat ||
    claims.exp - claims.iat > MAX_EXCHANGE_PROOF_TTL_SECONDS ||
    claims.iat > now + skew
  )
    throw unauthorized(
      'ERR_TOKEN_EXCHANGE_PROOF_LIFETIME',
      `a proof lives 1 to ${MAX_EXCHANGE_PROOF_TTL_SECONDS} s from an \`iat\` that is not in the future`,
    );
  if (claims.exp <= now)
    throw unauthorized('ERR_TOKEN_EXCHANGE_PROOF_EXPIRED', `the proof expired at ${claims.exp}`);
  if (claims.iat < options.nonces.since)
    throw unauthorized(
      'ERR_TOKEN_EXCHANGE_PROOF_EXPIRED',
      'the proof was signed before the broker started; sign a new one',
    );

  const chain = options.chains.verify(chainBytes, { nowSeconds: now, presenter: claims.iss });
  const identity = chain.identities.get(claims.iss);
  if (identity === undefined)
    throw unauthorized(
      'ERR_TOKEN_EXCHANGE_SIGNER_MISMATCH',
      `the chain does not carry the history of \`${claims.iss}\``,
    );
  verifyCredentialKeySignature(
    utf8.encode(`${headerText}.${payloadText}`),
    { keyType, bytes: signature },
    attestation,
    {
      nowSeconds: now,
      authorities: new Map([[claims.iss, identity]]),
      ...(options.rotationGraceSeconds === undefined
        ? {}
        : { rotationGraceSeconds: options.rotationGraceSeconds }),
    },
    {
      untrusted: 'ERR_TOKEN_EXCHANGE_SIGNER_MISMATCH',
      signature: 'ERR_TOKEN_EXCHANGE_SIGNATURE_INVALID',
    },
    'token-exchange proof',
  );

  if (!(await options.nonces.claim(claims.jti, claims.exp, now)))
    throw conflict(
      'ERR_TOKEN_EXCHANGE_PROOF_REPLAYED',
      `the proof \`${claims.jti}\` was already used`,
    );
  return {
    agent: claims.iss,
    chain,
    audience: claims.audience,
    scope,
    jti: claims.jti,
    issuedAt: claims.iat,
    expiresAt: claims.exp,
  };
}
