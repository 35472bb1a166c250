import type { Command } from 'commander';
import { invalid, notFound } from '../../core/internal.js';
import { isMandateError } from '../../core/index.js';
import { escapeControlCharacters } from '../../encoding/index.js';
import { Purpose } from '../../identity/index.js';
import {
  compilePolicySet,
  parseCedarEntities,
  parseCedarRequest,
  type CompiledPolicySet,
  type PolicyDecision,
} from '../../policy/index.js';
import { parsePolicySet } from '../../policy/internal.js';
import {
  MANDATE_CEDAR_SCHEMA,
  ToolCatalog,
  mandateCedarSchema,
  signBundle,
  verifyBundle,
  type StoredBundle,
  type VerifiedBundle,
} from '../../gates/index.js';
import type { CliContext } from '../context.js';
import type { Home } from '../home.js';
import { EXIT_CODES, formatFields } from '../output.js';
import { parsePositiveInteger } from '../parse.js';
import { readBytesArgument, readTextArgument } from '../input.js';
import {
  checkOutputFile,
  DEFAULT_AUTHORITY,
  readCatalog,
  requireLocal,
  writeOrPrint,
} from '../chains.js';

/** Cedar entities and request lists may be larger than the CLI's usual inputs. */
const MAX_CEDAR_JSON_BYTES = 16 * 1024 * 1024;

interface SchemaOption {
  schema?: string;
  catalog?: string;
}

const SCHEMA_HELP =
  'a Cedar schema (default: the Mandate schema, which declares no tool arguments)';
const CATALOG_HELP =
  'a tool catalog (JSON [{name, server, description, inputSchema}]): validate against the Mandate schema with its tools’ arguments (as `mandate gate schema --catalog`)';

export function registerPolicyCommands(program: Command, context: () => CliContext): void {
  const policy = program
    .command('policy')
    .description('Cedar policies: validate, publish as a signed bundle, show, evaluate');

  policy
    .command('validate')
    .argument('<file>', 'a Cedar policy set (FILE.cedar, or - for stdin)')
    .option('--schema <file>', SCHEMA_HELP)
    .option('--catalog <file>', CATALOG_HELP)
    .description(
      'check that the policies parse, validate against the schema, and use only constructs Mandate compiles',
    )
    .action((file: string, opts: SchemaOption) => {
      runPolicyValidate(context(), file, opts);
    });

  policy
    .command('publish')
    .argument('<file>', 'a Cedar policy set (FILE.cedar, or - for stdin)')
    .option('--schema <file>', SCHEMA_HELP)
    .option('--catalog <file>', CATALOG_HELP)
    .option('--authority <name>', 'the authority that signs it', DEFAULT_AUTHORITY)
    .description(
      'validate the policies and publish them as the next version of this home’s signed policy bundle',
    )
    .action((file: string, opts: SchemaOption & { authority: string }) =>
      runPolicyPublish(context(), file, opts),
    );

  // A version is an argument, not `--version`: that is the program's own option.
  policy
    .command('show')
    .argument('[version]', 'a version of the history (default: the latest, the one in force)')
    .description(
      'show the policy bundle in force (verified): version, hash, issuer, policies and their text',
    )
    .action((version: string | undefined) => runPolicyShow(context(), version));

  policy
    .command('history')
    .description('list every published bundle version, oldest first (not verified)')
    .action(() => runPolicyHistory(context()));

  policy
    .command('export')
    .argument('[version]', 'a version of the history (default: the latest)')
    .option('--out <file>', 'write the signed bundle here (hex) instead of stdout')
    .description('print a published bundle as signed (hex), for `policy import` on another home')
    .action((version: string | undefined, opts: { out?: string }) =>
      runPolicyExport(context(), version, opts),
    );

  policy
    .command('import')
    .argument('<bundle>', 'a signed bundle: FILE, HEX or -')
    .description(
      'verify a bundle signed by a trusted authority (newer than the latest here) and store it as the latest',
    )
    .action((arg: string) => runPolicyImport(context(), arg));

  policy
    .command('eval')
    .requiredOption('--policies <file>', 'a Cedar policy set')
    .option('--schema <file>', 'a Cedar schema to validate the policies against first')
    .requiredOption('--entities <file>', 'entities in Cedar’s JSON entity format')
    .option('--request <file>', 'one request in Cedar’s JSON request format')
    .option('--requests <file>', 'requests, one JSON object a line (JSON Lines)')
    .description(
      'evaluate requests with Mandate’s compiled engine; one request exits 0 (allow) or 5 (deny), --requests prints one JSON line per line',
    )
    .addHelpText(
      'after',
      '\nA request is {"principal":{"type":"Agent","id":"a"},"action":{"type":"Action","id":"callTool"},\n"resource":{"type":"Tool","id":"t"},"context":{…}}. Any evaluation error denies (Cedar would skip\nthe policy that errs). With --requests, a line that cannot be read gives an {"error":…} line.',
    )
    .action((opts: PolicyEvalOptions) => {
      runPolicyEval(context(), opts);
    });
}

/**
 * The schema text and what to call it: `--schema FILE`; for `--catalog FILE`, the Mandate schema
 * with the catalog's tool arguments (`mandateCedarSchema`); else the Mandate schema, which
 * declares no tool arguments (`default` is then true).
 */
function schemaOf(opts: SchemaOption): {
  text: string;
  name: string;
  default: boolean;
  catalog?: ToolCatalog;
} {
  if (opts.schema !== undefined && opts.catalog !== undefined)
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      'give `--schema FILE` or `--catalog FILE`, not both (`--catalog` derives the schema from the tools)',
    );
  if (opts.schema !== undefined)
    return { text: readTextArgument(opts.schema, 'schema'), name: opts.schema, default: false };
  if (opts.catalog !== undefined) {
    const catalog = readCatalog(opts.catalog);
    return {
      text: mandateCedarSchema({ tools: catalog.tools.map((t) => t.descriptor) }),
      name: `mandate + catalog ${opts.catalog}`,
      default: false,
      catalog,
    };
  }
  return { text: MANDATE_CEDAR_SCHEMA, name: 'mandate', default: true };
}

/**
 * Whether some policy's action scope admits `callTool`: `action` alone, `== Action::"callTool"`,
 * or an `in` naming it. Under the default schema (no tool arguments declared) such a policy set
 * denies every call that has arguments, so `policy publish` warns.
 */
function appliesToCallTool(policies: string): boolean {
  const isCallTool = (e: unknown): boolean => {
    const uid = (e as { __entity?: { type?: unknown; id?: unknown } } | null)?.__entity ?? e;
    return (
      typeof uid === 'object' &&
      uid !== null &&
      (uid as { type?: unknown }).type === 'Action' &&
      (uid as { id?: unknown }).id === 'callTool'
    );
  };
  return parsePolicySet(policies).some(({ est }) => {
    const scope = est.action as { op?: unknown; entity?: unknown; entities?: unknown };
    if (scope.op === '==' || (scope.op === 'in' && scope.entity !== undefined))
      return isCallTool(scope.entity);
    if (scope.op === 'in' && Array.isArray(scope.entities)) return scope.entities.some(isCallTool);
    return true; // `action` alone (All), or a form this check does not know: warn rather than not
  });
}

function policySummary(set: CompiledPolicySet) {
  return set.policies.map((p) => ({
    id: p.id,
    effect: p.effect,
    annotations: Object.fromEntries(p.annotations),
  }));
}

function humanPolicies(set: CompiledPolicySet): string[] {
  return set.policies.map((p) => {
    const annotations = [...p.annotations]
      .map(([k, v]) => (v === '' ? `@${k}` : `@${k}(${JSON.stringify(v)})`))
      .join(' ');
    return `  ${p.id}  ${p.effect}${annotations === '' ? '' : `  ${annotations}`}`;
  });
}

/** `policy validate`: parse, validate against the schema, compile. */
export function runPolicyValidate(ctx: CliContext, file: string, opts: SchemaOption): void {
  const policies = readTextArgument(file, 'policy set');
  const schema = schemaOf(opts);
  const set = compilePolicySet({ policies, schema: schema.text });
  ctx.out.result({ valid: true, schema: schema.name, policies: policySummary(set) }, () =>
    [
      `valid: ${set.policies.length} ${set.policies.length === 1 ? 'policy' : 'policies'} (schema: ${schema.name})`,
      ...humanPolicies(set),
    ].join('\n'),
  );
}

/** `policy publish`: validate, sign the next version with the home's authority, store it. */
export async function runPolicyPublish(
  ctx: CliContext,
  file: string,
  opts: SchemaOption & { authority: string },
): Promise<void> {
  const policies = readTextArgument(file, 'policy set');
  const schema = schemaOf(opts);
  // Checked before the home is touched: a policy set that does not compile changes nothing.
  compilePolicySet({ policies, schema: schema.text });
  const home = await ctx.openHome();
  try {
    const known = await home.identities.get(opts.authority);
    requireLocal(known, opts.authority);
    const now = ctx.clock.nowSeconds();
    (await home.denySet(now)).assertNoneRevoked([known.identity.identifier], now);
    const { verified, keyId } = await home.identities.purposeKey(known, Purpose.credentials);
    const previous = await home.store.policyBundles.latestBundle();
    const bytes = await signBundle(
      home.vault,
      {
        identity: known.identity,
        credentialKeyId: keyId,
        credentialKeyAttestation: verified.attestation,
        verifiedKey: verified,
      },
      {
        policies,
        schema: schema.text,
        version: (previous?.version ?? 0) + 1,
        ...(schema.catalog === undefined ? {} : { catalog: schema.catalog }),
      },
      { nowSeconds: now },
    );
    // As every process of this home will verify it: an authority this home does not trust, or
    // one other than the previous bundle's, is refused here rather than by every gate.
    const bundle = await storeVerified(home, bytes, now, previous);
    if (schema.default && appliesToCallTool(policies))
      ctx.out.note(
        'warning: published with the default Mandate schema, which declares no tool arguments: every `callTool` with arguments will be denied (the request does not conform); publish with `--catalog FILE.json` (or `--schema FILE`)',
      );
    if (bundle.catalog === undefined)
      ctx.out.note(
        'warning: published without `--catalog`: the bundle binds no tool catalog, so the gates list and call no tool under it (ERR_GATE_NO_CATALOG)',
      );
    ctx.out.result(
      {
        version: bundle.version,
        hash: bundle.hash,
        issuer: bundle.issuer,
        createdAt: bundle.createdAt,
        schema: schema.name,
        policies: bundle.policySet.policies.length,
        catalog: bundle.catalog?.digest ?? null,
      },
      () => `published policy bundle version ${bundle.version}\nhash: ${bundle.hash}`,
    );
  } finally {
    home.close();
  }
}

/**
 * Verifies `bytes` as the home's processes will (a trusted authority, the issuer of `previous`,
 * a newer version, policies that compile) and stores it as the latest.
 */
async function storeVerified(
  home: Home,
  bytes: Uint8Array,
  nowSeconds: number,
  previous: StoredBundle | undefined,
): Promise<VerifiedBundle> {
  const bundle = verifyBundle(bytes, {
    nowSeconds,
    authorities: await home.trustedAuthorities(),
    ...(previous === undefined ? {} : { known: previous }),
  });
  await home.store.policyBundles.publishBundle(bytes, nowSeconds);
  return bundle;
}

/** The stored bundle of `version` (default the latest), verified as a gate would. */
async function loadBundle(
  home: Home,
  nowSeconds: number,
  version: number | undefined,
): Promise<{ stored: StoredBundle; bundle: VerifiedBundle }> {
  const repository = home.store.policyBundles;
  const stored =
    version === undefined ? await repository.latestBundle() : await repository.getBundle(version);
  if (stored === undefined)
    throw notFound(
      'ERR_BUNDLE_NOT_FOUND',
      version === undefined
        ? 'no policy bundle is published in this home (see `mandate policy publish`)'
        : `no policy bundle version ${version} in this home`,
    );
  const bundle = verifyBundle(stored.bytes, {
    nowSeconds,
    authorities: await home.trustedAuthorities(),
  });
  return { stored, bundle };
}

/** `policy show`: the bundle in force (or a version of the history), verified. */
export async function runPolicyShow(ctx: CliContext, versionText?: string): Promise<void> {
  const version =
    versionText === undefined ? undefined : parsePositiveInteger(versionText, 'version');
  const home = await ctx.openHome();
  try {
    const { stored, bundle } = await loadBundle(home, ctx.clock.nowSeconds(), version);
    ctx.out.result(
      {
        version: bundle.version,
        hash: bundle.hash,
        issuer: bundle.issuer,
        createdAt: bundle.createdAt,
        publishedAt: stored.publishedAt,
        policies: policySummary(bundle.policySet),
        text: bundle.policies,
        schema: bundle.schema,
        catalog:
          bundle.catalog === undefined
            ? null
            : {
                digest: bundle.catalog.digest,
                tools: bundle.catalog.tools.map(
                  (t) => `${t.descriptor.server}/${t.descriptor.name}`,
                ),
              },
      },
      () =>
        [
          formatFields([
            ['version', bundle.version],
            ['hash', bundle.hash],
            ['issuer', bundle.issuer],
            ['created', new Date(bundle.createdAt * 1000).toISOString()],
            ['policies', bundle.policySet.policies.length],
            [
              'catalog',
              bundle.catalog === undefined
                ? 'none (the gates list and call no tool)'
                : `${bundle.catalog.tools.length} tools, ${bundle.catalog.digest}`,
            ],
          ]),
          ...humanPolicies(bundle.policySet),
          '',
          bundle.policies.trimEnd(),
        ].join('\n'),
    );
  } finally {
    home.close();
  }
}

/** `policy history`: every stored version, as recorded (verify one with `show --version`). */
export async function runPolicyHistory(ctx: CliContext): Promise<void> {
  const home = await ctx.openHome();
  try {
    const bundles = await home.store.policyBundles.listBundles();
    ctx.out.result({ bundles }, () =>
      bundles.length === 0
        ? 'no policy bundles'
        : bundles
            .map(
              (b) =>
                `${b.version}  ${new Date(b.createdAt * 1000).toISOString()}  ${b.hash}  ${b.issuer}`,
            )
            .join('\n'),
    );
  } finally {
    home.close();
  }
}

/** `policy export`: a stored bundle's signed bytes, verified first. */
export async function runPolicyExport(
  ctx: CliContext,
  versionText: string | undefined,
  opts: { out?: string },
): Promise<void> {
  const version =
    versionText === undefined ? undefined : parsePositiveInteger(versionText, 'version');
  checkOutputFile(opts.out);
  const home = await ctx.openHome();
  try {
    const { bundle } = await loadBundle(home, ctx.clock.nowSeconds(), version);
    writeOrPrint(
      ctx,
      opts.out,
      bundle.bytes,
      { version: bundle.version, hash: bundle.hash, issuer: bundle.issuer },
      `policy bundle version ${bundle.version}, hash ${bundle.hash}`,
      'bundle',
    );
  } finally {
    home.close();
  }
}

/** `policy import`: a bundle signed elsewhere, verified as the home's processes will, stored. */
export async function runPolicyImport(ctx: CliContext, arg: string): Promise<void> {
  const bytes = readBytesArgument(arg, 'bundle');
  const home = await ctx.openHome();
  try {
    const now = ctx.clock.nowSeconds();
    const previous = await home.store.policyBundles.latestBundle();
    const bundle = await storeVerified(home, bytes, now, previous);
    ctx.out.result(
      { version: bundle.version, hash: bundle.hash, issuer: bundle.issuer },
      () => `imported policy bundle version ${bundle.version}\nhash: ${bundle.hash}`,
    );
  } finally {
    home.close();
  }
}

interface PolicyEvalOptions extends SchemaOption {
  policies: string;
  entities: string;
  request?: string;
  requests?: string;
}

function decisionJson(decision: PolicyDecision) {
  return {
    decision: decision.decision,
    policies: decision.policies,
    errors: decision.errors.map((e) => ({ policy: e.policy, message: e.message })),
  };
}

/**
 * `policy eval`: Cedar's JSON formats in, the compiled engine's decisions out. Pure: no home.
 * One request prints its decision (exit 0 allow, 5 deny); `--requests` prints one JSON line per
 * input line, an `{"error":…}` line for a line that is not a valid request, and exits 0.
 */
export function runPolicyEval(ctx: CliContext, opts: PolicyEvalOptions): void {
  if ((opts.request === undefined) === (opts.requests === undefined))
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      'give exactly one of `--request FILE` and `--requests FILE`',
    );
  const set = compilePolicySet({
    policies: readTextArgument(opts.policies, 'policy set'),
    ...(opts.schema === undefined ? {} : { schema: readTextArgument(opts.schema, 'schema') }),
  });
  const entities = parseCedarEntities(
    readTextArgument(opts.entities, 'entities', MAX_CEDAR_JSON_BYTES),
  );
  if (opts.request !== undefined) {
    const decision = set.evaluate(
      parseCedarRequest(readTextArgument(opts.request, 'request')),
      entities,
    );
    ctx.out.result(decisionJson(decision), () =>
      [
        `${decision.decision.toUpperCase()}${decision.policies.length === 0 ? '' : `: ${decision.policies.join(', ')}`}`,
        ...decision.errors.map((e) => `  error in ${e.policy}: ${e.message}`),
      ].join('\n'),
    );
    // A denial is an answer, not an error; scripts read the exit code (that of `forbidden`).
    if (decision.decision === 'deny') ctx.out.exitCode = EXIT_CODES.forbidden;
    return;
  }
  const text = readTextArgument(opts.requests!, 'requests', MAX_CEDAR_JSON_BYTES);
  const lines = text.split('\n');
  // A final line feed ends the last line; it does not start another.
  if (lines.at(-1) === '') lines.pop();
  const out: string[] = [];
  for (const line of lines) {
    let answer: unknown;
    try {
      answer = decisionJson(set.evaluate(parseCedarRequest(line.replace(/\r$/, '')), entities));
    } catch (error) {
      if (!isMandateError(error)) throw error;
      answer = { error: error.toJSON() };
    }
    // Compact, one a line; escaped as everything the CLI prints (JSON stays JSON).
    out.push(escapeControlCharacters(JSON.stringify(answer)));
  }
  if (out.length > 0) process.stdout.write(`${out.join('\n')}\n`);
}
