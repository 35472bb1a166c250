// Shared by the layers above (store, node, cli), not part of the package's API: the checks every
// policy bundle repository applies. See docs/architecture.md, "Public API and internal barrels".
export { bundleHashMatches, bundleNotNewerError, bundleRecord } from './bundle-repository.js';
export { checkAmount } from './budgets.js';
