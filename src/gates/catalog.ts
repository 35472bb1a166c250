import { createRequire } from 'node:module';
import type { ToolDescriptor } from './tool-descriptor.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { isMandateError } from '../core/index.js';
import { invalid } from '../core/internal.js';
import { sha256 } from '../crypto/index.js';
import { canonicalizeJson, toHex } from '../encoding/index.js';
import {
  entityKey,
  type CedarValue,
  type EntityInput,
  type EntityUid,
  type ResolvedEntity,
} from '../policy/index.js';
import {
  checkArgumentBounds,
  compileArgumentConverter,
  type ArgumentConverter,
} from './request.js';
import { checkInputSchema, linearRegExp } from './schema-safety.js';

/** One catalog tool, prepared once: its validator, its argument converter, its Cedar entities. */
export interface CatalogTool {
  readonly descriptor: ToolDescriptor;
  readonly uid: EntityUid;
  readonly serverUid: EntityUid;
  readonly validate: (args: unknown) => boolean;
  /** The first validation error, for people (after `validate` returned false). */
  readonly lastError: () => string;
  readonly convert: ArgumentConverter;
  readonly entities: readonly EntityInput[];
  /** The tool and its server as the engine reads them (ancestors resolved). */
  readonly resolvedTool: ResolvedEntity;
  readonly resolvedServer: ResolvedEntity;
}

const MAX_TOOLS = 10_000;
/** A tool's input schema is bounded like arguments (it comes from a tool server). */
const MAX_SCHEMA_BYTES = 64 * 1024;
const TOOL_NAME = /^[A-Za-z0-9_.:-][A-Za-z0-9_.:@/-]{0,127}$/;
const SERVER_NAME = /^[A-Za-z0-9_.:@-]{1,128}$/;

type AjvClass = new (options: Record<string, unknown>) => {
  compile(schema: unknown): ValidateFunction;
};

let ajvInstance: InstanceType<AjvClass> | undefined;
function ajv(): InstanceType<AjvClass> {
  // ajv 8 ships CommonJS whose default export TypeScript's NodeNext typing does not see as a
  // constructor; the named `Ajv` export is the same class.
  ajvInstance ??= new (createRequire(import.meta.url)('ajv') as { Ajv: AjvClass }).Ajv({
    allErrors: false,
    strict: false,
    // Tool servers write their own schemas: no remote `$ref` loading, no code from the schema.
    loadSchema: undefined,
    validateSchema: true,
    // Patterns run on agent-supplied strings: a linear-time engine, never a backtracking one.
    code: { regExp: linearRegExp },
    // No format is registered (a format is a regular expression or code of its own): `format`
    // constrains nothing, silently, rather than ajv warning on stderr for each unknown one.
    validateFormats: false,
  });
  return ajvInstance;
}

/** The Cedar uid of a tool: `Tool::"SERVER/NAME"`, its parent `Server::"SERVER"`. */
export function toolUid(server: string, name: string): EntityUid {
  return { type: 'Tool', id: `${server}/${name}` };
}

/**
 * A tool catalog, compiled once: each tool's input schema by ajv (so a call costs one validator
 * run), its argument converter and its `Tool`/`Server` entities. Tools are found by
 * (server, name), or by name alone when exactly one server offers it. Bad descriptors (a name
 * outside the tool-name grammar, a duplicate, a schema that ajv refuses or that is too large) are
 * `ERR_GATE_CATALOG_INVALID`.
 */
export class ToolCatalog {
  readonly #byKey = new Map<string, CatalogTool>();
  readonly #byServer = new Map<string, Map<string, CatalogTool>>();
  readonly #byName = new Map<string, CatalogTool | null>();
  readonly tools: readonly CatalogTool[];
  /**
   * The catalog as canonical JSON (RFC 8785) of `[{name, server, description?, inputSchema}]`,
   * sorted by server then name: what `policy publish --catalog` signs into a bundle.
   */
  readonly canonical: string;
  /** Hex SHA-256 of {@link ToolCatalog.canonical}: two catalogs are the same when their digests are. */
  readonly digest: string;

  constructor(descriptors: readonly ToolDescriptor[]) {
    // Checked as unknown: a caller in plain JavaScript may pass anything.
    const given: unknown = descriptors;
    if (!Array.isArray(given) || given.length > MAX_TOOLS)
      throw invalid(
        'ERR_GATE_CATALOG_INVALID',
        `a catalog is an array of at most ${MAX_TOOLS} tools`,
      );
    const tools: CatalogTool[] = [];
    for (const descriptor of descriptors) {
      const tool = compileTool(descriptor);
      const key = `${descriptor.server}/${descriptor.name}`;
      if (this.#byKey.has(key))
        throw invalid('ERR_GATE_CATALOG_INVALID', `tool \`${key}\` is listed twice`);
      this.#byKey.set(key, tool);
      let onServer = this.#byServer.get(descriptor.server);
      if (onServer === undefined)
        this.#byServer.set(descriptor.server, (onServer = new Map<string, CatalogTool>()));
      onServer.set(descriptor.name, tool);
      this.#byName.set(descriptor.name, this.#byName.has(descriptor.name) ? null : tool);
      tools.push(tool);
    }
    this.tools = Object.freeze(tools);
    const sorted = [...descriptors].sort((a, b) =>
      a.server === b.server ? compare(a.name, b.name) : compare(a.server, b.server),
    );
    try {
      this.canonical = canonicalizeJson(
        sorted.map((d) => ({
          name: d.name,
          server: d.server,
          ...(d.description === undefined ? {} : { description: d.description }),
          inputSchema: d.inputSchema,
        })),
      );
    } catch (cause) {
      throw invalid('ERR_GATE_CATALOG_INVALID', 'the catalog has no canonical JSON form', cause);
    }
    this.digest = toHex(sha256(new TextEncoder().encode(this.canonical)));
  }

  /** The tool, or `undefined` (unknown, or a name more than one server offers without `server`). */
  get(name: string, server?: string): CatalogTool | undefined {
    if (server !== undefined) return this.#byServer.get(server)?.get(name);
    return this.#byName.get(name) ?? undefined;
  }

  /** Parses a catalog file's JSON value: an array of descriptors, or `{"tools":[…]}`. */
  static fromJson(value: unknown): ToolCatalog {
    const list =
      typeof value === 'object' && value !== null && !Array.isArray(value)
        ? (value as Record<string, unknown>)['tools']
        : value;
    if (!Array.isArray(list))
      throw invalid('ERR_GATE_CATALOG_INVALID', 'a catalog is an array of tools or {"tools":[…]}');
    return new ToolCatalog(list.map((entry, index) => parseDescriptor(entry, index)));
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function parseDescriptor(entry: unknown, index: number): ToolDescriptor {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
    throw invalid('ERR_GATE_CATALOG_INVALID', `tool ${index} is not an object`);
  const e = entry as Record<string, unknown>;
  const { name, server, description } = e;
  const inputSchema = e['inputSchema'] ?? e['input_schema'];
  if (typeof name !== 'string' || typeof server !== 'string')
    throw invalid(
      'ERR_GATE_CATALOG_INVALID',
      `tool ${index} needs a string \`name\` and \`server\``,
    );
  if (description !== undefined && typeof description !== 'string')
    throw invalid('ERR_GATE_CATALOG_INVALID', `tool \`${name}\`: \`description\` is not a string`);
  if (typeof inputSchema !== 'object' || inputSchema === null || Array.isArray(inputSchema))
    throw invalid('ERR_GATE_CATALOG_INVALID', `tool \`${name}\` has no \`inputSchema\` object`);
  return {
    name,
    server,
    ...(description === undefined ? {} : { description }),
    inputSchema: inputSchema as Record<string, unknown>,
  };
}

function compileTool(descriptor: ToolDescriptor): CatalogTool {
  const { name, server } = descriptor;
  const shown = (value: unknown): string =>
    typeof value === 'string' ? JSON.stringify(value.slice(0, 64)).slice(1, -1) : typeof value;
  if (typeof name !== 'string' || !TOOL_NAME.test(name))
    throw invalid('ERR_GATE_CATALOG_INVALID', `\`${shown(name)}\` is not a tool name`);
  if (typeof server !== 'string' || !SERVER_NAME.test(server))
    throw invalid('ERR_GATE_CATALOG_INVALID', `\`${shown(server)}\` is not a server name`);
  let text: string;
  try {
    checkArgumentBounds(descriptor.inputSchema);
    text = JSON.stringify(descriptor.inputSchema);
  } catch (cause) {
    throw invalid(
      'ERR_GATE_CATALOG_INVALID',
      `tool \`${name}\`: its input schema is too large or deep`,
      cause,
    );
  }
  if (text.length > MAX_SCHEMA_BYTES)
    throw invalid(
      'ERR_GATE_CATALOG_INVALID',
      `tool \`${name}\`: its input schema exceeds ${MAX_SCHEMA_BYTES} bytes`,
    );
  if (descriptor.inputSchema['type'] !== 'object')
    throw invalid(
      'ERR_GATE_CATALOG_INVALID',
      `tool \`${name}\`: its input schema must have \`"type": "object"\``,
    );
  checkInputSchema(name, descriptor.inputSchema);
  let validate: ValidateFunction;
  try {
    // A copy: ajv keeps the schema object, and the caller's could change later.
    validate = ajv().compile(JSON.parse(text));
  } catch (cause) {
    if (isMandateError(cause))
      throw invalid('ERR_GATE_CATALOG_INVALID', `tool \`${name}\`: ${cause.message}`, cause);
    throw invalid(
      'ERR_GATE_CATALOG_INVALID',
      `tool \`${name}\`: its input schema does not compile`,
      cause,
    );
  }
  // ajv returns a Promise for an `$async` schema (refused above): only `true` is valid.
  if ((validate as { $async?: unknown }).$async !== undefined)
    throw invalid('ERR_GATE_CATALOG_INVALID', `tool \`${name}\`: its input schema is asynchronous`);
  const uid = toolUid(server, name);
  const serverUid: EntityUid = { type: 'Server', id: server };
  const attrs = new Map<string, CedarValue>([
    ['name', name],
    ['server', server],
    ['description', descriptor.description ?? ''],
  ]);
  const serverAttrs = new Map<string, CedarValue>([['name', server]]);
  return {
    descriptor,
    uid,
    serverUid,
    resolvedTool: { uid, attrs, ancestors: new Set([entityKey(serverUid)]) },
    resolvedServer: { uid: serverUid, attrs: serverAttrs, ancestors: new Set() },
    validate: (args) => {
      // Anything but `true` is invalid: a Promise, an exception (the stack), a truthy value.
      try {
        return (validate(args) as unknown) === true;
      } catch {
        return false;
      }
    },
    lastError: () => describeError(validate.errors?.[0]),
    convert: compileArgumentConverter(descriptor.inputSchema),
    entities: Object.freeze([
      { uid, attrs, parents: [serverUid] },
      { uid: serverUid, attrs: serverAttrs, parents: [] },
    ]),
  };
}

function describeError(error: ErrorObject | undefined): string {
  if (error === undefined) return 'the arguments do not match the input schema';
  const at = error.instancePath === '' ? 'the arguments' : `\`${error.instancePath}\``;
  return `${at} ${error.message ?? 'do not match the input schema'}`;
}
