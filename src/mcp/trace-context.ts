// W3C trace context (https://www.w3.org/TR/trace-context/, version 00) in MCP `_meta`
// (`traceparent`, `tracestate`: the MCP community convention, SEP-414), so the agent's span, the
// gateway's span for the call and the upstream's span share one trace. Parsed strictly and used
// only to parent spans: a trace context is never evidence of anything (no decision, no audit
// record reads it), and a malformed one is ignored (the span starts a new trace).
import {
  context as otelContext,
  createTraceState,
  isSpanContextValid,
  ROOT_CONTEXT,
  trace,
  type Context,
  type Span,
} from '@opentelemetry/api';

/** The `_meta` key of the W3C `traceparent`. */
export const TRACEPARENT_META_KEY = 'traceparent';
/** The `_meta` key of the W3C `tracestate`. */
export const TRACESTATE_META_KEY = 'tracestate';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
/** W3C: at most 32 list members; 512 characters is what a propagator must accept. */
const MAX_TRACESTATE_CHARS = 512;
const TRACESTATE =
  /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]*=[\x20-\x2b\x2d-\x3c\x3e-\x7e]*(,[\x20-\x2b\x2d-\x3c\x3e-\x7e]*=[\x20-\x2b\x2d-\x3c\x3e-\x7e]*)*$/;

/**
 * The remote parent carried in a message's `_meta`, as an OpenTelemetry context; undefined when
 * there is none or it is malformed (wrong version or length, upper-case hex, all-zero ids). A
 * `tracestate` is kept only beside a valid `traceparent` and when well-formed.
 */
export function traceContextOf(meta: unknown): Context | undefined {
  if (typeof meta !== 'object' || meta === null) return undefined;
  const parent = (meta as Record<string, unknown>)[TRACEPARENT_META_KEY];
  if (typeof parent !== 'string') return undefined;
  const m = TRACEPARENT.exec(parent);
  if (m === null) return undefined;
  const spanContext = {
    traceId: m[1]!,
    spanId: m[2]!,
    traceFlags: Number.parseInt(m[3]!, 16) & 1,
    isRemote: true,
  };
  if (!isSpanContextValid(spanContext)) return undefined;
  const state = (meta as Record<string, unknown>)[TRACESTATE_META_KEY];
  const traceState =
    typeof state === 'string' && state.length <= MAX_TRACESTATE_CHARS && TRACESTATE.test(state)
      ? createTraceState(state)
      : undefined;
  return trace.setSpanContext(
    ROOT_CONTEXT,
    traceState === undefined ? spanContext : { ...spanContext, traceState },
  );
}

/** The parent for a new span: the message's valid trace context, else the active context. */
export function parentContextOf(meta: unknown): Context {
  return traceContextOf(meta) ?? otelContext.active();
}

/**
 * `meta` with `traceparent` (and `tracestate`, when the span has one) naming `span`, replacing
 * whatever was there; unchanged when the span records nothing (a no-op tracer: tracing is off).
 */
export function withTraceContext(
  meta: Record<string, unknown> | undefined,
  span: Span,
): Record<string, unknown> | undefined {
  const sc = span.spanContext();
  const rest = Object.fromEntries(
    Object.entries(meta ?? {}).filter(
      ([key]) => key !== TRACEPARENT_META_KEY && key !== TRACESTATE_META_KEY,
    ),
  );
  if (!isSpanContextValid(sc)) return meta === undefined ? undefined : rest;
  const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, '0');
  const state = sc.traceState?.serialize();
  return {
    ...rest,
    [TRACEPARENT_META_KEY]: `00-${sc.traceId}-${sc.spanId}-${flags}`,
    ...(state === undefined || state === '' ? {} : { [TRACESTATE_META_KEY]: state }),
  };
}
