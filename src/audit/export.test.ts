import { describe, expect, it } from 'vitest';
import { ExportScanner, formatExportLine } from './export.js';

const record = (n: number) => new TextEncoder().encode(`{"n":${n}}`);
const line = (index: number, n = index) => formatExportLine(index, record(n));

function scan(lines: readonly string[]) {
  const scanner = new ExportScanner();
  let read = 0;
  for (const l of lines) {
    read++;
    if (scanner.push(l)) break;
  }
  return { result: scanner.end(), read, parsed: scanner.parsed };
}

describe('ExportScanner', () => {
  it('stops at the first repeated line, having parsed only what came before it (attack11 F5)', () => {
    const flood = Array.from({ length: 100_000 }, () => '{"index":0,"record":{}}');
    const { result, read, parsed } = scan(flood);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problem).toMatchObject({
      code: 'ERR_AUDIT_RECORD_DUPLICATED',
      position: { line: 2, index: 0 },
    });
    expect(read).toBe(2);
    expect(parsed).toBe(1);
  });

  it('reports a malformed line, a reordered and a deleted entry as verifyLog does', () => {
    let r = scan([line(0), '{"index":1}', line(2)]).result;
    expect(r.ok ? undefined : r.problem).toMatchObject({
      code: 'ERR_AUDIT_ENTRY_MALFORMED',
      position: { line: 2 },
    });
    // Entry 1 comes later: reordered at the first line out of place; only indices are read on.
    const swapped = scan([line(0), line(2), line(1), line(3)]);
    expect(swapped.result.ok ? undefined : swapped.result.problem).toMatchObject({
      code: 'ERR_AUDIT_RECORD_REORDERED',
      position: { line: 2, index: 1 },
    });
    expect(swapped.parsed).toBe(1);
    r = scan([line(0), line(2), line(3)]).result;
    expect(r.ok ? undefined : r.problem).toMatchObject({
      code: 'ERR_AUDIT_RECORD_DELETED',
      position: { line: 2, index: 1 },
    });
    // Another record claiming an earlier index: kept whole (verifyLog tells which is inserted).
    const inserted = scan([line(0), line(1), line(1, 9), line(2)]).result;
    expect(inserted.ok && inserted.entries.map((e) => e.index)).toStrictEqual([0, 1, 1, 2]);
    const fine = scan([line(0), line(1)]).result;
    expect(fine.ok && fine.entries).toHaveLength(2);
  });
});
