import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../core/index.js';
import { randomBytes } from '../../crypto/index.js';
import { toHex } from '../../encoding/index.js';
import {
  ChainVerifier,
  chainFromCredential,
  constraintsToAttributes,
  parseConstraint,
  type VerifiedChain,
} from '../../credentials/index.js';
import { Gate, mandateCedarSchema, signBundle, ToolCatalog } from '../../gates/index.js';
import {
  Broker,
  JwtLeaseProvider,
  LeaseKind,
  PostgresRoleProvider,
  ProxyLeaseProvider,
  type LeaseProvider,
  type PostgresLeaseValue,
  type ProxyLeaseValue,
} from '../../broker/index.js';
import { EgressProxyService, StoreBundleSource, startLocalEgressProxy } from '../../node/index.js';
import {
  openSecureChannel,
  prepareChannelIdentity,
  SecureChannelListener,
  TrustPolicies,
} from '../../channel/index.js';
import { localAddress, MemoryNetwork, MemoryTransport, Router } from '../../routing/index.js';
import {
  AuditLog,
  LEASE_RECORD_TYPE,
  parseAuditRecord,
  verifyTrailExport,
} from '../../audit/index.js';
import { credentialIssuerOf, type Home } from '../home.js';
import { DEFAULT_AUTHORITY } from '../chains.js';
import { homeLogKey } from './audit.js';
import { exportLogLines, recordRevocations } from './demo-audit.js';
import { brokerIssuerOf } from './broker.js';
import { homeBrokerJwtKey } from './broker-jwks.js';
import { brokerAuditSink } from './lease.js';
import { DEMO_CATALOG, DEMO_POLICIES } from './demo-gates.js';

/** The shared server the demo tries for its PostgreSQL part (skipped when nothing answers). */
const DEMO_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** The leaseSecret permits step 17 adds to the bundle (kept by the later bundles). */
export const LEASE_POLICIES = `
@id("lease-payment-tokens")
permit(principal, action == Action::"leaseSecret", resource == Secret::"jwt/payments");

@id("inject-payments-upstream")
permit(principal, action == Action::"leaseSecret", resource == Secret::"proxy/payments-upstream");

@id("inject-refunds-upstream")
permit(principal, action == Action::"leaseSecret", resource == Secret::"proxy/refunds-upstream");

@id("readonly-database")
permit(principal, action == Action::"leaseSecret", resource == Secret::"postgres/readonly");
`;

export interface BrokerScenarioSummary {
  readonly seconds: number;
  readonly secrets: readonly string[];
  readonly tokens: {
    readonly billing: { readonly audience: string; readonly scope: string };
    readonly support: { readonly audience: string; readonly scope: string };
  };
  /** Upstream calls through the injecting proxy that carried the right secret. */
  readonly injectedCalls: number;
  /** Whether any byte the agents received held an upstream secret. */
  readonly secretSeenByAgents: boolean;
  readonly revocation: {
    readonly leasesRevoked: number;
    readonly jtiListed: boolean;
    readonly proxyAfter: number;
    /** `login failed`, or why the PostgreSQL part was skipped. */
    readonly postgres: string;
  };
  readonly leaseRecords: number;
  /** Records of the whole log, lease records included, verified after a new checkpoint. */
  readonly verifiedRecords: number;
}

function reachable(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(`nothing answers on ${host}:${port}`);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      resolve(`${host}:${port} is not reachable (${error.code ?? error.message})`);
    });
  });
}

/** An agent's HTTP call through its local proxy (absolute-form), as any HTTP client makes it. */
function callThrough(
  proxyPort: number,
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; raw: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: proxyPort, path: url, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            raw: `${JSON.stringify(res.headers)}\n${Buffer.concat(chunks).toString('latin1')}`,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Step 17 of the demo: the broker (gate 3). Two upstream secrets go into the sealed store; a
 * billing agent leases its payments token and a support agent a token scoped to refunds; both call
 * their upstream through the injecting proxy (each over its own secure channel) without ever
 * holding the secret; a compromised agent is revoked and its leases die at once. Every lease event
 * is in the audit log, which verifies afterwards.
 */
export async function runBrokerScenario(
  home: Home,
  clock: Clock,
  say: (text: string) => void,
): Promise<BrokerScenarioSummary> {
  const started = process.hrtime.bigint();
  const now = clock.nowSeconds();
  const authorityKnown = await home.identities.get(DEFAULT_AUTHORITY);
  const authority = home.authority(DEFAULT_AUTHORITY);
  const authorityId = authorityKnown.identity.identifier;

  // The upstream secrets (what `mandate secret put` stores), sealed with the vault's key.
  const secretText = {
    'payments-upstream': `sk_live_pay_${toHex(randomBytes(16))}`,
    'refunds-upstream': `sk_live_ref_${toHex(randomBytes(16))}`,
  } as const;
  const utf8 = new TextEncoder();
  for (const [name, value] of Object.entries(secretText))
    await home.secrets.put(name, utf8.encode(value));

  // A local upstream that accepts only the real secret in its header.
  const hits: { path: string; ok: boolean }[] = [];
  const upstream = await new Promise<ServerType>((resolve) => {
    const s = serve(
      {
        hostname: '127.0.0.1',
        port: 0,
        fetch: (request) => {
          const path = new URL(request.url).pathname;
          const auth = request.headers.get('authorization') ?? '';
          const ok =
            (path.startsWith('/charges') && auth === `Bearer ${secretText['payments-upstream']}`) ||
            (path.startsWith('/refunds') && auth === `Bearer ${secretText['refunds-upstream']}`);
          hits.push({ path, ok });
          return ok
            ? new Response(`accepted with ${auth}`)
            : new Response('unauthorized', { status: 401 });
        },
      },
      () => {
        resolve(s);
      },
    );
  });
  const host = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const bindings = (['payments-upstream', 'refunds-upstream'] as const).map((secret) => ({
    secret,
    host,
    scheme: 'http',
    header: { name: 'authorization', format: 'Bearer {secret}' },
  }));

  // The authority adds leaseSecret permits to the bundle (the tools' policies unchanged).
  const previous = await home.store.policyBundles.latestBundle();
  const bundleBytes = await signBundle(
    home.vault,
    await credentialIssuerOf(home, authorityKnown.identity),
    {
      policies: `${DEMO_POLICIES}${LEASE_POLICIES}`,
      schema: mandateCedarSchema({ tools: DEMO_CATALOG }),
      version: (previous?.version ?? 0) + 1,
      catalog: new ToolCatalog(DEMO_CATALOG),
    },
    { nowSeconds: now },
  );
  await home.store.policyBundles.publishBundle(bundleBytes, now);

  const cleanups: (() => Promise<void> | void)[] = [
    () =>
      new Promise<void>((resolve) => {
        upstream.close(() => {
          resolve();
        });
      }),
  ];
  const watcher = await home.watchDenySet({ clock, pollIntervalMs: 100 });
  cleanups.push(() => watcher.stop());
  try {
    const denySet = watcher.denySet;
    const authorities = await home.trustedAuthorities();
    const verifier = new ChainVerifier({ authorities, denySet });
    const agent = async (name: string, attrs: readonly string[]) => {
      const local = await home.identities.create({ name });
      await authority.addMember(
        authorityId,
        local.identity.identifier,
        constraintsToAttributes(new Map(attrs.map((a) => parseConstraint(a)))),
        { nowSeconds: now },
      );
      const credential = await authority.issueCredential(local.identity.identifier, now);
      const chain: VerifiedChain = verifier.verify(
        chainFromCredential(credential, local.identity),
        { nowSeconds: now, presenter: local.identity.identifier },
      );
      return { name, local, credential, chain };
    };
    const billing = await agent('billing-agent', [
      'secrets=jwt/payments,proxy/payments-upstream',
      'secret_scopes=charges',
    ]);
    const support = await agent('support-refunds-agent', [
      'secrets=jwt/payments,proxy/refunds-upstream',
      'secret_scopes=refunds',
    ]);
    const compromised = await agent('compromised-agent', [
      'secrets=jwt/payments,proxy/payments-upstream,postgres/readonly',
      'secret_scopes=charges',
    ]);

    // The broker: the home's token key, the proxy provider over the sealed store, PostgreSQL
    // roles when the shared server answers; decided by gate 3, audited in the home's log.
    const jwt = new JwtLeaseProvider({
      vault: home.vault,
      key: await homeBrokerJwtKey(home),
      issuer: brokerIssuerOf(authorityId),
      clock,
    });
    const proxy = new ProxyLeaseProvider({ secrets: home.secrets, bindings, clock });
    const providers: LeaseProvider[] = [jwt, proxy];
    const pgUrl = new URL(DEMO_POSTGRES_URL);
    let postgresSkipped = await reachable(pgUrl.hostname, Number(pgUrl.port));
    let postgres: PostgresRoleProvider | undefined;
    if (postgresSkipped === undefined) {
      postgres = new PostgresRoleProvider({ connectionString: DEMO_POSTGRES_URL, clock });
      providers.push(postgres);
      cleanups.push(() => postgres!.close());
    }
    const bundles = await StoreBundleSource.start({
      repository: home.store.policyBundles,
      authorities: () => home.trustedAuthorities(),
      maxStalenessSeconds: 60,
      clock,
    });
    cleanups.push(() => bundles.stop());
    const gate = new Gate({ bundles, denySet });
    const sink = await brokerAuditSink(home, DEFAULT_AUTHORITY);
    cleanups.push(() => sink.close());
    const broker = new Broker({
      leases: home.store.brokerLeases,
      decide: (chain, ask, o) => gate.decideLease(chain, ask, o),
      providers,
      audit: sink,
      clock,
    });
    say(
      `17. the broker (gate 3): 2 upstream secrets sealed in the store (${Object.keys(secretText).join(', ')}); the bundle v${(previous?.version ?? 0) + 1} adds leaseSecret permits`,
    );

    // JWT leases: each agent its own token, for its own scope.
    const claimsOf = (token: string) =>
      JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as {
        sub: string;
        aud: string;
        scope?: string;
        exp: number;
        jti: string;
      };
    const billingToken = await broker.lease<{ token: string }>(billing.chain, {
      kind: LeaseKind.jwt,
      resource: 'payments',
      scope: ['charges'],
    });
    const supportToken = await broker.lease<{ token: string }>(support.chain, {
      kind: LeaseKind.jwt,
      resource: 'payments',
      scope: ['refunds'],
    });
    const b = claimsOf(billingToken.value.token);
    const s = claimsOf(supportToken.value.token);
    say(
      `    billing-agent leases its payments token (aud ${b.aud}, scope ${b.scope ?? '-'}, exp in ${b.exp - now} s); support-refunds-agent a different one (scope ${s.scope ?? '-'}); each is sub of its own token, signed with the broker's key (JWKS: mandate broker jwks)`,
    );
    const wider = await broker
      .lease(support.chain, { kind: LeaseKind.jwt, resource: 'payments', scope: ['charges'] })
      .then(
        () => 'ALLOWED',
        (error: unknown) => (error as { code?: string }).code ?? 'refused',
      );
    say(`    support-refunds-agent asks for scope charges → ${wider} (the chain lock)`);

    // Injection: the broker node's egress service and each agent's local proxy, over secure
    // channels (in memory).
    const network = new MemoryNetwork();
    const brokerRouter = new Router();
    const brokerTransport = new MemoryTransport(brokerRouter, network);
    brokerTransport.listen('broker');
    cleanups.push(() => brokerRouter.close());
    const brokerLocal = await home.identities.create({ name: 'demo-broker' });
    const listener = new SecureChannelListener(brokerRouter, {
      ...(await prepareChannelIdentity(home.vault, {
        identity: brokerLocal.identity,
        primaryKeyId: brokerLocal.primaryKeyId,
        nowSeconds: now,
      })),
      verify: { authorities, denySet, trustPolicy: TrustPolicies.credentialHolder() },
      deliverTo: ['egress'],
    });
    brokerRouter.allowFromAnyConnection('api');
    cleanups.push(() => listener.close());
    const egress = new EgressProxyService(brokerRouter, {
      provider: proxy,
      audit: {
        record: async ({ lease }) => {
          await broker.used(lease.id);
        },
      },
      clock,
    });
    cleanups.push(() => egress.close());
    const proxyFor = async (who: Awaited<ReturnType<typeof agent>>) => {
      const router = new Router();
      cleanups.push(() => router.close());
      const transport = new MemoryTransport(router, network);
      const connection = transport.connect('broker');
      const channel = await openSecureChannel(
        router,
        [localAddress(connection), localAddress('api')],
        {
          ...(await prepareChannelIdentity(home.vault, {
            identity: who.local.identity,
            primaryKeyId: who.local.primaryKeyId,
            credentials: [who.credential],
            nowSeconds: now,
          })),
          verify: {
            authorities,
            denySet,
            knownIdentities: new Map([[brokerLocal.identity.identifier, brokerLocal.identity]]),
            trustPolicy: TrustPolicies.identifier(brokerLocal.identity.identifier),
          },
          handshakeTimeoutMs: 5_000,
        },
      );
      cleanups.push(() => channel.close());
      const local = await startLocalEgressProxy({
        router,
        channel,
        listen: { host: '127.0.0.1', port: 0 },
        timeoutMs: 2_000,
      });
      cleanups.push(() => local.close());
      return local.port;
    };
    const seen: string[] = [];
    let injected = 0;
    for (const [who, secret, path] of [
      [billing, 'payments-upstream', '/charges/ch_4471'],
      [support, 'refunds-upstream', '/refunds/re_4471'],
    ] as const) {
      const granted = await broker.lease<ProxyLeaseValue>(who.chain, {
        kind: LeaseKind.proxy,
        resource: secret,
      });
      seen.push(JSON.stringify(granted.value));
      const port = await proxyFor(who);
      const answer = await callThrough(port, `http://${granted.value.host}${path}`);
      seen.push(answer.raw);
      if (answer.status === 200) injected++;
    }
    const values = Object.values(secretText);
    const secretSeen = seen.some((text) => values.some((v) => text.includes(v)));
    say(
      `    both call ${host} through the injecting proxy over their secure channels: ${injected}/2 accepted by the upstream (it checks the real secret); bytes the agents received that held a secret: ${secretSeen ? 'SOME' : 'none'} (the answers show it as [mandate-redacted])`,
    );
    if (secretSeen || injected !== 2) throw new Error('the injection step did not hold');

    // The compromised agent: a token, an injection lease, a database login (when possible).
    const cToken = await broker.lease<{ token: string }>(compromised.chain, {
      kind: LeaseKind.jwt,
      resource: 'payments',
      scope: ['charges'],
    });
    await broker.lease(compromised.chain, { kind: LeaseKind.proxy, resource: 'payments-upstream' });
    const cPort = await proxyFor(compromised);
    const beforeCall = await callThrough(cPort, `http://${host}/charges/ch_9000`);
    let login: (() => Promise<boolean>) | undefined;
    if (postgres !== undefined) {
      try {
        const role = await broker.lease<PostgresLeaseValue>(compromised.chain, {
          kind: LeaseKind.postgres,
          resource: 'readonly',
        });
        const pg = await import('pg');
        login = async () => {
          const client = new pg.default.Client({
            host: pgUrl.hostname,
            port: Number(pgUrl.port),
            user: role.value.user,
            password: role.value.password,
            database: role.value.database,
          });
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
      } catch (error) {
        postgresSkipped = `the PostgreSQL lease failed (${(error as { code?: string }).code ?? 'error'})`;
      }
    }
    const loggedIn = login === undefined ? undefined : await login();
    say(
      `    compromised-agent holds a token, an injection lease (its call → ${beforeCall.status})${loggedIn === undefined ? '' : ` and a database login (works: ${loggedIn ? 'yes' : 'no'})`}`,
    );

    // Revoked: the deny-set cascade ends every lease under its identity at once.
    const t = process.hrtime.bigint();
    const at = clock.nowSeconds();
    const revocation = await home.denySetRepository.append(
      [
        {
          kind: 'identity',
          id: compromised.local.identity.identifier,
          revokedAt: at,
          expiresAt: at + 10 * 365 * 86_400,
          reason: 'demo: compromised agent',
        },
      ],
      at,
    );
    const ended = await broker.revokeMatching([compromised.local.identity.identifier]);
    const cascadeMs = Number(process.hrtime.bigint() - t) / 1e6;
    const cJti = claimsOf(cToken.value.token).jti;
    const listed = jwt.revokedJtis().some((r) => r.jti === cJti);
    const afterCall = await callThrough(cPort, `http://${host}/charges/ch_9001`).catch(() => ({
      status: 0,
      raw: '',
    }));
    const loginAfter = login === undefined ? undefined : await login();
    const pgText =
      loginAfter === undefined
        ? `PostgreSQL part skipped: ${postgresSkipped ?? 'no provider'}`
        : loginAfter
          ? 'database login STILL WORKS'
          : 'its database login fails (role dropped, sessions ended)';
    say(
      `    compromised-agent revoked: ${ended.length} leases ended in ${cascadeMs.toFixed(1)} ms; its token's jti is on the broker's /revoked list (${listed ? 'yes' : 'NO'}): relying parties refuse it at their next check of /revoked, or at exp at the latest; its proxied call → ${afterCall.status === 0 ? 'refused' : afterCall.status}; ${pgText}`,
    );

    // Every lease event is in the audit log, with the revocation (as `mandate revoke` records
    // it), and the whole log, checkpointed again, verifies offline.
    const logKey = await homeLogKey(home, DEFAULT_AUTHORITY);
    const log = await AuditLog.open({ repository: home.store.auditLog, origin: logKey.origin });
    let leaseRecords = 0;
    let verifiedRecords = 0;
    try {
      const authorityIssuer = await credentialIssuerOf(home, authorityKnown.identity);
      await recordRevocations(home, log, authorityIssuer, revocation, at);
      const note = await log.checkpoint([logKey.signer()]);
      const lines = await exportLogLines(home, log.size, (record) => {
        if (isLeaseRecord(record)) leaseRecords++;
      });
      const verdict = verifyTrailExport({
        text: `${lines.join('\n')}\n`,
        checkpoint: note,
        verifiers: [logKey.verifier],
        authorities: await home.trustedAuthorities(),
        enforcers: new Map([[authorityId, authorityKnown.identity]]),
      });
      if (!verdict.ok)
        throw new Error(
          `the log with the lease records did not verify: ${verdict.problem.code} ${verdict.problem.message}`,
        );
      verifiedRecords = verdict.summary.records;
    } finally {
      await log.close();
    }
    say(`    (step 17 took ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(2)} s)`);
    say(
      `    ${leaseRecords} lease records (granted, used, revoked) in the audit log, by lease id, never a value; the whole log (${verifiedRecords} records) checkpointed again and verified → ok`,
    );
    return {
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
      secrets: Object.keys(secretText),
      tokens: {
        billing: { audience: b.aud, scope: b.scope ?? '' },
        support: { audience: s.aud, scope: s.scope ?? '' },
      },
      injectedCalls: injected,
      secretSeenByAgents: secretSeen,
      revocation: {
        leasesRevoked: ended.length,
        jtiListed: listed,
        proxyAfter: afterCall.status,
        postgres:
          loginAfter === undefined
            ? `skipped: ${postgresSkipped ?? 'no provider'}`
            : loginAfter
              ? 'login still works'
              : 'login failed',
      },
      leaseRecords,
      verifiedRecords,
    };
  } finally {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  }
}

/** Whether an entry is a lease record (other record families, e.g. revocations, are not). */
function isLeaseRecord(record: Uint8Array): boolean {
  try {
    return parseAuditRecord(record).type === LEASE_RECORD_TYPE;
  } catch {
    return false;
  }
}
