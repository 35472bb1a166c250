// Shared by the layers above (gates, store, bus, cli), not part of the package's API: the codec of
// a policy bundle's content (the gates sign and verify the envelope around it). See
// docs/architecture.md, "Public API and internal barrels".
export {
  checkBundleSize,
  decodeBundleContent,
  encodeBundleContent,
  MAX_BUNDLE_BYTES,
  MAX_BUNDLE_TEXT_BYTES,
} from './bundle.js';
export type { BundleContent } from './bundle.js';
// Parsing only (cedar-wasm → EST): the CLI reads a policy set's action scopes (`policy publish`).
export { parsePolicySet } from './cedar.js';
export type { ParsedPolicy, PolicyEst } from './cedar.js';
