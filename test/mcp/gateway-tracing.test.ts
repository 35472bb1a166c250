// OpenTelemetry spans link agent → gateway → upstream: the agent's transport span
// (`tools/call NAME`, CLIENT) puts its W3C trace context in the call's `_meta`; the gateway's
// span for the call (SERVER, with the decision attributes) is its child and puts its own context
// in the upstream request's `_meta`, so the upstream's span is the gateway's child. A malformed
// trace context from an agent is ignored: the gateway's span starts a trace of its own.
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT_CONTEXT, SpanKind, trace, type Tracer } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import type { CallToolRequest } from '@modelcontextprotocol/sdk/types.js';
import { traceContextOf, TRACEPARENT_META_KEY } from '../../src/mcp/index.js';
import { FS_POLICIES, mcpWorld } from '../helpers/mcp-world.js';
import { httpUpstream } from '../helpers/mcp-http-upstream.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const POLICIES = `${FS_POLICIES}
@id("remote")
permit(principal, action, resource == Tool::"remote/remote_shout");
`;

async function tracedWorld() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer('mandate-test');
  const received: CallToolRequest[] = [];
  // The upstream continues the trace it is handed, as an instrumented MCP server would.
  const upstream = await httpUpstream((request) => {
    received.push(request);
    tracer
      .startSpan(
        'upstream tools/call shout',
        { kind: SpanKind.SERVER },
        traceContextOf(request.params._meta) ?? ROOT_CONTEXT,
      )
      .end();
  });
  cleanups.push(upstream.close);
  const w = await mcpWorld({
    servers: { remote: { url: upstream.url, mandate: { prefix: 'remote_' } } },
    policies: POLICIES,
    gateway: { tracer },
  });
  cleanups.push(() => w.close());
  const agent = await w.agent('a', ['tools=remote_shout']);
  return { w, agent, exporter, tracer, received };
}

const named = (spans: ReadableSpan[], prefix: string, kind: SpanKind) =>
  spans.filter((s) => s.name.startsWith(prefix) && s.kind === kind);

describe('OpenTelemetry across the gateway', () => {
  it('the agent, gateway and upstream spans share one trace, each the parent of the next', async () => {
    const { w, agent, exporter, tracer, received } = await tracedWorld();
    const { client } = await w.connect(agent, { tracer });
    const result = await client.callTool({ name: 'remote_shout', arguments: { text: 'hi' } });
    expect(result.content).toEqual([{ type: 'text', text: 'HI' }]);
    const spans = exporter.getFinishedSpans();
    const [agentSpan] = named(spans, 'tools/call remote_shout', SpanKind.CLIENT);
    const [gatewaySpan] = named(spans, 'tools/call remote_shout', SpanKind.SERVER);
    const [upstreamSpan] = named(spans, 'upstream', SpanKind.SERVER);
    expect(agentSpan && gatewaySpan && upstreamSpan).toBeTruthy();
    const traceId = agentSpan!.spanContext().traceId;
    expect(gatewaySpan!.spanContext().traceId).toBe(traceId);
    expect(upstreamSpan!.spanContext().traceId).toBe(traceId);
    expect(gatewaySpan!.parentSpanContext?.spanId).toBe(agentSpan!.spanContext().spanId);
    expect(upstreamSpan!.parentSpanContext?.spanId).toBe(gatewaySpan!.spanContext().spanId);
    // The gateway's span carries the decision; the invocation joins the span to the audit log.
    const invocation = agentSpan!.attributes['mandate.record.invocation'];
    expect(typeof invocation).toBe('string');
    expect(gatewaySpan!.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'remote_shout',
      'gen_ai.agent.id': agent.identity.identifier,
      'mandate.record.invocation': invocation,
      'mandate.decision': 'allow',
      'mandate.policy.ids': ['remote'],
      'mandate.tool.server': 'remote',
      'mandate.outcome.status': 'ok',
    });
    expect(gatewaySpan!.attributes['mandate.bundle.hash']).toBe(w.bundles.current()!.hash);
    // The upstream got the gateway's context, not the agent's `_meta` (nor its invocation).
    const meta = received[0]!.params._meta as Record<string, unknown>;
    expect(Object.keys(meta).sort()).toEqual([TRACEPARENT_META_KEY]);
    expect(meta[TRACEPARENT_META_KEY]).toBe(
      `00-${traceId}-${gatewaySpan!.spanContext().spanId}-01`,
    );

    // A denied call: the gateway's span is an error naming the code, still in the agent's trace.
    exporter.reset();
    const denied = await client.callTool({
      name: 'remote_shout',
      arguments: { text: 'x'.repeat(101) },
    });
    expect(denied.isError).toBe(true);
    const [deniedSpan] = named(exporter.getFinishedSpans(), 'tools/call', SpanKind.SERVER);
    expect(deniedSpan!.attributes).toMatchObject({
      'mandate.decision': 'deny',
      'mandate.decision.lock': 'schema',
      'error.type': deniedSpan!.attributes['mandate.decision.code'],
    });
    expect(deniedSpan!.status.code).toBe(2);
    expect(received).toHaveLength(1);
  });

  it('a malformed traceparent from an agent is ignored: the gateway starts its own trace', async () => {
    const { w, agent, exporter, tracer } = await tracedWorld();
    // An agent whose spans claim an upper-case trace id (W3C allows lower-case hex only): its
    // transport sends `00-ABC…-…-01`, which the gateway must not take as its parent.
    const bad = 'ABCDEF0123456789ABCDEF0123456789';
    const lying: Tracer = {
      startSpan: (name, options, ctx) => {
        const real = tracer.startSpan(name, options, ctx);
        const context = real.spanContext();
        return new Proxy(real, {
          get: (target, key) =>
            key === 'spanContext'
              ? () => ({ ...context, traceId: bad })
              : (Reflect.get(target, key) as unknown),
        });
      },
      startActiveSpan: () => {
        throw new Error('not used');
      },
    };
    const { client } = await w.connect(agent, { tracer: lying });
    await client.callTool({ name: 'remote_shout', arguments: { text: 'hi' } });
    const spans = exporter.getFinishedSpans();
    const [gatewaySpan] = named(spans, 'tools/call remote_shout', SpanKind.SERVER);
    const [upstreamSpan] = named(spans, 'upstream', SpanKind.SERVER);
    expect(gatewaySpan!.parentSpanContext).toBeUndefined();
    expect(gatewaySpan!.spanContext().traceId).not.toBe(bad.toLowerCase());
    expect(upstreamSpan!.parentSpanContext?.spanId).toBe(gatewaySpan!.spanContext().spanId);
    // Tracing is never evidence: the call was decided as any other.
    expect(gatewaySpan!.attributes['mandate.decision']).toBe('allow');
    expect(trace.getSpan(ROOT_CONTEXT)).toBeUndefined();
  });
});
