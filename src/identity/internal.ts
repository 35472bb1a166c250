// Shared by the layers above (credentials, channel, node, cli), not part of the package's API:
// the CBOR codec of signatures and versioned data, the update rule, low-level attestation.
// See docs/architecture.md, "Public API and internal barrels".
export { DataType, MAX_CHANGE_HISTORY_BYTES } from './model.js';
export {
  decodeSignature,
  decodeVersionedDataOf,
  encodeSignature,
  encodeVersionedData,
} from './codec.js';
export type { DecodedSignature } from './codec.js';
export { historyIdentifier, verifyChangeSignature } from './verify-change-history.js';
export {
  attestPurposeKey,
  decodePurposeKeyAttestation,
  describePurposeKey,
  MAX_CLOCK_SKEW_SECONDS,
} from './purpose-keys.js';
export type { DecodedPurposeKeyAttestation } from './purpose-keys.js';
export { compareHistories, HistoryRelation, newerHistory } from './compare-histories.js';
