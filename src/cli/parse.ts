import { invalid } from '../core/internal.js';

// `90`, or one or more amount+unit parts from the largest unit down, each unit at most once:
// `1h30m`, `2d12h`, `1m30s`.
const DURATION_RE = /^(?:(\d+)|(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?)$/;
const PART_SECONDS = [1, 86_400, 3600, 60, 1] as const;

/** `90`, `90s`, `15m`, `2h`, `7d`, `1h30m`, `2d12h` → seconds (a positive safe integer). */
export function parseDuration(text: string, flag: string): number {
  const trimmed = text.trim();
  const match = trimmed === '' ? null : DURATION_RE.exec(trimmed);
  let seconds = 0;
  if (match !== null) {
    for (let i = 1; i <= 5; i++) {
      const part = match[i];
      if (part !== undefined) seconds += Number(part) * PART_SECONDS[i - 1]!;
    }
  }
  if (match === null || !Number.isSafeInteger(seconds) || seconds <= 0) {
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `\`${flag}\` must be a duration like 90s, 15m, 2h, 7d or 1h30m, not \`${text}\``,
    );
  }
  return seconds;
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
