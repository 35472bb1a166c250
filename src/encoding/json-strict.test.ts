import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseJsonNoDuplicateKeys } from './json-strict.js';

const parse = (text: string) => parseJsonNoDuplicateKeys(text, 'ERR_ARGUMENT_INVALID', 'the text');
const code = (text: string): string | undefined => {
  try {
    parse(text);
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
};

describe('parseJsonNoDuplicateKeys (outside-attack hole F4)', () => {
  it('refuses a key given twice in one object, at any depth and however spelled', () => {
    expect(code('{"amount":100,"amount":1}')).toBe('ERR_ARGUMENT_INVALID');
    expect(code('{"path":"/tickets/9999/x","path":"/tickets/4471/x"}')).toBe(
      'ERR_ARGUMENT_INVALID',
    );
    expect(code('{"a":{"b":[{"c":1,"c":2}]}}')).toBe('ERR_ARGUMENT_INVALID');
    expect(code('{"amount":1, "\\u0061mount" : 2}')).toBe('ERR_ARGUMENT_INVALID');
    expect(code('{nope')).toBe('ERR_ARGUMENT_INVALID');
  });

  it('accepts the same key in different objects, and keys that look alike inside strings', () => {
    expect(parse('{"a":{"a":1},"b":[{"a":2},{"a":3}]}')).toEqual({
      a: { a: 1 },
      b: [{ a: 2 }, { a: 3 }],
    });
    expect(parse('{"s":"\\"a\\":1,\\"a\\":2","t":"{\\"x\\":[1]}"}')).toEqual({
      s: '"a":1,"a":2',
      t: '{"x":[1]}',
    });
    expect(parse('["a","a",{"a":"a"}]')).toEqual(['a', 'a', { a: 'a' }]);
  });

  it('agrees with JSON.parse on JSON without duplicates (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (value) => {
        const text = JSON.stringify(value, null, 1);
        expect(parse(text)).toEqual(JSON.parse(text));
      }),
    );
  });
});
