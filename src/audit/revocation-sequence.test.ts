import { describe, expect, it } from 'vitest';
import type { Identifier } from '../identity/index.js';
import type { RevocationRecord } from './revocation-record.js';
import { RevocationSequences } from './revocation-sequence.js';

const A: Identifier = `I${'a'.repeat(64)}`;
const B: Identifier = `I${'b'.repeat(64)}`;

function record(
  authority: Identifier,
  sequence: number,
  id: string,
  enforcer?: Identifier,
): RevocationRecord {
  return {
    type: 'mandate/revocation/v1',
    kind: 'revocation-id',
    id,
    revokedAt: 1,
    expiresAt: 2,
    sequence,
    authority,
    attestation: '',
    signature: { keyType: 'ed25519', value: '' },
    ...(enforcer === undefined ? {} : { enforcer, appliedAt: 1 }),
  };
}

const id = (n: number) => n.toString(16).padStart(32, '0');

describe('RevocationSequences', () => {
  it('accepts numbers without a gap from the first, in any log order, per authority', () => {
    const s = new RevocationSequences();
    [
      [A, 4],
      [B, 1],
      [A, 6],
      [A, 5],
      [B, 2],
    ].forEach(([who, n], line) => {
      expect(s.add(record(who as Identifier, n as number, id(n as number)), { line })).toBe(
        undefined,
      );
    });
    expect(s.firstGap()).toBe(undefined);
  });

  it('reports the first gap at the record after it', () => {
    const s = new RevocationSequences();
    s.add(record(A, 1, id(1)), { line: 1 });
    s.add(record(A, 2, id(2)), { line: 2 });
    s.add(record(A, 5, id(5)), { line: 3 });
    s.add(record(B, 1, id(1)), { line: 4 });
    s.add(record(B, 3, id(3)), { line: 5 });
    expect(s.firstGap()).toMatchObject({
      code: 'ERR_AUDIT_REVOCATION_MISSING',
      at: { line: 3 },
    });
    expect(s.firstGap()?.message).toMatch(/entries 3 to 4/);
  });

  it('ignores records an enforcement point signed (it logs from wherever it joined)', () => {
    const s = new RevocationSequences();
    s.add(record(A, 1, id(1)), { line: 1 });
    s.add(record(A, 9, id(9), B), { line: 2 });
    s.add(record(A, 2, id(2)), { line: 3 });
    expect(s.firstGap()).toBe(undefined);
  });

  it('reports a number given to two entries; the same entry twice is not a contradiction', () => {
    const s = new RevocationSequences();
    s.add(record(A, 1, id(1)), { line: 1 });
    expect(s.add(record(A, 1, id(1)), { line: 2 })).toBe(undefined);
    expect(s.add(record(A, 1, id(7)), { line: 3 })).toMatchObject({
      code: 'ERR_AUDIT_REVOCATION_SEQUENCE_REUSED',
      at: { line: 3 },
    });
  });
});
