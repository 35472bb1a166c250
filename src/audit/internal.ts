// Shared with the layers above (the SQLite store), not part of the package's API.
export {
  checkAppend,
  checkCheckpoint,
  checkNode,
  checkRange,
  entryNotFound,
} from './repository-checks.js';
export { checkTrailKey, checkTrailNumber } from './trail-repository.js';
