import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, type LogFields } from '../../src/core/index.js';
import { openHome, credentialIssuerOf, type Home } from '../../src/cli/home.js';
import { startHomeDashboard } from '../../src/cli/commands/dashboard.js';
import { homeLogKey } from '../../src/cli/commands/audit.js';
import { signAdminChallenge, type AdminHttp } from '../../src/node/index.js';
import {
  hashLeaf,
  verifyCheckpoint,
  verifyInclusion,
  type AuditLogRepository,
} from '../../src/audit/index.js';
import { decodeBase64Strict } from '../../src/encoding/index.js';
import { verifyApprovalAnswer, type ApprovalRecord } from '../../src/gates/index.js';
import { DASHBOARD_NOW, dashboardWorld, type DashboardHome } from '../helpers/dashboard-world.js';

// The admin API over a real home (made through the CLI, with a real audit log): its refusals
// (no session, a reused login token, a cross-origin or CSRF-less state change, a foreign Host,
// a forged challenge answer) and each endpoint's data, checked against the home itself.

let h: DashboardHome;
let approvalId: string;
let home: Home;
let http: AdminHttp;
const logged: { message: string; fields: string }[] = [];
const clock = new ManualClock(DASHBOARD_NOW);

beforeAll(async () => {
  ({ h, approval: approvalId } = await dashboardWorld());
  home = await openHome(h.dir, { clock });
  const record = (message: string, fields?: LogFields) => {
    logged.push({ message, fields: JSON.stringify(fields ?? {}) });
  };
  ({ http } = await startHomeDashboard(home, {
    as: 'approver',
    authority: 'authority',
    clock,
    logger: { debug: record, info: record, warn: record, error: record },
    streamPollMs: 50,
  }));
}, 60_000);

afterAll(async () => {
  await http.close();
  home.close();
  delete process.env.MANDATE_NOW_SECONDS;
});

const tokenOf = (url: string) => new URL(url).hash.replace(/^#token=/, '');

async function login(): Promise<{ cookie: string; csrf: string }> {
  const token = tokenOf(http.loginUrl());
  const r = await fetch(`${http.url}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: http.url },
    body: JSON.stringify({ token }),
  });
  expect(r.status).toBe(200);
  const setCookie = r.headers.get('set-cookie') ?? '';
  expect(setCookie).toMatch(/HttpOnly/);
  expect(setCookie).toMatch(/SameSite=Strict/);
  const body = (await r.json()) as { csrf: string; operator: string };
  return { cookie: setCookie.split(';')[0]!, csrf: body.csrf };
}

async function get<T>(path: string, cookie: string): Promise<T> {
  const r = await fetch(`${http.url}${path}`, { headers: { cookie } });
  expect(r.status, path).toBe(200);
  return (await r.json()) as T;
}

const errorCode = async (r: Response) =>
  ((await r.json()) as { error: { code: string } }).error.code;

describe('admin API authentication', () => {
  it('refuses every view without a session', async () => {
    for (const path of [
      '/api/agents',
      '/api/graph',
      '/api/audit',
      '/api/approvals',
      '/api/leases',
      '/api/events',
      '/api/session',
    ]) {
      const r = await fetch(`${http.url}${path}`);
      expect(r.status, path).toBe(401);
      expect(await errorCode(r)).toBe('ERR_ADMIN_UNAUTHENTICATED');
    }
    const forged = await fetch(`${http.url}/api/agents`, {
      headers: { cookie: 'mandate_admin=forged' },
    });
    expect(forged.status).toBe(401);
  });

  it('takes a login token once, binds the session to the operator, and never logs the token', async () => {
    const token = tokenOf(http.loginUrl());
    const post = () =>
      fetch(`${http.url}/api/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
      });
    const first = await post();
    expect(first.status).toBe(200);
    const operator = (await home.identities.get('approver')).identity.identifier;
    expect(((await first.json()) as { operator: string }).operator).toBe(operator);
    const again = await post();
    expect(again.status).toBe(401);
    expect(await errorCode(again)).toBe('ERR_ADMIN_LOGIN_INVALID');
    const cookie = (first.headers.get('set-cookie') ?? '').split(';')[0]!;
    expect(logged.some((l) => l.message === 'admin login')).toBe(true);
    for (const l of logged) {
      expect(l.fields).not.toContain(token);
      expect(l.fields).not.toContain(cookie.split('=')[1]!);
    }
  });

  it('refuses an expired login token', async () => {
    const token = tokenOf(http.loginUrl());
    clock.advance(16 * 60);
    try {
      const r = await fetch(`${http.url}/api/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
      });
      expect(await errorCode(r)).toBe('ERR_ADMIN_LOGIN_INVALID');
    } finally {
      clock.advance(-16 * 60);
    }
  });

  it('refuses a cross-origin or CSRF-less state change, a form body, and a foreign Host', async () => {
    const { cookie, csrf } = await login();
    const answer = (
      headers: Record<string, string>,
      body = JSON.stringify({ decision: 'approve', reason: 'ok' }),
    ) =>
      fetch(`${http.url}/api/approvals/${approvalId}`, {
        method: 'POST',
        headers: { cookie, ...headers },
        body,
      });
    const crossSite = await answer({
      'content-type': 'application/json',
      'x-mandate-csrf': csrf,
      origin: 'http://evil.example',
    });
    expect(crossSite.status).toBe(403);
    expect(await errorCode(crossSite)).toBe('ERR_ADMIN_ORIGIN_REFUSED');
    const noCsrf = await answer({ 'content-type': 'application/json', origin: http.url });
    expect(noCsrf.status).toBe(403);
    expect(await errorCode(noCsrf)).toBe('ERR_ADMIN_CSRF');
    const wrongCsrf = await answer({
      'content-type': 'application/json',
      'x-mandate-csrf': 'x'.repeat(43),
    });
    expect(await errorCode(wrongCsrf)).toBe('ERR_ADMIN_CSRF');
    const form = await answer(
      { 'content-type': 'application/x-www-form-urlencoded', 'x-mandate-csrf': csrf },
      'decision=approve&reason=ok',
    );
    expect(await errorCode(form)).toBe('ERR_ADMIN_REQUEST_INVALID');
    // Nothing was answered.
    expect((await home.store.approvals.get(approvalId))?.status).toBe('pending');
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(http.url);
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          path: '/api/agents',
          headers: { host: 'rebound.example:80', cookie },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });

  it('refuses a body naming a key twice or a key the endpoint does not take', async () => {
    const { cookie, csrf } = await login();
    const post = (path: string, body: string, headers: Record<string, string> = {}) =>
      fetch(`${http.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: http.url, ...headers },
        body,
      });
    const answer = (body: string) =>
      post(`/api/approvals/${approvalId}`, body, { cookie, 'x-mandate-csrf': csrf });
    for (const body of [
      // JavaScript keeps the last: this would approve.
      '{"decision":"deny","reason":"x","decision":"approve"}',
      '{"decision":"deny","reason":"x","\\u0064ecision":"approve"}',
      '{"decision":"approve","reason":"x","approver":"dana"}',
      '{"decision":"approve","reason":"x","as":"dana"}',
      '{"decision":"approve","reason":"x","__proto__":{}}',
    ]) {
      const r = await answer(body);
      expect(r.status, body).toBe(400);
      expect(await errorCode(r), body).toBe('ERR_ADMIN_REQUEST_INVALID');
    }
    expect((await home.store.approvals.get(approvalId))?.status).toBe('pending');

    const token = tokenOf(http.loginUrl());
    for (const body of [
      JSON.stringify({ token, as: 'dana' }),
      `{"token":"x","token":${JSON.stringify(token)}}`,
    ]) {
      const r = await post('/api/login', body);
      expect(r.status, body).toBe(400);
      expect(await errorCode(r), body).toBe('ERR_ADMIN_REQUEST_INVALID');
    }
    // Refused before the token was looked at: it still logs in once.
    expect((await post('/api/login', JSON.stringify({ token }))).status).toBe(200);

    const { challenge } = (await (await fetch(`${http.url}/api/challenge`)).json()) as {
      challenge: string;
    };
    const signed = await signAdminChallenge({
      challenge,
      origin: http.url,
      signer: await credentialIssuerOf(home, 'approver'),
      vault: home.vault,
      nowSeconds: clock.nowSeconds(),
    });
    const extra = await post('/api/challenge', JSON.stringify({ ...signed, operator: 'x' }));
    expect(extra.status).toBe(400);
    expect(await errorCode(extra)).toBe('ERR_ADMIN_REQUEST_INVALID');
    expect((await post('/api/challenge', JSON.stringify(signed))).status).toBe(200);
  });

  it('a script logs in by signing a challenge with the operator credential key; a forged or replayed answer is refused', async () => {
    const challenge = async () =>
      ((await (await fetch(`${http.url}/api/challenge`)).json()) as { challenge: string })
        .challenge;
    const send = (answer: unknown) =>
      fetch(`${http.url}/api/challenge`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(answer),
      });
    const sign = async (who: string, c: string, origin = http.url) =>
      signAdminChallenge({
        challenge: c,
        origin,
        signer: await credentialIssuerOf(home, who),
        vault: home.vault,
        nowSeconds: clock.nowSeconds(),
      });
    const operator = (await home.identities.get('approver')).identity.identifier;
    // Another identity's key, claiming to be the operator.
    const other = await sign('agent', await challenge());
    const claimed = await send({ ...other, identifier: operator });
    expect(claimed.status).toBe(401);
    expect(await errorCode(claimed)).toBe('ERR_ADMIN_CHALLENGE_INVALID');
    // The operator's answer with one signature byte flipped.
    const good = await sign('approver', await challenge());
    const flipped = good.signature.slice(0, -2) + (good.signature.endsWith('00') ? '01' : '00');
    expect(await errorCode(await send({ ...good, signature: flipped }))).toBe(
      'ERR_ADMIN_CHALLENGE_INVALID',
    );
    // Signed for another API's origin.
    const elsewhere = await sign('approver', await challenge(), 'http://127.0.0.1:1');
    expect(await errorCode(await send(elsewhere))).toBe('ERR_ADMIN_CHALLENGE_INVALID');
    // A challenge this API never issued.
    expect(await errorCode(await send(await sign('approver', 'A'.repeat(43))))).toBe(
      'ERR_ADMIN_CHALLENGE_INVALID',
    );
    // The real one: a bearer token; its challenge cannot be used twice.
    const fresh = await sign('approver', await challenge());
    const ok = await send(fresh);
    expect(ok.status).toBe(200);
    const { token } = (await ok.json()) as { token: string };
    const agents = await fetch(`${http.url}/api/agents`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(agents.status).toBe(200);
    expect(await errorCode(await send(fresh))).toBe('ERR_ADMIN_CHALLENGE_INVALID');
  });

  it('a refused challenge answer reads the same whatever the cause (no probing for the operator); the cause goes to the local log only', async () => {
    const challenge = async () =>
      ((await (await fetch(`${http.url}/api/challenge`)).json()) as { challenge: string })
        .challenge;
    const refusal = async (answer: unknown) => {
      const r = await fetch(`${http.url}/api/challenge`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(answer),
      });
      expect(r.status).toBe(401);
      return ((await r.json()) as { error: unknown }).error;
    };
    const sign = async (who: string, c: string) =>
      signAdminChallenge({
        challenge: c,
        origin: http.url,
        signer: await credentialIssuerOf(home, who),
        vault: home.vault,
        nowSeconds: clock.nowSeconds(),
      });
    const operator = (await home.identities.get('approver')).identity.identifier;
    const from = logged.length;
    const agentAnswer = await sign('agent', await challenge());
    const refusals = [
      // Not the operator: a valid answer by another identity.
      await refusal(agentAnswer),
      // The operator's identifier, someone else's signature.
      await refusal({ ...(await sign('agent', await challenge())), identifier: operator }),
      // Unknown challenge; malformed answer.
      await refusal(await sign('approver', 'A'.repeat(43))),
      await refusal({ ...(await sign('approver', await challenge())), keyType: 'rsa' }),
    ];
    expect(refusals[0]).toEqual({
      code: 'ERR_ADMIN_CHALLENGE_INVALID',
      kind: 'unauthorized',
      message: 'the challenge answer does not verify',
    });
    for (const r of refusals) expect(r).toEqual(refusals[0]);
    // The local log says why, and holds no challenge or signature.
    const reasons = logged
      .slice(from)
      .filter((l) => l.message === 'admin challenge refused')
      .map((l) => l.fields);
    expect(reasons).toHaveLength(4);
    expect(reasons[0]).toContain('not the operator');
    expect(reasons[1]).toContain('signature');
    for (const fields of logged.slice(from).map((l) => l.fields)) {
      expect(fields).not.toContain(agentAnswer.challenge);
      expect(fields).not.toContain(agentAnswer.signature);
    }
  });
});

describe('admin API rate limits', () => {
  it('a flood of challenges and bad logins gets 429 with Retry-After; the operator who asked before it still logs in', async () => {
    const limited = await startHomeDashboard(home, {
      as: 'approver',
      authority: 'authority',
      clock,
      logger: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
      rateLimits: {
        challengeBurst: 3,
        challengesPerSecond: 1,
        refusedLoginBurst: 2,
        refusedLoginsPerSecond: 1,
      },
    });
    try {
      const url = limited.http.url;
      const askChallenge = () => fetch(`${url}/api/challenge`);
      const post = (path: string, body: unknown) =>
        fetch(`${url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      // The operator asks first (and holds a login link), then the flood comes.
      const token = tokenOf(limited.http.loginUrl());
      const { challenge } = (await (await askChallenge()).json()) as { challenge: string };
      const statuses: number[] = [];
      let refused: Response | undefined;
      for (let i = 0; i < 20; i++) {
        const r = await askChallenge();
        statuses.push(r.status);
        if (r.status === 429) refused = r;
        else await r.body?.cancel();
      }
      expect(statuses.filter((s) => s === 200)).toHaveLength(2);
      expect(statuses.filter((s) => s === 429)).toHaveLength(18);
      expect(refused?.headers.get('retry-after')).toBe('1');
      expect(refused?.headers.get('cache-control')).toBe('no-store');
      expect(((await refused!.json()) as { error: unknown }).error).toEqual({
        code: 'ERR_ADMIN_RATE_LIMITED',
        kind: 'exhausted',
        message: 'too many challenges: try again in 1 s',
      });
      const junk: string[] = [];
      for (let i = 0; i < 5; i++) {
        junk.push(await errorCode(await post('/api/login', { token: `guess-${i}` })));
        junk.push(
          await errorCode(
            await post('/api/challenge', {
              challenge: `guess-${i}`,
              identifier: 'I00',
              keyType: 'ed25519',
              signature: '00',
              attestation: '00',
            }),
          ),
        );
      }
      expect(junk.slice(0, 2)).toEqual(['ERR_ADMIN_LOGIN_INVALID', 'ERR_ADMIN_CHALLENGE_INVALID']);
      expect(new Set(junk.slice(2))).toEqual(new Set(['ERR_ADMIN_RATE_LIMITED']));
      // Every limit spent, the operator's answer and its login token still go through.
      const signed = await signAdminChallenge({
        challenge,
        origin: url,
        signer: await credentialIssuerOf(home, 'approver'),
        vault: home.vault,
        nowSeconds: clock.nowSeconds(),
      });
      const answered = await post('/api/challenge', signed);
      expect(answered.status).toBe(200);
      const bearer = ((await answered.json()) as { token: string }).token;
      const agents = await fetch(`${url}/api/agents`, {
        headers: { authorization: `Bearer ${bearer}` },
      });
      expect(agents.status).toBe(200);
      expect((await post('/api/login', { token })).status).toBe(200);
      expect((await askChallenge()).status).toBe(429);
      // A second later the limit lets one more through.
      clock.advance(1);
      try {
        expect((await askChallenge()).status).toBe(200);
        expect((await askChallenge()).status).toBe(429);
      } finally {
        clock.advance(-1);
      }
    } finally {
      await limited.http.close();
    }
  });
});

describe('admin API data', () => {
  it('agents: the members with their attributes', async () => {
    const { cookie } = await login();
    const { agents } = await get<{
      agents: { name: string; attributes: Record<string, string>; human: boolean }[];
    }>('/api/agents', cookie);
    const dana = agents.find((a) => a.name === 'dana');
    expect(dana).toMatchObject({ human: true, attributes: { tools: '=issue_refund,read_orders' } });
    expect(agents.map((a) => a.name).sort()).toEqual(['approver', 'dana']);
  });

  it('agents: in pages of `limit` from `offset`, with the total', async () => {
    const { cookie } = await login();
    const all = await get<{ total: number; offset: number; limit: number; agents: unknown[] }>(
      '/api/agents',
      cookie,
    );
    expect([all.total, all.offset, all.limit, all.agents.length]).toEqual([2, 0, 100, 2]);
    const second = await get<typeof all>('/api/agents?offset=1&limit=1', cookie);
    expect([second.total, second.offset, second.limit]).toEqual([2, 1, 1]);
    expect(second.agents).toEqual([all.agents[1]]);
    expect((await get<typeof all>('/api/agents?offset=5', cookie)).agents).toEqual([]);
    for (const bad of ['limit=0', 'limit=1001', 'offset=-1', 'offset=x']) {
      const r = await fetch(`${http.url}/api/agents?${bad}`, { headers: { cookie } });
      expect(await errorCode(r), bad).toBe('ERR_ADMIN_REQUEST_INVALID');
    }
  });

  it('graph: dana → agent → sub, the revoked branch marked', async () => {
    const { cookie } = await login();
    const graph = await get<{
      nodes: { id: string; name: string; revoked: boolean; inRevokedBranch: boolean }[];
      edges: { from: string; to: string; revoked: boolean }[];
      unlinkedMembers: number;
    }>('/api/graph', cookie);
    const id = async (name: string) => (await home.identities.get(name)).identity.identifier;
    const [dana, agent, sub] = [await id('dana'), await id('agent'), await id('sub')];
    // The identities on a logged chain only: `approver`, a member on none, is counted, not sent.
    expect(graph.nodes.map((n) => n.id).sort()).toEqual([dana, agent, sub].sort());
    expect(graph.unlinkedMembers).toBe(1);
    expect(graph.edges).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ from: dana, to: agent, revoked: false }),
        expect.objectContaining({ from: agent, to: sub, revoked: true }),
      ]),
    );
    expect(graph.nodes.find((n) => n.id === sub)).toMatchObject({
      name: 'sub',
      revoked: true,
      inRevokedBranch: true,
    });
    expect(graph.nodes.find((n) => n.id === agent)).toMatchObject({
      revoked: false,
      inRevokedBranch: false,
    });
  });

  it('audit: search with paging; each call with its chain, decision, approval and proofs that verify against the signed checkpoint', async () => {
    const { cookie } = await login();
    const all = await get<{ total: number; calls: unknown[] }>('/api/audit', cookie);
    expect(all.total).toBe(4);
    const denied = await get<{
      total: number;
      calls: { decision: { decision: string; lock: string } }[];
    }>('/api/audit?decision=deny', cookie);
    expect(denied.total).toBe(1);
    expect(denied.calls[0]!.decision).toMatchObject({ decision: 'deny', lock: 'chain' });
    const paged = await get<{ total: number; calls: unknown[] }>(
      '/api/audit?tool=issue_refund&limit=2&offset=2',
      cookie,
    );
    expect([paged.total, paged.calls.length]).toEqual([3, 1]);
    expect((await get<{ total: number }>('/api/audit?agent=sub', cookie)).total).toBe(1);
    expect(
      (await get<{ total: number }>(`/api/audit?since=${DASHBOARD_NOW + 1}`, cookie)).total,
    ).toBe(0);
    const bad = await fetch(`${http.url}/api/audit?limit=100000`, { headers: { cookie } });
    expect(await errorCode(bad)).toBe('ERR_ADMIN_REQUEST_INVALID');

    const page = await get<{
      checkpoint: { treeSize: number; note: string };
      calls: {
        path: string[];
        decision: { decision: string; escalation: { id: string } | null };
        approval: ApprovalRecord | null;
        proofs: Record<
          'invocation' | 'decision',
          { index: number; treeSize: number; record: string; hashes: string[] } | null
        >;
      }[];
    }>('/api/audit?decision=approval_required', cookie);
    const call = page.calls[0]!;
    expect(call.approval?.id).toBe(approvalId);
    expect(call.path).toHaveLength(2);
    const key = await homeLogKey(home, 'authority');
    const checkpoint = verifyCheckpoint(page.checkpoint.note, [key.verifier], {
      origin: key.origin,
    });
    const repository: AuditLogRepository = home.store.auditLog;
    for (const proof of [call.proofs.invocation!, call.proofs.decision!]) {
      const record = decodeBase64Strict(proof.record, 'base64')!;
      const [stored] = await repository.readEntries(proof.index, proof.index + 1);
      expect(record).toEqual(stored!.record);
      verifyInclusion(
        proof.index,
        checkpoint.treeSize,
        hashLeaf(record),
        proof.hashes.map((x) => decodeBase64Strict(x, 'base64')!),
        checkpoint.rootHash,
      );
    }
  });

  it('live stream: the decisions of the log, then each new one as it is appended', async () => {
    const { cookie } = await login();
    const controller = new AbortController();
    const r = await fetch(`${http.url}/api/events`, {
      headers: { cookie },
      signal: controller.signal,
    });
    expect(r.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = r.body!.getReader();
    let text = '';
    const until = async (done: (t: string) => boolean) => {
      while (!done(text)) {
        const chunk = await reader.read();
        if (chunk.done) break;
        text += new TextDecoder().decode(chunk.value as Uint8Array);
      }
    };
    await until((t) => (t.match(/event: decision/g) ?? []).length >= 4);
    expect(text).toContain('"decision":"deny"');
    expect(text).toContain('"tool":"read_orders"');
    // A new call through the CLI (another writer of the log) streams in.
    expect((await h.call('agent', 'read_orders', { order: 'o-9' })).code).toBe(0);
    await until((t) => (t.match(/event: decision/g) ?? []).length >= 5);
    controller.abort();
  });

  /** An open `/api/events` stream and what it has sent so far. */
  async function openStream(auth: Record<string, string>) {
    const controller = new AbortController();
    const r = await fetch(`${http.url}/api/events`, { headers: auth, signal: controller.signal });
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    const s = {
      text: '',
      ended: false,
      close: () => {
        controller.abort();
      },
    };
    /** Reads until `done(text)` or the stream ends; a stream still open after `guardMs` is a failure. */
    const until = async (done: (t: string) => boolean, guardMs = 10_000) => {
      let cancelled = false;
      const deadline = setTimeout(() => {
        cancelled = true;
        void reader.cancel();
      }, guardMs);
      try {
        while (!s.ended && !cancelled && !done(s.text)) {
          const chunk = await reader.read();
          if (chunk.done) s.ended = !cancelled;
          else s.text += new TextDecoder().decode(chunk.value as Uint8Array);
        }
      } finally {
        clearTimeout(deadline);
      }
    };
    return Object.assign(s, { until });
  }
  const ids = (text: string) => [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));

  it('live stream: a logout ends the session’s open streams at once', async () => {
    const { cookie, csrf } = await login();
    const other = await login();
    const stream = await openStream({ cookie });
    const bystander = await openStream({ cookie: other.cookie });
    try {
      await stream.until((t) => t.includes('event: decision'));
      await bystander.until((t) => t.includes('event: decision'));
      const out = await fetch(`${http.url}/api/logout`, {
        method: 'POST',
        headers: { cookie, 'x-mandate-csrf': csrf, origin: http.url },
      });
      expect(out.status).toBe(200);
      // The stream closes by itself (the guard's cancel leaves `ended` false).
      await stream.until(() => false);
      expect(stream.ended).toBe(true);
      // Another session's stream stays open.
      expect(bystander.ended).toBe(false);
      const again = await fetch(`${http.url}/api/events`, { headers: { cookie } });
      expect(await errorCode(again)).toBe('ERR_ADMIN_UNAUTHENTICATED');
    } finally {
      stream.close();
      bystander.close();
    }
  });

  it('live stream: a session that expires sends no further decision and its stream ends', async () => {
    const { cookie } = await login();
    const stream = await openStream({ cookie });
    await stream.until((t) => t.includes('event: decision'));
    const size = await home.store.auditLog.size();
    clock.advance(13 * 3600); // past the session's 12 hours
    try {
      expect((await h.call('agent', 'read_orders', { order: 'o-10' })).code).toBe(0);
      await stream.until(() => false);
      expect(stream.ended).toBe(true);
      expect(ids(stream.text).filter((i) => i >= size)).toEqual([]);
    } finally {
      clock.advance(-13 * 3600);
      stream.close();
    }
  });

  it('live stream: at most 4 open streams per session (beside the 32 in all), so one session cannot take every slot', async () => {
    const { cookie } = await login();
    const controllers = Array.from({ length: 5 }, () => new AbortController());
    try {
      // Asked for at once: the count is taken as each is opened, not once its backlog is read.
      const answers = await Promise.all(
        controllers.map((controller) =>
          fetch(`${http.url}/api/events`, { headers: { cookie }, signal: controller.signal }),
        ),
      );
      expect(answers.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 400]);
      const refused = answers.find((r) => r.status === 400)!;
      expect(((await refused.json()) as { error: unknown }).error).toEqual({
        code: 'ERR_ADMIN_REQUEST_INVALID',
        kind: 'invalid',
        message: 'at most 4 live streams per session at once',
      });
      // Another session still opens one.
      const other = await openStream({ cookie: (await login()).cookie });
      other.close();
    } finally {
      for (const controller of controllers) controller.abort();
    }
  });

  it('approvals: approve as the operator — the same signed record the CLI makes — and the waiting call goes through', async () => {
    const { cookie, csrf } = await login();
    const { approvals } = await get<{ approvals: { id: string; status: string }[] }>(
      '/api/approvals?status=pending',
      cookie,
    );
    expect(approvals.map((a) => a.id)).toEqual([approvalId]);
    const r = await fetch(`${http.url}/api/approvals/${approvalId}`, {
      method: 'POST',
      headers: {
        cookie,
        'content-type': 'application/json',
        'x-mandate-csrf': csrf,
        origin: http.url,
      },
      body: JSON.stringify({ decision: 'approve', reason: 'customer verified by phone' }),
    });
    expect(r.status).toBe(200);
    const answered = (await r.json()) as ApprovalRecord;
    expect(answered.status).toBe('approved');
    const stored = (await home.store.approvals.get(approvalId))!;
    expect(stored.answer).toEqual(answered.answer);
    const approver = (await home.identities.get('approver')).identity.identifier;
    expect(
      verifyApprovalAnswer(stored, DASHBOARD_NOW, { authorities: await home.trustedAuthorities() })
        .approver,
    ).toBe(approver);
    const again = await fetch(`${http.url}/api/approvals/${approvalId}`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', 'x-mandate-csrf': csrf },
      body: JSON.stringify({ decision: 'deny', reason: 'too late' }),
    });
    expect(again.status).toBe(409);
    expect(await errorCode(again)).toBe('ERR_APPROVAL_CLOSED');
    const through = await h.call('agent', 'issue_refund', { order: 'o-2', amount: 300 });
    expect(through.code).toBe(0);
  });

  it('leases: the list with expiry (none in this home), bad filters refused', async () => {
    const { cookie } = await login();
    const leases = await get<{ now: number; leases: unknown[] }>('/api/leases', cookie);
    expect(leases).toEqual({ now: DASHBOARD_NOW, leases: [] });
    const bad = await fetch(`${http.url}/api/leases?state=nope`, { headers: { cookie } });
    expect(await errorCode(bad)).toBe('ERR_ADMIN_REQUEST_INVALID');
  });

  // Last in the file: it revokes the operator.
  it('the operator revoked: its session ends at its next request, and its open streams with it', async () => {
    const { cookie } = await login();
    const stream = await openStream({ cookie });
    await stream.until((t) => t.includes('event: decision'));
    await h.ok('revoke', 'approver');
    const refused = await fetch(`${http.url}/api/agents`, { headers: { cookie } });
    expect(refused.status).toBe(403);
    expect(await errorCode(refused)).toBe('ERR_REVOKED');
    await stream.until(() => false);
    expect(stream.ended).toBe(true);
    // The session is over: the next request is not even authenticated.
    const after = await fetch(`${http.url}/api/agents`, { headers: { cookie } });
    expect(after.status).toBe(401);
  });
});
