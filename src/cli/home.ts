// The home is composed by the node (src/node/home.ts); the commands reach it from here.
export {
  openHome,
  credentialIssuerOf,
  LIVE_DENY_SET_STALENESS_SECONDS,
  PASSPHRASE_ENV,
} from '../node/internal.js';
export type { Home } from '../node/internal.js';
