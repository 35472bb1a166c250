import { invalid } from '../core/internal.js';
import {
  CborMap,
  decodeCbor,
  encodeCbor,
  expectArray,
  expectBytes,
  expectMap,
  expectUint,
  hasControlCharacters,
  type CborValue,
} from '../encoding/index.js';
import {
  decodeSignature,
  decodeVersionedDataOf,
  encodeVersionedData,
  type DecodedSignature,
} from '../identity/internal.js';

/**
 * Wire format of Mandate's delegation links and chains (docs/spec/delegation.md), in Ockam's
 * minicbor conventions so a link sits beside Ockam's credentials:
 *
 *   DelegationLink = [ data: bstr(VersionedData [1, 16, bstr(LinkData)]),
 *                      signature: [0|1, [bstr64]],
 *                      issuer_key_attestation: bstr(PurposeKeyAttestation) ]
 *   LinkData       = [ issuer: bstr32, subject: bstr32, parent: bstr32,
 *                      constraints: { bstr => bstr }, not_before: uint, expires_at: uint / null,
 *                      depth: uint, purpose: tstr, nonce: bstr16 ]
 *   Chain          = [ 1, root: bstr(CredentialAndPurposeKey), links: [bstr(DelegationLink)…],
 *                      histories: [bstr(ChangeHistory)…] ]
 *
 * Parts that are signed or verified on their own travel as byte strings, so a verifier hands
 * each one on exactly as received, without re-encoding anything.
 */

export const LINK_DATA_TYPE = 16;
export const CHAIN_VERSION = 1;
export const LINK_NONCE_BYTES = 16;
export const MAX_PURPOSE_CHARS = 256;
export const MAX_CHAIN_LINKS = 16;
export const MAX_CHAIN_BYTES = 256 * 1024;
const MAX_LINK_BYTES = 16 * 1024;
const MAX_CONSTRAINTS = 64;

const MALFORMED = 'ERR_DELEGATION_MALFORMED';
const CHAIN_MALFORMED = 'ERR_CHAIN_MALFORMED';

export interface LinkFields {
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly parent: Uint8Array;
  /** Constraint name → encoded constraint value, in the order given (encoded sorted by name). */
  readonly constraints: ReadonlyMap<string, Uint8Array>;
  readonly notBefore: number;
  /** null: the link inherits its parent's expiry. */
  readonly expiresAt: number | null;
  readonly depth: number;
  readonly purpose: string;
  readonly nonce: Uint8Array;
}

/**
 * One delegation link decoded but not verified.
 */
export interface DecodedLink extends LinkFields {
  /** The signed VersionedData bytes as received. */
  readonly data: Uint8Array;
  readonly signature: DecodedSignature;
  /** The issuer's credential-key attestation, re-encoded from the embedded item. */
  readonly attestation: Uint8Array;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Encodes LinkData inside its VersionedData envelope: the bytes the issuer signs. */
export function encodeLinkData(fields: LinkFields): Uint8Array {
  const names = [...fields.constraints.keys()].sort();
  const map = new CborMap(
    names.map((name) => [utf8.encode(name), fields.constraints.get(name)!] as const),
  );
  return encodeVersionedData(
    LINK_DATA_TYPE,
    encodeCbor([
      fields.issuer,
      fields.subject,
      fields.parent,
      map,
      fields.notBefore,
      fields.expiresAt,
      fields.depth,
      fields.purpose,
      fields.nonce,
    ]),
  );
}

export function encodeLink(
  data: Uint8Array,
  signature: CborValue,
  attestation: Uint8Array,
): Uint8Array {
  return encodeCbor([data, signature, attestation]);
}

export function decodeLink(bytes: Uint8Array): DecodedLink {
  const item = decodeCbor(bytes, {
    errorCode: MALFORMED,
    what: 'delegation link',
    maxBytes: MAX_LINK_BYTES,
    maxDepth: 8,
  });
  return decodeLinkItem(item);
}

function decodeLinkItem(item: CborValue): DecodedLink {
  const outer = expectArray(item, MALFORMED, 'delegation link', 3, 3);
  const data = expectBytes(outer[0], MALFORMED, 'link data');
  const signature = decodeSignature(outer[1], MALFORMED, 'link signature');
  const attestation = expectBytes(outer[2], MALFORMED, 'link issuer attestation');
  const versioned = decodeVersionedDataOf(
    data,
    LINK_DATA_TYPE,
    { malformed: MALFORMED },
    'link data',
  );
  const f = expectArray(
    decodeCbor(versioned.data, { errorCode: MALFORMED, what: 'link data', maxDepth: 4 }),
    MALFORMED,
    'link data',
    9,
    9,
  );
  const map = expectMap(f[3], MALFORMED, 'link constraints');
  if (map.entries.length > MAX_CONSTRAINTS)
    throw invalid(MALFORMED, `a link carries at most ${MAX_CONSTRAINTS} constraints`);
  const constraints = new Map<string, Uint8Array>();
  let previousName: string | undefined;
  for (const [key, value] of map.entries) {
    let name: string;
    try {
      name = utf8Decoder.decode(expectBytes(key, MALFORMED, 'constraint name'));
    } catch (error) {
      throw invalid(MALFORMED, 'a constraint name is not UTF-8', error);
    }
    // Names are sorted so one set of constraints has one encoding.
    if (previousName !== undefined && name <= previousName)
      throw invalid(MALFORMED, 'link constraints are not in canonical order');
    previousName = name;
    constraints.set(name, expectBytes(value, MALFORMED, `constraint \`${name}\``));
  }
  const expiresAt = f[5] === null ? null : expectUint(f[5], MALFORMED, 'link expires_at');
  const purpose = f[7];
  if (typeof purpose !== 'string') throw invalid(MALFORMED, 'link purpose must be text');
  // A purpose is shown to people deciding on the chain: text that repaints a terminal or
  // reorders a line (an ESC sequence turning DENY into ALLOW) is refused, not merely escaped.
  checkPurpose(purpose, MALFORMED);
  return {
    data,
    signature,
    attestation,
    issuer: expectBytes(f[0], MALFORMED, 'link issuer', 32),
    subject: expectBytes(f[1], MALFORMED, 'link subject', 32),
    parent: expectBytes(f[2], MALFORMED, 'link parent', 32),
    constraints,
    notBefore: expectUint(f[4], MALFORMED, 'link not_before'),
    expiresAt,
    depth: expectUint(f[6], MALFORMED, 'link depth', 255),
    purpose,
    nonce: expectBytes(f[8], MALFORMED, 'link nonce', LINK_NONCE_BYTES),
  };
}

/**
 * A link's purpose: at most MAX_PURPOSE_CHARS characters and no control, separator or bidi
 * control character. Checked when a link is issued (`ERR_ARGUMENT_INVALID`) and decoded
 * (`ERR_DELEGATION_MALFORMED`).
 */
export function checkPurpose(
  purpose: string,
  code: 'ERR_DELEGATION_MALFORMED' | 'ERR_ARGUMENT_INVALID',
): void {
  if (purpose.length > MAX_PURPOSE_CHARS)
    throw invalid(code, `a purpose has at most ${MAX_PURPOSE_CHARS} characters`);
  if (hasControlCharacters(purpose))
    throw invalid(code, 'a purpose must not contain control or bidi control characters');
}

/**
 * A delegation chain decoded but not verified: the root credential, the links and the carried histories, as received.
 */
export interface DecodedChain {
  readonly root: Uint8Array;
  readonly links: readonly DecodedLink[];
  readonly linkBytes: readonly Uint8Array[];
  readonly histories: readonly Uint8Array[];
}

export function encodeChain(
  root: Uint8Array,
  links: readonly Uint8Array[],
  histories: readonly Uint8Array[],
): Uint8Array {
  return encodeCbor([CHAIN_VERSION, root, [...links], [...histories]]);
}

/**
 * Decodes delegation-chain bytes without verifying anything (for inspection: `verifyChain` is the
 * only way to a {@link VerifiedChain}). Throws `ERR_CHAIN_MALFORMED` or `ERR_DELEGATION_MALFORMED`
 * for bytes that are not a well-formed chain.
 */
export function decodeChain(bytes: Uint8Array): DecodedChain {
  const item = decodeCbor(bytes, {
    errorCode: CHAIN_MALFORMED,
    what: 'delegation chain',
    maxBytes: MAX_CHAIN_BYTES,
    maxDepth: 3,
  });
  const outer = expectArray(item, CHAIN_MALFORMED, 'delegation chain', 4, 4);
  if (expectUint(outer[0], CHAIN_MALFORMED, 'chain version', 0xff) !== CHAIN_VERSION) {
    throw invalid(CHAIN_MALFORMED, `chain version must be ${CHAIN_VERSION}`);
  }
  const linkItems = expectArray(outer[2]!, CHAIN_MALFORMED, 'chain links', 0, MAX_CHAIN_LINKS);
  const historyItems = expectArray(
    outer[3]!,
    CHAIN_MALFORMED,
    'chain histories',
    0,
    MAX_CHAIN_LINKS + 1,
  );
  const linkBytes = linkItems.map((l, i) => expectBytes(l, CHAIN_MALFORMED, `chain link ${i + 1}`));
  return {
    root: expectBytes(outer[1], CHAIN_MALFORMED, 'chain root credential'),
    links: linkBytes.map((l) => decodeLink(l)),
    linkBytes,
    histories: historyItems.map((h, i) =>
      expectBytes(h, CHAIN_MALFORMED, `chain history ${i + 1}`),
    ),
  };
}
