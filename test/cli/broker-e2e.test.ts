import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import pg from 'pg';
import { Purpose } from '../../src/identity/index.js';
import { signExchangeProof } from '../../src/broker/index.js';
import { TOKEN_EXCHANGE_GRANT_TYPE } from '../../src/node/index.js';
import { CHAIN_PROOF_TOKEN_TYPE } from '../../src/broker/index.js';
import { openHome } from '../../src/cli/home.js';
import { readBytesArgument } from '../../src/cli/input.js';
import { brokerIssuerOf } from '../../src/cli/commands/broker.js';
import { brokerHome, okJson, run } from '../helpers/cli.js';
import { freePort, killChildren, startMandate, type Started } from '../helpers/processes.js';
import { agentRequests, upstreamServer } from '../helpers/egress-world.js';
import { repoRoot } from '../helpers/vectors.js';
import {
  SHARED_POSTGRES_URL,
  sharedPostgresUnavailable,
  skipUnless,
} from '../support/postgres-cluster.js';

// The three kinds of lease end to end, as processes: `mandate broker start` (with `--http`,
// `--proxy-bindings`, `--postgres`), the agent's `mandate lease …` / `mandate proxy` over secure
// channels, and outside verification (jose against the live JWKS, a real PostgreSQL login, an
// upstream that checks the injected header).

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await killChildren();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const AUDIENCE = 'payments-api';

/** `mandate --home HOME --json ARGV…` with `input` on stdin. */
function withStdin(home: string, input: string, ...argv: string[]): Promise<number | null> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'src', 'cli', 'bin.ts'), '--home', home, '--json', ...argv],
    { cwd: repoRoot, stdio: ['pipe', 'ignore', 'ignore'] },
  );
  child.stdin.end(input);
  return new Promise((resolve) => child.once('exit', resolve));
}

async function startBroker(
  home: string,
  brokerCred: string,
  ...extra: string[]
): Promise<{ node: Started; route: string }> {
  const port = await freePort();
  const node = startMandate(
    home,
    'broker',
    'start',
    '--listen',
    `127.0.0.1:${port}`,
    '--identity',
    'broker',
    '--credential',
    brokerCred,
    ...extra,
  );
  await node.waitFor(/broker: serving/);
  return { node, route: `/ip4/127.0.0.1/tcp/${port}` };
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting until ${what}`);
}

async function revokedJtis(base: string): Promise<string[]> {
  const r = await fetch(`${base}/revoked`);
  const body = (await r.json()) as { revoked: { jti: string }[] };
  return body.revoked.map((x) => x.jti);
}

describe('broker start --http: JWT leases', () => {
  it('leases a token over the channel and at the RFC 8693 endpoint; jose verifies both against the live JWKS; revocation is listed, also after a restart', async () => {
    const { home, brokerCred, agentCred } = await brokerHome(
      'mandate-broker-jwt',
      [`secrets=jwt/${AUDIENCE}`, 'secret_scopes=refunds'],
      `jwt/${AUDIENCE}`,
    );
    const httpPort = await freePort();
    const base = `http://127.0.0.1:${httpPort}`;
    const { node, route } = await startBroker(home, brokerCred, '--http', `127.0.0.1:${httpPort}`);
    const h = await openHome(home);
    cleanups.push(() => {
      h.close();
    });
    const broker = await h.identities.get('broker');
    const agent = await h.identities.get('agent');
    const issuer = brokerIssuerOf(broker.identity.identifier);
    const jwks = createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`));

    // Over the secure channel.
    const leased = await okJson<{ leaseId: string; token: string; expiresAt: number }>(
      home,
      'lease',
      'jwt',
      '--broker',
      route,
      '--audience',
      AUDIENCE,
      '--scope',
      'refunds',
      '--identity',
      'agent',
      '--credential',
      agentCred,
    );
    const { payload } = await jwtVerify(leased.token, jwks, { issuer, audience: AUDIENCE });
    expect(payload.sub).toBe(agent.identity.identifier);
    expect(payload.scope).toBe('refunds');
    expect(payload.exp).toBe(leased.expiresAt);
    // A scope the chain does not grant: the broker's decision refuses (the one chain lock).
    const wider = await run(
      '--home',
      home,
      '--json',
      'lease',
      'jwt',
      '--broker',
      route,
      '--audience',
      AUDIENCE,
      '--scope',
      'payouts',
      '--identity',
      'agent',
      '--credential',
      agentCred,
    );
    expect(wider.stderr).toMatch(/^error\[ERR_LEASE_DENIED\]/m);

    // At the token endpoint, with a proof signed by the agent's key.
    const { verified, keyId } = await h.identities.purposeKey('agent', Purpose.credentials);
    const proof = await signExchangeProof(
      h.vault,
      {
        identity: agent.identity,
        credentialKeyId: keyId,
        credentialKeyAttestation: verified.attestation,
      },
      {
        chain: readBytesArgument(agentCred, 'credential'),
        tokenEndpoint: `${base}/token`,
        audience: AUDIENCE,
        scope: ['refunds'],
        nowSeconds: Math.floor(Date.now() / 1000),
      },
    );
    const exchange = () =>
      fetch(`${base}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: TOKEN_EXCHANGE_GRANT_TYPE,
          subject_token: proof,
          subject_token_type: CHAIN_PROOF_TOKEN_TYPE,
          audience: AUDIENCE,
          scope: 'refunds',
        }).toString(),
      });
    const first = await exchange();
    expect(first.status).toBe(200);
    const answer = (await first.json()) as { access_token: string; issued_token_type: string };
    const exchanged = await jwtVerify(answer.access_token, jwks, { issuer, audience: AUDIENCE });
    expect(exchanged.payload.sub).toBe(agent.identity.identifier);
    const replay = await exchange();
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as { error: string }).error).toBe('invalid_grant');

    // Revoked in the broker's home: the running broker tells the provider; /revoked lists it.
    const jti = decodeJwt(leased.token).jti!;
    expect(await revokedJtis(base)).not.toContain(jti);
    await okJson(home, 'lease', 'revoke', leased.leaseId, '--identity', 'broker');
    await eventually(async () => (await revokedJtis(base)).includes(jti), '/revoked lists it');
    expect(await node.stop('SIGTERM')).toBe(0);

    // The list lives in memory: a restarted broker revokes again what may still be valid.
    const again = await startBroker(home, brokerCred, '--http', `127.0.0.1:${httpPort}`);
    expect(await revokedJtis(base)).toContain(jti);
    // The same key and issuer after the restart: the tokens still verify.
    await jwtVerify(leased.token, createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`)), {
      issuer,
      audience: AUDIENCE,
    });
    expect(node.stderr() + again.node.stderr()).not.toContain(leased.token);
    expect(await again.node.stop('SIGINT')).toBe(0);
  }, 90_000);
});

describe('broker start --proxy-bindings: injection', () => {
  it('injects the secret for the agent’s leased host; the agent never sees it; revoking the agent stops it', async () => {
    const SECRET = `sk_live_e2e_${Date.now().toString(36)}_0123456789`;
    const { home, dir, brokerCred, agentCred } = await brokerHome(
      'mandate-broker-proxy',
      ['secrets=proxy/payments'],
      'proxy/payments',
    );
    expect(await withStdin(home, SECRET, 'secret', 'put', 'payments')).toBe(0);
    const upstream = await upstreamServer((hit) =>
      hit.headers['authorization'] === `Bearer ${SECRET}`
        ? new Response(`ok ${hit.headers['authorization']}`)
        : new Response('no', { status: 401 }),
    );
    cleanups.push(upstream.close);
    const bindings = join(dir, 'bindings.json');
    writeFileSync(
      bindings,
      JSON.stringify([
        {
          secret: 'payments',
          host: upstream.host,
          scheme: 'http',
          header: { name: 'authorization', format: 'Bearer {secret}' },
        },
      ]),
    );
    const { node, route } = await startBroker(home, brokerCred, '--proxy-bindings', bindings);
    const leased = await okJson<{ leaseId: string; host: string; scheme: string }>(
      home,
      'lease',
      'proxy',
      '--broker',
      route,
      '--secret',
      'payments',
      '--identity',
      'agent',
      '--credential',
      agentCred,
    );
    expect(leased).toMatchObject({ host: upstream.host, scheme: 'http', header: 'authorization' });
    expect(JSON.stringify(leased)).not.toContain(SECRET);

    const port = await freePort();
    const proxy = startMandate(
      home,
      'proxy',
      '--broker',
      route,
      '--identity',
      'agent',
      '--credential',
      agentCred,
      '--listen',
      `127.0.0.1:${port}`,
    );
    await proxy.waitFor(/proxy: listening/);
    const before = await agentRequests(port, [{ url: `http://${upstream.host}/v1/balance` }]);
    expect(before.responses.map((r) => r.status)).toEqual([200]);
    expect(before.responses[0]!.body).toBe('ok Bearer [mandate-redacted]');
    expect(before.raw).not.toContain(SECRET);
    expect(upstream.hits.map((hit) => hit.headers['authorization'])).toEqual([`Bearer ${SECRET}`]);

    // The operator revokes the agent's identity: the deny-set cascade ends its lease.
    expect((await run('--home', home, 'revoke', 'agent')).code).toBe(0);
    await eventually(async () => {
      const listed = await okJson<{ leases: { id: string; state: string }[] }>(
        home,
        'lease',
        'list',
      );
      return listed.leases.some((l) => l.id === leased.leaseId && l.state === 'revoked');
    }, 'the lease is revoked');
    const after = await agentRequests(port, [{ url: `http://${upstream.host}/v1/balance` }]);
    expect(after.responses[0]!.status).not.toBe(200);
    expect(after.raw).not.toContain(SECRET);
    // No second request reached the upstream with the secret.
    expect(
      upstream.hits.filter((h) => h.headers['authorization'] === `Bearer ${SECRET}`),
    ).toHaveLength(1);
    expect(node.stderr() + proxy.stderr()).not.toContain(SECRET);
    await proxy.stop('SIGTERM');
    expect(await node.stop('SIGTERM')).toBe(0);
  }, 90_000);
});

const sharedSkip = skipUnless(
  await sharedPostgresUnavailable(),
  'the broker PostgreSQL deny-set cascade test',
);

describe.skipIf(sharedSkip)('broker start --postgres: the deny-set cascade', () => {
  it('a leased login works, then fails within seconds of `mandate revoke <agent>`', async () => {
    const { home, brokerCred, agentCred } = await brokerHome(
      'mandate-broker-pg-cascade',
      ['secrets=postgres/readonly'],
      'postgres/readonly',
    );
    const { node, route } = await startBroker(home, brokerCred, '--postgres', SHARED_POSTGRES_URL);
    const leased = await okJson<{ user: string; password: string; database: string }>(
      home,
      'lease',
      'postgres',
      '--broker',
      route,
      '--template',
      'readonly',
      '--identity',
      'agent',
      '--credential',
      agentCred,
    );
    const url = new URL(SHARED_POSTGRES_URL);
    const login = async (): Promise<boolean> => {
      const client = new pg.Client({
        host: url.hostname,
        port: Number(url.port === '' ? 5432 : url.port),
        user: leased.user,
        password: leased.password,
        database: leased.database,
      });
      // The broker may end this session (a revocation terminates the role's sessions): the
      // client's 'error' event must not go unheard (it would fail the whole run).
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    expect(await login()).toBe(true);
    expect((await run('--home', home, 'revoke', 'agent')).code).toBe(0);
    await eventually(async () => !(await login()), 'the login fails');
    expect(node.stderr()).not.toContain(leased.password);
    expect(await node.stop('SIGTERM')).toBe(0);
  }, 90_000);
});
