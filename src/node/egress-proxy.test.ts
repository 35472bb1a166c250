import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../test/support/self-signed-certificate.js';
import { SCRUB_MARKER, secretForms } from '../broker/index.js';
import { encodeCbor } from '../encoding/index.js';
import { localAddress } from '../routing/index.js';
import { decodeEgressMessage, EgressOp } from './egress-protocol.js';

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++)
    await new Promise((resolve) => setTimeout(resolve, 10));
  expect(condition()).toBe(true);
}
import {
  agentRequests,
  egressWorld,
  leasedUpstream,
  type AgentResponse,
  upstreamServer,
  type UpstreamHit,
} from '../../test/helpers/egress-world.js';

// The credential-injecting egress proxy over real secure channels (memory transport, real
// routers), real local upstream HTTP servers, and the agent as a child process that only talks
// to its local proxy: the upstream sees the injected secret, the agent never does.

const PAYMENTS = 'sk_live_payments_0123456789abcdef';
const REFUNDS = 'rk_live_refunds_fedcba9876543210';
const PLACEHOLDER = 'mandate-placeholder-refunds';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An upstream that 401s without the secret in `authorization` and echoes it back otherwise. */
const echoingUpstream = (
  secret: string,
  header = 'authorization',
  format = (s: string) => `Bearer ${s}`,
) =>
  upstreamServer((hit: UpstreamHit) => {
    if (hit.headers[header] !== format(secret))
      return new Response('{"error":"unauthorized"}', { status: 401 });
    return new Response(
      JSON.stringify({
        ok: true,
        path: hit.path,
        youSent: hit.headers[header],
        base64: Buffer.from(secret).toString('base64'),
        urlencoded: encodeURIComponent(secret),
        body: hit.body,
      }),
      {
        status: 200,
        headers: { 'content-type': 'application/json', 'x-echo': hit.headers[header] ?? '' },
      },
    );
  });

/** Nothing the agent received holds the secret or one of its encoded forms. */
function assertNoSecret(raw: string, secret: string): void {
  expect(raw).not.toContain(secret);
  for (const form of secretForms(new TextEncoder().encode(secret)))
    expect(raw).not.toContain(Buffer.from(form).toString('latin1'));
}

async function setup() {
  const payments = await echoingUpstream(PAYMENTS);
  const refunds = await echoingUpstream(REFUNDS, 'x-api-key', (s) => s);
  const elsewhere = await upstreamServer(() => new Response('should never be reached'));
  const world = await egressWorld({
    secrets: { payments: PAYMENTS, refunds: REFUNDS },
    bindings: [
      {
        secret: 'payments',
        host: payments.host,
        scheme: 'http',
        header: { name: 'Authorization', format: 'Bearer {secret}' },
      },
      {
        secret: 'refunds',
        host: refunds.host,
        scheme: 'http',
        placeholder: PLACEHOLDER,
        placeholderInBody: true,
      },
    ],
  });
  cleanups.push(world.close, payments.close, refunds.close, elsewhere.close);
  const billing = await world.agent('billing');
  const support = await world.agent('support');
  return { world, payments, refunds, elsewhere, billing, support };
}

describe('the egress proxy', () => {
  it('injects the header for the bound host; the agent never sees the secret', async () => {
    const { world, payments, billing } = await setup();
    const { leaseId, value } = await billing.lease('payments');
    expect(JSON.stringify(value)).not.toContain(PAYMENTS);
    const { responses, raw } = await agentRequests(billing.proxy.port, [
      // A forged header is replaced, not passed on.
      {
        url: `http://${payments.host}/v1/charges?limit=3`,
        headers: { authorization: 'Bearer stolen' },
      },
      { url: `http://${payments.host}/v1/origin-form`, origin: true },
      { method: 'POST', url: `http://${payments.host}/v1/charges`, body: '{"amount":5}' },
    ]);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(payments.hits.map((h) => h.headers['authorization'])).toEqual([
      `Bearer ${PAYMENTS}`,
      `Bearer ${PAYMENTS}`,
      `Bearer ${PAYMENTS}`,
    ]);
    expect(payments.hits.map((h) => h.path)).toEqual([
      '/v1/charges?limit=3',
      '/v1/origin-form',
      '/v1/charges',
    ]);
    expect(payments.hits[2]!.body).toBe('{"amount":5}');
    expect(payments.hits[0]!.headers['accept-encoding']).toBe('identity');
    // The echo comes back scrubbed, in the body and in headers.
    const first = JSON.parse(responses[0]!.body) as Record<string, unknown>;
    expect(first).toMatchObject({
      ok: true,
      youSent: `Bearer ${SCRUB_MARKER}`,
      base64: SCRUB_MARKER,
      urlencoded: SCRUB_MARKER,
    });
    expect(responses[0]!.headers['x-echo']).toBe(`Bearer ${SCRUB_MARKER}`);
    assertNoSecret(raw, PAYMENTS);
    expect(world.audit.events.map((e) => [e.leaseId, e.event])).toEqual([
      [leaseId, 'used'],
      [leaseId, 'used'],
      [leaseId, 'used'],
    ]);
  });

  it('carries a request body larger than one chunk', async () => {
    const { payments, billing } = await setup();
    await billing.lease('payments');
    const { responses } = await agentRequests(billing.proxy.port, [
      { method: 'PUT', url: `http://${payments.host}/v1/upload`, bodyBytes: 200_000 },
    ]);
    expect(responses[0]!.status).toBe(200);
    expect(payments.hits[0]!.body).toBe('y'.repeat(200_000));
  });

  it('refuses a host outside the binding: nothing reaches any server', async () => {
    const { payments, refunds, elsewhere, billing } = await setup();
    await billing.lease('payments');
    const { responses, raw } = await agentRequests(billing.proxy.port, [
      { url: `http://${elsewhere.host}/exfiltrate`, headers: { authorization: 'Bearer x' } },
      { url: `http://${elsewhere.host}/exfiltrate`, origin: true },
      // The refunds host is bound, but not for billing.
      { url: `http://${refunds.host}/v1/refunds`, headers: { 'x-api-key': PLACEHOLDER } },
      // Same host name, other port.
      { url: `http://127.0.0.1:1/v1/charges` },
    ]);
    for (const r of responses) {
      expect(r.status).toBe(403);
      expect(r.headers['x-mandate-error']).toBe('ERR_PROXY_HOST_NOT_BOUND');
    }
    expect(elsewhere.hits).toEqual([]);
    expect(refunds.hits).toEqual([]);
    expect(payments.hits).toEqual([]);
    assertNoSecret(raw, PAYMENTS);
  });

  it('substitutes the placeholder, in headers and body, for the bound host only', async () => {
    const { world, refunds, elsewhere, support } = await setup();
    const { value } = await support.lease('refunds');
    expect(value).toEqual({ host: refunds.host, scheme: 'http', placeholder: PLACEHOLDER });
    const { responses, raw } = await agentRequests(
      support.proxy.port,
      [
        {
          method: 'POST',
          url: `http://${refunds.host}/v1/refunds`,
          headers: { 'x-api-key': PLACEHOLDER, 'content-type': 'application/json' },
          body: `{"key":"${PLACEHOLDER}","amount":10}`,
        },
        { url: `http://${refunds.host}/v1/refunds` },
        { url: `http://${elsewhere.host}/`, headers: { 'x-api-key': PLACEHOLDER } },
      ],
      { REFUNDS_API_KEY: PLACEHOLDER },
    );
    expect(responses.map((r) => r.status)).toEqual([200, 401, 403]);
    expect(refunds.hits[0]!.headers['x-api-key']).toBe(REFUNDS);
    expect(refunds.hits[0]!.body).toBe(`{"key":"${REFUNDS}","amount":10}`);
    // Without the placeholder nothing is injected (and no use is recorded).
    expect(refunds.hits[1]!.headers['x-api-key']).toBeUndefined();
    expect(elsewhere.hits).toEqual([]);
    expect(JSON.parse(responses[0]!.body)).toMatchObject({
      youSent: SCRUB_MARKER,
      body: `{"key":"${SCRUB_MARKER}","amount":10}`,
    });
    assertNoSecret(raw, REFUNDS);
    expect(world.audit.events).toHaveLength(1);
  });

  it('stops injecting for the very next request after revoke, and after expiry', async () => {
    const { world, payments, billing } = await setup();
    const { leaseId } = await billing.lease('payments', 60);
    const url = `http://${payments.host}/v1/charges`;
    expect((await agentRequests(billing.proxy.port, [{ url }])).responses[0]!.status).toBe(200);
    await world.provider.revoke(billing.leaseOf(leaseId)!);
    const after = (await agentRequests(billing.proxy.port, [{ url }])).responses[0]!;
    expect(after.status).toBe(403);
    expect(after.headers['x-mandate-error']).toBe('ERR_PROXY_HOST_NOT_BOUND');
    expect(payments.hits).toHaveLength(1);

    await billing.lease('payments', 60);
    expect((await agentRequests(billing.proxy.port, [{ url }])).responses[0]!.status).toBe(200);
    world.clock.advance(60);
    const expired = (await agentRequests(billing.proxy.port, [{ url }])).responses[0]!;
    expect(expired.status).toBe(403);
    expect(payments.hits).toHaveLength(2);
  });

  it('scrubs a secret cut across chunks of a large streamed response', async () => {
    const { upstream, agent, close } = await leasedUpstream(PAYMENTS, () => {
      // The secret lands on and around every 64 KiB boundary the proxy's chunks may have.
      const parts: string[] = [];
      for (let i = 0; i < 12; i++) parts.push('x'.repeat(65_536 - 10 + (i % 5)), PAYMENTS);
      return new Response(parts.join(''), { headers: { 'content-type': 'text/plain' } });
    });
    cleanups.push(close);
    const { responses, raw } = await agentRequests(agent.proxy.port, [
      { url: `http://${upstream.host}/big` },
    ]);
    const body = responses[0]!.body;
    expect(responses[0]!.status).toBe(200);
    expect(body.split(SCRUB_MARKER)).toHaveLength(13);
    expect(body.replaceAll(SCRUB_MARKER, '').replaceAll('x', '')).toBe('');
    assertNoSecret(raw, PAYMENTS);
  });

  it('reaches an https upstream, its certificate verified against the configured CA', async () => {
    const { key, cert } = selfSignedCertificate('upstream');
    const upstream = await upstreamServer(
      (hit) => new Response(hit.headers['authorization'] === `Bearer ${PAYMENTS}` ? 'ok' : 'no'),
      { key, cert },
    );
    cleanups.push(upstream.close);
    const binding = {
      secret: 'payments',
      host: upstream.host,
      scheme: 'https' as const,
      header: { name: 'authorization', format: 'Bearer {secret}' },
    };
    const results: AgentResponse[] = [];
    // With the CA the certificate verifies; without it (an impostor's view) nothing is sent.
    for (const service of [{ upstreamCa: cert }, {}]) {
      const world = await egressWorld({
        secrets: { payments: PAYMENTS },
        bindings: [binding],
        service,
      });
      cleanups.push(world.close);
      const agent = await world.agent('billing');
      await agent.lease('payments');
      const { responses } = await agentRequests(agent.proxy.port, [
        { url: `http://${upstream.host}/v1/tls` },
      ]);
      results.push(responses[0]!);
    }
    expect(results.map((r) => [r.status, r.body.slice(0, 2)])).toEqual([
      [200, 'ok'],
      [502, '{"'],
    ]);
    expect(results[1]!.headers['x-mandate-error']).toBe('ERR_PROXY_UPSTREAM_FAILED');
    expect(upstream.hits).toHaveLength(1);
  });

  it('refuses a compressed answer (it could not be scrubbed)', async () => {
    const { upstream, agent, close } = await leasedUpstream(
      PAYMENTS,
      () => new Response('not really gzip', { headers: { 'content-encoding': 'gzip' } }),
    );
    cleanups.push(close);
    const { responses } = await agentRequests(agent.proxy.port, [
      { url: `http://${upstream.host}/` },
    ]);
    expect(responses[0]!.status).toBe(502);
    expect(responses[0]!.headers['x-mandate-error']).toBe('ERR_PROXY_RESPONSE_ENCODED');
    expect(upstream.hits).toHaveLength(1);
  });

  it('refuses a compressed transfer coding (Node leaves `gzip, chunked` bodies compressed)', async () => {
    // A raw upstream: the framework upstream would not frame `gzip, chunked` itself.
    const gz = gzipSync(Buffer.from(PAYMENTS));
    const raw = createNetServer((socket) => {
      socket.once('data', () => {
        socket.end(
          Buffer.concat([
            Buffer.from(
              `HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\nconnection: close\r\n\r\n${gz.length.toString(16)}\r\n`,
            ),
            gz,
            Buffer.from('\r\n0\r\n\r\n'),
          ]),
        );
      });
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) =>
          raw.close(() => {
            resolve();
          }),
        ),
    );
    const host = `127.0.0.1:${String((raw.address() as AddressInfo).port)}`;
    const world = await egressWorld({
      secrets: { payments: PAYMENTS },
      bindings: [
        {
          secret: 'payments',
          host,
          scheme: 'http',
          header: { name: 'authorization', format: 'Bearer {secret}' },
        },
      ],
    });
    cleanups.push(world.close);
    const agent = await world.agent('billing');
    await agent.lease('payments', 3_600);
    const { responses } = await agentRequests(agent.proxy.port, [{ url: `http://${host}/` }]);
    expect(responses[0]!.status).toBe(502);
    expect(responses[0]!.headers['x-mandate-error']).toBe('ERR_PROXY_RESPONSE_ENCODED');
  });

  it('drops an answer header whose name carries the secret', async () => {
    const name = `x-${PAYMENTS}`;
    const { upstream, agent, close } = await leasedUpstream(
      PAYMENTS,
      () => new Response('ok', { headers: { [name]: '1', 'x-kept': 'yes' } }),
    );
    cleanups.push(close);
    const { responses } = await agentRequests(agent.proxy.port, [
      { url: `http://${upstream.host}/` },
    ]);
    expect(responses[0]!.status).toBe(200);
    expect(responses[0]!.headers['x-kept']).toBe('yes');
    expect(Object.keys(responses[0]!.headers).join(' ')).not.toContain(name.slice(2));
  });

  it('answers 502 when the upstream is down, 413 for an oversized body', async () => {
    const { payments, billing, world } = await setup();
    await billing.lease('payments');
    await payments.close();
    const { responses } = await agentRequests(billing.proxy.port, [
      { url: `http://${payments.host}/` },
      { method: 'POST', url: `http://${payments.host}/`, bodyBytes: 1024 * 1024 + 1 },
    ]);
    expect(responses.map((r) => [r.status, r.headers['x-mandate-error']])).toEqual([
      [502, 'ERR_PROXY_UPSTREAM_FAILED'],
      [413, 'ERR_PROXY_BODY_TOO_LARGE'],
    ]);
    expect(
      world.events.some((e) => e.type === 'refused' && e.reason === 'ERR_PROXY_UPSTREAM_FAILED'),
    ).toBe(true);
  });

  it('refuses chunks out of order and oversized bodies, through the channel', async () => {
    const { billing, world, payments } = await setup();
    await billing.lease('payments');
    const answers: string[] = [];
    billing.router.registerWorker('raw', {
      handleMessage: (_ctx, envelope) => {
        const message = decodeEgressMessage(envelope.payload);
        answers.push(message.op === EgressOp.refused ? message.code : String(message.op));
      },
    });
    billing.channel.allow('raw');
    const send = (value: unknown[]) =>
      billing.router.send({
        onwardRoute: [localAddress(billing.channel.address), localAddress('egress')],
        returnRoute: [localAddress('raw')],
        payload: encodeCbor(value as never),
      });
    const a = new Uint8Array(16).fill(1);
    const b = new Uint8Array(16).fill(2);
    await send([1, 0, a, 'POST', payments.host, '/', [], 2]);
    await send([1, 1, a, 1, new Uint8Array(3)]);
    await send([1, 0, b, 'POST', payments.host, '/', [], 1000]);
    await until(() => answers.length === 2);
    expect(answers).toEqual(['ERR_PROXY_MALFORMED', 'ERR_PROXY_BODY_TOO_LARGE']);
    expect(payments.hits).toEqual([]);
    expect(world.audit.events).toEqual([]);
  });

  it('refuses messages that did not come through a secure channel, and malformed ones', async () => {
    const { world } = await setup();
    const answers: Uint8Array[] = [];
    world.brokerRouter.registerWorker('local-sender', {
      handleMessage: (_ctx, envelope) => {
        answers.push(envelope.payload);
      },
    });
    const id = new Uint8Array(16).fill(7);
    for (const payload of [
      encodeCbor([1, 0, id, 'GET', 'x.example', '/', [], 0]),
      encodeCbor([1, 9, id]),
    ])
      await world.brokerRouter.send({
        onwardRoute: [localAddress('egress')],
        returnRoute: [localAddress('local-sender')],
        payload,
      });
    await until(() => answers.length === 2);
    expect(world.events.map((e) => (e.type === 'refused' ? e.reason : e.type))).toEqual([
      'ERR_PROXY_FORBIDDEN',
      'ERR_PROXY_MALFORMED',
    ]);
    expect(answers).toHaveLength(2);
  });
});
