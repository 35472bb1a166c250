import { describe, expect, it } from 'vitest';
import { parseUpDemoOutput } from '../bench/up.bench.js';

// The `up` benchmark reads `mandate --json up --demo --exit`'s stdout: the summary as one JSON
// document (printed over several lines), then the dashboard line. Its step-19 counts are checked.
const node = {
  agents: 20,
  subAgents: 10,
  seconds: 4.9,
  enrollment: { count: 21, seconds: 0.25, perSecond: 85 },
  handshakes: { count: 74, meanMs: 97.2, perSecond: 126 },
  calls: { count: 56, seconds: 0.77, p50Ms: 144, p99Ms: 243, perSecond: 73 },
  leases: { count: 20, seconds: 3.6 },
  revocation: { latencyMs: 14.2, leaseEndedMs: 57.5 },
  audit: { records: 238, verifiedRecords: 1079 },
};
const output = (summary: unknown): string =>
  `${JSON.stringify(summary, null, 2)}\ndashboard: http://127.0.0.1:41521/#token=t&key=k\n`;

describe('bench up: parseUpDemoOutput', () => {
  it('returns the summary printed before the dashboard line', () => {
    const summary = parseUpDemoOutput(output({ home: '/tmp/h/demo', agents: 20, node }));
    expect(summary.home).toBe('/tmp/h/demo');
    expect(summary.node.audit.verifiedRecords).toBe(1079);
  });

  it('refuses output without the dashboard line', () => {
    expect(() => parseUpDemoOutput(JSON.stringify({ agents: 20, node }))).toThrow(/dashboard/);
  });

  it('names a step-19 count the summary lacks', () => {
    const withoutLeases: Partial<typeof node> = { ...node };
    delete withoutLeases.leases;
    expect(() => parseUpDemoOutput(output({ agents: 20, node: withoutLeases }))).toThrow(
      /node\.leases\.count/,
    );
    expect(() => parseUpDemoOutput(output({ agents: 20 }))).toThrow(/node\.agents/);
  });
});
