// How the upstreams' tools relate to the gates' catalog (docs/spec/mcp.md, "Catalog"): the
// gateway merges what its upstreams list into one catalog (server = the upstream's configured
// name, name = its prefix + the upstream's tool name), which the operator signs into the policy
// bundle (`mandate gateway catalog` → `policy publish --catalog`). The gates decide over the
// bundle's catalog only; the gateway serves a tool only while its upstream still lists it with
// the very description and input schema the bundle signed.
import { invalid } from '../core/internal.js';
import { canonicalizeJson } from '../encoding/index.js';
import { ToolCatalog, type ToolDescriptor } from '../gates/index.js';
import type { UpstreamTool } from './upstream.js';

/** The merged tools of the upstreams, by the name agents see. */
export interface MergedTools {
  readonly byName: ReadonlyMap<string, UpstreamTool>;
  readonly descriptors: readonly ToolDescriptor[];
}

/**
 * Merges upstream tool lists. Two upstreams offering the same name (after their prefixes) are
 * `ERR_MCP_TOOL_CLASH`: MCP names a tool by its name alone, so the config must set a
 * `mandate.prefix` on one of them.
 */
export function mergeUpstreamTools(lists: readonly (readonly UpstreamTool[])[]): MergedTools {
  const byName = new Map<string, UpstreamTool>();
  for (const list of lists)
    for (const tool of list) {
      const known = byName.get(tool.name);
      if (known !== undefined && known.server !== tool.server)
        throw invalid(
          'ERR_MCP_TOOL_CLASH',
          `tool \`${tool.name}\` is offered by upstreams \`${known.server}\` and \`${tool.server}\`: set \`mandate.prefix\` on one of them`,
        );
      byName.set(tool.name, tool);
    }
  const descriptors = [...byName.values()].map(descriptorOf);
  return { byName, descriptors };
}

/** The catalog descriptor of an upstream tool (what the bundle signs). */
export function descriptorOf(tool: UpstreamTool): ToolDescriptor {
  return {
    name: tool.name,
    server: tool.server,
    ...(tool.tool.description === undefined ? {} : { description: tool.tool.description }),
    inputSchema: tool.tool.inputSchema,
  };
}

/** The merged catalog (ERR_GATE_CATALOG_INVALID when an upstream's schema is refused). */
export function catalogOf(merged: MergedTools): ToolCatalog {
  return new ToolCatalog(merged.descriptors);
}

const canonicalCache = new WeakMap<object, string>();
function canonicalOf(descriptor: ToolDescriptor): string {
  let text = canonicalCache.get(descriptor);
  if (text === undefined) {
    try {
      text = canonicalizeJson({
        d: descriptor.description ?? null,
        s: descriptor.inputSchema,
      });
    } catch {
      text = '';
    }
    canonicalCache.set(descriptor, text);
  }
  return text;
}

/**
 * Whether the upstream's tool is the one the bundle signed: same server, same description and
 * input schema (canonical JSON). A tool that drifted is neither listed nor called.
 */
export function sameTool(signed: ToolDescriptor, upstream: UpstreamTool): boolean {
  if (signed.server !== upstream.server || signed.name !== upstream.name) return false;
  const a = canonicalOf(signed);
  return a !== '' && a === canonicalOf(descriptorOf(upstream));
}
