// The gateway's configuration (docs/spec/mcp.md, "Configuration"): the `mcpServers` object users
// already keep in their MCP client configs, plus Mandate's own `mandate` keys — per upstream (tool
// prefix, call timeout, the broker lease that supplies its credentials) and at the top level (the
// gateway's own settings). Parsed from a value, never read from a file here: only `cli` and `node`
// read files.
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { invalid } from '../core/internal.js';
import { parseJsonNoDuplicateKeys } from '../encoding/index.js';

/** A stdio upstream: a command the gateway spawns and supervises. */
export interface StdioUpstreamConfig {
  readonly kind: 'stdio';
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly mandate: UpstreamMandateConfig;
}

/** A streamable-HTTP upstream. */
export interface HttpUpstreamConfig {
  readonly kind: 'http';
  readonly name: string;
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly mandate: UpstreamMandateConfig;
}

/** One upstream MCP server of the configuration. */
export type UpstreamConfig = StdioUpstreamConfig | HttpUpstreamConfig;

/**
 * Gate 3's integration point: which broker lease supplies this upstream's credentials, and how
 * they are injected (an environment variable of a stdio server, a header of an HTTP server).
 * Accepted and validated here; a gateway without a broker refuses to start an upstream that sets
 * it (`ERR_MCP_LEASE_UNAVAILABLE`) rather than run it without its credentials.
 */
export interface UpstreamLeaseConfig {
  /** The broker's name for the secret or role (e.g. `stripe-refunds`). */
  readonly secret: string;
  /** Injected as this environment variable (stdio) … */
  readonly env?: string;
  /** … or as this HTTP header (http), e.g. `Authorization` with `template` `Bearer {}`. */
  readonly header?: string;
  /** `{}` is replaced by the leased value (default `{}`). */
  readonly template?: string;
  /** Lease time to live (default: the broker's). */
  readonly ttlSeconds?: number;
}

/** Mandate's keys of one upstream (`mcpServers.NAME.mandate`). */
export interface UpstreamMandateConfig {
  /** Prepended to each of its tool names as agents see them (and policies name them). */
  readonly prefix: string;
  /** Per-call timeout (default the gateway's `callTimeoutMs`). */
  readonly timeoutMs: number;
  readonly lease?: UpstreamLeaseConfig;
}

/** Restart policy of stdio upstreams: exponential backoff with jitter, capped. */
export interface RestartConfig {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

/** The whole configuration, validated. */
export interface GatewayConfig {
  readonly upstreams: readonly UpstreamConfig[];
  /** `HOST:PORT` the gateway listens on (the CLI's `--listen` wins). */
  readonly listen?: string;
  /** The local identity the gateway's channels and countersignatures use. */
  readonly identity?: string;
  /** Largest JSON-RPC message through a channel, in bytes. */
  readonly maxMessageBytes: number;
  readonly callTimeoutMs: number;
  readonly restart: RestartConfig;
}

/** Largest JSON-RPC message through a channel by default (sent in frames of 60,000 bytes). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
/** Hard bound of `maxMessageBytes`. */
export const MAX_MESSAGE_BYTES_LIMIT = 16 * 1024 * 1024;
/** A tool call's timeout when neither the upstream nor the gateway sets one. */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;
const MAX_CONFIG_CHARS = 1024 * 1024;

const NAME = '^[A-Za-z0-9_.@-]{1,64}$';
const PREFIX = '^[A-Za-z0-9_.-]{0,32}$';
const ENV_NAME = '^[A-Za-z_][A-Za-z0-9_]{0,127}$';
const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$";

const leaseSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['secret'],
  properties: {
    secret: { type: 'string', minLength: 1, maxLength: 256 },
    env: { type: 'string', pattern: ENV_NAME },
    header: { type: 'string', pattern: HEADER_NAME },
    template: { type: 'string', maxLength: 1024 },
    ttlSeconds: { type: 'integer', minimum: 1, maximum: 86_400 },
  },
};

const upstreamMandateSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    prefix: { type: 'string', pattern: PREFIX },
    timeoutMs: { type: 'integer', minimum: 1, maximum: 3_600_000 },
    lease: leaseSchema,
  },
};

// Values that reach a process or a request as they are: no NUL in what spawn takes (Node would
// refuse it with an error quoting the value, which may be a secret), no control character but tab
// in a header value (fetch's Headers refuses those, quoting the value too). Refused here, by key.
const NO_NUL = '^[^\\u0000]*$';
const HEADER_VALUE = '^[\\t\\u0020-\\u007e\\u0080-\\u00ff]*$';

const stringMap = (keyPattern: string, valuePattern: string) => ({
  type: 'object',
  propertyNames: { pattern: keyPattern },
  additionalProperties: { type: 'string', maxLength: 32_768, pattern: valuePattern },
  maxProperties: 256,
});

// `type` is what some clients write (`"stdio"`, `"http"`, `"streamable-http"`); accepted, checked
// against the shape. Unknown keys are refused: a typo must not silently drop a setting.
const serverSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    type: { enum: ['stdio', 'http', 'streamable-http', 'streamableHttp'] },
    command: { type: 'string', minLength: 1, maxLength: 4096, pattern: NO_NUL },
    args: {
      type: 'array',
      items: { type: 'string', maxLength: 32_768, pattern: NO_NUL },
      maxItems: 256,
    },
    env: stringMap(ENV_NAME, NO_NUL),
    cwd: { type: 'string', minLength: 1, maxLength: 4096, pattern: NO_NUL },
    url: { type: 'string', minLength: 1, maxLength: 4096 },
    headers: stringMap(HEADER_NAME, HEADER_VALUE),
    mandate: upstreamMandateSchema,
  },
  oneOf: [{ required: ['command'] }, { required: ['url'] }],
};

const configSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['mcpServers'],
  properties: {
    $schema: { type: 'string' },
    mcpServers: {
      type: 'object',
      propertyNames: { pattern: NAME },
      additionalProperties: serverSchema,
      minProperties: 1,
      maxProperties: 64,
    },
    mandate: {
      type: 'object',
      additionalProperties: false,
      properties: {
        listen: { type: 'string', minLength: 1, maxLength: 300 },
        identity: { type: 'string', minLength: 1, maxLength: 256 },
        maxMessageBytes: { type: 'integer', minimum: 1024, maximum: MAX_MESSAGE_BYTES_LIMIT },
        callTimeoutMs: { type: 'integer', minimum: 1, maximum: 3_600_000 },
        restart: {
          type: 'object',
          additionalProperties: false,
          properties: {
            initialDelayMs: { type: 'integer', minimum: 1, maximum: 600_000 },
            maxDelayMs: { type: 'integer', minimum: 1, maximum: 3_600_000 },
          },
        },
      },
    },
  },
};

type AjvClass = new (options: Record<string, unknown>) => {
  compile(schema: unknown): ValidateFunction;
};
let validator: ValidateFunction | undefined;
function validate(value: unknown): ErrorObject | undefined {
  validator ??= new (createRequire(import.meta.url)('ajv') as { Ajv: AjvClass }).Ajv({
    allErrors: false,
    // `oneOf: [{required: [command]}, {required: [url]}]` names properties declared one level up.
    strict: false,
    validateFormats: false,
  }).compile(configSchema);
  return validator(value) ? undefined : (validator.errors?.[0] ?? undefined);
}

/** Where an ajv error points, as a dotted key path (`mcpServers.fs.mandate.prefix`). */
function keyOf(error: ErrorObject): string {
  const parts = error.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties' && typeof params['additionalProperty'] === 'string')
    parts.push(params['additionalProperty']);
  if (error.keyword === 'required' && typeof params['missingProperty'] === 'string')
    parts.push(params['missingProperty']);
  if (error.keyword === 'propertyNames' && typeof params['propertyName'] === 'string')
    parts.push(params['propertyName']);
  return parts.length === 0 ? '(top level)' : parts.join('.');
}

function describe(error: ErrorObject): string {
  // A name refused by `propertyNames` (its inner error carries the name).
  const name = (error as { propertyName?: unknown }).propertyName;
  if (typeof name === 'string') {
    const parent = keyOf({ ...error, keyword: 'pattern', params: {} });
    return `\`${parent === '(top level)' ? name : `${parent}.${name}`}\` is not a valid name`;
  }
  const key = keyOf(error);
  switch (error.keyword) {
    case 'additionalProperties':
      return `\`${key}\` is not a known key`;
    case 'required':
      return `\`${key}\` is required`;
    case 'propertyNames':
      return `\`${key}\` is not a valid name`;
    case 'oneOf':
      return `\`${key}\` needs exactly one of \`command\` (a stdio server) or \`url\` (an HTTP server)`;
    case 'pattern':
      // Never the value (it may be a secret), nor the pattern: what is wrong with it.
      return error.schemaPath.includes('/headers/')
        ? `\`${key}\` holds a character a header value cannot (a control character such as NUL, CR or LF)`
        : (error.params as { pattern?: unknown }).pattern === NO_NUL
          ? `\`${key}\` holds a NUL character`
          : `\`${key}\` ${error.message ?? 'is invalid'}`;
    default:
      return `\`${key}\` ${error.message ?? 'is invalid'}`;
  }
}

/**
 * Parses the configuration's JSON text: no key twice in one object (`ERR_MCP_CONFIG_INVALID`),
 * at most 1 MiB, then {@link parseGatewayConfig}.
 */
export function parseGatewayConfigText(text: string): GatewayConfig {
  if (typeof text !== 'string' || text.length > MAX_CONFIG_CHARS)
    throw invalid(
      'ERR_MCP_CONFIG_INVALID',
      `the gateway configuration is not text of at most ${MAX_CONFIG_CHARS} characters`,
    );
  return parseGatewayConfig(
    parseJsonNoDuplicateKeys(text, 'ERR_MCP_CONFIG_INVALID', 'the gateway configuration', 32),
  );
}

/**
 * Validates a configuration value. Errors are `ERR_MCP_CONFIG_INVALID` naming the key
 * (`mcpServers.fs.mandate.prefix`), `ERR_MCP_CONFIG_URL` for an upstream URL that is not
 * `http:` or `https:`, or carries credentials in it (give them by `headers` or a `lease`), and
 * `ERR_MCP_CONFIG_TYPE` for a `type` that contradicts the shape. Two upstreams with the same
 * prefix (both none included) are allowed here: whether their tool names clash is known only
 * once their tools are listed (`ERR_MCP_TOOL_CLASH`).
 */
export function parseGatewayConfig(value: unknown): GatewayConfig {
  const error = validate(value);
  if (error !== undefined) throw invalid('ERR_MCP_CONFIG_INVALID', describe(error));
  const root = value as {
    mcpServers: Record<string, Record<string, unknown>>;
    mandate?: Record<string, unknown>;
  };
  const settings = root.mandate ?? {};
  const callTimeoutMs =
    (settings['callTimeoutMs'] as number | undefined) ?? DEFAULT_CALL_TIMEOUT_MS;
  const restartIn = (settings['restart'] as Record<string, number> | undefined) ?? {};
  const restart: RestartConfig = {
    initialDelayMs: restartIn['initialDelayMs'] ?? 250,
    maxDelayMs: restartIn['maxDelayMs'] ?? 30_000,
  };
  if (restart.maxDelayMs < restart.initialDelayMs)
    throw invalid(
      'ERR_MCP_CONFIG_INVALID',
      '`mandate.restart.maxDelayMs` is smaller than `mandate.restart.initialDelayMs`',
    );
  const upstreams = Object.entries(root.mcpServers).map(([name, server]) =>
    upstreamOf(name, server, callTimeoutMs),
  );
  return {
    upstreams,
    ...(typeof settings['listen'] === 'string' ? { listen: settings['listen'] } : {}),
    ...(typeof settings['identity'] === 'string' ? { identity: settings['identity'] } : {}),
    maxMessageBytes:
      (settings['maxMessageBytes'] as number | undefined) ?? DEFAULT_MAX_MESSAGE_BYTES,
    callTimeoutMs,
    restart,
  };
}

function upstreamOf(
  name: string,
  server: Record<string, unknown>,
  callTimeoutMs: number,
): UpstreamConfig {
  const m = (server['mandate'] as Record<string, unknown> | undefined) ?? {};
  const lease = m['lease'] as UpstreamLeaseConfig | undefined;
  if (lease?.template !== undefined && lease.template.split('{}').length !== 2)
    throw invalid(
      'ERR_MCP_CONFIG_INVALID',
      `\`mcpServers.${name}.mandate.lease.template\` must hold \`{}\` (where the secret goes) exactly once`,
    );
  const mandate: UpstreamMandateConfig = {
    prefix: (m['prefix'] as string | undefined) ?? '',
    timeoutMs: (m['timeoutMs'] as number | undefined) ?? callTimeoutMs,
    ...(lease === undefined ? {} : { lease }),
  };
  const type = server['type'] as string | undefined;
  if (typeof server['command'] === 'string') {
    if (type !== undefined && type !== 'stdio')
      throw invalid(
        'ERR_MCP_CONFIG_TYPE',
        `\`mcpServers.${name}.type\` is \`${type}\`, and the server has a \`command\` (a stdio server)`,
      );
    if (server['headers'] !== undefined)
      throw invalid(
        'ERR_MCP_CONFIG_INVALID',
        `\`mcpServers.${name}.headers\` is for an HTTP server, this one has a \`command\``,
      );
    if (lease !== undefined && lease.env === undefined)
      throw invalid(
        'ERR_MCP_CONFIG_INVALID',
        `\`mcpServers.${name}.mandate.lease.env\` is required: a stdio server gets its lease as an environment variable`,
      );
    return {
      kind: 'stdio',
      name,
      command: server['command'],
      args: (server['args'] as string[] | undefined) ?? [],
      env: (server['env'] as Record<string, string> | undefined) ?? {},
      ...(typeof server['cwd'] === 'string' ? { cwd: server['cwd'] } : {}),
      mandate,
    };
  }
  if (type !== undefined && type === 'stdio')
    throw invalid(
      'ERR_MCP_CONFIG_TYPE',
      `\`mcpServers.${name}.type\` is \`stdio\`, and the server has a \`url\` (an HTTP server)`,
    );
  for (const key of ['args', 'env', 'cwd'])
    if (server[key] !== undefined)
      throw invalid(
        'ERR_MCP_CONFIG_INVALID',
        `\`mcpServers.${name}.${key}\` is for a stdio server, this one has a \`url\``,
      );
  let url: URL;
  try {
    url = new URL(server['url'] as string);
  } catch {
    throw invalid('ERR_MCP_CONFIG_URL', `\`mcpServers.${name}.url\` is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw invalid('ERR_MCP_CONFIG_URL', `\`mcpServers.${name}.url\` must be http: or https:`);
  if (url.username !== '' || url.password !== '')
    throw invalid(
      'ERR_MCP_CONFIG_URL',
      `\`mcpServers.${name}.url\` carries credentials: give them in \`headers\` or a \`mandate.lease\``,
    );
  if (lease !== undefined && lease.header === undefined)
    throw invalid(
      'ERR_MCP_CONFIG_INVALID',
      `\`mcpServers.${name}.mandate.lease.header\` is required: an HTTP server gets its lease as a header`,
    );
  return {
    kind: 'http',
    name,
    url,
    headers: (server['headers'] as Record<string, string> | undefined) ?? {},
    mandate,
  };
}
