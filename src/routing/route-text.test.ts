import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { expectCode } from '../../test/helpers/errors.js';
import { TransportType } from './address.js';
import { formatRoute, parseRoute } from './route-text.js';

describe('route text', () => {
  it('parses the forms of the spec', () => {
    expect(parseRoute('/ip4/127.0.0.1/tcp/4000/service/echo')).toEqual([
      { type: TransportType.tcp, value: '127.0.0.1:4000' },
      { type: TransportType.local, value: 'echo' },
    ]);
    expect(parseRoute('/ip4/127.0.0.1/tcp/4100/relay/agent-7/service/echo')).toEqual([
      { type: TransportType.tcp, value: '127.0.0.1:4100' },
      { type: TransportType.local, value: 'forward_to_agent-7' },
      { type: TransportType.local, value: 'echo' },
    ]);
    expect(parseRoute('/dnsaddr/relay.example.com/tcp/443/service/api')[0]).toEqual({
      type: TransportType.tcp,
      value: 'relay.example.com:443',
    });
    expect(parseRoute('/memory/b/service/fwd/memory/c')).toEqual([
      { type: TransportType.memory, value: 'b' },
      { type: TransportType.local, value: 'fwd' },
      { type: TransportType.memory, value: 'c' },
    ]);
  });

  it('round trips canonical text', () => {
    for (const text of [
      '/ip4/10.0.0.255/tcp/65535/service/a.b_c~d-e',
      '/dnsaddr/localhost/tcp/1/relay/x/service/y',
      '/service/echo',
      '/memory/n1',
    ]) {
      expect(formatRoute(parseRoute(text))).toBe(text);
    }
    expect(formatRoute([{ type: 0, value: 'forward_to_n' }])).toBe('/relay/n');
  });

  it('round trips generated routes', () => {
    const name = fc.stringMatching(/^[A-Za-z0-9._~-]{1,20}$/);
    const segment = fc.oneof(
      name.map((n) => `/service/${n}`),
      name.map((n) => `/relay/${n}`),
      name.map((n) => `/memory/${n}`),
      fc
        .tuple(fc.ipV4(), fc.integer({ min: 1, max: 65535 }))
        .map(([ip, port]) => `/ip4/${ip}/tcp/${port}`),
    );
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 16 }), (segments) => {
        const text = segments.join('');
        const route = parseRoute(text);
        expect(parseRoute(formatRoute(route))).toEqual(route);
      }),
    );
  });

  it('rejects everything else with ERR_ROUTE_SYNTAX', () => {
    for (const text of [
      '',
      'ip4/127.0.0.1/tcp/1',
      '/',
      '/service/echo/',
      '/service/',
      '/service/a b',
      '/ip4/127.0.0.1',
      '/ip4/127.0.0.1/udp/4000',
      '/ip4/127.0.0.01/tcp/4000',
      '/ip4/256.0.0.1/tcp/4000',
      '/ip4/1.2.3/tcp/4000',
      '/ip4/127.0.0.1/tcp/0',
      '/ip4/127.0.0.1/tcp/65536',
      '/ip4/127.0.0.1/tcp/080',
      '/dnsaddr/1.2.3.4/tcp/80',
      '/dnsaddr/-bad.example/tcp/80',
      '/ip6/::1/tcp/80',
      '/secure/api',
      '/relay/' + 'x'.repeat(120),
      '/service/a'.repeat(17),
      '/service/' + 'x'.repeat(129),
      '/service/a'.repeat(500),
    ]) {
      expectCode(() => parseRoute(text), 'ERR_ROUTE_SYNTAX');
    }
  });

  it('refuses to format addresses without a text form', () => {
    expectCode(() => formatRoute([]), 'ERR_ROUTE_SYNTAX');
    expectCode(() => formatRoute([{ type: 0, value: 'tcp:1' }]), 'ERR_ROUTE_SYNTAX');
    expectCode(() => formatRoute([{ type: 1, value: 'nohost' }]), 'ERR_ROUTE_SYNTAX');
    expectCode(() => formatRoute([{ type: 7, value: 'x' }]), 'ERR_ROUTE_SYNTAX');
  });

  it('throws only MandateErrors on random text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        try {
          parseRoute(text);
        } catch (error) {
          expect(isMandateError(error, 'ERR_ROUTE_SYNTAX')).toBe(true);
        }
      }),
    );
  });
});
