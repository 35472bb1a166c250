import { afterEach, describe, expect, it, vi } from 'vitest';
import { invalid } from '../../src/core/internal.js';
import { createOutput, formatFields, reportError } from '../../src/cli/output.js';
import { stderrLogger } from '../../src/cli/logging.js';

// Defence in depth (issue 8, #5): whatever text from outside reaches the CLI's printers, no raw
// control or bidi control character reaches the terminal.

const REPAINT = '\x1b[1A\x1b[2K\rALLOW\x9b2J\u202eX\u2066';
// eslint-disable-next-line no-control-regex -- control characters are what this looks for
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/u;

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err.push(String(chunk));
    return true;
  });
  return { stdout: () => out.join(''), stderr: () => err.join('') };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('CLI output escapes control characters', () => {
  it('in human results (keeping their own line feeds), notes, fields and errors', () => {
    const printed = capture();
    const human = createOutput(false, false);
    human.result({}, () => `DENY: x\n  purpose ${REPAINT}`);
    human.note(`note ${REPAINT}`);
    expect(
      reportError(invalid('ERR_ARGUMENT_INVALID', `bad \`${REPAINT}\n\``), {
        debug: true,
        json: false,
      }),
    ).toBe(3);
    const stdout = printed.stdout();
    expect(stdout).not.toMatch(RAW);
    expect(stdout.split('\n')).toHaveLength(3);
    expect(stdout).toContain('\\u001b[1A');
    expect(printed.stderr()).not.toMatch(RAW);
    expect(printed.stderr()).toMatch(/^error\[ERR_ARGUMENT_INVALID\]: bad `[^\n]*`$/m);
    expect(formatFields([['note', `a\nALLOW ${REPAINT}`]])).toBe(
      'note: a\\u000aALLOW \\u001b[1A\\u001b[2K\\u000dALLOW\\u009b2J\\u202eX\\u2066',
    );
  });

  it('in JSON without changing the value', () => {
    const printed = capture();
    createOutput(true, false).result({ purpose: REPAINT }, () => '');
    expect(printed.stdout()).not.toMatch(RAW);
    expect(JSON.parse(printed.stdout())).toEqual({ purpose: REPAINT });
  });

  it('in the log lines of long-running commands', () => {
    const printed = capture();
    stderrLogger().warn(`refused ${REPAINT}`, { name: REPAINT });
    expect(printed.stderr()).not.toMatch(RAW);
    expect(printed.stderr().split('\n')).toHaveLength(2);
  });
});

describe('CLI log lines', () => {
  it('are timestamped text by default and JSON lines when asked, at the level asked', () => {
    const printed = capture();
    stderrLogger({ format: 'text', level: 'info' }).info('listening', { address: '127.0.0.1:1' });
    stderrLogger({ format: 'text', level: 'info' }).debug('hidden');
    stderrLogger({ format: 'json', level: 'warn' }).info('hidden too');
    stderrLogger({ format: 'json', level: 'warn' }).warn('refused', {
      reason: 'ERR_REVOKED',
      n: 3,
    });
    const [text, json, rest] = printed.stderr().split('\n');
    expect(text).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info listening address=127\.0\.0\.1:1$/,
    );
    expect(JSON.parse(json!)).toMatchObject({
      level: 'warn',
      msg: 'refused',
      reason: 'ERR_REVOKED',
      n: 3,
      time: expect.stringMatching(/Z$/) as unknown,
    });
    expect(rest).toBe('');
  });
});
