/**
 * What the credential and chain commands share: parsing constraints, reading and verifying chains
 * against what this home knows, and writing a chain to a file or stdout.
 */
import { accessSync, constants, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { invalid } from '../core/internal.js';
import { parseJsonNoDuplicateKeys, toHex } from '../encoding/index.js';
import {
  chainFromCredential,
  decodeChain,
  decodeCredential,
  parseConstraint,
  type Constraint,
  type DecodedChain,
  type VerifiedChain,
} from '../credentials/index.js';
import { encodeConstraintValue, RESERVED_PREFIX } from '../credentials/internal.js';
import { BUDGET_ATTRIBUTE_PREFIX, ToolCatalog } from '../gates/index.js';
import { historyIdentifier } from '../identity/internal.js';
import { type Identifier, type KnownIdentity, type VerifiedIdentity } from '../identity/index.js';
import type { Home } from './home.js';
import type { CliContext } from './context.js';
import { readBytesArgument, readTextArgument } from './input.js';

// The authority's local name is the node's convention (src/node/home-audit.ts).
export { DEFAULT_AUTHORITY } from '../node/internal.js';

export function parseConstraints(list: readonly string[] | undefined): Map<string, Constraint> {
  const out = new Map<string, Constraint>();
  for (const text of list ?? []) {
    const [name, constraint] = parseConstraint(text);
    if (out.has(name))
      throw invalid('ERR_ARGUMENT_INVALID', `constraint \`${name}\` is given twice`);
    out.set(name, constraint);
  }
  return out;
}

export function attributesOf(
  constraints: ReadonlyMap<string, Constraint>,
): Map<string, Uint8Array> {
  for (const name of constraints.keys()) {
    // `mandate.` attributes are chain metadata in their own format (e.g. `mandate.max-depth` is
    // `1`, not `=1`): written as a constraint they would make a credential that never verifies.
    // …except a cumulative budget (`mandate.budget:TOOL#ARG<=N`, gates/budgets.ts), whose value
    // is written exactly as a `max` constraint's.
    if (name.startsWith(BUDGET_ATTRIBUTE_PREFIX) && constraints.get(name)?.kind === 'max') continue;
    if (name.startsWith(RESERVED_PREFIX))
      throw invalid('ERR_ARGUMENT_INVALID', `\`${name}\` is a reserved attribute name`);
  }
  return new Map([...constraints].map(([name, c]) => [name, encodeConstraintValue(c)]));
}

/**
 * Refuses an `--out` that cannot be written (a directory, a missing or read-only directory, a
 * read-only file) before the command changes anything: a ticket used up, or a membership written,
 * for a credential that then cannot be saved would be lost.
 */
export function checkOutputFile(file: string | undefined): void {
  if (file === undefined) return;
  const path = resolve(file);
  const refuse = (why: string, cause?: unknown): never => {
    throw invalid('ERR_ARGUMENT_INVALID', `cannot write \`${file}\`: ${why}`, cause);
  };
  let isDirectory = false;
  let exists = true;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch {
    exists = false;
  }
  if (isDirectory) refuse('it is a directory');
  try {
    accessSync(exists ? path : dirname(path), constants.W_OK);
  } catch (cause) {
    refuse(exists ? 'the file is not writable' : 'no such directory, or it is not writable', cause);
  }
}

/**
 * Writes the chain (or other signed bytes, named `key` in JSON) to `file` as hex, or prints it:
 * on stdout the bytes alone (so `> file` holds exactly them), the status line on stderr; with
 * --json one object either way.
 */
export function writeOrPrint(
  ctx: CliContext,
  file: string | undefined,
  bytes: Uint8Array,
  summary: Record<string, unknown>,
  human: string,
  key = 'chain',
): void {
  if (file !== undefined) {
    try {
      writeFileSync(file, `${toHex(bytes)}\n`);
    } catch (cause) {
      // A missing directory or a read-only path is the caller's mistake, not ERR_INTERNAL.
      throw invalid('ERR_ARGUMENT_INVALID', `cannot write \`${file}\``, cause);
    }
    ctx.out.result({ ...summary, file }, () => `${human}\nwritten to ${file}`);
  } else if (ctx.out.json) {
    ctx.out.result({ ...summary, [key]: toHex(bytes) }, () => '');
  } else {
    ctx.out.note(human);
    ctx.out.result({}, () => toHex(bytes));
  }
}

/**
 * What this home knows for verifying `chain`: its trust anchors (those for `forIdentity` too, the
 * local identity that holds or presents the chain, if any), its deny-set, and its own histories
 * of the identities the chain carries (a newer one here overrides the carried one).
 */
export async function verification(
  home: Home,
  nowSeconds: number,
  chain: Uint8Array | DecodedChain,
  forIdentity?: Identifier,
) {
  const knownIdentities = new Map<Identifier, VerifiedIdentity>();
  const decoded = chain instanceof Uint8Array ? decodeChain(chain) : chain;
  for (const history of decoded.histories) {
    // The claimed identifier only selects the stored copy; verifyChain verifies what it carries.
    const identifier = historyIdentifier(history);
    // Only absence falls back to the history the chain carries: a stored history that fails to
    // verify is an error, never silently replaced by what the presenter brought.
    const local = await home.identities.find(identifier);
    if (local !== undefined) knownIdentities.set(identifier, local.identity);
  }
  return {
    authorities: await home.trustedAuthorities(forIdentity === undefined ? {} : { forIdentity }),
    denySet: await home.denySet(nowSeconds),
    knownIdentities,
  };
}

/** A file holding a chain, or a bare credential whose subject's history this home knows. */
export async function readChain(home: Home, file: string): Promise<Uint8Array> {
  return (await loadChain(home, file)).bytes;
}

/** {@link readChain}, with the chain decoded once for the callers that read it further. */
export async function loadChain(
  home: Home,
  file: string,
): Promise<{ readonly bytes: Uint8Array; readonly decoded: DecodedChain }> {
  const bytes = readBytesArgument(file, 'chain');
  try {
    return { bytes, decoded: decodeChain(bytes) };
  } catch (chainError) {
    let chain: Uint8Array;
    try {
      const credential = decodeCredential(bytes);
      chain = chainFromCredential(bytes, (await home.identities.get(credential.subject)).identity);
    } catch {
      throw chainError;
    }
    return { bytes: chain, decoded: decodeChain(chain) };
  }
}

export function chainSummary(chain: VerifiedChain) {
  return {
    actor: chain.actor,
    issuer: chain.root.issuer,
    expiresAt: chain.expiresAt,
    remainingDepth: chain.remainingDepth,
    revocationIds: [chain.root.revocationId, ...chain.links.map((l) => l.revocationId)],
    chain: chain.steps,
  };
}

export function requireLocal(known: KnownIdentity, ref: string): string {
  if (known.primaryKeyId === null)
    throw invalid('ERR_IDENTITY_NOT_LOCAL', `identity \`${ref}\` has no key in this vault`);
  return known.primaryKeyId;
}

/** The tools of a catalog file (JSON `[…]` or `{"tools": […]}`), checked as the gates check them. */
export function readCatalog(file: string): ToolCatalog {
  const text = readTextArgument(file, 'catalog');
  // No key twice in one object: `"type":"integer","type":"number"` has no one meaning.
  const value = parseJsonNoDuplicateKeys(text, 'ERR_GATE_CATALOG_INVALID', `catalog \`${file}\``);
  return ToolCatalog.fromJson(value);
}
