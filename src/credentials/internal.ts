// Shared by the layers above (channel, store, node, cli), not part of the package's API: the
// constraint value codec, reserved attribute names, and the checks every repository
// implementation applies to what it stores. See docs/architecture.md, "Public API and internal
// barrels".
export {
  encodeConstraintValue,
  decodeConstraintValue,
  checkRequest,
  TOOLS_ATTRIBUTE,
  LABEL_PREFIX,
  SECRETS_ATTRIBUTE,
  SECRET_SCOPES_ATTRIBUTE,
  HUMAN_ATTRIBUTE,
} from './constraints.js';
export { RESERVED_PREFIX } from './delegation.js';
export {
  checkNonNegativeInteger,
  denySetAheadError,
  denySetPrunedError,
  parseDenyEntry,
} from './deny-set.js';
export { checkTrustAnchor } from './trust-anchors.js';
export {
  credentialKeyHoldsAt,
  credentialSigningKey,
  signWithCredentialKey,
  verifyCredentialKeySignature,
} from './credential-key.js';
export type { CredentialKeySignature, CredentialKeySignatureOptions } from './credential-key.js';
