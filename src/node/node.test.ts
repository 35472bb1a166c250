import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../core/index.js';
import { silentLogger } from '../core/internal.js';
import { loadNodeConfig } from './config.js';
import { openHome, type Home } from './home.js';
import { startNode, type StartNodeOptions } from './node.js';
import type { AdminNodeOptions } from './admin-node.js';
import { Purpose } from '../identity/index.js';
import { noteVerifierKey } from '../audit/index.js';
import { localAddress, Router, TcpTransport } from '../routing/index.js';
import { openSecureChannel, TrustPolicies } from '../channel/index.js';
import { channelWorld } from '../../test/helpers/channel-world.js';

// startNode in this process, on a real home and real sockets (port 0).

const dir = mkdtempSync(join(tmpdir(), 'mandate-node-'));

beforeAll(async () => {
  const home = await openHome(dir);
  try {
    await home.identities.create({ name: 'bob' });
  } finally {
    home.close();
  }
});

/** startNode's options, counting the homes opened and closed. */
function options(): StartNodeOptions & {
  readonly opened: () => number;
  readonly closed: () => number;
} {
  let opened = 0;
  let closed = 0;
  return {
    openHome: async () => {
      const home: Home = await openHome(dir);
      opened++;
      return {
        ...home,
        close: () => {
          closed++;
          home.close();
        },
      };
    },
    readCredential: () => {
      throw new Error('no credentials in these tests');
    },
    clock: systemClock,
    logger: silentLogger,
    opened: () => opened,
    closed: () => closed,
  };
}

const config = (extra: Record<string, unknown> = {}) =>
  loadNodeConfig({
    flags: { identity: 'bob', listen: '127.0.0.1:0', health: { listen: '127.0.0.1:0' }, ...extra },
  });

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(url);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

describe('startNode', () => {
  it('serves /healthz and /readyz per part while running, and stops every part', async () => {
    const opts = options();
    const node = await startNode(config(), opts);
    expect(node.listening.address).toMatch(/^127\.0\.0\.1:\d+$/);
    const url = node.healthUrl!;
    const live = await getJson(`${url}/healthz`);
    expect(live).toEqual({
      status: 200,
      body: {
        status: 'ok',
        state: 'running',
        parts: [
          'home',
          'deny-set',
          'router',
          'channel-identity',
          'listener',
          'echo',
          'relay-registration',
          'health',
        ],
      },
    });
    const ready = await getJson(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ ready: true, state: 'running' });
    expect(
      Object.values(ready.body.parts as object).every((p: { ready: boolean }) => p.ready),
    ).toBe(true);
    expect((await fetch(`${url}/admin`)).status).toBe(404);
    await node.stop();
    expect(opts.closed()).toBe(1);
    expect(node.health().state).toBe('stopped');
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it('is not ready while its relay registration is not made', async () => {
    const port = await takenPort();
    try {
      const node = await startNode(
        config({ relay: { route: `/ip4/127.0.0.1/tcp/${port.number}`, name: 'bob' } }),
        options(),
      );
      try {
        const ready = await getJson(`${node.healthUrl!}/readyz`);
        expect(ready.status).toBe(503);
        expect(ready.body).toMatchObject({
          ready: false,
          parts: { echo: { ready: true }, 'relay-registration': { ready: false } },
        });
      } finally {
        await node.stop();
      }
    } finally {
      port.server.close();
    }
  });

  it('a part that cannot start stops those that did: a taken port, an unknown identity', async () => {
    const port = await takenPort();
    try {
      const opts = options();
      await expect(
        startNode(config({ listen: `127.0.0.1:${port.number}` }), opts),
      ).rejects.toThrow();
      expect([opts.opened(), opts.closed()]).toEqual([1, 1]);
    } finally {
      port.server.close();
    }
    const opts = options();
    await expect(startNode(config({ identity: 'nobody' }), opts)).rejects.toMatchObject({
      code: 'ERR_IDENTITY_NOT_FOUND',
    });
    expect([opts.opened(), opts.closed()]).toEqual([1, 1]);
  });

  it('runs the authority service, whose listener admits any identity; a service for credential holders beside it hears none of them', async () => {
    const node = await startNode(config({ services: ['authority'] }), options());
    try {
      const ready = await getJson(`${node.healthUrl!}/readyz`);
      expect(ready.body).toMatchObject({ ready: true, parts: { authority: { ready: true } } });
    } finally {
      await node.stop();
    }
    // Beside echo (credential holders only): the listener admits a stranger, who reaches the
    // authority's services but whose message to echo is dropped (not admitted), never answered.
    const warnings: string[] = [];
    const logger = {
      ...silentLogger,
      warn: (message: string, fields?: Record<string, unknown>) => {
        warnings.push(`${message} ${JSON.stringify(fields ?? {})}`);
      },
    };
    const both = await startNode(config({ services: ['authority', 'echo'] }), {
      ...options(),
      logger,
    });
    const router = new Router();
    const transport = new TcpTransport(router);
    try {
      const home = await openHome(dir);
      const bob = (await home.identities.get('bob')).identity.identifier;
      home.close();
      const w = await channelWorld(Math.floor(Date.now() / 1000));
      const eve = await w.party('eve', null);
      const answers: string[] = [];
      router.registerWorker('app', {
        handleMessage: (_ctx, envelope) => {
          answers.push(new TextDecoder().decode(envelope.payload));
        },
      });
      const channel = await openSecureChannel(
        router,
        [localAddress(transport.connect(both.listening.address)), localAddress('api')],
        {
          staticKey: eve.staticKey,
          identityPayload: eve.identityPayload,
          verify: { authorities: w.authorities, trustPolicy: TrustPolicies.identifier(bob) },
          deliverTo: ['app'],
        },
      );
      await router.send({
        onwardRoute: [localAddress(channel.address), localAddress('echo')],
        returnRoute: [localAddress('app')],
        payload: new TextEncoder().encode('hello'),
      });
      await vi.waitFor(
        () => {
          expect(warnings.join('\n')).toContain('not_admitted');
        },
        { timeout: 10_000 },
      );
      expect(answers).toEqual([]);
      await channel.close();
    } finally {
      await transport.close();
      await router.close();
      await both.stop();
    }
  });

  it('serves the admin API with `admin`: a login link; refused without its options or on a taken port', async () => {
    // The checkpoint key of `authority` (the CLI's is the same key under the home's origin).
    const admin: AdminNodeOptions = {
      logKey: async (home, authority) => {
        const known = await home.identities.get(authority);
        const { keyId } = await home.identities.purposeKey(known, Purpose.credentials);
        return noteVerifierKey('test/log', (await home.vault.getSigningKey(keyId)).publicKey);
      },
      answerApproval: () => Promise.reject(new Error('no approvals in this test')),
    };
    const withAdmin = (extra: Record<string, unknown> = {}) =>
      config({ services: ['admin'], admin: { as: 'bob', authority: 'bob', ...extra } });
    const node = await startNode(withAdmin(), { ...options(), admin });
    const link = node.dashboardUrl()!;
    expect(link).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=[\w-]+&key=test%2Flog%2B/);
    // A fresh one-time token each time.
    expect(node.dashboardUrl()).not.toBe(link);
    const origin = new URL(link).origin;
    expect((await fetch(`${origin}/api/agents`)).status).toBe(401);
    expect(Object.keys(node.health().parts)).toContain('admin');
    await node.stop();
    await expect(fetch(`${origin}/api/agents`)).rejects.toThrow();

    const echo = await startNode(config(), options());
    expect(echo.dashboardUrl()).toBeUndefined();
    await echo.stop();

    await expect(startNode(withAdmin(), options())).rejects.toMatchObject({
      code: 'ERR_NODE_CONFIG_INVALID',
    });
    // A name the home does not have (a typo in MANDATE_ADMIN_AS): the config's error, named.
    for (const extra of [{ as: 'bobb' }, { authority: 'bobb' }]) {
      const opts = { ...options(), admin };
      const refused = await startNode(withAdmin(extra), opts).catch((error: unknown) => error);
      expect(refused).toMatchObject({ code: 'ERR_NODE_CONFIG_INVALID' });
      expect((refused as Error).message).toContain(
        `\`admin.${Object.keys(extra)[0]}\` names \`bobb\``,
      );
      expect([opts.opened(), opts.closed()]).toEqual([1, 1]);
    }
    const port = await takenPort();
    try {
      const opts = { ...options(), admin };
      await expect(
        startNode(withAdmin({ listen: `127.0.0.1:${port.number}` }), opts),
      ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_ADDRESS_IN_USE' });
      expect([opts.opened(), opts.closed()]).toEqual([1, 1]);
    } finally {
      port.server.close();
    }
  });
});

/** A port held by a plain TCP server that accepts and says nothing. */
async function takenPort(): Promise<{ server: Server; number: number }> {
  const server = createServer((socket) => socket.on('error', () => undefined));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, number: address.port };
}
