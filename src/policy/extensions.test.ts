import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cedarOutcome, mandateOutcome } from '../../test/helpers/policy-oracle.js';
import { parseDecimal, parseIp } from './extensions.js';
import { cedarDecimal, cedarIp, compilePolicySet, EntityStore, type CedarValue } from './index.js';

/** One policy per text: Cedar and Mandate must accept the same texts as the same values. */
function agreeOnTexts(kind: 'ip' | 'decimal', texts: readonly string[]): void {
  const policies = texts
    .map((t) => {
      const ours = kind === 'ip' ? parseIp(t) : parseDecimal(t);
      // For a text we accept, its canonical form must denote the same value in Cedar.
      const canonical = typeof ours === 'string' ? t : ours.text;
      return `permit(principal, action, resource) when { ${kind}("${t}") == ${kind}("${canonical}") };`;
    })
    .join('\n');
  const c = { policies };
  const cedar = cedarOutcome(c);
  expect(mandateOutcome(c).errors).toEqual(cedar!.errors);
  expect(cedar!.policies.length + cedar!.errors.length).toBe(texts.length);
}

const octet = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map(String),
  fc.integer({ min: 0, max: 300 }).map(String),
  fc.constantFrom('00', '01', '007', '1a', ''),
);
const prefix = fc.oneof(
  fc.constant(''),
  fc.integer({ min: 0, max: 130 }).map((n) => `/${n}`),
  fc.constantFrom('/', '/00', '/08', '/+1', '/-1', '/1/2', '/0032'),
);
const group = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16)),
  fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16).toUpperCase().padStart(4, '0')),
  fc.constantFrom('00000', 'g', '', '12345'),
);
const ipv4 = fc
  .tuple(fc.array(octet, { minLength: 3, maxLength: 5 }), prefix)
  .map(([octets, p]) => `${octets.join('.')}${p}`);
const ipv6Generated = fc
  .tuple(fc.array(group, { minLength: 1, maxLength: 9 }), fc.nat(10), fc.nat(3), prefix)
  .map(([groups, at, colons, p]) => {
    const i = Math.min(at, groups.length);
    const joint = [':', ':', '::', ':::'][colons]!;
    return `${groups.slice(0, i).join(':')}${i > 0 && i < groups.length ? joint : ''}${i === groups.length ? '' : groups.slice(i).join(':')}${colons === 2 && i === groups.length ? '::' : ''}${p}`;
  });
const ipv6 = fc.oneof(
  ipv6Generated,
  fc.constantFrom(
    '1:2:3:4::5:6:7:8',
    '1:2:3:4:5:6:7::',
    '::1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8',
    '::',
    ':1::',
    '1:::2',
    '1::2::3',
    '::ffff:1.2.3.4',
    'fe80::1%eth0',
    'FE80::1/64',
  ),
);
const decimalText = fc.oneof(
  fc
    .tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 16n }), fc.nat(99999), fc.nat(5))
    .map(([neg, whole, frac, digits]) =>
      digits === 0
        ? `${neg ? '-' : ''}${whole}`
        : `${neg ? '-' : ''}${whole}.${String(frac).padStart(5, '0').slice(0, digits)}`,
    ),
  fc.constantFrom(
    '922337203685477.5807',
    '922337203685477.5808',
    '-922337203685477.5808',
    '-922337203685477.5809',
    '+1.0',
    '.5',
    '1.',
    '--1.0',
    '0001.0000',
    '-0.0',
  ),
);

describe('decimal and ipaddr parse exactly as Cedar parses them', () => {
  it('IPv4 texts', () => {
    fc.assert(
      fc.property(fc.array(ipv4, { minLength: 20, maxLength: 20 }), (t) => {
        agreeOnTexts('ip', t);
      }),
      { numRuns: 25 },
    );
  });

  it('IPv6 texts', () => {
    fc.assert(
      fc.property(fc.array(ipv6, { minLength: 20, maxLength: 20 }), (t) => {
        agreeOnTexts('ip', t);
      }),
      { numRuns: 25 },
    );
  });

  it('decimal texts', () => {
    fc.assert(
      fc.property(fc.array(decimalText, { minLength: 20, maxLength: 20 }), (t) => {
        agreeOnTexts('decimal', t);
      }),
      { numRuns: 25 },
    );
  });
});

describe('decimal and ipaddr operations agree with Cedar', () => {
  const ips = [
    '10.0.0.1',
    '10.0.0.1/24',
    '10.0.0.0/24',
    '10.0.0.0/25',
    '127.0.0.1/8',
    '127.0.0.1/7',
    '0.0.0.0/0',
    '224.1.2.3',
    '::1',
    '::1/127',
    '::/0',
    'ff02::1',
    'fe80::/10',
    '::',
  ];
  const decimals = [
    '1.0',
    '1.5',
    '-1.5',
    '0.0001',
    '-0.0',
    '922337203685477.5807',
    '-922337203685477.5808',
  ];
  it('isInRange, isLoopback, isMulticast, isIpv4, isIpv6, ==', () => {
    const policies: string[] = [];
    for (const a of ips) {
      for (const m of ['isIpv4', 'isIpv6', 'isLoopback', 'isMulticast'])
        policies.push(`permit(principal, action, resource) when { ip("${a}").${m}() };`);
      for (const b of ips)
        policies.push(
          `permit(principal, action, resource) when { ip("${a}").isInRange(ip("${b}")) };`,
          `permit(principal, action, resource) when { ip("${a}") == ip("${b}") };`,
        );
    }
    const c = { policies: policies.join('\n') };
    expect(mandateOutcome(c)).toEqual(cedarOutcome(c));
  });

  it('lessThan, lessThanOrEqual, greaterThan, greaterThanOrEqual, ==', () => {
    const policies: string[] = [];
    for (const a of decimals)
      for (const b of decimals)
        for (const m of ['lessThan', 'lessThanOrEqual', 'greaterThan', 'greaterThanOrEqual'])
          policies.push(
            `permit(principal, action, resource) when { decimal("${a}").${m}(decimal("${b}")) };`,
            `permit(principal, action, resource) when { decimal("${a}") == decimal("${b}") };`,
          );
    const c = { policies: policies.join('\n') };
    expect(mandateOutcome(c)).toEqual(cedarOutcome(c));
  });

  it('type errors, arity errors, and extension values in entities and context', () => {
    const entities = [
      {
        uid: { type: 'Agent', id: 'a' },
        attrs: {
          ip: { __extn: { fn: 'ip', arg: '10.1.2.3' } },
          limit: { __extn: { fn: 'decimal', args: ['2.50'] } },
        },
        parents: [],
      },
    ];
    const request = { context: { from: { __extn: { fn: 'ip', arg: '10.9.9.9' } }, s: 'x', n: 1 } };
    for (const condition of [
      'principal.ip.isInRange(ip("10.0.0.0/8"))',
      'context.from.isInRange(ip("10.0.0.0/8")) && principal.ip != context.from',
      'principal.limit.greaterThan(decimal("2.4999"))',
      'principal.limit == decimal("2.5")',
      'decimal(context.s) == decimal("1.0")',
      'decimal(context.n) == decimal("1.0")',
      'ip(context.s).isIpv4()',
      'principal.limit.isIpv4()',
      'principal.ip.lessThan(decimal("1.0"))',
      'context.n.isLoopback()',
      'principal.limit < 3',
      'principal.ip has x',
      'principal.ip like "*"',
      'principal.ip in principal',
      'ip("1.2.3.4").isIpv4(1)',
      'decimal("1.0", "2.0") == decimal("1.0")',
      '[principal.limit, principal.ip].contains(ip("10.1.2.3/32"))',
      '{a: principal.ip} == {a: ip("10.1.2.3")}',
      'if principal.limit == decimal("2.5") then true else 1',
    ]) {
      const c = {
        policies: `permit(principal, action, resource) when { ${condition} };`,
        entities,
        request: { principal: { type: 'Agent', id: 'a' }, ...request },
      };
      expect(mandateOutcome(c), condition).toEqual(cedarOutcome(c));
    }
  });
});

describe('cedarDecimal and cedarIp build the values decimal() and ip() build', () => {
  const set = compilePolicySet({
    policies: `permit(principal, action, resource) when { context.d == decimal("12.5") && context.d.lessThan(decimal("12.5001")) };
permit(principal, action, resource) when { context.i.isInRange(ip("10.0.0.0/8")) && context.i == ip("10.1.2.3") };`,
  });
  const decide = (d: unknown, i: unknown) =>
    set.evaluate(
      {
        principal: { type: 'A', id: 'a' },
        action: { type: 'Action', id: 'x' },
        resource: { type: 'R', id: 'r' },
        context: new Map([
          ['d', d as CedarValue],
          ['i', i as CedarValue],
        ]),
      },
      EntityStore.fromEntities([]),
    );

  it('from text and from numbers a decimal holds exactly', () => {
    for (const d of [cedarDecimal('12.5'), cedarDecimal('12.5000'), cedarDecimal(12.5)])
      expect(decide(d, cedarIp('10.1.2.3'))).toEqual({
        decision: 'allow',
        policies: ['policy0', 'policy1'],
        errors: [],
      });
    expect(cedarDecimal(4).text).toBe(cedarDecimal('4.0').text);
    expect(cedarDecimal(-0).text).toBe(cedarDecimal('0.0').text);
  });

  it('refuses what a decimal cannot hold exactly, and what Cedar refuses', () => {
    for (const bad of [12.34567, 0.1 + 0.2, 1e21, 1e-7, Number.NaN, Infinity, '1', '1.23456', 'x'])
      expect(() => cedarDecimal(bad), String(bad)).toThrow(
        expect.objectContaining({ code: 'ERR_POLICY_INPUT_INVALID' }),
      );
    expect(() => cedarIp('01.2.3.4')).toThrow(
      expect.objectContaining({ code: 'ERR_POLICY_INPUT_INVALID' }),
    );
  });

  it('look-alike objects are not extension values (never equal; a type error: deny)', () => {
    const decision = decide({ extension: 'decimal', text: '12.5000' }, cedarIp('10.1.2.3'));
    expect(decision).toEqual({ decision: 'allow', policies: ['policy1'], errors: [] });
    const strict = compilePolicySet({
      policies: 'permit(principal, action, resource) when { context.d.lessThan(decimal("13.0")) };',
    });
    const denied = strict.evaluate(
      {
        principal: { type: 'A', id: 'a' },
        action: { type: 'Action', id: 'x' },
        resource: { type: 'R', id: 'r' },
        context: new Map([['d', { extension: 'decimal', text: '12.5000' }]]),
      },
      EntityStore.fromEntities([]),
    );
    expect(denied.decision).toBe('deny');
    expect(denied.errors).toEqual([
      { policy: 'policy0', message: 'type error: expected decimal, got unknown value' },
    ]);
  });
});
