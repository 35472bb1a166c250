import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ManualClock } from '../core/index.js';
import {
  bindingMatches,
  parseInjectionBinding,
  ProxyLeaseProvider,
  rewriteRequest,
  SCRUB_MARKER,
  Scrubber,
  secretForms,
  type InjectionBindingConfig,
  type ProxyRequest,
} from './injection.js';
import { LeaseState, type Lease, type LeaseContext } from './types.js';
import { codeOf } from '../../test/helpers/errors.js';
import { gateWorld, GATE_NOW } from '../../test/helpers/gate-world.js';
import { MapSecretReader } from '../../test/helpers/egress-world.js';

const SECRET = 'sk_live_4242424242abcdef';
const enc = (text: string) => new TextEncoder().encode(text);
const dec = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');

const HEADER: InjectionBindingConfig = {
  secret: 'payments',
  host: 'API.Example.com',
  header: { name: 'Authorization', format: 'Bearer {secret}' },
};
const PLACEHOLDER: InjectionBindingConfig = {
  secret: 'models',
  host: 'models.example.com:8443',
  scheme: 'https',
  placeholder: 'mandate-placeholder-models',
  placeholderInBody: true,
};

function request(overrides: Partial<ProxyRequest> = {}): ProxyRequest {
  return {
    method: 'POST',
    authority: 'api.example.com',
    path: '/v1/charges?x=1',
    headers: [
      ['content-type', 'application/json'],
      ['authorization', 'Bearer forged'],
      ['Connection', 'keep-alive, x-drop'],
      ['x-drop', 'hop'],
      ['accept-encoding', 'gzip'],
    ],
    body: enc('{"amount":5}'),
    ...overrides,
  };
}

describe('parseInjectionBinding', () => {
  it('canonicalises the host for the scheme', () => {
    const b = parseInjectionBinding(HEADER);
    expect(b).toMatchObject({ host: 'api.example.com', port: 443, scheme: 'https' });
    expect(b.header).toEqual({ name: 'authorization', format: 'Bearer {secret}' });
    expect(parseInjectionBinding({ ...HEADER, host: 'a.example:443' }).host).toBe('a.example');
    expect(
      parseInjectionBinding({ ...HEADER, host: '127.0.0.1:8080', scheme: 'http' }),
    ).toMatchObject({ host: '127.0.0.1:8080', hostname: '127.0.0.1', port: 8080 });
    expect(parseInjectionBinding({ ...HEADER, host: '[::1]:9000' }).hostname).toBe('[::1]');
    expect(parseInjectionBinding(PLACEHOLDER).placeholderInBody).toBe(true);
  });

  it.each([
    ['not an object', 'x'],
    ['no secret', { ...HEADER, secret: '' }],
    ['a path in the host', { ...HEADER, host: 'a.example/x' }],
    ['userinfo in the host', { ...HEADER, host: 'u@a.example' }],
    ['a wildcard host', { ...HEADER, host: '*.example.com' }],
    ['port 0', { ...HEADER, host: 'a.example:0' }],
    ['port 70000', { ...HEADER, host: 'a.example:70000' }],
    ['a bad scheme', { ...HEADER, scheme: 'ftp' }],
    ['both header and placeholder', { ...HEADER, placeholder: 'mandate-xyz-123' }],
    ['neither', { secret: 's', host: 'a.example' }],
    ['format without {secret}', { ...HEADER, header: { name: 'x-key', format: 'Bearer' } }],
    ['format with it twice', { ...HEADER, header: { name: 'x', format: '{secret}{secret}' } }],
    ['a bad header name', { ...HEADER, header: { name: 'x key', format: '{secret}' } }],
    ['a hop-by-hop header', { ...HEADER, header: { name: 'Host', format: '{secret}' } }],
    ['a short placeholder', { ...PLACEHOLDER, placeholder: 'short' }],
    ['a placeholder with spaces', { ...PLACEHOLDER, placeholder: 'has a space in it' }],
    ['body without placeholder', { ...HEADER, placeholderInBody: true }],
    ['an unknown field', { ...HEADER, hosts: ['x'] }],
  ])('refuses %s', (_, config) => {
    expect(codeOf(() => parseInjectionBinding(config))).toBe('ERR_PROXY_BINDING_INVALID');
  });
});

describe('bindingMatches', () => {
  it('matches the exact host and port only', () => {
    const b = parseInjectionBinding(HEADER);
    expect(bindingMatches(b, 'api.example.com')).toBe(true);
    expect(bindingMatches(b, 'API.EXAMPLE.COM:443')).toBe(true);
    expect(bindingMatches(b, 'api.example.com:8443')).toBe(false);
    expect(bindingMatches(b, 'evil.api.example.com')).toBe(false);
    expect(bindingMatches(b, 'api.example.com.evil')).toBe(false);
    expect(bindingMatches(b, 'api.example.com@evil')).toBe(false);
    expect(bindingMatches(b, '')).toBe(false);
  });
});

describe('rewriteRequest', () => {
  const secret = enc(SECRET);

  it('injects the header, strips the forged one and hop-by-hop headers', () => {
    const { upstream, used } = rewriteRequest(request(), [
      { binding: parseInjectionBinding(HEADER), secret },
    ]);
    expect(used).toEqual([0]);
    expect(upstream).toMatchObject({
      scheme: 'https',
      hostname: 'api.example.com',
      port: 443,
      method: 'POST',
      path: '/v1/charges?x=1',
    });
    expect(upstream.headers).toEqual([
      ['content-type', 'application/json'],
      ['authorization', `Bearer ${SECRET}`],
      ['host', 'api.example.com'],
      ['accept-encoding', 'identity'],
    ]);
  });

  it('refuses a host outside the binding, and no binding at all', () => {
    const binding = parseInjectionBinding(HEADER);
    expect(
      codeOf(() => rewriteRequest(request({ authority: 'evil.example' }), [{ binding, secret }])),
    ).toBe('ERR_PROXY_HOST_NOT_BOUND');
    expect(codeOf(() => rewriteRequest(request(), []))).toBe('ERR_PROXY_HOST_NOT_BOUND');
  });

  it('substitutes the placeholder in headers and body, for its host only', () => {
    const binding = parseInjectionBinding(PLACEHOLDER);
    const p = PLACEHOLDER.placeholder!;
    const r = request({
      authority: 'models.example.com:8443',
      headers: [
        ['x-api-key', p],
        ['cookie', `a=${p}; b=${p}`],
      ],
      body: enc(`{"key":"${p}"}`),
    });
    const { upstream, used } = rewriteRequest(r, [{ binding, secret }]);
    expect(used).toEqual([0]);
    expect(upstream.headers.slice(0, 2)).toEqual([
      ['x-api-key', SECRET],
      ['cookie', `a=${SECRET}; b=${SECRET}`],
    ]);
    expect(dec(upstream.body)).toBe(`{"key":"${SECRET}"}`);
    expect(upstream.port).toBe(8443);
    expect(
      codeOf(() =>
        rewriteRequest({ ...r, authority: 'models.example.com' }, [{ binding, secret }]),
      ),
    ).toBe('ERR_PROXY_HOST_NOT_BOUND');
    // No placeholder: forwarded untouched, and not counted as a use.
    const plain = rewriteRequest({ ...r, headers: [], body: enc('{}') }, [{ binding, secret }]);
    expect(plain.used).toEqual([]);
    expect(dec(plain.upstream.body)).toBe('{}');
  });

  it('leaves the body alone unless the binding says so', () => {
    const binding = parseInjectionBinding({ ...PLACEHOLDER, placeholderInBody: false });
    const p = PLACEHOLDER.placeholder!;
    const r = request({ authority: 'models.example.com:8443', headers: [], body: enc(p) });
    expect(dec(rewriteRequest(r, [{ binding, secret }]).upstream.body)).toBe(p);
  });

  it('refuses a secret that cannot be a header value, and malformed requests', () => {
    const binding = parseInjectionBinding(HEADER);
    expect(codeOf(() => rewriteRequest(request(), [{ binding, secret: enc('a\r\nb: c') }]))).toBe(
      'ERR_PROXY_SECRET_UNFIT',
    );
    for (const bad of [
      request({ method: 'GE T' }),
      request({ path: 'http://x/' }),
      request({ path: '/a b' }),
      request({ headers: [['x', 'a\r\nb']] }),
      request({ headers: [['x y', 'a']] }),
    ])
      expect(codeOf(() => rewriteRequest(bad, [{ binding, secret }]))).toBe(
        'ERR_PROXY_REQUEST_INVALID',
      );
  });
});

describe('Scrubber', () => {
  it('scrubs the secret and its base64, base64url and URL-encoded forms', () => {
    const secret = enc('s3cr3t/with+odd=chars?');
    const scrubber = Scrubber.forSecrets([secret]);
    const b64 = Buffer.from(secret).toString('base64');
    const basic = Buffer.from(`user:${dec(secret)}`).toString('base64');
    const b64url = Buffer.from(secret).toString('base64url');
    const url = encodeURIComponent(dec(secret));
    for (const text of [
      dec(secret),
      b64,
      b64url,
      url,
      url.toLowerCase(),
      `Basic ${basic}`,
      `x${Buffer.from(`ab${dec(secret)}cd`).toString('base64')}y`,
    ]) {
      const out = latin1(scrubber.scrub(enc(`<${text}>`)));
      expect(out).toContain(SCRUB_MARKER);
      for (const form of secretForms(secret)) expect(out).not.toContain(latin1(form));
      expect(out).not.toContain(dec(secret));
    }
    expect(scrubber.scrubText(`Bearer ${dec(secret)}`)).toBe(`Bearer ${SCRUB_MARKER}`);
    const clean = enc('nothing to see');
    expect(scrubber.scrub(clean)).toBe(clean);
  });

  it('scrubs across chunk boundaries exactly as in one piece (property)', () => {
    // Secrets from an alphabet that the marker does not use, so that no occurrence can be formed
    // across a marker; bodies mixing noise, the secret and its encoded forms.
    const secretArb = fc
      .array(fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/%'.split('')), {
        minLength: 8,
        maxLength: 40,
      })
      .map((chars) => chars.join(''));
    fc.assert(
      fc.property(
        secretArb,
        fc.array(fc.oneof(fc.string({ maxLength: 12 }), fc.nat(5)), { maxLength: 12 }),
        fc.array(fc.nat(64), { maxLength: 12 }),
        (secretText, pieces, cuts) => {
          const secret = enc(secretText);
          const forms = secretForms(secret).map(latin1);
          const body = enc(
            pieces.map((p) => (typeof p === 'number' ? forms[p % forms.length]! : p)).join(''),
          );
          const scrubber = Scrubber.forSecrets([secret]);
          const whole = scrubber.scrub(body);
          const stream = scrubber.stream();
          const parts: Uint8Array[] = [];
          let at = 0;
          for (const cut of cuts) {
            const end = Math.min(body.length, at + cut);
            parts.push(stream.push(body.subarray(at, end)));
            at = end;
          }
          parts.push(stream.push(body.subarray(at)), stream.end());
          const streamed = Buffer.concat(parts);
          expect(latin1(streamed)).toBe(latin1(whole));
          expect(latin1(streamed)).not.toContain(secretText);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('holds back no more than a pattern length', () => {
    const scrubber = Scrubber.forSecrets([enc(SECRET)]);
    const stream = scrubber.stream();
    const head = stream.push(enc(`hello ${SECRET.slice(0, 10)}`));
    expect(dec(head)).toBe('hello ');
    expect(dec(stream.push(enc(`${SECRET.slice(10)} bye`)))).toBe(`${SCRUB_MARKER} bye`);
    expect(stream.end().length).toBe(0);
  });
});

describe('ProxyLeaseProvider', () => {
  async function setup() {
    const world = await gateWorld();
    const clock = new ManualClock(GATE_NOW);
    const reader = new MapSecretReader(
      new Map([
        ['payments', SECRET],
        ['models', 'model-key-000111222'],
        ['short', 'abc'],
        ['binary', 'ab\ncdefghij'],
      ]),
    );
    const provider = new ProxyLeaseProvider({
      secrets: reader,
      bindings: [
        HEADER,
        PLACEHOLDER,
        { secret: 'short', host: 's.example', placeholder: 'mandate-short-1' },
        { secret: 'binary', host: 'b.example', header: { name: 'x-key', format: '{secret}' } },
        { secret: 'missing', host: 'm.example', placeholder: 'mandate-missing-1' },
      ],
      clock,
    });
    const context = (leaseId: string, resource: string, expiresAt = GATE_NOW + 600) =>
      ({
        leaseId,
        holder: world.support.identity.identifier,
        chain: world.supportChain,
        resource,
        scope: [],
        nowSeconds: clock.nowSeconds(),
        expiresAt,
      }) satisfies LeaseContext;
    return { world, clock, reader, provider, context };
  }

  it('issues a value without the secret, and wipes what it read', async () => {
    const { provider, context, reader, world } = await setup();
    const issued = await provider.issue(context('lease_1', 'payments'));
    expect(issued.value).toEqual({
      host: 'api.example.com',
      scheme: 'https',
      header: 'authorization',
    });
    expect(JSON.stringify(issued)).not.toContain(SECRET);
    expect(reader.handedOut.every((b) => b.every((x) => x === 0))).toBe(true);
    const placeholder = await provider.issue(context('lease_2', 'models'));
    expect(placeholder.value.placeholder).toBe('mandate-placeholder-models');
    const found = provider.injectionsFor(world.support.identity.identifier, 'api.example.com');
    expect(found.map((f) => f.lease.id)).toEqual(['lease_1']);
    expect(found[0]!.lease.chainIds).toEqual(world.supportChain.revocationSubjects);
    expect(provider.injectionsFor(world.dana.identity.identifier, 'api.example.com')).toEqual([]);
  });

  it('refuses unknown bindings, missing, short and header-unfit secrets', async () => {
    const { provider, context } = await setup();
    await expect(provider.issue(context('l', 'nope'))).rejects.toMatchObject({
      code: 'ERR_PROXY_BINDING_NOT_FOUND',
    });
    await expect(provider.issue(context('l', 'missing'))).rejects.toMatchObject({
      code: 'ERR_SECRET_NOT_FOUND',
    });
    await expect(provider.issue(context('l', 'short'))).rejects.toMatchObject({
      code: 'ERR_PROXY_SECRET_UNFIT',
    });
    await expect(provider.issue(context('l', 'binary'))).rejects.toMatchObject({
      code: 'ERR_PROXY_SECRET_UNFIT',
    });
  });

  it('refuses two bindings for one secret', () => {
    expect(
      codeOf(
        () =>
          new ProxyLeaseProvider({
            secrets: new MapSecretReader(new Map()),
            bindings: [HEADER, { ...HEADER, host: 'other.example' }],
          }),
      ),
    ).toBe('ERR_PROXY_BINDING_INVALID');
  });

  it('stops at revoke, expiry and reap; renew extends; restore brings leases back', async () => {
    const { provider, context, clock, world } = await setup();
    const holder = world.support.identity.identifier;
    await provider.issue(context('lease_a', 'payments', GATE_NOW + 60));
    const lease = provider.injectionsFor(holder, 'api.example.com')[0]!.lease;
    await provider.revoke(lease);
    expect(provider.injectionsFor(holder, 'api.example.com')).toEqual([]);
    await provider.revoke(lease); // idempotent

    await provider.issue(context('lease_b', 'payments', GATE_NOW + 60));
    const b: Lease = provider.injectionsFor(holder, 'api.example.com')[0]!.lease;
    await expect(
      provider.renew({ ...b, renewals: 1 }, context('lease_b', 'payments', GATE_NOW + 120)),
    ).resolves.toBeUndefined();
    clock.advance(61);
    expect(provider.injectionsFor(holder, 'api.example.com')).toHaveLength(1);
    clock.advance(60);
    expect(provider.injectionsFor(holder, 'api.example.com')).toEqual([]);

    await provider.issue(context('lease_c', 'payments', GATE_NOW + 600));
    await provider.issue(context('lease_d', 'models', GATE_NOW + 600));
    await expect(provider.reap(new Set(['lease_d']))).resolves.toBe(1);
    expect(provider.injectionsFor(holder, 'api.example.com')).toEqual([]);

    const restored = provider.restore([
      { ...b, id: 'lease_e', handle: 'lease_e', expiresAt: clock.nowSeconds() + 60 },
      { ...b, id: 'lease_f', handle: 'lease_f', state: LeaseState.revoked },
      { ...b, id: 'lease_g', handle: 'lease_g', resource: 'unbound' },
    ]);
    expect(restored).toBe(1);
    expect(provider.injectionsFor(holder, 'api.example.com').map((f) => f.lease.id)).toEqual([
      'lease_e',
    ]);
  });
});
