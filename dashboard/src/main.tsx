// The Mandate dashboard: a single page over the admin API (docs/spec/admin.md). It logs in with
// the one-time token of the link `mandate dashboard` printed, pins the log key that link
// carries, and checks every inclusion proof itself (verify.ts).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './style.css';
import { verifyCheckpointNote, verifyInclusion, type InclusionProof } from './verify.js';

const KEY_STORAGE = 'mandate.logKey';
/** How often the agents or the graph, while shown, are fetched again. */
const REFRESH_MS = 3_000;
/** Members per agents page. */
const AGENTS_PAGE = 100;
let csrf = '';

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (init.body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['x-mandate-csrf'] = csrf;
  }
  const response = await fetch(path, { ...init, headers, credentials: 'same-origin' });
  const body = (await response.json()) as T & { error?: { code: string; message: string } };
  if (!response.ok)
    throw new Error(
      body.error === undefined
        ? `HTTP ${response.status}`
        : `${body.error.code}: ${body.error.message}`,
    );
  return body;
}

const short = (id: string): string => (id.length > 14 ? `${id.slice(0, 9)}…${id.slice(-4)}` : id);
const when = (seconds: number): string =>
  new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

type Names = ReadonlyMap<string, string>;
const label = (names: Names, id: string): string => names.get(id) ?? short(id);

interface Agent {
  identifier: string;
  name: string | null;
  attributes: Record<string, string>;
  human: boolean;
  revoked: boolean;
}

interface AgentsPage {
  total: number;
  offset: number;
  agents: Agent[];
}

function AgentsPager({ page, onPage }: { page: AgentsPage; onPage: (offset: number) => void }) {
  const { agents, offset, total } = page;
  return (
    <p data-testid="agents-range">
      members {total === 0 ? 0 : offset + 1}–{offset + agents.length} of {total}{' '}
      <button
        disabled={offset === 0}
        onClick={() => {
          onPage(Math.max(0, offset - AGENTS_PAGE));
        }}
      >
        previous
      </button>{' '}
      <button
        disabled={offset + AGENTS_PAGE >= total}
        onClick={() => {
          onPage(offset + AGENTS_PAGE);
        }}
      >
        next
      </button>
    </p>
  );
}

function Agents({ agents }: { agents: Agent[] }) {
  return (
    <table data-testid="agents">
      <thead>
        <tr>
          <th>name</th>
          <th>identifier</th>
          <th>attributes</th>
          <th>status</th>
        </tr>
      </thead>
      <tbody>
        {agents.map((a) => (
          <tr key={a.identifier} data-testid="agent-row" class={a.revoked ? 'revoked' : ''}>
            <td>
              {a.name ?? '—'}
              {a.human ? ' (human)' : ''}
            </td>
            <td class="mono" title={a.identifier}>
              {short(a.identifier)}
            </td>
            <td>
              {Object.entries(a.attributes).map(([k, v]) => (
                <div key={k} class="mono">
                  {k}
                  {v}
                </div>
              ))}
            </td>
            <td>{a.revoked ? 'revoked' : 'active'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

interface GraphNode {
  id: string;
  name: string | null;
  human: boolean;
  revoked: boolean;
  inRevokedBranch: boolean;
}
interface GraphEdge {
  from: string;
  to: string;
  calls: number;
  revoked: boolean;
}
interface GraphView {
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Members on no logged chain and not revoked: not sent, only counted (see the agents view). */
  unlinkedMembers: number;
}

/**
 * A layered drawing of the identities on logged chains (and of revoked members on none): each
 * node one column right of its deepest delegator (rounds until nothing moves: as many as the
 * longest chain, not as many as the nodes); in each column in the order sent, chains first.
 */
function Graph({ graph }: { graph: GraphView }) {
  const depth = new Map<string, number>(graph.nodes.map((n) => [n.id, 0]));
  for (let round = 0, moved = true; moved && round < graph.nodes.length; round++) {
    moved = false;
    for (const e of graph.edges) {
      const d = (depth.get(e.from) ?? 0) + 1;
      if (d > (depth.get(e.to) ?? 0)) {
        depth.set(e.to, d);
        moved = true;
      }
    }
  }
  const columns = new Map<number, GraphNode[]>();
  for (const n of graph.nodes)
    columns.set(depth.get(n.id)!, [...(columns.get(depth.get(n.id)!) ?? []), n]);
  const nameOf = new Map(graph.nodes.map((n) => [n.id, n.name ?? n.id]));
  const at = new Map<string, { x: number; y: number }>();
  for (const [d, nodes] of columns)
    nodes.forEach((n, i) => at.set(n.id, { x: 90 + d * 220, y: 50 + i * 70 }));
  const width = 180 + 220 * Math.max(0, ...columns.keys());
  const height = 60 + 70 * Math.max(1, ...[...columns.values()].map((c) => c.length));
  return (
    <svg data-testid="graph" width={width} height={height} viewBox={`0 0 ${width} ${height}`}>
      <defs>
        <marker
          id="arrow"
          viewBox="0 0 10 10"
          refX="10"
          refY="5"
          markerWidth="6"
          markerHeight="6"
          orient="auto"
        >
          <path d="M0,0 L10,5 L0,10 z" fill="#555" />
        </marker>
      </defs>
      {graph.edges.map((e) => {
        const a = at.get(e.from)!;
        const b = at.get(e.to)!;
        return (
          <line
            key={`${e.from}>${e.to}`}
            data-testid="graph-edge"
            data-from={nameOf.get(e.from)}
            data-to={nameOf.get(e.to)}
            data-revoked={String(e.revoked)}
            x1={a.x + 70}
            y1={a.y}
            x2={b.x - 70}
            y2={b.y}
            class={e.revoked ? 'edge revoked' : 'edge'}
            marker-end="url(#arrow)"
          />
        );
      })}
      {graph.nodes.map((n) => {
        const p = at.get(n.id)!;
        return (
          <g
            key={n.id}
            data-testid="graph-node"
            data-name={n.name ?? n.id}
            data-revoked={String(n.inRevokedBranch)}
            class={n.inRevokedBranch ? 'node revoked' : n.human ? 'node human' : 'node'}
          >
            <rect x={p.x - 70} y={p.y - 20} width="140" height="40" rx="8" />
            <text x={p.x} y={p.y - 2} text-anchor="middle">
              {n.name ?? short(n.id)}
            </text>
            <text x={p.x} y={p.y + 13} text-anchor="middle" class="small">
              {n.revoked
                ? 'REVOKED'
                : n.inRevokedBranch
                  ? 'revoked branch'
                  : n.human
                    ? 'human'
                    : short(n.id)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

interface DecisionEvent {
  index: number;
  agent: string;
  tool: string | null;
  decision: string;
  lock: string | null;
  reasons: string[];
  approval: string | null;
  latencySeconds: number | null;
  decidedAt: number;
}

function Live({ names }: { names: Names }) {
  const [events, setEvents] = useState<DecisionEvent[]>([]);
  useEffect(() => {
    const source = new EventSource('/api/events');
    source.addEventListener('decision', (m: MessageEvent<string>) => {
      const event = JSON.parse(m.data) as DecisionEvent;
      setEvents((list) => [event, ...list].slice(0, 500));
    });
    return () => {
      source.close();
    };
  }, []);
  return (
    <table data-testid="live">
      <thead>
        <tr>
          <th>decided</th>
          <th>agent</th>
          <th>tool</th>
          <th>decision</th>
          <th>reason</th>
          <th>latency</th>
        </tr>
      </thead>
      <tbody>
        {events.map((e) => (
          <tr key={e.index} data-testid="live-row">
            <td>{when(e.decidedAt)}</td>
            <td>{label(names, e.agent)}</td>
            <td class="mono">{e.tool ?? '?'}</td>
            <td>
              <span class={`badge ${e.decision}`}>
                {e.decision === 'approval_required' ? 'approval' : e.decision}
              </span>
            </td>
            <td>{[e.lock, ...e.reasons].filter(Boolean).join(': ') || '—'}</td>
            <td>{e.latencySeconds === null ? '—' : `${e.latencySeconds} s`}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

interface AuditCall {
  hash: string;
  index: number;
  agent: string;
  path: string[];
  pathNames: (string | null)[];
  tool: string;
  issuedAt: number;
  decision?: {
    decision: string;
    lock: string | null;
    reasons: string[];
    policies: string[];
    approval: { approver: string; decision: string; reason: string } | null;
    escalation: { id: string; reason: string } | null;
  };
  approval: {
    id: string;
    status: string;
    answer?: { approver: string; decision: string; reason: string };
  } | null;
  proofs: { invocation: InclusionProof | null; decision: InclusionProof | null };
}
interface AuditPage {
  total: number;
  checkpoint: { treeSize: number; note: string } | null;
  calls: AuditCall[];
}

type Verdict = { ok: true; text: string } | { ok: false; text: string };

async function verdictOf(page: AuditPage, call: AuditCall, key: string): Promise<Verdict> {
  if (page.checkpoint === null) return { ok: false, text: 'no signed checkpoint yet' };
  if (call.proofs.invocation === null)
    return { ok: false, text: 'not yet in the signed checkpoint' };
  try {
    const checkpoint = await verifyCheckpointNote(page.checkpoint.note, key);
    await verifyInclusion(call.proofs.invocation, checkpoint);
    if (call.proofs.decision !== null) await verifyInclusion(call.proofs.decision, checkpoint);
    return {
      ok: true,
      text: `verified: ${call.proofs.decision === null ? 'invocation' : 'invocation and decision'} included in checkpoint ${checkpoint.treeSize} signed by ${checkpoint.keyName}`,
    };
  } catch (error) {
    return { ok: false, text: `FAILED: ${(error as Error).message}` };
  }
}

function Audit({ names, logKey }: { names: Names; logKey: { key: string; pinned: boolean } }) {
  const [query, setQuery] = useState({ agent: '', tool: '', decision: '', since: '', until: '' });
  const [page, setPage] = useState<AuditPage | null>(null);
  const [offset, setOffset] = useState(0);
  const [verdicts, setVerdicts] = useState<Record<string, Verdict>>({});
  const [error, setError] = useState('');
  const search = async (from: number) => {
    const params = new URLSearchParams({ offset: String(from), limit: '20' });
    for (const [k, v] of Object.entries(query)) {
      if (v === '') continue;
      params.set(k, k === 'since' || k === 'until' ? String(Math.floor(Date.parse(v) / 1000)) : v);
    }
    try {
      const result = await api<AuditPage>(`/api/audit?${params}`);
      setError('');
      setOffset(from);
      setPage(result);
      setVerdicts({});
      for (const call of result.calls) {
        const verdict = await verdictOf(result, call, logKey.key);
        setVerdicts((v) => ({ ...v, [call.hash]: verdict }));
      }
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const field = (name: keyof typeof query, placeholder: string, time = false) => {
    const onInput = (e: Event) => {
      setQuery({ ...query, [name]: (e.target as HTMLInputElement).value });
    };
    return time ? (
      <input name={name} type="datetime-local" value={query[name]} onInput={onInput} />
    ) : (
      <input
        name={name}
        type="text"
        placeholder={placeholder}
        value={query[name]}
        onInput={onInput}
      />
    );
  };
  return (
    <div>
      <form
        data-testid="audit-search"
        onSubmit={(e) => {
          e.preventDefault();
          void search(0);
        }}
      >
        {field('agent', 'agent (name or identifier)')}
        {field('tool', 'tool')}
        <select
          name="decision"
          value={query.decision}
          onChange={(e) => {
            setQuery({ ...query, decision: (e.target as HTMLSelectElement).value });
          }}
        >
          <option value="">any decision</option>
          <option value="allow">allow</option>
          <option value="deny">deny</option>
          <option value="approval_required">approval</option>
        </select>
        <label>since {field('since', 'since', true)}</label>
        <label>until {field('until', 'until', true)}</label>
        <button type="submit">search</button>
      </form>
      <p class="small">
        Proofs are checked in this browser against the checkpoint signed by{' '}
        <span class="mono">{logKey.key.split('+')[0]}</span>
        {logKey.pinned
          ? ' (key pinned from the login link)'
          : ' (key as served by this API: not pinned)'}
        .
      </p>
      {error !== '' && <p class="error">{error}</p>}
      {page !== null && (
        <div>
          <p>
            {page.total} calls; checkpoint{' '}
            {page.checkpoint === null ? 'none' : `of size ${page.checkpoint.treeSize}`}
          </p>
          {page.calls.map((c) => {
            const v = verdicts[c.hash];
            return (
              <div key={c.hash} class="card" data-testid="audit-call">
                <div>
                  <b class="mono">{c.tool}</b>{' '}
                  <span class={`badge ${c.decision?.decision ?? ''}`}>
                    {c.decision?.decision ?? 'no decision'}
                  </span>{' '}
                  {when(c.issuedAt)}
                </div>
                <div>
                  chain: {c.path.map((id, i) => c.pathNames[i] ?? label(names, id)).join(' → ')}
                </div>
                {c.decision !== undefined && (
                  <div>
                    why:{' '}
                    {[c.decision.lock, ...c.decision.reasons].filter(Boolean).join(': ') || '—'}{' '}
                    {c.decision.policies.length > 0
                      ? `(policies ${c.decision.policies.join(', ')})`
                      : ''}
                  </div>
                )}
                {c.approval !== null && (
                  <div>
                    approval {short(c.approval.id)}: {c.approval.status}
                    {c.approval.answer !== undefined
                      ? ` by ${label(names, c.approval.answer.approver)} (${c.approval.answer.reason})`
                      : ''}
                  </div>
                )}
                {c.decision?.approval != null && (
                  <div>
                    approved by {label(names, c.decision.approval.approver)}:{' '}
                    {c.decision.approval.reason}
                  </div>
                )}
                <div class="mono small">
                  record {c.hash} (log index {c.index})
                </div>
                <div
                  data-testid="proof"
                  class={v === undefined ? 'proof' : v.ok ? 'proof ok' : 'proof failed'}
                >
                  {v === undefined ? 'verifying…' : v.text}
                </div>
              </div>
            );
          })}
          <button disabled={offset === 0} onClick={() => void search(Math.max(0, offset - 20))}>
            newer
          </button>
          <button disabled={offset + 20 >= page.total} onClick={() => void search(offset + 20)}>
            older
          </button>
        </div>
      )}
    </div>
  );
}

interface Approval {
  id: string;
  status: string;
  agent: string;
  tool: string;
  arguments: string;
  reason: string;
  expiresAt: number;
  answer?: { approver: string; decision: string; reason: string };
}

function Approvals({ names }: { names: Names }) {
  const [list, setList] = useState<Approval[]>([]);
  const [reason, setReason] = useState<Record<string, string>>({});
  const [error, setError] = useState('');
  const load = async () => {
    setList((await api<{ approvals: Approval[] }>('/api/approvals')).approvals);
  };
  useEffect(() => void load(), []);
  const answer = async (id: string, decision: 'approve' | 'deny') => {
    try {
      await api(`/api/approvals/${id}`, {
        method: 'POST',
        body: JSON.stringify({ decision, reason: reason[id] ?? '' }),
      });
      setError('');
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <div>
      {error !== '' && (
        <p class="error" data-testid="approval-error">
          {error}
        </p>
      )}
      <table data-testid="approvals">
        <thead>
          <tr>
            <th>request</th>
            <th>agent</th>
            <th>tool and arguments</th>
            <th>why</th>
            <th>expires</th>
            <th>status</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {list.map((a) => (
            <tr key={a.id} data-testid="approval-row" data-status={a.status}>
              <td class="mono">{short(a.id)}</td>
              <td>{label(names, a.agent)}</td>
              <td class="mono">
                {a.tool} {a.arguments}
              </td>
              <td>{a.reason}</td>
              <td>{when(a.expiresAt)}</td>
              <td>
                {a.status}
                {a.answer !== undefined ? ` by ${label(names, a.answer.approver)}` : ''}
              </td>
              <td>
                {a.status === 'pending' && (
                  <span>
                    <input
                      placeholder="reason"
                      value={reason[a.id] ?? ''}
                      onInput={(e) => {
                        setReason({ ...reason, [a.id]: (e.target as HTMLInputElement).value });
                      }}
                    />
                    <button onClick={() => void answer(a.id, 'approve')}>approve</button>
                    <button onClick={() => void answer(a.id, 'deny')}>deny</button>
                  </span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

interface LeaseView {
  id: string;
  kind: string;
  holder: string;
  resource: string;
  scope: string[];
  expiresAt: number;
  state: string;
  endReason: string | null;
}

function Leases({ names }: { names: Names }) {
  const [data, setData] = useState<{ now: number; leases: LeaseView[] } | null>(null);
  useEffect(() => void api<{ now: number; leases: LeaseView[] }>('/api/leases').then(setData), []);
  if (data === null) return <p>loading…</p>;
  return (
    <table data-testid="leases">
      <thead>
        <tr>
          <th>lease</th>
          <th>kind</th>
          <th>holder</th>
          <th>resource</th>
          <th>state</th>
          <th>expires</th>
        </tr>
      </thead>
      <tbody>
        {data.leases.map((l) => (
          <tr key={l.id}>
            <td class="mono">{l.id}</td>
            <td>{l.kind}</td>
            <td>{label(names, l.holder)}</td>
            <td class="mono">
              {l.resource} {l.scope.join(' ')}
            </td>
            <td>
              {l.state}
              {l.endReason === null ? '' : ` (${l.endReason})`}
            </td>
            <td>
              {when(l.expiresAt)}
              {l.state === 'active' ? ` (in ${l.expiresAt - data.now} s)` : ''}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const TABS = ['agents', 'graph', 'live', 'audit', 'approvals', 'leases'] as const;
type Tab = (typeof TABS)[number];

function App() {
  const [state, setState] = useState<'loading' | 'out' | 'in'>('loading');
  const [operator, setOperator] = useState('');
  const [tab, setTab] = useState<Tab>('agents');
  const [agents, setAgents] = useState<AgentsPage>({ total: 0, offset: 0, agents: [] });
  const [agentsOffset, setAgentsOffset] = useState(0);
  const [graph, setGraph] = useState<GraphView | null>(null);
  // Names seen in any view, for the labels of the others: the agents view holds one page, the
  // graph only the identities on a chain.
  const [names, setNames] = useState<Names>(new Map());
  const [logKey, setLogKey] = useState<{ key: string; pinned: boolean } | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    void (async () => {
      const fragment = new URLSearchParams(location.hash.slice(1));
      const key = fragment.get('key');
      if (key !== null) sessionStorage.setItem(KEY_STORAGE, key);
      const token = fragment.get('token');
      // The token leaves the address bar (and history) before it is used.
      if (location.hash !== '') history.replaceState(null, '', location.pathname);
      try {
        if (token !== null)
          await api('/api/login', { method: 'POST', body: JSON.stringify({ token }) });
        const session = await api<{ operator: string; csrf: string }>('/api/session');
        csrf = session.csrf;
        setOperator(session.operator);
        const pinned = sessionStorage.getItem(KEY_STORAGE);
        setLogKey(
          pinned !== null
            ? { key: pinned, pinned: true }
            : { key: (await api<{ key: string }>('/api/log-key')).key, pinned: false },
        );
        setAgents(await api<AgentsPage>(agentsPath(0)));
        setGraph(await api<GraphView>('/api/graph'));
        setState('in');
      } catch (e) {
        setError((e as Error).message);
        setState('out');
      }
    })();
  }, []);
  // The agents and the graph shown are fetched again every few seconds: a revocation made
  // anywhere (`mandate revoke`, another node) shows without a reload.
  useEffect(() => {
    if (state !== 'in' || (tab !== 'graph' && tab !== 'agents')) return;
    let busy = false;
    const refresh = async () => {
      if (busy || document.visibilityState === 'hidden') return;
      busy = true;
      try {
        if (tab === 'graph') setGraph(await api<GraphView>('/api/graph'));
        else setAgents(await api<AgentsPage>(agentsPath(agentsOffset)));
      } catch {
        // The last view stays; the next tick asks again.
      } finally {
        busy = false;
      }
    };
    void refresh();
    const timer = setInterval(() => void refresh(), REFRESH_MS);
    return () => {
      clearInterval(timer);
    };
  }, [tab, state, agentsOffset]);
  useEffect(() => {
    setNames((before) => {
      const next = new Map(before);
      let changed = false;
      const see = (id: string, name: string | null) => {
        if (name !== null && next.get(id) !== name) {
          next.set(id, name);
          changed = true;
        }
      };
      for (const a of agents.agents) see(a.identifier, a.name);
      for (const n of graph?.nodes ?? []) see(n.id, n.name);
      return changed ? next : before;
    });
  }, [agents, graph]);
  if (state === 'loading') return <p>loading…</p>;
  if (state === 'out')
    return (
      <main>
        <h1>Mandate</h1>
        <p data-testid="login-required">
          Log in with the link <span class="mono">mandate dashboard</span> printed (a one-time
          token).
        </p>
        {error !== '' && <p class="error">{error}</p>}
      </main>
    );
  return (
    <main>
      <header>
        <h1>Mandate</h1>
        <nav>
          {TABS.map((t) => (
            <button
              key={t}
              data-testid={`tab-${t}`}
              class={t === tab ? 'active' : ''}
              onClick={() => {
                setTab(t);
              }}
            >
              {t}
            </button>
          ))}
        </nav>
        <span class="small" data-testid="operator">
          operator {label(names, operator)}
        </span>
      </header>
      {tab === 'agents' && <AgentsPager page={agents} onPage={setAgentsOffset} />}
      {tab === 'agents' && <Agents agents={agents.agents} />}
      {tab === 'graph' && graph !== null && graph.unlinkedMembers > 0 && (
        <p class="small" data-testid="graph-unlinked">
          {graph.unlinkedMembers} members on no logged chain are not drawn (see agents).
        </p>
      )}
      {tab === 'graph' && graph !== null && <Graph graph={graph} />}
      {tab === 'live' && <Live names={names} />}
      {tab === 'audit' && logKey !== null && <Audit names={names} logKey={logKey} />}
      {tab === 'approvals' && <Approvals names={names} />}
      {tab === 'leases' && <Leases names={names} />}
    </main>
  );
}

const agentsPath = (offset: number): string => `/api/agents?offset=${offset}&limit=${AGENTS_PAGE}`;

render(<App />, document.getElementById('app')!);
