import {
  checkUnixSeconds,
  conflict,
  invalid,
  unauthorized,
  unavailable,
} from '../core/internal.js';
import { decodeCbor, encodeCbor, expectArray, expectBytes, toHex } from '../encoding/index.js';
import { sha256 } from '../crypto/index.js';
import {
  isIdentifier,
  type Identifier,
  type VerifiedIdentity,
  type VerifiedPurposeKey,
} from '../identity/index.js';
import {
  decodeSignature,
  decodeVersionedDataOf,
  encodeSignature,
  encodeVersionedData,
  type DecodedSignature,
} from '../identity/internal.js';
import type { CredentialIssuer, CredentialKeyVault } from '../credentials/index.js';
import {
  credentialSigningKey,
  signWithCredentialKey,
  verifyCredentialKeySignature,
} from '../credentials/internal.js';
import { compilePolicySet, type CompiledPolicySet } from '../policy/index.js';
import {
  checkBundleSize,
  decodeBundleContent,
  encodeBundleContent,
  type BundleContent,
} from '../policy/internal.js';
import type { ActiveBundle } from './types.js';
import { ToolCatalog } from './catalog.js';

/**
 * Signed, versioned policy bundles (docs/spec/policy.md §2): an authority's policy set and
 * schema, signed by its credential purpose key the way a credential is, so a verifier needs only
 * the authority's change history:
 *
 *   SignedBundle = [ data: bstr(VersionedData [1, 17, bstr(BundleContent)]),
 *                    signature: [0|1, [bstr]],
 *                    issuer_key_attestation: bstr(PurposeKeyAttestation) ]
 *
 * (BundleContent: src/policy/bundle.ts.) The bundle hash is hex SHA-256 of the SignedBundle bytes
 * as received, and travels into every decision.
 */

/** Mandate's VersionedData `data_type` of BundleContent (Ockam uses 1–3, delegation links 16). */
export const BUNDLE_DATA_TYPE = 17;
/** How far a bundle's `created_at` may be ahead of the verifier's clock, by default. */
const DEFAULT_MAX_CLOCK_SKEW_SECONDS = 60;

const MALFORMED = 'ERR_BUNDLE_MALFORMED';

/** What {@link signBundle} signs: the texts and the version (issuer and time come from the signer). */
export interface BundleToSign {
  /** The Cedar policy set. */
  readonly policies: string;
  /** The Cedar schema (human-readable format) the policies must validate against. */
  readonly schema: string;
  /** Monotonic per issuer, from 1: one more than the last published. */
  readonly version: number;
  /**
   * The tool catalog the gates enforce under this bundle, signed into it (its canonical JSON):
   * gates take their tools from the bundle in force. Without one, gates decide no `listTool` or
   * `callTool` under this bundle (`ERR_GATE_NO_CATALOG`).
   */
  readonly catalog?: ToolCatalog;
}

/**
 * Compiles (and so validates) the policies against the schema, then signs a bundle with the
 * issuer's credential key and returns the SignedBundle bytes. The policies are compiled first, so
 * an authority never signs a bundle its verifiers would refuse: a syntax error
 * (`ERR_POLICY_SYNTAX`), a schema that does not parse (`ERR_POLICY_SCHEMA_INVALID`), a policy that
 * does not validate (`ERR_POLICY_INVALID`) or a construct the engine does not compile
 * (`ERR_POLICY_UNSUPPORTED`, naming it) signs nothing. The issuer's key is checked as for a
 * credential (attested, credential purpose, not in a rotation grace window, held by the vault).
 *
 * @example
 * ```ts
 * const { keyId, verified } = await identities.purposeKey('authority', Purpose.credentials);
 * const issuer = { identity: authority.identity, credentialKeyId: keyId, credentialKeyAttestation: verified.attestation };
 * const bytes = await signBundle(vault, issuer, { policies, schema: MANDATE_CEDAR_SCHEMA, version: 1 }, {
 *   nowSeconds: Math.floor(Date.now() / 1000),
 * });
 * ```
 */
export async function signBundle(
  vault: CredentialKeyVault,
  issuer: CredentialIssuer,
  bundle: BundleToSign,
  options: { readonly nowSeconds: number },
): Promise<Uint8Array> {
  const now = checkUnixSeconds(options.nowSeconds);
  const content = encodeBundleContent({
    issuer: issuer.identity.identifier,
    version: bundle.version,
    createdAt: now,
    policies: bundle.policies,
    schema: bundle.schema,
    ...(bundle.catalog === undefined ? {} : { catalog: bundle.catalog.canonical }),
  });
  compilePolicySet({ policies: bundle.policies, schema: bundle.schema });
  const key = await credentialSigningKey(vault, issuer, now);
  const data = encodeVersionedData(BUNDLE_DATA_TYPE, content);
  const signature = await signWithCredentialKey(vault, issuer, key, data);
  const bytes = encodeCbor([
    data,
    encodeSignature(signature.keyType, signature.bytes),
    issuer.credentialKeyAttestation,
  ]);
  checkBundleSize(bytes.byteLength, 'bundle');
  return bytes;
}

/** Options of {@link verifyBundle}. */
export interface VerifyBundleOptions {
  readonly nowSeconds: number;
  /**
   * Trusted authorities by identifier, with their verified histories (on a home:
   * `trustedAuthorities()`, the `all` trust anchors). Any other issuer → `ERR_BUNDLE_UNTRUSTED_ISSUER`.
   */
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  /**
   * The bundle in force, if any: a bundle is accepted only from the same issuer
   * (`ERR_BUNDLE_ISSUER_CHANGED`) with a higher version (`ERR_BUNDLE_NOT_NEWER`).
   */
  readonly known?: Pick<ActiveBundle, 'issuer' | 'version'>;
  /** When given, a bundle created longer ago than this is refused (`ERR_BUNDLE_STALE`). */
  readonly maxAgeSeconds?: number;
  /** How far `created_at` may be ahead of `nowSeconds` (default 60). */
  readonly maxClockSkewSeconds?: number;
  /** Passed to verifyPurposeKeyAttestation (default 300). */
  readonly rotationGraceSeconds?: number;
}

const verified = Symbol('VerifiedBundle');

/** A bundle whose signature, issuer, version and policies were checked: what the gates enforce. */
export class VerifiedBundle implements ActiveBundle {
  /** @internal use verifyBundle */
  constructor(
    token: typeof verified,
    readonly version: number,
    /** Hex SHA-256 of {@link VerifiedBundle.bytes}. */
    readonly hash: string,
    readonly issuer: Identifier,
    readonly createdAt: number,
    /** The policies, compiled against {@link VerifiedBundle.schema}. */
    readonly policySet: CompiledPolicySet,
    /** The Cedar policy set as the authority wrote it. */
    readonly policies: string,
    /** The Cedar schema the policies were validated against. */
    readonly schema: string,
    /** The issuer's credential key that signed it. */
    readonly issuerKey: VerifiedPurposeKey,
    /** The SignedBundle bytes as received. */
    readonly bytes: Uint8Array,
    /** The tool catalog signed into the bundle, compiled; `undefined` when none is bound. */
    readonly catalog: ToolCatalog | undefined,
  ) {
    if (token !== verified) throw new TypeError('VerifiedBundle is created by verifyBundle only');
  }
}

/** A SignedBundle decoded but not verified. */
interface DecodedBundle {
  readonly data: Uint8Array;
  readonly content: Uint8Array;
  readonly signature: DecodedSignature;
  readonly attestation: Uint8Array;
}

function decodeSignedBundle(bytes: Uint8Array): DecodedBundle {
  checkBundleSize(bytes.byteLength, 'bundle');
  const outer = expectArray(
    // SignedBundle → signature → its fields.
    decodeCbor(bytes, {
      errorCode: MALFORMED,
      what: 'bundle',
      maxDepth: 3,
      maxBytes: bytes.length,
    }),
    MALFORMED,
    'bundle',
    3,
    3,
  );
  const data = expectBytes(outer[0], MALFORMED, 'bundle data');
  const signature = decodeSignature(outer[1], MALFORMED, 'bundle signature');
  const attestation = expectBytes(outer[2], MALFORMED, 'bundle issuer attestation');
  const versioned = decodeVersionedDataOf(
    data,
    BUNDLE_DATA_TYPE,
    { malformed: MALFORMED },
    'bundle data',
  );
  return { data, content: versioned.data, signature, attestation };
}

/** The content's issuer as an identifier (the codec writes `I` + 64 hex digits, never other text). */
function issuerOf(content: BundleContent): Identifier {
  if (!isIdentifier(content.issuer))
    throw invalid(MALFORMED, 'the bundle issuer is not an identifier');
  return content.issuer;
}

/**
 * bytes → VerifiedBundle, checking in this order (the first failure is reported):
 *
 * 1. size (at most 2 MiB, `ERR_BUNDLE_TOO_LARGE`) and strict decoding (`ERR_BUNDLE_MALFORMED`);
 * 2. the signer is a trusted authority (`ERR_BUNDLE_UNTRUSTED_ISSUER`), its attestation holds now
 *    as a credential key (`ERR_PURPOSE_KEY_*`), and the signature verifies over SHA-256 of the
 *    data bytes as received (`ERR_BUNDLE_SIGNATURE_INVALID`);
 * 3. the issuer the content names is the signer (`ERR_BUNDLE_ISSUER_MISMATCH`);
 * 4. time: `created_at <= now + skew` (`ERR_BUNDLE_NOT_YET_VALID`) and, with `maxAgeSeconds`,
 *    `now - created_at <= maxAgeSeconds` (`ERR_BUNDLE_STALE`);
 * 5. with `known`: same issuer (`ERR_BUNDLE_ISSUER_CHANGED`), higher version
 *    (`ERR_BUNDLE_NOT_NEWER`);
 * 6. the policies compile against the bundle's own schema, validated strictly
 *    (`ERR_POLICY_SYNTAX`, `ERR_POLICY_SCHEMA_INVALID`, `ERR_POLICY_INVALID`,
 *    `ERR_POLICY_UNSUPPORTED`), and its catalog, when it has one, compiles as the gates compile
 *    a catalog and is canonical (`ERR_GATE_CATALOG_INVALID`).
 *
 * The signature comes before anything the content asserts; compiling comes last, as the costly
 * step. Synchronous; the clock is a parameter.
 */
export function verifyBundle(bytes: Uint8Array, options: VerifyBundleOptions): VerifiedBundle {
  const now = checkUnixSeconds(options.nowSeconds);
  const skew = options.maxClockSkewSeconds ?? DEFAULT_MAX_CLOCK_SKEW_SECONDS;
  if (!Number.isSafeInteger(skew) || skew < 0)
    throw invalid('ERR_ARGUMENT_INVALID', '`maxClockSkewSeconds` must be a non-negative integer');
  const maxAge = options.maxAgeSeconds;
  if (maxAge !== undefined && (!Number.isSafeInteger(maxAge) || maxAge < 0))
    throw invalid('ERR_ARGUMENT_INVALID', '`maxAgeSeconds` must be a non-negative integer');

  // 1.
  const decoded = decodeSignedBundle(bytes);
  // 2.
  const { issuer, issuerKey } = verifyCredentialKeySignature(
    decoded.data,
    decoded.signature,
    decoded.attestation,
    options,
    { untrusted: 'ERR_BUNDLE_UNTRUSTED_ISSUER', signature: 'ERR_BUNDLE_SIGNATURE_INVALID' },
    'bundle',
  );
  // 3.
  const content = decodeBundleContent(decoded.content);
  if (issuerOf(content) !== issuer)
    throw unauthorized(
      'ERR_BUNDLE_ISSUER_MISMATCH',
      `bundle names \`${content.issuer}\` as its issuer but is signed by \`${issuer}\``,
    );
  // 4.
  if (content.createdAt > now + skew)
    throw invalid('ERR_BUNDLE_NOT_YET_VALID', 'bundle is created in the future');
  checkBundleAge(content, now, maxAge);
  // 5.
  const known = options.known;
  if (known !== undefined) {
    if (known.issuer !== issuer)
      throw conflict(
        'ERR_BUNDLE_ISSUER_CHANGED',
        `bundle is issued by \`${issuer}\`, the bundle in force by \`${known.issuer}\``,
      );
    if (content.version <= known.version)
      throw conflict(
        'ERR_BUNDLE_NOT_NEWER',
        `bundle version ${content.version} is not newer than version ${known.version} in force`,
      );
  }
  // 6.
  const policySet = compilePolicySet({ policies: content.policies, schema: content.schema });
  const catalog = content.catalog === undefined ? undefined : catalogOf(content.catalog);
  return new VerifiedBundle(
    verified,
    content.version,
    toHex(sha256(bytes)),
    issuer,
    content.createdAt,
    policySet,
    content.policies,
    content.schema,
    issuerKey,
    bytes,
    catalog,
  );
}

/** A bundle's catalog text → the compiled catalog; the text must be the catalog's canonical form. */
function catalogOf(text: string): ToolCatalog {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw invalid('ERR_GATE_CATALOG_INVALID', "the bundle's catalog is not JSON", cause);
  }
  const catalog = ToolCatalog.fromJson(value);
  if (catalog.canonical !== text)
    throw invalid('ERR_GATE_CATALOG_INVALID', "the bundle's catalog is not in canonical form");
  return catalog;
}

/**
 * `ERR_BUNDLE_STALE` when `bundle` was created more than `maxAgeSeconds` before `nowSeconds`
 * (nothing when no bound is given): the age rule of verifyBundle and of every bundle source.
 */
export function checkBundleAge(
  bundle: { readonly version: number; readonly createdAt: number },
  nowSeconds: number,
  maxAgeSeconds: number | undefined,
): void {
  if (maxAgeSeconds !== undefined && nowSeconds - bundle.createdAt > maxAgeSeconds)
    throw unavailable(
      'ERR_BUNDLE_STALE',
      `policy bundle version ${bundle.version} was created ${nowSeconds - bundle.createdAt} s ago, more than the bound of ${maxAgeSeconds} s`,
    );
}

/**
 * Reads a SignedBundle's version, issuer and creation time without verifying anything (what a
 * repository records beside the bytes, and `policy show` prints for a bundle that no longer
 * verifies). Never trust what it returns.
 */
export function peekBundle(bytes: Uint8Array): {
  readonly issuer: Identifier;
  readonly version: number;
  readonly createdAt: number;
  readonly hash: string;
} {
  const content = decodeBundleContent(decodeSignedBundle(bytes).content);
  return {
    issuer: issuerOf(content),
    version: content.version,
    createdAt: content.createdAt,
    hash: toHex(sha256(bytes)),
  };
}
