import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { json, run } from '../helpers/cli.js';

// Keeps `npm start` true: the whole scenario, small, with its outcomes asserted.
describe('mandate demo', () => {
  it('provisions, rotates, verifies, enrolls, delegates, revokes and talks over secure channels through a relay', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mandate-demo-'));
    const r = await run('--home', home, '--json', 'demo', '--agents', '40', '--rotate', '4');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = json(r) as {
      agents: number;
      rotations: { count: number };
      verification: { histories: number; attestations: number };
      attacks: Record<string, string>;
      credentials: {
        enrolled: number;
        credentialsVerified: number;
        subAgents: number;
        decisions: { allowed: number; denied: number; injectedCallDenied: string };
        revocation: { subAgentsDeniedAfter: number; humanStillAllowed: boolean };
      };
      channels: {
        channels: number;
        echoed: number;
        bytesRelayed: number;
        plaintextSeenByRelay: boolean;
        tamperedFrameDropped: boolean;
        refreshedStillAnswered: number;
        expiredCutOff: number;
      };
    };
    expect(summary.agents).toBe(40);
    expect(summary.rotations.count).toBe(4);
    expect(summary.verification).toMatchObject({ histories: 40, attestations: 80 });
    expect(summary.attacks).toEqual({
      tamperedSignature: 'ERR_IDENTITY_SIGNATURE_INVALID',
      rollback: 'ERR_IDENTITY_HISTORY_OLDER',
      wrongIdentifier: 'ERR_IDENTITY_IDENTIFIER_MISMATCH',
    });
    expect(summary.credentials).toMatchObject({
      enrolled: 40,
      credentialsVerified: 40,
      subAgents: 10,
    });
    expect(summary.credentials.decisions).toMatchObject({ allowed: 10, denied: 10 });
    expect(summary.credentials.decisions.injectedCallDenied).toMatch(/^order: /);
    expect(summary.credentials.revocation).toEqual({
      ...summary.credentials.revocation,
      subAgentsDeniedAfter: 10,
      humanStillAllowed: true,
    });
    expect(summary.channels).toMatchObject({
      channels: 39,
      echoed: 39,
      plaintextSeenByRelay: false,
      tamperedFrameDropped: true,
      // 39 callers: the 20 at even positions refreshed in-band, the other 19 expired.
      refreshedStillAnswered: 20,
      expiredCutOff: 19,
    });
    expect(summary.channels.bytesRelayed).toBeGreaterThan(0);
  });
});
