import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectCode } from '../../test/helpers/errors.js';
import { parseDuration } from './parse.js';

describe('parseDuration', () => {
  it.each([
    ['90', 90],
    ['90s', 90],
    ['15m', 900],
    ['2h', 7200],
    ['7d', 604_800],
    ['1h30m', 5400],
    ['2d12h', 216_000],
    ['1m30s', 90],
    ['1d1h1m1s', 90_061],
    [' 10m ', 600],
  ])('%s → %d s', (text, seconds) => {
    expect(parseDuration(text, '--ttl')).toBe(seconds);
  });

  it.each([
    '',
    '0',
    '0s',
    '0h0m',
    'h',
    '1x',
    '30m1h',
    '1h1h',
    '-5m',
    '1.5h',
    '1 h',
    'd',
    '1e3',
    '99999999999999999d',
  ])('refuses `%s`', (text) => {
    expectCode(() => parseDuration(text, '--ttl'), 'ERR_ARGUMENT_INVALID');
  });

  it('adds its parts (property)', () => {
    fc.assert(
      fc.property(fc.nat(400), fc.nat(30), fc.nat(100), fc.nat(100), (d, h, m, s) => {
        fc.pre(d + h + m + s > 0);
        expect(parseDuration(`${d}d${h}h${m}m${s}s`, '--ttl')).toBe(
          d * 86_400 + h * 3600 + m * 60 + s,
        );
      }),
    );
  });
});
