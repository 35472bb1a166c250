import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { auditRecordHash } from './record-codec.js';
import { emitTrailSpans, GenAiAttribute, MandateAttribute } from './otel.js';

// The golden trail as GenAI spans through the official SDK, captured by its in-memory exporter.

const golden = JSON.parse(
  readFileSync(new URL('../../docs/spec/vectors/audit-records.json', import.meta.url), 'utf8'),
) as Record<string, { text: string }>;
const ORDER = [
  'invocation',
  'decision',
  'outcome',
  'lease',
  'nextInvocation',
  'escalation',
  'trace',
];
const utf8 = new TextEncoder();
const entries = ORDER.map((k, index) => ({ index, record: utf8.encode(golden[k]!.text) }));
const parsed = (k: string) => JSON.parse(golden[k]!.text) as Record<string, unknown>;

function sdk() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  return { exporter, tracer: provider.getTracer('mandate-test') };
}

describe('emitTrailSpans', () => {
  it('emits invoke_agent over execute_tool spans with GenAI and mandate.* attributes', () => {
    const { exporter, tracer } = sdk();
    const result = emitTrailSpans(entries, { tracer });
    expect(result).toStrictEqual({ agentSpans: 1, toolSpans: 2, skipped: 2 });
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(3);
    const agent = spans.find((s) => s.name.startsWith('invoke_agent '))!;
    const tools = spans.filter((s) => s.name.startsWith('execute_tool '));
    const inv = parsed('invocation');
    expect(agent.name).toBe(`invoke_agent ${String(inv.agent)}`);
    expect(agent.kind).toBe(SpanKind.INTERNAL);
    expect(agent.attributes[GenAiAttribute.operationName]).toBe('invoke_agent');
    expect(agent.attributes[GenAiAttribute.agentId]).toBe(inv.agent);
    expect(agent.attributes[MandateAttribute.chainPath]).toHaveLength(3);
    expect((agent.attributes[MandateAttribute.chainPath] as string[]).at(-1)).toBe(inv.agent);
    for (const t of tools) {
      expect(t.parentSpanContext?.spanId).toBe(agent.spanContext().spanId);
      expect(t.spanContext().traceId).toBe(agent.spanContext().traceId);
      expect(t.attributes[GenAiAttribute.operationName]).toBe('execute_tool');
      expect(t.attributes[GenAiAttribute.toolName]).toBe(inv.tool);
      expect(t.attributes[MandateAttribute.chainHash]).toMatch(/^[0-9a-f]{64}$/);
    }
    const [first, second] = tools;
    const decision = parsed('decision');
    expect(first!.attributes[GenAiAttribute.toolCallId]).toBe(
      auditRecordHash(utf8.encode(golden.invocation!.text)),
    );
    expect(first!.attributes[MandateAttribute.decision]).toBe('allow');
    expect(first!.attributes[MandateAttribute.policies]).toStrictEqual(decision.policies);
    expect(first!.attributes[MandateAttribute.bundleHash]).toBe(decision.bundle);
    expect(first!.attributes[MandateAttribute.outcome]).toBe('ok');
    expect(first!.startTime).toStrictEqual([inv.issuedAt, 0]);
    expect(first!.status.code).toBe(SpanStatusCode.UNSET);
    expect(second!.attributes[MandateAttribute.decision]).toBe('approval_required');
    // Never the arguments themselves: their digest only.
    for (const s of spans)
      for (const v of Object.values(s.attributes)) expect(String(v)).not.toContain('late delivery');
  });

  it('marks a denied call as an error with its code', () => {
    const decision = parsed('decision');
    // A decision record edited to deny is no longer signed, but spans do not verify: they map.
    const denied = {
      ...decision,
      decision: 'deny',
      code: 'ERR_POLICY_DENIED',
      lock: 'bundle',
      reasons: ['no'],
    };
    const { exporter, tracer } = sdk();
    const canonical = JSON.stringify(
      Object.fromEntries(Object.entries(denied).sort(([a], [b]) => (a < b ? -1 : 1))),
    );
    emitTrailSpans([entries[0]!, { index: 1, record: utf8.encode(canonical) }], { tracer });
    const tool = exporter.getFinishedSpans().find((s) => s.name.startsWith('execute_tool'))!;
    expect(tool.status.code).toBe(SpanStatusCode.ERROR);
    expect(tool.attributes[GenAiAttribute.errorType]).toBe('ERR_POLICY_DENIED');
    expect(tool.attributes[MandateAttribute.lock]).toBe('bundle');
  });

  it('is off unless configured: without a registered provider nothing is recorded', () => {
    const result = emitTrailSpans(entries);
    expect(result.toolSpans).toBe(2);
    expect(trace.getTracer('mandate').startSpan('x').isRecording()).toBe(false);
  });
});
