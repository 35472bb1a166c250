import { invalid } from '../core/index.js';

const DURATION_RE = /^(\d+)(s|m|h|d)?$/;
const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `90`, `90s`, `15m`, `2h`, `7d` → seconds. */
export function parseDuration(text: string, flag: string): number {
  const match = DURATION_RE.exec(text.trim());
  const amount = match === null ? Number.NaN : Number(match[1]);
  if (match === null || !Number.isSafeInteger(amount) || amount <= 0) {
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `\`${flag}\` must be a duration like 90s, 15m, 2h or 7d, not \`${text}\``,
    );
  }
  return amount * (UNIT_SECONDS[match[2] ?? 's'] ?? 1);
}

export function parsePositiveInteger(text: string, flag: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `\`${flag}\` must be a positive integer, not \`${text}\``,
    );
  }
  return n;
}

/** Repeated options collect into an array (commander's variadic-by-repetition idiom). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
