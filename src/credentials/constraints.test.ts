import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isMandateError } from '../core/index.js';
import { codeOf, expectCode } from '../../test/helpers/errors.js';
import {
  checkConstraintsNarrower,
  checkNarrower,
  checkRequest,
  constraintsFromAttributes,
  constraintsToAttributes,
  decodeConstraintValue,
  assertScopedToolsGranted,
  INFRASTRUCTURE_ATTRIBUTES,
  encodeConstraintValue,
  formatConstraint,
  parseConstraint,
  type AuthorizationRequest,
  type Constraint,
  type Constraints,
} from './constraints.js';

const SYNTAX = 'ERR_CONSTRAINT_SYNTAX';
const UNKNOWN_KIND = 'ERR_CONSTRAINT_UNKNOWN_KIND';
const MAX = Number.MAX_SAFE_INTEGER;
const utf8 = new TextEncoder();
const text = new TextDecoder();

const parsed = (cli: string): Constraint => parseConstraint(cli)[1];
const decoded = (value: string): Constraint => decodeConstraintValue(utf8.encode(value));

/** A request that gives `value` to the constraint named `name` (the action for `tools`). */
function requestFor(name: string, value: string, nowSeconds = 0): AuthorizationRequest {
  if (name === 'tools') return { action: value, args: new Map(), nowSeconds };
  // `tool#arg` reads `arg` on calls of `tool`.
  const hash = name.indexOf('#');
  return hash > 0
    ? { action: name.slice(0, hash), args: new Map([[name.slice(hash + 1), value]]), nowSeconds }
    : { action: 'noop', args: new Map([[name, value]]), nowSeconds };
}
const wellFormed = (constraint: Constraint): boolean => {
  try {
    encodeConstraintValue(constraint);
    return true;
  } catch {
    return false;
  }
};
const accepts = (name: string, constraint: Constraint, value: string, nowSeconds = 0): boolean =>
  checkRequest(name, constraint, requestFor(name, value, nowSeconds)).ok;

// ---------------------------------------------------------------------------------------------
// Arbitraries: small alphabets so that random parents and children overlap often.

const argumentNameArb = fc
  .stringMatching(/^[a-z0-9_.-]{1,64}$/)
  .filter((name) => !INFRASTRUCTURE_ATTRIBUTES.includes(name) && name !== 'tools');
/** Tool names as MCP servers write them: dots, slashes, colons, mixed case. */
const toolNameArb = fc.oneof(
  fc.constantFrom(
    'orders',
    'orders.refund',
    'orders.refund.amount',
    'github/create_issue',
    'db:query',
  ),
  fc.stringMatching(/^[A-Za-z0-9_.:-][A-Za-z0-9_.:@/-]{0,127}$/),
);
const nameArb = fc.oneof(
  fc.constantFrom('tools', 'refund', 'file', 'x', 'orders.refund#amount'),
  argumentNameArb,
  fc.tuple(toolNameArb, argumentNameArb).map(([tool, argument]) => `${tool}#${argument}`),
);
const setValueArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'a',
      'b',
      'c',
      'd',
      'read_orders',
      'issue_refund',
      '-1',
      '0',
      '.',
      '..',
      'u@h',
      'x:y',
    ),
  },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.:-][A-Za-z0-9_.:@/-]{0,127}$/) },
);
const segmentArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom('a', 'b', 'orders', 'ordersX', '4471', '...x', 'x.', '@me'),
  },
  {
    weight: 1,
    arbitrary: fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,128}$/).filter((s) => !/^\.+$/.test(s)),
  },
);
const limitArb = fc.oneof(
  fc.integer({ min: -20, max: 20 }),
  fc.constantFrom(MAX, -MAX, MAX - 1, -MAX + 1, 0),
  fc.maxSafeInteger(),
);
const timeArb = fc.oneof(
  fc.nat({ max: 40 }),
  fc.constantFrom(MAX - 1, 1_767_225_600),
  fc.nat({ max: MAX - 1 }),
);

const setArb: fc.Arbitrary<Constraint> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Constraint>({ kind: 'set', values: ['*'] }) },
  {
    weight: 5,
    arbitrary: fc
      .uniqueArray(setValueArb, { minLength: 1, maxLength: 6 })
      .map((values): Constraint => ({ kind: 'set', values: [...values].sort() })),
  },
);
const maxArb = limitArb.map((limit): Constraint => ({ kind: 'max', limit }));
const minArb = limitArb.map((limit): Constraint => ({ kind: 'min', limit }));
const pathArb = fc
  .record({ segments: fc.array(segmentArb, { maxLength: 4 }), subtree: fc.boolean() })
  .map((p): Constraint => ({ kind: 'path', ...p }));
const windowArb = fc
  .tuple(timeArb, timeArb)
  .filter(([a, b]) => a !== b)
  .map(([a, b]): Constraint => ({
    kind: 'window',
    notBefore: Math.min(a, b),
    notAfter: Math.max(a, b),
  }));
const constraintArb = fc.oneof(setArb, maxArb, minArb, pathArb, windowArb);

/** A child derived from `parent` by a small change that may narrow, keep or widen it. */
function mutantArb(parent: Constraint): fc.Arbitrary<Constraint> {
  switch (parent.kind) {
    case 'set':
      return fc
        .tuple(
          fc.subarray([...parent.values]),
          fc.array(setValueArb, { maxLength: 2 }),
          fc.boolean(),
        )
        .map(([kept, extra, star]): Constraint => {
          const values = star
            ? ['*']
            : [...new Set([...kept, ...extra].filter((v) => v !== '*'))].sort();
          return { kind: 'set', values: values.length === 0 ? ['a'] : values };
        });
    case 'max':
    case 'min':
      return fc.integer({ min: -3, max: 3 }).map((delta): Constraint => ({
        kind: parent.kind,
        limit: Math.max(-MAX, Math.min(MAX, parent.limit + delta)),
      }));
    case 'path':
      return fc
        .tuple(
          fc.nat({ max: parent.segments.length }),
          fc.array(segmentArb, { maxLength: 2 }),
          fc.boolean(),
          fc.constantFrom('', '', 'X', '.'),
        )
        .map(([keep, extra, subtree, suffix]): Constraint => {
          // A suffix on the last kept segment makes a sibling (`/ordersX` next to `/orders`).
          const segments = [...parent.segments.slice(0, keep), ...extra];
          const last = segments.length - 1;
          if (last >= 0 && suffix !== '' && segments[last]!.length < 128)
            segments[last] = `${segments[last]!}${suffix}`;
          return { kind: 'path', segments, subtree };
        });
    case 'window':
      return fc
        .tuple(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -3, max: 3 }))
        .map(([db, da]): Constraint => {
          const notBefore = Math.max(0, parent.notBefore + db);
          const notAfter = Math.min(MAX, Math.max(notBefore + 1, parent.notAfter + da));
          return { kind: 'window', notBefore, notAfter };
        });
  }
}
const constraintOrMutantArb = (parent: Constraint): fc.Arbitrary<Constraint> =>
  fc.oneof({ weight: 4, arbitrary: mutantArb(parent) }, { weight: 1, arbitrary: constraintArb });

const pairArb = constraintArb.chain((parent) =>
  constraintOrMutantArb(parent).map((child) => ({ parent, child })),
);
const tripleArb = constraintArb.chain((c) =>
  constraintOrMutantArb(c).chain((b) => constraintOrMutantArb(b).map((a) => ({ a, b, c }))),
);

/** Request values worth trying against a set of constraints: every bound and its neighbours. */
function candidateValues(constraints: readonly Constraint[]): string[] {
  const out = new Set<string>([
    '*',
    'fresh-value',
    '',
    ' 5',
    '+5',
    '1e3',
    '0x10',
    '1.5',
    '01',
    '-0',
    '9007199254740992',
  ]);
  out.add('/').add('/a/../b').add('/a/').add('//').add('/%61');
  for (const c of constraints) {
    if (c.kind === 'set') for (const v of c.values) out.add(v).add(`${v}x`);
    if (c.kind === 'max' || c.kind === 'min')
      for (const d of [-1, 0, 1])
        if (Number.isSafeInteger(c.limit + d)) out.add(String(c.limit + d));
    if (c.kind === 'path') {
      const base = `/${c.segments.join('/')}`;
      const join = c.segments.length === 0 ? '' : base;
      out.add(base).add(`${join}/x`).add(`${join}/x/y`).add(`${base}X`).add(`${join}/..`);
      if (c.segments.length > 0) out.add(`/${c.segments.slice(0, -1).join('/')}`);
    }
  }
  return [...out];
}
function candidateTimes(constraints: readonly Constraint[]): number[] {
  const out = new Set<number>([0]);
  for (const c of constraints)
    if (c.kind === 'window')
      for (const t of [c.notBefore - 1, c.notBefore, c.notAfter - 1, c.notAfter]) out.add(t);
  return [...out];
}
/** Does `child` accept some request that `parent` refuses? Searches the candidates exhaustively. */
function widening(
  name: string,
  child: Constraint,
  parent: Constraint,
): string | number | undefined {
  if (child.kind === 'window')
    return candidateTimes([child, parent]).find(
      (t) => accepts(name, child, 'v', t) && !accepts(name, parent, 'v', t),
    );
  return candidateValues([child, parent]).find(
    (v) => accepts(name, child, v) && !accepts(name, parent, v),
  );
}

// ---------------------------------------------------------------------------------------------

describe('parseConstraint', () => {
  it.each<[string, string, Constraint]>([
    ['tools=read_orders', 'tools', { kind: 'set', values: ['read_orders'] }],
    [
      'tools=read_orders,issue_refund',
      'tools',
      { kind: 'set', values: ['issue_refund', 'read_orders'] },
    ],
    ['tools=b,a,b', 'tools', { kind: 'set', values: ['a', 'b'] }],
    ['tenant=*', 'tenant', { kind: 'set', values: ['*'] }],
    [
      'member=0b6b0c4a-1c3e-4e55-9f7e-6b8a1e9d4c21',
      'member',
      { kind: 'set', values: ['0b6b0c4a-1c3e-4e55-9f7e-6b8a1e9d4c21'] },
    ],
    ['refund<=1000', 'refund', { kind: 'max', limit: 1000 }],
    ['delta>=-5', 'delta', { kind: 'min', limit: -5 }],
    [`n<=${MAX}`, 'n', { kind: 'max', limit: MAX }],
    [`n>=-${MAX}`, 'n', { kind: 'min', limit: -MAX }],
    ['file=/orders/4471', 'file', { kind: 'path', segments: ['orders', '4471'], subtree: false }],
    ['file=/orders/**', 'file', { kind: 'path', segments: ['orders'], subtree: true }],
    ['file=/', 'file', { kind: 'path', segments: [], subtree: false }],
    ['file=/**', 'file', { kind: 'path', segments: [], subtree: true }],
    [
      'hours=@1767225600..1767229200',
      'hours',
      { kind: 'window', notBefore: 1767225600, notAfter: 1767229200 },
    ],
    [
      'hours=@2026-01-01T00:00:00Z..2026-12-01T09:00:00Z',
      'hours',
      { kind: 'window', notBefore: 1767225600, notAfter: 1796115600 },
    ],
    [
      'hours=@0..2028-02-29T23:59:59Z',
      'hours',
      { kind: 'window', notBefore: 0, notAfter: 1835481599 },
    ],
    ['a.b_c-9=x', 'a.b_c-9', { kind: 'set', values: ['x'] }],
  ])('parses `%s`', (cli, name, constraint) => {
    expect(parseConstraint(cli)).toEqual([name, constraint]);
  });

  it.each([
    // names
    'Tools=x',
    '=x',
    `${'a'.repeat(65)}=x`,
    'to ols=x',
    'tööls=x',
    'k',
    // operators
    'k<5',
    'k>5',
    'k!=x',
    'k~x',
    'k==x',
    'k=~x',
    'k=!x',
    'k=<=5',
    'k=,a',
    // sets
    'k=',
    'k=a,',
    'k=,',
    'k=a,,b',
    'k=a b',
    'k=*,a',
    'k=a,*',
    'k=**',
    'k=@',
    'k=a;b',
    `k=${'v'.repeat(129)}`,
    `k=${Array.from({ length: 257 }, (_, i) => `v${i}`).join(',')}`,
    // numbers
    'k<=',
    'k<=1e3',
    'k<=0x10',
    'k<=1.5',
    'k<=+5',
    'k<=05',
    'k<=-0',
    'k<= 5',
    'k<=5 ',
    'k<=9007199254740992',
    'k>=-9007199254740992',
    'k<=Infinity',
    'k<=NaN',
    // paths
    'k=/a/',
    'k=//',
    'k=/a//b',
    'k=/./a',
    'k=/a/..',
    'k=/a/.../b',
    'k=/a%2Fb',
    'k=/a/*',
    'k=/a/**/b',
    'k=/a/**/**',
    'k=//**',
    'k=/a b',
    'k=/a\\b',
    `k=/${'s'.repeat(129)}`,
    `k=${'/ab'.repeat(700)}`,
    // windows
    'k=@2..1',
    'k=@1..1',
    'k=@1',
    'k=@1..',
    'k=@..2',
    'k=@-1..5',
    'k=@1...5',
    'k=@1..2..3',
    'k=@01..5',
    'k=@2026-02-30T00:00:00Z..2027-01-01T00:00:00Z',
    'k=@2026-01-01T24:00:00Z..2027-01-01T00:00:00Z',
    'k=@2026-01-01T00:00:60Z..2027-01-01T00:00:00Z',
    'k=@2026-01-01T00:00:00+01:00..2027-01-01T00:00:00Z',
    'k=@2026-01-01T00:00:00.5Z..2027-01-01T00:00:00Z',
    'k=@1969-12-31T23:59:59Z..5',
    'k=@2026-01-01..2027-01-01',
  ])('refuses `%s` with ERR_CONSTRAINT_SYNTAX', (cli) => {
    expectCode(() => parseConstraint(cli), SYNTAX);
  });

  it('gives helpful messages: the grammar, lowercase names, the bad path rule', () => {
    expect(() => parseConstraint('k<5')).toThrow(/`name<=N`/);
    expect(() => parseConstraint('Tools=x')).toThrow(/lowercase/);
    expect(() => parseConstraint('k=/a/../b')).toThrow(/`\.` or `\.\.`/);
    expect(() => parseConstraint('k=/a/')).toThrow(/end with `\/`/);
    expect(() => parseConstraint('k=/a%2e')).toThrow(/percent-encoding/);
    expect(() => parseConstraint('k=*,a')).toThrow(/`\*` must stand alone/);
    expect(() => parseConstraint('k=@5..5')).toThrow(/empty/);
  });

  it('round-trips through formatConstraint for arbitrary constraints', () => {
    fc.assert(
      fc.property(nameArb, constraintArb, (name, constraint) => {
        const cli = formatConstraint(name, constraint);
        expect(parseConstraint(cli)).toEqual([name, constraint]);
        expect(formatConstraint(...parseConstraint(cli))).toBe(cli);
      }),
      { numRuns: 500 },
    );
  });

  it('throws only ERR_CONSTRAINT_SYNTAX on arbitrary text', () => {
    const alphabet = fc.constantFrom(...'az09_-.:@*/,=<>!~ %Z'.split(''), '..', '**', '<=', '>=');
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.array(alphabet, { maxLength: 12 }).map((a) => a.join('')),
        ),
        (cli) => {
          expect(['accepted', SYNTAX]).toContain(codeOf(() => parseConstraint(cli)));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('encodeConstraintValue / decodeConstraintValue', () => {
  it.each<[Constraint, string]>([
    [{ kind: 'set', values: ['issue_refund', 'read_orders'] }, '=issue_refund,read_orders'],
    [{ kind: 'set', values: ['*'] }, '=*'],
    [{ kind: 'max', limit: 100 }, '<=100'],
    [{ kind: 'min', limit: -3 }, '>=-3'],
    [{ kind: 'path', segments: ['orders'], subtree: true }, '=/orders/**'],
    [{ kind: 'path', segments: [], subtree: true }, '=/**'],
    [{ kind: 'path', segments: [], subtree: false }, '=/'],
    [{ kind: 'window', notBefore: 1, notAfter: 2 }, '=@1..2'],
  ])('encodes %j as `%s`', (constraint, wire) => {
    expect(text.decode(encodeConstraintValue(constraint))).toBe(wire);
    expect(decoded(wire)).toEqual(constraint);
  });

  it('round-trips arbitrary constraints, and re-encodes every decodable operator form to the same bytes', () => {
    fc.assert(
      fc.property(constraintArb, (constraint) => {
        const bytes = encodeConstraintValue(constraint);
        const back = decodeConstraintValue(bytes);
        expect(back).toEqual(constraint);
        expect(encodeConstraintValue(back)).toEqual(bytes);
      }),
      { numRuns: 500 },
    );
  });

  it('maps plain Ockam attribute values to sets', () => {
    expect(decoded('enroller')).toEqual({ kind: 'set', values: ['enroller'] });
    expect(decoded('*')).toEqual({ kind: 'set', values: ['*'] });
    expect(decoded('0b6b0c4a-1c3e-4e55-9f7e-6b8a1e9d4c21')).toEqual({
      kind: 'set',
      values: ['0b6b0c4a-1c3e-4e55-9f7e-6b8a1e9d4c21'],
    });
    expect(decoded('I0123abcd')).toEqual({ kind: 'set', values: ['I0123abcd'] });
    expect(accepts('role', decoded('enroller'), 'enroller')).toBe(true);
    expect(accepts('role', decoded('enroller'), 'member')).toBe(false);
  });

  it.each([
    '~x',
    '!=x',
    '<x',
    '>x',
    '<5',
    '=~x',
    '=!x',
    '==x',
    '=<=5',
    '/orders',
    '@1..2',
    '^x',
    '%41',
    '?x',
    '#x',
    '|x',
    '&x',
    '$x',
  ])('fails closed on the unknown operator in `%s` (ERR_CONSTRAINT_UNKNOWN_KIND)', (wire) => {
    expectCode(() => decoded(wire), UNKNOWN_KIND);
  });

  it.each([
    '',
    '=',
    '=b,a',
    '=a,a',
    '=a,',
    '=*,a',
    '<=',
    '<=01',
    '<=1e3',
    '<=-0',
    '=@2..1',
    '=@1..1',
    '=@2026-01-01T00:00:00Z..2027-01-01T00:00:00Z',
    '=/a/',
    '=/a/../b',
    '=//**',
    'a,b',
    'a b',
    'x\u00e9',
    'a\u0000',
  ])('refuses malformed or non-canonical `%s` (ERR_CONSTRAINT_SYNTAX)', (wire) => {
    expectCode(() => decoded(wire), SYNTAX);
  });

  it('refuses invalid UTF-8 and oversized values', () => {
    expectCode(() => decodeConstraintValue(Uint8Array.of(0x3d, 0xc3, 0x28)), SYNTAX);
    expectCode(() => decodeConstraintValue(new Uint8Array(64 * 1024 + 1).fill(0x61)), SYNTAX);
  });

  it('throws nothing but a MandateError with one of its two codes on arbitrary bytes', () => {
    const grammarBytes = fc
      .array(fc.constantFrom(...utf8.encode('az09_-.:@*/,=<>!~%'), 0x20, 0xff), { maxLength: 16 })
      .map((a) => Uint8Array.from(a));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), grammarBytes), (bytes) => {
        try {
          decodeConstraintValue(bytes);
        } catch (error) {
          expect(isMandateError(error)).toBe(true);
          expect([SYNTAX, UNKNOWN_KIND]).toContain((error as { code: string }).code);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses to encode malformed constraints', () => {
    const bad: unknown[] = [
      { kind: 'set', values: [] },
      { kind: 'set', values: ['*', 'a'] },
      { kind: 'set', values: ['a b'] },
      { kind: 'set', values: ['@a'] },
      { kind: 'max', limit: 1.5 },
      { kind: 'min', limit: MAX + 1 },
      { kind: 'max', limit: Number.NaN },
      { kind: 'path', segments: [''], subtree: false },
      { kind: 'path', segments: ['..'], subtree: true },
      { kind: 'path', segments: ['a/b'], subtree: false },
      { kind: 'window', notBefore: 5, notAfter: 5 },
      { kind: 'window', notBefore: -1, notAfter: 5 },
      { kind: 'regex', pattern: '.*' },
      null,
    ];
    for (const constraint of bad)
      expectCode(() => encodeConstraintValue(constraint as Constraint), SYNTAX);
  });

  it('writes a caller’s unsorted set in canonical order', () => {
    expect(text.decode(encodeConstraintValue({ kind: 'set', values: ['b', 'a', 'b'] }))).toBe(
      '=a,b',
    );
  });
});

describe('checkNarrower', () => {
  it('is reflexive', () => {
    fc.assert(
      fc.property(constraintArb, (c) => {
        expect(checkNarrower(c, c)).toEqual({ ok: true });
      }),
      { numRuns: 500 },
    );
  });

  it('is transitive', () => {
    let chains = 0;
    fc.assert(
      fc.property(tripleArb, ({ a, b, c }) => {
        if (checkNarrower(a, b).ok && checkNarrower(b, c).ok) {
          chains++;
          expect(checkNarrower(a, c)).toEqual({ ok: true });
        }
      }),
      { numRuns: 3000 },
    );
    expect(chains).toBeGreaterThan(200);
  });

  it('is sound: whatever a narrower child accepts, its parent accepts', () => {
    let narrower = 0;
    fc.assert(
      fc.property(
        nameArb,
        pairArb,
        fc.array(fc.string(), { maxLength: 3 }),
        (name, { parent, child }, extra) => {
          if (!checkNarrower(child, parent).ok) return;
          narrower++;
          for (const value of [...candidateValues([parent, child]), ...extra])
            if (accepts(name, child, value)) expect(accepts(name, parent, value), value).toBe(true);
          for (const t of candidateTimes([parent, child]))
            if (accepts(name, child, 'v', t))
              expect(accepts(name, parent, 'v', t), String(t)).toBe(true);
        },
      ),
      { numRuns: 3000 },
    );
    // The generator must produce enough narrower pairs to mean something (about a third).
    expect(narrower).toBeGreaterThan(700);
  });

  it('is exact: a refused child of the same kind really accepts something its parent refuses', () => {
    let refused = 0;
    fc.assert(
      fc.property(nameArb, pairArb, (name, { parent, child }) => {
        if (child.kind !== parent.kind || checkNarrower(child, parent).ok) return;
        // A malformed child (e.g. an empty window at the top of the integer range) is refused
        // without accepting anything: there is no witness to find.
        if (!wellFormed(child)) return;
        // A path on `tools` admits no action at all (a tool name never starts with `/`): the
        // subset rule stays conservative there, with no witness either.
        if (name === 'tools' && child.kind === 'path') return;
        refused++;
        expect(widening(name, child, parent)).not.toBeUndefined();
      }),
      { numRuns: 3000 },
    );
    expect(refused).toBeGreaterThan(500);
  });

  it.each<[string, string, string]>([
    ['widen a set', 'k=a,b,c', 'k=a,b'],
    ['`*` under a set', 'k=*', 'k=a,b'],
    ['raise a max', 'k<=1001', 'k<=1000'],
    ['lower a min', 'k>=-1', 'k>=0'],
    ['subtree under the same exact path', 'k=/orders/**', 'k=/orders'],
    ['a path below an exact parent', 'k=/orders/4471', 'k=/orders'],
    ['a sibling prefix', 'k=/ordersX', 'k=/orders/**'],
    ['a sibling prefix subtree', 'k=/ordersX/**', 'k=/orders/**'],
    ['a parent of the subtree', 'k=/**', 'k=/orders/**'],
    ['the root under a subtree', 'k=/', 'k=/orders/**'],
    ['start earlier', 'k=@99..200', 'k=@100..200'],
    ['end later', 'k=@100..201', 'k=@100..200'],
    ['set → max', 'k<=5', 'k=5'],
    ['max → min', 'k>=0', 'k<=100'],
    ['path → set', 'k=*', 'k=/orders/**'],
    ['set `*` → path', 'k=/orders/**', 'k=*'],
    ['window → set', 'k=@1..2', 'k=*'],
  ])('refuses amplification: %s', (_, child, parent) => {
    const check = checkNarrower(parsed(child), parsed(parent));
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).toMatch(/^[a-z`]/);
  });

  it.each<[string, string]>([
    ['k=a', 'k=a,b'],
    ['k=a,b', 'k=*'],
    ['k=*', 'k=*'],
    ['k<=100', 'k<=1000'],
    ['k>=5', 'k>=0'],
    ['k=/orders/4471', 'k=/orders/**'],
    ['k=/orders/4471/**', 'k=/orders/**'],
    ['k=/orders', 'k=/orders/**'],
    ['k=/orders/**', 'k=/orders/**'],
    ['k=/anything/at/all', 'k=/**'],
    ['k=/', 'k=/**'],
    ['k=/orders', 'k=/orders'],
    ['k=@100..200', 'k=@100..200'],
    ['k=@150..160', 'k=@100..200'],
  ])('accepts `%s` under `%s`', (child, parent) => {
    expect(checkNarrower(parsed(child), parsed(parent))).toEqual({ ok: true });
  });

  it('refuses malformed constraints on either side', () => {
    const bad = { kind: 'set', values: [] } as unknown as Constraint;
    expect(checkNarrower(bad, parsed('k=*')).ok).toBe(false);
    expect(checkNarrower(parsed('k=a'), bad).ok).toBe(false);
    expect(checkNarrower(bad, bad).ok).toBe(false);
  });
});

describe('checkRequest', () => {
  const now = 1_767_225_600;
  const request = (
    args: Record<string, string>,
    action = 'read_orders',
    nowSeconds = now,
  ): AuthorizationRequest => ({
    action,
    args: new Map(Object.entries(args)),
    nowSeconds,
  });

  it('reads the action for `tools`, arguments for other names, and now for windows', () => {
    const tools = parsed('tools=read_orders');
    expect(checkRequest('tools', tools, request({}))).toEqual({ ok: true });
    expect(checkRequest('tools', tools, request({ tools: 'read_orders' }, 'issue_refund')).ok).toBe(
      false,
    );
    expect(checkRequest('tools', tools, request({}, '')).ok).toBe(false);
    expect(checkRequest('x', parsed('x=a,b'), request({ x: '' })).ok).toBe(false);
    expect(checkRequest('refund', parsed('refund<=1000'), request({ refund: '1000' })).ok).toBe(
      true,
    );
    expect(checkRequest('refund', parsed('refund<=1000'), request({ refund: '1001' })).ok).toBe(
      false,
    );
    const hours = parsed(`hours=@${now}..${now + 3600}`);
    expect(checkRequest('hours', hours, request({}, 'x', now)).ok).toBe(true);
    expect(checkRequest('hours', hours, request({}, 'x', now + 3599)).ok).toBe(true);
    expect(checkRequest('hours', hours, request({}, 'x', now + 3600)).ok).toBe(false);
    expect(checkRequest('hours', hours, request({}, 'x', now - 1)).ok).toBe(false);
    expect(checkRequest('hours', hours, request({}, 'x', Number.NaN)).ok).toBe(false);
  });

  it('denies a missing argument, even under `*`', () => {
    const check = checkRequest('tenant', parsed('tenant=*'), request({ other: 'x' }));
    expect(check).toEqual({ ok: false, reason: 'argument `tenant` is missing' });
    expect(
      checkRequest('tenant', parsed('tenant=*'), request({ tenant: 'anything at all' })).ok,
    ).toBe(true);
  });

  it('accepts only strict safe integers under max and min', () => {
    const max = parsed('n<=100');
    const min = parsed('n>=-100');
    for (const good of ['0', '100', '-5', '-100', '7']) {
      expect(checkRequest('n', max, request({ n: good })).ok, good).toBe(true);
      expect(checkRequest('n', min, request({ n: good })).ok, good).toBe(true);
    }
    for (const bad of [
      '',
      '-',
      '-0',
      '01',
      '+5',
      '1e2',
      '0x10',
      '1.0',
      '1.5',
      ' 5',
      '5 ',
      'NaN',
      'Infinity',
      '٥',
      '9007199254740992',
      '-9007199254740992',
      '99999999999999999999',
    ])
      for (const c of [max, min])
        expect(checkRequest('n', c, request({ n: bad })).ok, bad).toBe(false);
    expect(checkRequest('n', parsed(`n<=${MAX}`), request({ n: String(MAX) })).ok).toBe(true);
  });

  it('reads integers exactly like the reference rule (regex + safe range)', () => {
    const reference = (v: string): boolean =>
      /^-?(?:0|[1-9][0-9]*)$/.test(v) && v !== '-0' && Number.isSafeInteger(Number(v));
    const digits = fc.array(fc.constantFrom(...'-0123456789+e. x'.split('')), { maxLength: 18 });
    const numeric = fc.oneof(
      digits.map((a) => a.join('')),
      fc.maxSafeInteger().map(String),
      fc.bigInt({ min: -(2n ** 60n), max: 2n ** 60n }).map(String),
      fc.string(),
    );
    fc.assert(
      fc.property(numeric, (v) => {
        const any = reference(v);
        expect(accepts('n', parsed(`n<=${MAX}`), v), v).toBe(any);
        expect(accepts('n', parsed(`n>=-${MAX}`), v), v).toBe(any);
        if (any) expect(accepts('n', parsed(`n<=${v}`), v)).toBe(true);
        else expectCode(() => parseConstraint(`n<=${v}`), SYNTAX);
      }),
      { numRuns: 3000 },
    );
  });

  it('matches paths by segment, exact or subtree', () => {
    const sub = parsed('file=/orders/**');
    const exact = parsed('file=/orders/4471');
    const ok = (c: Constraint, value: string) =>
      checkRequest('file', c, request({ file: value })).ok;
    for (const value of ['/orders', '/orders/4471', '/orders/4471/lines/2'])
      expect(ok(sub, value), value).toBe(true);
    for (const value of [
      '/ordersX',
      '/ordersX/1',
      '/',
      '/other',
      '/orders/',
      '/orders//x',
      '/orders/../admin',
      '/orders/./x',
      '/orders/%2e%2e',
      'orders/1',
      '/orders/**',
      '/orders/*',
    ])
      expect(ok(sub, value), value).toBe(false);
    expect(ok(exact, '/orders/4471')).toBe(true);
    for (const value of ['/orders/4471/x', '/orders', '/orders/44711', '/Orders/4471'])
      expect(ok(exact, value), value).toBe(false);
    expect(ok(parsed('file=/**'), '/')).toBe(true);
    expect(ok(parsed('file=/**'), '/a/b')).toBe(true);
    expect(ok(parsed('file=/**'), 'a/b')).toBe(false);
    expect(ok(parsed('file=/'), '/')).toBe(true);
    expect(ok(parsed('file=/'), '/a')).toBe(false);
    expect(ok(parsed('file=/**'), '/a'.repeat(1024))).toBe(true);
    expect(ok(parsed('file=/**'), '/a'.repeat(1025))).toBe(false);
  });

  it('gives the same answers for a caller’s plain literals as for parsed constraints', () => {
    fc.assert(
      fc.property(nameArb, constraintArb, (name, literal) => {
        const frozen = decodeConstraintValue(encodeConstraintValue(literal));
        for (const value of candidateValues([literal]))
          expect(accepts(name, literal, value)).toBe(accepts(name, frozen, value));
        for (const t of candidateTimes([literal]))
          expect(accepts(name, literal, 'v', t)).toBe(accepts(name, frozen, 'v', t));
      }),
      { numRuns: 300 },
    );
  });

  it('denies under malformed constraints instead of throwing', () => {
    const bad = [
      { kind: 'set', values: [] },
      { kind: 'set', values: [1] },
      { kind: 'max', limit: Number.NaN },
      { kind: 'path', segments: ['..'], subtree: true },
      { kind: 'window', notBefore: 9, notAfter: 1 },
      { kind: 'regex', pattern: '.*' },
    ] as unknown as Constraint[];
    for (const c of bad) expect(checkRequest('x', c, request({ x: '1' })).ok).toBe(false);
  });

  it('re-validates a caller’s mutable literal on every call', () => {
    const values = ['a'];
    const literal: Constraint = { kind: 'set', values };
    expect(checkRequest('x', literal, request({ x: 'b' })).ok).toBe(false);
    values.push('b');
    expect(checkRequest('x', literal, request({ x: 'b' })).ok).toBe(true);
  });

  it('returns constraints frozen and one shared success value (nothing allocated on the hot path)', () => {
    const tools = parsed(`tools=${Array.from({ length: 10 }, (_, i) => `tool_${i}`).join(',')}`);
    expect(Object.isFrozen(tools)).toBe(true);
    if (tools.kind === 'set') expect(Object.isFrozen(tools.values)).toBe(true);
    const first = checkRequest('tools', tools, request({}, 'tool_7'));
    expect(first.ok).toBe(true);
    expect(checkRequest('tools', tools, request({}, 'tool_3'))).toBe(first);
  });

  it('keeps reasons lowercase, one line, and clips long or odd request values', () => {
    const check = checkRequest('x', parsed('x=a'), request({ x: `${'z'.repeat(100)}\`\n` }));
    expect(check.ok).toBe(false);
    if (!check.ok) {
      expect(check.reason).not.toMatch(/\n/);
      expect(check.reason.length).toBeLessThan(200);
      expect(check.reason).toMatch(/^[a-z`]/);
    }
  });
});

describe('constraint maps', () => {
  const map = (...cli: string[]): Constraints => new Map(cli.map(parseConstraint));

  it('lets a child omit (inherit) or add names, and narrow the ones it carries', () => {
    const parent = map('tools=issue_refund,read_orders', 'refund<=1000');
    expect(checkConstraintsNarrower(map('tools=read_orders', 'refund<=100'), parent)).toEqual({
      ok: true,
    });
    expect(checkConstraintsNarrower(map(), parent)).toEqual({ ok: true });
    expect(checkConstraintsNarrower(map('refund<=100', 'file=/orders/**'), parent)).toEqual({
      ok: true,
    });
  });

  it('returns the first name that widens', () => {
    const parent = map('tools=issue_refund,read_orders', 'refund<=1000', 'file=/orders/**');
    const check = checkConstraintsNarrower(
      map('tools=read_orders', 'refund<=5000', 'file=/'),
      parent,
    );
    expect(check.ok).toBe(false);
    if (!check.ok) {
      expect(check.name).toBe('refund');
      expect(check.reason).toContain('<=5000');
    }
  });

  it('round-trips through attributes', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(nameArb, constraintArb), { selector: ([n]) => n, maxLength: 5 }),
        (entries) => {
          const constraints = new Map(entries);
          expect(constraintsFromAttributes(constraintsToAttributes(constraints))).toEqual(
            constraints,
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reads a plain Ockam credential and fails closed on an unknown kind, naming the attribute', () => {
    const attributes = new Map([
      ['ockam-role', utf8.encode('enroller')],
      ['trust_context_id', utf8.encode('0b6b0c4a-1c3e-4e55-9f7e-6b8a1e9d4c21')],
      ['tools', utf8.encode('=read_orders')],
    ]);
    expect(constraintsFromAttributes(attributes).get('ockam-role')).toEqual({
      kind: 'set',
      values: ['enroller'],
    });
    attributes.set('amount', utf8.encode('~5'));
    expectCode(() => constraintsFromAttributes(attributes), UNKNOWN_KIND);
    expect(() => constraintsFromAttributes(attributes)).toThrow(/attribute `amount`/);
    expectCode(() => constraintsFromAttributes(new Map([['Role', utf8.encode('x')]])), SYNTAX);
    expectCode(() => constraintsToAttributes(new Map([['Role', parsed('k=x')]])), SYNTAX);
  });
});

describe('tool-scoped constraints', () => {
  const req = (action: string, args: Record<string, string>, nowSeconds = 0) => ({
    action,
    args: new Map(Object.entries(args)),
    nowSeconds,
  });
  it('apply only to calls of the tool named before `#`', () => {
    const [name, constraint] = parseConstraint('issue_refund#amount<=100');
    expect(name).toBe('issue_refund#amount');
    expect(checkRequest(name, constraint, req('read_orders', {})).ok).toBe(true);
    expect(checkRequest(name, constraint, req('issue_refund', { amount: '100' })).ok).toBe(true);
    expect(checkRequest(name, constraint, req('issue_refund', { amount: '101' })).ok).toBe(false);
    // The tool's own argument is required: missing denies.
    expect(checkRequest(name, constraint, req('issue_refund', {})).ok).toBe(false);
    // The full name is not read as an argument.
    expect(
      checkRequest(name, constraint, req('issue_refund', { 'issue_refund#amount': '1' })).ok,
    ).toBe(false);
    // A scoped window bounds only its tool's calls.
    const [wName, window] = parseConstraint('issue_refund#hours=@10..20');
    expect(checkRequest(wName, window, req('read_orders', {}, 30)).ok).toBe(true);
    expect(checkRequest(wName, window, req('issue_refund', {}, 30)).ok).toBe(false);
    expect(checkRequest(wName, window, req('issue_refund', {}, 15)).ok).toBe(true);
  });

  // Issue 8, vulnerability 3: `orders.refund.amount<=100` split at the first dot, scoped itself to
  // a tool `orders` and so never applied to `orders.refund`.
  it('reads a dotted name as one argument name on every call: the old `TOOL.ARG` form fails closed', () => {
    const [name, constraint] = parseConstraint('orders.refund.amount<=100');
    expect(checkRequest(name, constraint, req('orders.refund', { amount: '1000000' })).ok).toBe(
      false,
    );
    expect(checkRequest(name, constraint, req('orders', { 'refund.amount': '1000000' })).ok).toBe(
      false,
    );
    expect(checkRequest(name, constraint, req('other', {})).ok).toBe(false);
    expect(checkRequest(name, constraint, req('other', { 'orders.refund.amount': '100' })).ok).toBe(
      true,
    );
  });

  it('parses tool names with dots, slashes and colons; a value starting with `/` stays a path', () => {
    expect(parseConstraint('github/create_issue#repo=mandate')[0]).toBe('github/create_issue#repo');
    expect(parseConstraint('Orders.Refund:v2#amount<=5')[0]).toBe('Orders.Refund:v2#amount');
    expect(parsed('tools=github/create_issue,orders.refund')).toEqual({
      kind: 'set',
      values: ['github/create_issue', 'orders.refund'],
    });
    expect(parsed('tools=/github/create_issue').kind).toBe('path');
    for (const bad of [
      '#amount<=1',
      'refund#<=1',
      'a#b#c<=1',
      '/refund#amount<=1',
      'refund#Amount<=1',
      're fund#amount<=1',
      'refund,x#amount<=1',
      `${'t'.repeat(129)}#amount<=1`,
      'refund#a*<=1',
    ])
      expectCode(() => parseConstraint(bad), SYNTAX);
    expectCode(() => constraintsFromAttributes(new Map([['x#', utf8.encode('=1')]])), SYNTAX);
  });

  it('never skips a scoped constraint, and never lets one touch another tool (property)', () => {
    fc.assert(
      fc.property(
        toolNameArb,
        toolNameArb,
        argumentNameArb,
        constraintArb,
        fc.oneof(setValueArb, fc.integer({ min: -30, max: 30 }).map(String), fc.constant('/a/b')),
        fc.nat({ max: 50 }),
        (tool, other, argument, constraint, value, now) => {
          const [name, parsedConstraint] = parseConstraint(
            formatConstraint(`${tool}#${argument}`, constraint),
          );
          expect(name).toBe(`${tool}#${argument}`);
          // On its tool: exactly what the unscoped constraint on the argument answers.
          const own = checkRequest(name, parsedConstraint, req(tool, { [argument]: value }, now));
          const plain = checkRequest(
            argument,
            parsedConstraint,
            req(tool, { [argument]: value }, now),
          );
          expect(own.ok).toBe(plain.ok);
          if (parsedConstraint.kind !== 'window')
            expect(checkRequest(name, parsedConstraint, req(tool, {}, now)).ok).toBe(false);
          // On any other tool: no effect, whatever the arguments.
          if (other !== tool)
            expect(
              checkRequest(name, parsedConstraint, req(other, { [argument]: value }, now)).ok,
            ).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('must name a tool the `tools` constraint in force grants', () => {
    const map = (...cli: string[]): Constraints => new Map(cli.map(parseConstraint));
    const check = (declared: Constraints, inherited?: string): string =>
      codeOf(() => {
        assertScopedToolsGranted(declared, inherited === undefined ? undefined : parsed(inherited));
      });
    const NOT_GRANTED = 'ERR_CONSTRAINT_TOOL_NOT_GRANTED';
    expect(check(map('tools=orders.refund,github/create_issue', 'orders.refund#amount<=1'))).toBe(
      'accepted',
    );
    expect(check(map('tools=orders', 'orders.refund#amount<=1'))).toBe(NOT_GRANTED);
    expect(check(map('orders.refund#amount<=1'))).toBe(NOT_GRANTED);
    // Inherited when the level carries no `tools` of its own; its own wins when it does.
    expect(check(map('orders.refund#amount<=1'), 'tools=orders.refund')).toBe('accepted');
    expect(check(map('orders.refund#amount<=1'), 'tools=*')).toBe('accepted');
    expect(check(map('tools=x', 'orders.refund#amount<=1'), 'tools=orders.refund,x')).toBe(
      NOT_GRANTED,
    );
    // Unscoped names need no grant.
    expect(check(map('amount<=1', 'relay=bob'))).toBe('accepted');
  });
});

describe('infrastructure attributes', () => {
  // Issue 8, vulnerability 4: `relay=bob` allowed any tool whose request carried `relay=bob`.
  it('are never read from, nor satisfied by, tool-call arguments', () => {
    for (const name of INFRASTRUCTURE_ATTRIBUTES) {
      const constraint = parsed(`${name}=bob`);
      expect(checkRequest(name, constraint, req0({ [name]: 'mallory' })).ok).toBe(true);
      expect(checkRequest(name, constraint, req0({})).ok).toBe(true);
    }
    expect(INFRASTRUCTURE_ATTRIBUTES).toContain('relay');
    expect(INFRASTRUCTURE_ATTRIBUTES).not.toContain('tools');
  });
  const req0 = (args: Record<string, string>): AuthorizationRequest => ({
    action: 'any',
    args: new Map(Object.entries(args)),
    nowSeconds: 0,
  });
});

describe('found by the outside attack on the issue 8 fixes', () => {
  const request = (action: string, args: Record<string, string> = {}): AuthorizationRequest => ({
    action,
    args: new Map(Object.entries(args)),
    nowSeconds: 0,
  });

  it('`tools=*` admits only actions in the tool-name grammar, so no spelling skips a scoped constraint', () => {
    const any = parsed('tools=*');
    expect(checkRequest('tools', any, request('orders.refund')).ok).toBe(true);
    expect(checkRequest('tools', any, request('github/create_issue')).ok).toBe(true);
    for (const action of [
      '',
      'orders.refund ',
      ' orders.refund',
      'orders.refund\u200b',
      'orders\u2024refund',
      'orders.refund#x',
      '\x1b[31mALLOW',
      '/orders.refund',
      '@orders',
      'a'.repeat(129),
    ])
      expect(checkRequest('tools', any, request(action)).ok, JSON.stringify(action)).toBe(false);
  });

  it('a link may not add an infrastructure capability its parent lacks', () => {
    const parent = new Map([['tools', parsed('tools=echo')]]);
    for (const name of INFRASTRUCTURE_ATTRIBUTES) {
      const child = new Map([[name, parsed(`${name}=*`)]]);
      expect(checkConstraintsNarrower(child, parent)).toMatchObject({ ok: false, name });
      // Where the parent holds it, the child narrows it like every other name.
      const holding = new Map([...parent, [name, parsed(`${name}=*`)]]);
      expect(checkConstraintsNarrower(new Map([[name, parsed(`${name}=bob`)]]), holding)).toEqual({
        ok: true,
      });
    }
  });
});
