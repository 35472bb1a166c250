import { describe, expect, it, vi } from 'vitest';
import { ToolCatalog } from '../../src/gates/index.js';
import type { ToolDescriptor } from '../../src/gates/index.js';

// Outside-attack holes F1, F3, F8 (docs/threat-model.md): a tool's input schema must not switch
// off, stall or crash the schema check of gate 2.

const tool = (inputSchema: Record<string, unknown>): ToolDescriptor => ({
  name: 't',
  server: 's',
  inputSchema,
});
const refused = (inputSchema: Record<string, unknown>): string => {
  try {
    new ToolCatalog([tool(inputSchema)]);
  } catch (error) {
    expect(error).toMatchObject({ code: 'ERR_GATE_CATALOG_INVALID' });
    expect((error as Error).message).toContain('`t`');
    return (error as Error).message;
  }
  throw new Error('the catalog was accepted');
};

describe('input schema safety', () => {
  it('F1: refuses `$async` at any depth (ajv would return a Promise, counted as valid)', () => {
    refused({ $async: true, type: 'object', properties: { a: { type: 'integer' } } });
    refused({ type: 'object', properties: { a: { $async: true, type: 'integer' } } });
    refused({
      type: 'object',
      $defs: { x: { $async: true } },
      properties: { a: { $ref: '#/$defs/x' } },
    });
  });

  it('F1: only a validator result of exactly `true` is valid', () => {
    const t = new ToolCatalog([
      tool({ type: 'object', properties: { a: { type: 'integer' } } }),
    ]).get('t')!;
    expect(t.validate({ a: 1 })).toBe(true);
    expect(t.validate({ a: 'x' })).toBe(false);
  });

  it('F3: patterns match in linear time (no ReDoS on agent strings)', () => {
    const evil = '^(a+)+$';
    const catalog = new ToolCatalog([
      tool({ type: 'object', properties: { s: { type: 'string', pattern: evil } } }),
      {
        name: 'p',
        server: 's',
        inputSchema: { type: 'object', patternProperties: { [evil]: { type: 'string' } } },
      },
      { name: 'n', server: 's', inputSchema: { type: 'object', propertyNames: { pattern: evil } } },
    ]);
    const attack = 'a'.repeat(40_000) + '!';
    const started = performance.now();
    expect(catalog.get('t')!.validate({ s: attack })).toBe(false);
    expect(catalog.get('p')!.validate({ [attack]: 1 })).toBe(true); // no match: not constrained
    expect(catalog.get('n')!.validate({ [attack]: 1 })).toBe(false);
    expect(performance.now() - started).toBeLessThan(2_000);
    // Ordinary patterns keep their JavaScript meaning (search, \d, \u escapes, classes).
    const t = new ToolCatalog([
      tool({ type: 'object', properties: { s: { type: 'string', pattern: '\\d{3}-\\u00e9' } } }),
    ]).get('t')!;
    expect(t.validate({ s: 'x123-é' })).toBe(true);
    expect(t.validate({ s: '12-é' })).toBe(false);
  });

  it('F3: `format` runs no regular expression (none is registered) and warns nothing', () => {
    const warn = vi.spyOn(console, 'warn');
    const t = new ToolCatalog([
      tool({ type: 'object', properties: { e: { type: 'string', format: 'email' } } }),
    ]).get('t')!;
    expect(t.validate({ e: `${'a'.repeat(10_000)}!` })).toBe(true);
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
  });

  it('F3: refuses patterns RE2 cannot express (backreferences, lookaround) at catalog load', () => {
    expect(
      refused({ type: 'object', properties: { s: { type: 'string', pattern: '(a)\\1' } } }),
    ).toMatch(/RE2/);
    refused({ type: 'object', properties: { s: { type: 'string', pattern: '(?=a)a' } } });
    refused({ type: 'object', patternProperties: { '(?<!x)y': {} } });
    refused({ type: 'object', propertyNames: { pattern: '(a)\\1' } });
  });

  it('F8: refuses a schema that refers to itself without moving into the data', () => {
    expect(refused({ type: 'object', $ref: '#' })).toMatch(/cycle/);
    refused({ type: 'object', allOf: [{ $ref: '#' }] });
    refused({
      type: 'object',
      $defs: { a: { $ref: '#/$defs/b' }, b: { not: { $ref: '#/$defs/a' } } },
      $ref: '#/$defs/a',
    });
    refused({ type: 'object', properties: { x: { $ref: '#/properties/x' } } });
    // $ref outside the schema, ids and anchors are refused too
    refused({ type: 'object', $ref: 'https://example.com/s.json' });
    refused({ type: 'object', $id: 'urn:x' });
    refused({ type: 'object', properties: { x: { $ref: '#/nope' } } });
  });

  it('F8: recursion through the data (a tree) is fine', () => {
    const t = new ToolCatalog([
      tool({
        type: 'object',
        properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#' } } },
      }),
    ]).get('t')!;
    expect(t.validate({ name: 'a', children: [{ name: 'b', children: [] }] })).toBe(true);
    expect(t.validate({ name: 'a', children: [{ name: 1 }] })).toBe(false);
  });
});
