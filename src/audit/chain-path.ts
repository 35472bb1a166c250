import { toHex } from '../encoding/index.js';
import { decodeChain, decodeCredential } from '../credentials/index.js';

/**
 * On whose behalf an agent acted, for display: the identifiers along a delegation chain — the
 * root credential's subject (the human or service the authority vouched for), then each link's
 * subject, the last being the acting agent. Decodes without verifying (verify the trail for
 * that); undefined for bytes that are not a chain.
 */
export function delegationPath(chain: Uint8Array): string[] | undefined {
  try {
    const decoded = decodeChain(chain);
    const root = decodeCredential(decoded.root);
    return [root.subject, ...decoded.links.map((l) => `I${toHex(l.subject)}`)];
  } catch {
    return undefined;
  }
}
