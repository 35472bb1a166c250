import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { traceContextOf, withTraceContext } from './trace-context.js';

const VALID = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('W3C trace context in MCP _meta', () => {
  it('reads a valid traceparent (and tracestate) as a remote parent, and writes it back', () => {
    const ctx = traceContextOf({ traceparent: VALID, tracestate: 'congo=t61rcWkgMzE' });
    const sc = trace.getSpanContext(ctx!)!;
    expect(sc).toMatchObject({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: 1,
      isRemote: true,
    });
    expect(sc.traceState?.get('congo')).toBe('t61rcWkgMzE');
    const span = trace.wrapSpanContext(sc);
    expect(withTraceContext({ other: 1, traceparent: 'x' }, span)).toEqual({
      other: 1,
      traceparent: VALID,
      tracestate: 'congo=t61rcWkgMzE',
    });
  });

  it('ignores malformed ones: other versions, lengths, upper case, zero ids, non-strings', () => {
    for (const bad of [
      VALID.toUpperCase(),
      VALID.replace(/^00/, '01'),
      VALID.replace(/^00/, 'ff'),
      `${VALID}-extra`,
      VALID.slice(0, -1),
      '00-00000000000000000000000000000000-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
      ' '.concat(VALID),
      42,
      null,
    ])
      expect(traceContextOf({ traceparent: bad }), String(bad)).toBeUndefined();
    expect(traceContextOf(undefined)).toBeUndefined();
    expect(traceContextOf('00-…')).toBeUndefined();
    // A malformed tracestate is dropped, the parent kept.
    const ctx = traceContextOf({ traceparent: VALID, tracestate: 'a=b\nc=d' });
    expect(trace.getSpanContext(ctx!)?.traceState).toBeUndefined();
  });

  it('never takes a string that is not exactly version-00 lower-case hex', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        const ctx = traceContextOf({ traceparent: text });
        if (ctx !== undefined) expect(text).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
      }),
    );
  });

  it('a span that records nothing adds no trace context', () => {
    const noop = trace.wrapSpanContext(
      trace.getSpanContext(ROOT_CONTEXT) ?? {
        traceId: '0'.repeat(32),
        spanId: '0'.repeat(16),
        traceFlags: 0,
      },
    );
    expect(withTraceContext(undefined, noop)).toBeUndefined();
    expect(withTraceContext({ traceparent: VALID, a: 1 }, noop)).toEqual({ a: 1 });
  });
});
