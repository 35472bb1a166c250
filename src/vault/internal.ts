// Shared by the layers above, not part of the package's API (package.json does not export this
// file): see docs/architecture.md, "Public API and internal barrels".
export { sealBlob, openBlob } from './sealed-blob.js';
