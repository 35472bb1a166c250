// The node's configuration (docs/spec/node.md): one JSON Schema with defaults, validated by ajv,
// filled from four layers — defaults < config file < MANDATE_* environment < command-line flags —
// and refused, naming the key and where it came from, before anything is opened or bound.
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { ErrorCode } from '../core/index.js';
import { invalid, notFound } from '../core/internal.js';
import { parseJsonNoDuplicateKeys } from '../encoding/index.js';
import { parseDialRoute, parseListenAddress } from './node-runtime.js';
import { readRegularFile, type RegularFileRead } from './regular-file.js';

/** The services a node can compose (`services` in the config). */
export const NodeServiceName = {
  /** Replies with what it receives, at `echo` (what `channel ping` times). */
  echo: 'echo',
  /** Registers agents by name and forwards what it cannot decrypt (docs/spec/relay.md). */
  relay: 'relay',
  /** Gate 3: leased secrets over secure channels (docs/spec/broker.md). */
  broker: 'broker',
  /** Enrollment, credential renewal, and the deny-set and bundles for members (`authority start`). */
  authority: 'authority',
  /** The MCP gateway: gates 1 and 2 in front of MCP servers (docs/spec/mcp.md; `gateway start`). */
  gateway: 'gateway',
  /** The admin HTTP API and the dashboard (docs/spec/admin.md), at `admin.listen`. */
  admin: 'admin',
} as const;
/** One of {@link NodeServiceName}. */
export type NodeServiceName = (typeof NodeServiceName)[keyof typeof NodeServiceName];

/** A node's configuration, after defaults and validation (docs/spec/node.md). */
export interface NodeConfig {
  /** The local identity (name or identifier) the node acts as. */
  readonly identity: string;
  /** Where the node's TCP transport listens, `host:port`. */
  readonly listen: string;
  /** Credential files (chains of length 0) the node presents. */
  readonly credentials: readonly string[];
  /** The services the node runs, started in this order and stopped in reverse. */
  readonly services: readonly NodeServiceName[];
  /** Stay registered as `name` at the relay node at `route`. */
  readonly relay?: { readonly route: string; readonly name: string };
  /** Fetch and renew credentials from, and follow the deny-set and bundles of, this authority. */
  readonly authority?: {
    readonly route: string;
    readonly refreshLeadSeconds: number;
    readonly maxStalenessSeconds: number;
  };
  /** The broker service's options (with `broker` among the services). */
  readonly broker: {
    readonly http?: string;
    readonly postgresFile?: string;
    readonly postgresRolePrefix?: string;
    readonly proxyBindings?: string;
  };
  /** The authority service's options (with `authority` among the services). */
  readonly authorityService?: { readonly credentialTtlSeconds?: number };
  /** The gateway service's options (with `gateway` among the services: `config` is required). */
  readonly gateway?: { readonly config: string; readonly checkpointIntervalSeconds: number };
  /**
   * The admin service's options (with `admin` among the services): where it listens (loopback
   * only), the operator its sessions are bound to, and the authority whose key signs the home's
   * log checkpoints.
   */
  readonly admin: { readonly listen: string; readonly as: string; readonly authority: string };
  /** Serve `/healthz` and `/readyz` over HTTP at `host:port` (loopback only). */
  readonly health?: { readonly listen: string };
  /** How long a stop (SIGINT, SIGTERM) may take before the node gives up waiting. */
  readonly shutdownTimeoutMs: number;
}

const text = { type: 'string', minLength: 1, maxLength: 4096 } as const;
const seconds = { type: 'integer', minimum: 1, maximum: 31_536_000 } as const;

/** The JSON Schema of the node's configuration, with its defaults. */
export const NODE_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['identity', 'listen'],
  properties: {
    identity: text,
    listen: text,
    credentials: { type: 'array', items: text, maxItems: 64, default: [] },
    services: {
      type: 'array',
      items: { enum: Object.values(NodeServiceName) },
      uniqueItems: true,
      minItems: 1,
      default: [NodeServiceName.echo],
    },
    relay: {
      type: 'object',
      additionalProperties: false,
      required: ['route', 'name'],
      properties: { route: text, name: text },
    },
    authority: {
      type: 'object',
      additionalProperties: false,
      required: ['route'],
      properties: {
        route: text,
        refreshLeadSeconds: { ...seconds, default: 60 },
        maxStalenessSeconds: { ...seconds, default: 10 },
      },
    },
    broker: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        http: text,
        postgresFile: text,
        postgresRolePrefix: text,
        proxyBindings: text,
      },
    },
    authorityService: {
      type: 'object',
      additionalProperties: false,
      properties: { credentialTtlSeconds: { ...seconds, maximum: 86_400 } },
    },
    gateway: {
      type: 'object',
      additionalProperties: false,
      required: ['config'],
      properties: { config: text, checkpointIntervalSeconds: { ...seconds, default: 10 } },
    },
    admin: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        listen: { ...text, default: '127.0.0.1:0' },
        as: { ...text, default: 'authority' },
        authority: { ...text, default: 'authority' },
      },
    },
    health: {
      type: 'object',
      additionalProperties: false,
      required: ['listen'],
      properties: { listen: text },
    },
    shutdownTimeoutMs: { type: 'integer', minimum: 1, maximum: 600_000, default: 10_000 },
  },
} as const;

/** Largest config file read. */
const MAX_CONFIG_BYTES = 64 * 1024;
/** The prefix of every environment variable the config reads. */
const ENV_PREFIX = 'MANDATE_';

/** Where a layer's values came from, as errors name it. */
export const ConfigSource = {
  file: 'file',
  environment: 'environment',
  flags: 'flags',
} as const;
export type ConfigSource = (typeof ConfigSource)[keyof typeof ConfigSource];

/** The layers {@link loadNodeConfig} merges over the schema's defaults. */
export interface NodeConfigLayers {
  /** A command's own defaults (`mandate up`'s identity and address), over the schema's, under the rest. */
  readonly defaults?: Readonly<Record<string, unknown>>;
  /** A JSON config file (keys as in {@link NodeConfig}; unknown keys are refused). */
  readonly file?: string;
  /** The environment (`process.env`): only the `MANDATE_*` names of docs/spec/node.md are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Values from the command line, keys as in the file; they win over every other layer. */
  readonly flags?: Readonly<Record<string, unknown>>;
  /** How a key is spelled on the command line (`authority.refreshLeadSeconds` → `--refresh-lead`). */
  readonly flagNames?: Readonly<Record<string, string>>;
}

interface Layer {
  readonly source: ConfigSource;
  readonly values: Record<string, unknown>;
}

/**
 * The node's configuration from its layers: defaults < `file` < `env` < `flags`. Refused, before
 * anything is opened or bound: a missing file with `ERR_NODE_CONFIG_NOT_FOUND`; a value from
 * the file or environment that is unknown, missing, of the wrong type or unusable with
 * `ERR_NODE_CONFIG_INVALID`, and one from the flags with `ERR_ARGUMENT_INVALID` — each naming the
 * key (and the variable or flag it came from).
 */
export function loadNodeConfig(layers: NodeConfigLayers): NodeConfig {
  const stack: Layer[] = [];
  if (layers.file !== undefined)
    stack.push({ source: ConfigSource.file, values: readConfigFile(layers.file) });
  if (layers.env !== undefined)
    stack.push({ source: ConfigSource.environment, values: fromEnvironment(layers.env) });
  if (layers.flags !== undefined)
    stack.push({ source: ConfigSource.flags, values: ownCopyOf(layers.flags) });
  const merged = ownCopyOf(layers.defaults ?? {});
  for (const layer of stack) mergeInto(merged, layer.values);
  const flagNames = layers.flagNames ?? {};
  const validator = validatorOf();
  if (!validator(merged)) {
    const error = validator.errors?.[0];
    const key = error === undefined ? '(top level)' : keyOf(error);
    throw refuse(stack, flagNames, key, error === undefined ? 'is invalid' : describe(error));
  }
  const config = merged as unknown as NodeConfig;
  checkValues(config, stack, flagNames);
  return config;
}

/** The environment variable of a key (`authority.refreshLeadSeconds` → MANDATE_AUTHORITY_REFRESH_LEAD_SECONDS). */
export function envNameOf(key: string): string {
  return (
    ENV_PREFIX +
    key
      .replace(/\./g, '_')
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .toUpperCase()
  );
}

/** Every leaf key of the schema, dotted, with its JSON type. */
function schemaKeys(): readonly (readonly [key: string, type: string])[] {
  const out: [string, string][] = [];
  const walk = (
    prefix: string,
    properties: Record<string, { type?: string; properties?: unknown }>,
  ) => {
    for (const [name, schema] of Object.entries(properties)) {
      const key = prefix === '' ? name : `${prefix}.${name}`;
      if (schema.type === 'object' && schema.properties !== undefined)
        walk(key, schema.properties as Record<string, { type?: string }>);
      else out.push([key, schema.type ?? 'string']);
    }
  };
  walk('', NODE_CONFIG_SCHEMA.properties);
  return out;
}

/** The `MANDATE_*` variables of the schema's keys: lists comma-separated, integers in decimal. */
function fromEnvironment(
  env: Readonly<Record<string, string | undefined>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, type] of schemaKeys()) {
    const name = envNameOf(key);
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    let value: unknown = raw;
    if (type === 'array')
      value = raw
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
    else if (type === 'integer') {
      if (!/^\d{1,15}$/.test(raw.trim()))
        throw invalid(
          'ERR_NODE_CONFIG_INVALID',
          `node config: \`${key}\` (from ${name}) must be an integer, not \`${raw}\``,
        );
      value = Number(raw.trim());
    }
    setPath(out, key, value);
  }
  return out;
}

function readConfigFile(file: string): Record<string, unknown> {
  let read: RegularFileRead;
  try {
    read = readRegularFile(file, MAX_CONFIG_BYTES);
  } catch (cause) {
    throw invalid('ERR_NODE_CONFIG_INVALID', `config file \`${file}\` cannot be read`, cause);
  }
  if ('refused' in read)
    switch (read.refused) {
      case 'missing':
        throw notFound('ERR_NODE_CONFIG_NOT_FOUND', `no config file \`${file}\``);
      case 'not_regular':
        throw invalid('ERR_NODE_CONFIG_INVALID', `config file \`${file}\` is not a regular file`);
      case 'too_large':
        throw invalid(
          'ERR_NODE_CONFIG_INVALID',
          `config file \`${file}\` is larger than ${MAX_CONFIG_BYTES} bytes`,
        );
    }
  const bytes = read.bytes;
  const value = parseJsonNoDuplicateKeys(
    bytes.toString('utf8'),
    'ERR_NODE_CONFIG_INVALID',
    `config file \`${file}\``,
    8,
  );
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid('ERR_NODE_CONFIG_INVALID', `config file \`${file}\` must hold a JSON object`);
  return value as Record<string, unknown>;
}

// Every layer is merged by own keys only, each set with defineProperty: a key such as `__proto__`,
// `constructor` or `toString` (from a file, say) is an ordinary key that the schema then refuses
// as unknown, never a way to reach or replace a prototype (`target['__proto__'] = …` would
// set the target's prototype, and merging into `target['__proto__']` would pollute
// Object.prototype for the whole process).

/** Objects merge key by key; anything else (arrays included) replaces. */
function mergeInto(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const key of Object.keys(source)) {
    const value = source[key];
    if (value === undefined) continue;
    const current = Object.hasOwn(target, key) ? target[key] : undefined;
    if (isPlainObject(value) && isPlainObject(current)) mergeInto(current, value);
    else setOwn(target, key, copyOf(value));
  }
}

/** A deep copy of a JSON-like value, by own keys only (see above). */
function copyOf(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyOf);
  return isPlainObject(value) ? ownCopyOf(value) : value;
}

function ownCopyOf(value: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) setOwn(out, key, copyOf(value[key]));
  return out;
}

/** `target[key] = value` as an own data property, whatever `key` is. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let at = target;
  for (const part of parts.slice(0, -1)) {
    const next = Object.hasOwn(at, part) ? at[part] : undefined;
    if (isPlainObject(next)) at = next;
    else {
      const created: Record<string, unknown> = {};
      setOwn(at, part, created);
      at = created;
    }
  }
  setOwn(at, parts[parts.length - 1]!, value);
}

/** Whether `values` sets `key`, something under it, or an object holding it. */
function sets(values: Record<string, unknown>, key: string): boolean {
  let at: unknown = values;
  for (const part of key.split('.')) {
    if (!isPlainObject(at) || !Object.hasOwn(at, part)) return false;
    at = at[part];
  }
  return true;
}

/** The highest layer that set `key` (or, for a missing key, its enclosing object). */
function sourceOf(stack: readonly Layer[], key: string): ConfigSource | undefined {
  const parts = key.split('.');
  for (let length = parts.length; length > 0; length--) {
    const prefix = parts.slice(0, length).join('.');
    for (let i = stack.length - 1; i >= 0; i--) {
      const layer = stack[i]!;
      if (sets(layer.values, prefix)) return layer.source;
    }
  }
  return undefined;
}

function refuse(
  stack: readonly Layer[],
  flagNames: Readonly<Record<string, string>>,
  key: string,
  problem: string,
): Error {
  const source = sourceOf(stack, key);
  const flag = Object.hasOwn(flagNames, key) ? flagNames[key] : undefined;
  if (source === ConfigSource.flags)
    return invalid('ERR_ARGUMENT_INVALID', `\`${flag ?? key}\` ${problem}`);
  const from =
    source === ConfigSource.environment
      ? ` (from ${envNameOf(key)})`
      : source === ConfigSource.file
        ? ' (from the config file)'
        : '';
  const code: ErrorCode = 'ERR_NODE_CONFIG_INVALID';
  return invalid(code, `node config: \`${key}\`${from} ${problem}`);
}

/** What the schema cannot say: addresses and routes that parse. */
function checkValues(
  config: NodeConfig,
  stack: readonly Layer[],
  flagNames: Readonly<Record<string, string>>,
): void {
  const check = (key: string, value: string | undefined, parse: (text: string) => unknown) => {
    if (value === undefined) return;
    try {
      parse(value);
    } catch {
      throw refuse(stack, flagNames, key, `is not a valid value: \`${value}\``);
    }
  };
  const onLoopback = (key: string, value: string | undefined) => {
    check(key, value, parseListenAddress);
    if (value !== undefined && !LOOPBACK.has(parseListenAddress(value).host))
      throw refuse(
        stack,
        flagNames,
        key,
        `must be on loopback (${[...LOOPBACK].join(', ')}), not \`${value}\``,
      );
  };
  check('listen', config.listen, parseListenAddress);
  onLoopback('health.listen', config.health?.listen);
  check('broker.http', config.broker.http, parseListenAddress);
  onLoopback('admin.listen', config.admin.listen);
  check('relay.route', config.relay?.route, parseDialRoute);
  check('authority.route', config.authority?.route, parseDialRoute);
  if (config.services.includes(NodeServiceName.gateway) && config.gateway === undefined)
    throw refuse(stack, flagNames, 'gateway.config', 'is required with the `gateway` service');
}

/**
 * Loopback only: health and readiness are for the machine's own supervisor, and the admin API
 * (its login endpoints over plain HTTP; the dashboard, whose Host check accepts only the bound
 * address) for the machine's own operator — reached from elsewhere through an SSH tunnel or a
 * TLS proxy of one's own, never by binding a wildcard or outward address.
 */
const LOOPBACK: ReadonlySet<string> = new Set(['127.0.0.1', '::1', 'localhost']);

type AjvClass = new (options: Record<string, unknown>) => {
  compile(schema: unknown): ValidateFunction;
};
let validator: ValidateFunction | undefined;
function validatorOf(): ValidateFunction {
  // ajv 8's CommonJS default export is not a constructor to NodeNext typing; `Ajv` is the class.
  validator ??= new (createRequire(import.meta.url)('ajv') as { Ajv: AjvClass }).Ajv({
    allErrors: false,
    useDefaults: true,
    strict: true,
    validateFormats: false,
  }).compile(NODE_CONFIG_SCHEMA);
  return validator;
}

/** The dotted key an ajv error is about (a missing or unknown key included). */
function keyOf(error: ErrorObject): string {
  const parts = error.instancePath.split('/').slice(1);
  const params = error.params as Record<string, unknown>;
  const named = params['additionalProperty'] ?? params['missingProperty'];
  if (typeof named === 'string') parts.push(named);
  // An array item's index is not a key: the array is.
  const key = parts.filter((part) => !/^\d+$/.test(part)).join('.');
  return key === '' ? '(top level)' : key;
}

function describe(error: ErrorObject): string {
  switch (error.keyword) {
    case 'additionalProperties':
      return 'is not a known key';
    case 'required':
      return 'is required';
    case 'type':
      return `must be of type ${String((error.params as { type?: unknown }).type)}`;
    case 'enum':
      return `must be one of ${Object.values(NodeServiceName).join(', ')}`;
    default:
      return error.message ?? 'is invalid';
  }
}
