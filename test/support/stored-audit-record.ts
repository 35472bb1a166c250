import type Database from 'better-sqlite3';

/**
 * What an attacker with the database file does to one audit entry: reads its record as the log
 * holds it (the stored bytes with the text stored once put back — migration 16), changes it, and
 * writes the whole changed record back into the row (its guard trigger dropped first by the
 * caller). Returns the record before and after the edit.
 */
export function editStoredRecord(
  db: Database.Database,
  idx: number,
  edit: (text: string) => string,
): { readonly before: string; readonly after: string } {
  const before = storedRecordText(db, idx);
  const after = edit(before);
  db.prepare(
    'UPDATE audit_log_entries SET record = ?, text_id = NULL, text_at = NULL WHERE idx = ?',
  ).run(Buffer.from(after, 'utf8'), idx);
  return { before, after };
}

/** Every stored entry's record text as the log holds it, in log order. */
export function storedRecordTexts(db: Database.Database): { idx: number; text: string }[] {
  const rows = db.prepare('SELECT idx FROM audit_log_entries ORDER BY idx').all() as {
    idx: number;
  }[];
  return rows.map(({ idx }) => ({ idx, text: storedRecordText(db, idx) }));
}

function storedRecordText(db: Database.Database, idx: number): string {
  const row = db
    .prepare(
      `SELECT e.record, e.text_at, t.text FROM audit_log_entries e
         LEFT JOIN audit_log_texts t ON t.id = e.text_id WHERE e.idx = ?`,
    )
    .get(idx) as { record: Buffer; text_at: number | null; text: Buffer | null } | undefined;
  if (row === undefined) throw new Error(`no audit entry ${idx}`);
  const { record, text_at: at, text } = row;
  const bytes =
    at === null || text === null
      ? record
      : Buffer.concat([record.subarray(0, at), text, record.subarray(at)]);
  return bytes.toString('utf8');
}
