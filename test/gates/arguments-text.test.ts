import { describe, expect, it } from 'vitest';
import { MAX_ARGUMENTS_TEXT_CHARS, parseToolArguments } from '../../src/gates/index.js';
import { codeOf } from '../helpers/errors.js';

describe('parseToolArguments (outside-attack hole F4)', () => {
  it('refuses a key given twice, at any depth', () => {
    expect(codeOf(() => parseToolArguments('{"amount":100,"amount":1}'))).toBe(
      'ERR_GATE_ARGUMENTS_INVALID',
    );
    expect(
      codeOf(() => parseToolArguments('{"path":"/tickets/9999/x","path":"/tickets/4471/x"}')),
    ).toBe('ERR_GATE_ARGUMENTS_INVALID');
    expect(codeOf(() => parseToolArguments('{"a":[{"b":{"c":1,"c":1}}]}'))).toBe(
      'ERR_GATE_ARGUMENTS_INVALID',
    );
    expect(codeOf(() => parseToolArguments('{nope'))).toBe('ERR_GATE_ARGUMENTS_INVALID');
    expect(codeOf(() => parseToolArguments(`"${'x'.repeat(MAX_ARGUMENTS_TEXT_CHARS)}"`))).toBe(
      'ERR_GATE_ARGUMENTS_TOO_LARGE',
    );
    expect(parseToolArguments('{"order":"o","amount":1}')).toEqual({ order: 'o', amount: 1 });
  });
});
