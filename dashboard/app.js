// The Runflow dashboard: Preact + htm (vendored), hash routes `#/<environment>/<screen>/...`.
import { html, render, useState, useEffect, useCallback, useRef } from './vendor/htm-preact-standalone.module.js';
import { run, live, session, ApiError, documentOf } from './api.js';
import { Releases } from './releases.js';
import {
  Shell, Loading, ErrorBox, Pager, Json, canEdit, shortTime, Field, useAsync, usePaged, Conflict, href,
} from './ui.js';

// ---------- routing ----------

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const environment = parts[0] === 'production' ? 'PRODUCTION' : 'STAGING';
  return { environment, screen: parts[1] || 'executions', id: parts[2] || null };
}

// A sign-in link (`/#signin=<token>`): the token moves to session storage and leaves the URL.
function takeSigninToken() {
  const match = location.hash.match(/^#signin=([^&]+)/);
  if (!match) return;
  session.token = decodeURIComponent(match[1]);
  history.replaceState(null, '', `${location.pathname}#/staging/executions`);
}

// ---------- app ----------

function App() {
  const [route, setRoute] = useState(parseRoute());
  const [token, setToken] = useState(session.token);
  const [viewer, setViewer] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    const onHash = () => setRoute(parseRoute());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    if (!token) return;
    run('viewer', 'Viewer', { environment: route.environment })
      .then((data) => { setViewer({ ...data.viewer, role: String(data.viewer.role).toLowerCase() }); setError(null); })
      .catch((e) => {
        if (e.code === 'UNAUTHENTICATED') { session.token = null; setToken(null); }
        setError(e);
      });
  }, [token]);

  const signOut = useCallback(() => {
    session.token = null;
    live.close();
    setViewer(null);
    setToken(null);
  }, []);

  useEffect(() => {
    const expired = () => { signOut(); setError(new ApiError('UNAUTHENTICATED', 'Your sign-in expired or was refused: sign in again.')); };
    window.addEventListener('runflow:signed-out', expired);
    return () => window.removeEventListener('runflow:signed-out', expired);
  }, [signOut]);

  if (!token) return html`<${SignIn} onSignIn=${(t) => { session.token = t; setToken(t); }} error=${error} />`;
  if (!viewer && error) return html`<main class="signin"><${ErrorBox} error=${error} /></main>`;
  // The screen loads its data while the viewer query is in flight; until the role is known,
  // nothing is editable.
  const ctx = { ...route, viewer: viewer || PENDING_VIEWER, editable: viewer ? canEdit(viewer, route.environment) : false };
  return html`<${Shell} ctx=${ctx} onSignOut=${signOut} href=${href}>
    <${Screen} key=${`${route.environment}/${route.screen}/${route.id}`} ctx=${ctx} />
  </${Shell}>`;
}

const PENDING_VIEWER = { tenant: '…', role: '…', pending: true };

function SignIn({ onSignIn, error }) {
  const [value, setValue] = useState('');
  return html`<main class="signin">
    <h1>Runflow</h1>
    <p>Sign in with a token. On its first start the server prints a sign-in link; or mint a token with
      <code>runflow token --tenant default --role developer</code>.</p>
    ${error && html`<${ErrorBox} error=${error} />`}
    <form onSubmit=${(e) => { e.preventDefault(); if (value.trim()) onSignIn(value.trim()); }}>
      <label for="token">Token</label>
      <input id="token" type="password" autocomplete="off" value=${value} onInput=${(e) => setValue(e.target.value)} />
      <button type="submit">Sign in</button>
    </form>
  </main>`;
}

const SCREENS = {
  releases: () => Releases,
  executions: () => Executions,
  sessions: () => Sessions,
  memory: () => Memory,
  agents: () => Agents,
  prompts: () => Prompts,
  connectors: () => Connectors,
  triggers: () => Triggers,
  shared: () => Shared,
};

function Screen({ ctx }) {
  if (ctx.screen === 'executions' && ctx.id) return html`<${ExecutionDetail} ctx=${ctx} />`;
  if (ctx.screen === 'sessions' && ctx.id) return html`<${SessionDetail} ctx=${ctx} />`;
  const component = SCREENS[ctx.screen];
  if (!component) return html`<p>No such screen. <a href=${href(ctx.environment, 'executions')}>Executions</a></p>`;
  const C = component();
  return html`<${C} ctx=${ctx} />`;
}

// ---------- executions ----------

const STATUSES = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
const PAGE = 20;

function toIso(local) { return local ? new Date(local).toISOString() : null; }

function matches(execution, filters) {
  if (filters.agent && execution.agent?.slug !== filters.agent) return false;
  if (filters.status && execution.status !== filters.status) return false;
  const created = Date.parse(execution.createdAt);
  if (filters.since && created < Date.parse(toIso(filters.since))) return false;
  if (filters.until && created >= Date.parse(toIso(filters.until))) return false;
  return true;
}

function Executions({ ctx }) {
  const env = ctx.environment;
  const [filters, setFilters] = useState({ agent: '', status: '', since: '', until: '' });
  const [rows, setRows] = useState(null);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const [liveState, setLiveState] = useState(live.state);
  const agents = useAsync(() => run('executions', 'ExecutionFilters', { environment: env }), [env]);
  const filtersRef = useRef(filters);
  filtersRef.current = filters;

  const load = useCallback(async (after) => {
    try {
      const data = await run('executions', 'Executions', {
        environment: env,
        agent: filters.agent || null,
        status: filters.status || null,
        since: toIso(filters.since),
        until: toIso(filters.until),
        first: PAGE,
        after: after || null,
      });
      const { nodes, pageInfo } = data.executions;
      setRows((prev) => (after ? [...prev, ...nodes.filter((n) => !prev.some((p) => p.id === n.id))] : nodes));
      setPage(pageInfo);
      setError(null);
    } catch (e) { setError(e); }
  }, [env, filters]);

  useEffect(() => { load(null); }, [load]);

  useEffect(() => {
    const offState = live.onState(setLiveState);
    const unsubscribe = live.subscribe('ExecutionEvents', { environment: env }, (event) => {
      const execution = event.execution;
      setRows((prev) => {
        if (!prev) return prev;
        const index = prev.findIndex((r) => r.id === execution.id);
        if (index >= 0) {
          const next = prev.slice();
          next[index] = matches(execution, filtersRef.current) ? execution : null;
          return next.filter(Boolean);
        }
        return matches(execution, filtersRef.current) ? [execution, ...prev] : prev;
      });
    });
    return () => { unsubscribe(); offState(); };
  }, [env]);

  const set = (key) => (e) => setFilters({ ...filters, [key]: e.target.value });
  return html`<section aria-labelledby="h-exec">
    <h1 id="h-exec">Executions <span class=${`live live-${liveState}`} role="status">${liveState === 'live' ? 'live' : liveState}</span></h1>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <${Field} label="Agent" id="f-agent">
        <select id="f-agent" value=${filters.agent} onChange=${set('agent')}>
          <option value="">All agents</option>
          ${(agents.data?.agents.nodes || []).map((a) => html`<option value=${a.slug}>${a.slug}</option>`)}
        </select>
      </${Field}>
      <${Field} label="Status" id="f-status">
        <select id="f-status" value=${filters.status} onChange=${set('status')}>
          <option value="">Any status</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s.toLowerCase()}</option>`)}
        </select>
      </${Field}>
      <${Field} label="From" id="f-since"><input id="f-since" type="datetime-local" value=${filters.since} onChange=${set('since')} /></${Field}>
      <${Field} label="Until" id="f-until"><input id="f-until" type="datetime-local" value=${filters.until} onChange=${set('until')} /></${Field}>
    </form>
    ${error && html`<${ErrorBox} error=${error} />`}
    ${rows === null ? html`<${Loading} />` : html`
      <ul class="rows" aria-label="Executions" data-testid="executions">
        ${rows.length === 0 && html`<li class="empty">No executions in ${env.toLowerCase()} yet.</li>`}
        ${rows.map((r) => html`<li key=${r.id} data-execution=${r.id}>
          <a href=${href(env, 'executions', r.id)}>
            <span class=${`status s-${r.status.toLowerCase()}`}>${r.status.toLowerCase()}</span>
            <strong>${r.agent?.slug || '(removed agent)'}</strong>
            <span class="muted">${shortTime(r.createdAt)}</span>
          </a>
        </li>`)}
      </ul>
      <${Pager} page=${page} onMore=${() => load(page.endCursor)} />`}
  </section>`;
}

function buildTree(spans) {
  const byId = new Map(spans.map((s) => [s.id, s]));
  const children = new Map();
  const roots = [];
  for (const s of spans) {
    const parent = s.parent?.id;
    if (parent && byId.has(parent)) {
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(s);
    } else roots.push(s);
  }
  const out = [];
  const sortByStart = (a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt);
  const walk = (span, depth) => {
    out.push({ span, depth });
    for (const child of (children.get(span.id) || []).sort(sortByStart)) walk(child, depth + 1);
  };
  for (const root of roots.sort(sortByStart)) walk(root, 0);
  return out;
}

export function Waterfall({ spans }) {
  if (!spans.length) return html`<p class="muted">No spans recorded yet.</p>`;
  const starts = spans.map((s) => Date.parse(s.startedAt));
  const ends = spans.map((s) => Date.parse(s.finishedAt || s.startedAt));
  const t0 = Math.min(...starts);
  const total = Math.max(1, Math.max(...ends) - t0);
  const rows = buildTree(spans);
  return html`<div class="waterfall" role="list" aria-label="Trace waterfall" data-testid="waterfall">
    <div class="axis" aria-hidden="true"><span>0 ms</span><span>${Math.round(total / 2)} ms</span><span>${total} ms</span></div>
    ${rows.map(({ span, depth }) => {
      const start = Date.parse(span.startedAt) - t0;
      const duration = Math.max(0, Date.parse(span.finishedAt || span.startedAt) - Date.parse(span.startedAt));
      const left = (start / total) * 100;
      const width = Math.max(0.5, (duration / total) * 100);
      const tokens = span.inputTokens != null || span.outputTokens != null
        ? `${span.inputTokens ?? 0} in / ${span.outputTokens ?? 0} out tokens` : '';
      return html`<details class="span" role="listitem" data-span=${span.name} key=${span.id}>
        <summary>
          <span class="span-name" style=${{ paddingLeft: `${depth * 12}px` }}>
            <span class=${`kind k-${span.kind.toLowerCase()}`}>${span.kind}</span> ${span.name}
          </span>
          <span class="track"><span class=${`bar ${span.status === 'ERROR' ? 'bar-error' : ''}`}
            style=${{ left: `${left}%`, width: `${Math.min(width, 100 - left)}%` }}
            title=${`${span.name}: starts at ${start} ms, takes ${duration} ms`}></span></span>
          <span class="muted dur">${duration} ms</span>
        </summary>
        <div class="span-detail">
          <p>Status ${span.status.toLowerCase()} · starts at ${start} ms · ${duration} ms${tokens && ` · ${tokens}`}</p>
          <${Json} value=${span.attributes} label="Attributes" />
        </div>
      </details>`;
    })}
  </div>`;
}

/** The execution with its first page of spans flattened (`spans`, `spansPage`). */
function flatSpans(execution) {
  return execution && { ...execution, spans: execution.spans.nodes, spansPage: execution.spans.pageInfo };
}

function ExecutionDetail({ ctx }) {
  const env = ctx.environment;
  const [execution, setExecution] = useState(undefined);
  const [error, setError] = useState(null);
  useEffect(() => {
    run('executions', 'Execution', { environment: env, id: ctx.id })
      .then((d) => setExecution(flatSpans(d.execution))).catch(setError);
  }, [env, ctx.id]);
  useEffect(() => {
    const offSpans = live.subscribe('TraceEvents', { environment: env, executionId: ctx.id }, (event) => {
      setExecution((prev) => {
        if (!prev) return prev;
        return { ...prev, spans: [...prev.spans.filter((s) => !event.spans.some((n) => n.id === s.id)), ...event.spans.filter((s) => s.id)] };
      });
    });
    const offExec = live.subscribe('ExecutionEvents', { environment: env }, (event) => {
      if (event.execution.id !== ctx.id) return;
      setExecution((prev) => (prev ? { ...prev, ...event.execution } : prev));
      if (event.kind === 'FINISHED') {
        run('executions', 'Execution', { environment: env, id: ctx.id }).then((d) => d.execution && setExecution((prev) => {
          const fresh = flatSpans(d.execution);
          // Keep spans of later pages (and live ones) already shown.
          const ids = new Set(fresh.spans.map((s) => s.id));
          return { ...fresh, spans: [...fresh.spans, ...(prev?.spans || []).filter((s) => !ids.has(s.id))], spansPage: prev?.spansPage || fresh.spansPage };
        })).catch(() => {});
      }
    });
    return () => { offSpans(); offExec(); };
  }, [env, ctx.id]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (execution === undefined) return html`<${Loading} />`;
  if (execution === null) return html`<p>This execution does not exist in ${env.toLowerCase()}. <a href=${href(env, 'executions')}>All executions</a></p>`;
  return html`<section aria-labelledby="h-execution">
    <p><a href=${href(env, 'executions')}>← Executions</a></p>
    <h1 id="h-execution">${execution.agent?.slug || 'Execution'} <span class=${`status s-${execution.status.toLowerCase()}`}>${execution.status.toLowerCase()}</span></h1>
    <dl class="facts">
      <dt>Id</dt><dd><code>${execution.id}</code></dd>
      <dt>Created</dt><dd>${shortTime(execution.createdAt)}</dd>
      <dt>Finished</dt><dd>${execution.finishedAt ? shortTime(execution.finishedAt) : '—'}</dd>
      <dt>Commit</dt><dd>${execution.commit ? `#${execution.commit.number} ${execution.commit.message}` : '—'}</dd>
      ${execution.session && html`<dt>Session</dt><dd><a href=${href(env, 'sessions', execution.session.id)}>${execution.session.title || 'open'}</a></dd>`}
      ${execution.trigger && html`<dt>Trigger</dt><dd>${execution.trigger.name}</dd>`}
    </dl>
    <h2>Trace</h2>
    <${Waterfall} spans=${execution.spans} />
    <${Pager} page=${execution.spansPage} label="Load more spans" onMore=${() => run('executions', 'Execution', { environment: env, id: ctx.id, spansAfter: execution.spansPage.endCursor })
      .then((d) => d.execution && setExecution((prev) => {
        const ids = new Set(prev.spans.map((s) => s.id));
        return { ...prev, spans: [...prev.spans, ...d.execution.spans.nodes.filter((s) => !ids.has(s.id))], spansPage: d.execution.spans.pageInfo };
      })).catch(setError)} />
    <h2>Input</h2><${Json} value=${execution.input} label="Input" open />
    <h2>Output</h2>${execution.output != null ? html`<${Json} value=${execution.output} label="Output" open />` : html`<p class="muted">No output${execution.error ? '' : ' yet'}.</p>`}
    ${execution.error && html`<h2>Error</h2><pre class="error-text">${execution.error}</pre>`}
    <h2>Log</h2>${execution.log ? html`<pre class="log" tabindex="0">${execution.log}</pre>` : html`<p class="muted">No log.</p>`}
  </section>`;
}

// ---------- sessions and memory ----------

function Sessions({ ctx }) {
  const env = ctx.environment;
  const [rows, setRows] = useState(null);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const load = useCallback((after) => run('sessions', 'Sessions', { environment: env, first: PAGE, after: after || null })
    .then((d) => { setRows((prev) => (after ? [...prev, ...d.sessions.nodes] : d.sessions.nodes)); setPage(d.sessions.pageInfo); })
    .catch(setError), [env]);
  useEffect(() => { load(null); }, [load]);
  useEffect(() => live.subscribe('SessionEvents', { environment: env }, (event) => {
    setRows((prev) => {
      if (!prev) return prev;
      const rest = prev.filter((s) => s.id !== event.session.id);
      return [event.session, ...rest];
    });
  }), [env]);
  return html`<section aria-labelledby="h-sessions">
    <h1 id="h-sessions">Sessions</h1>
    ${error && html`<${ErrorBox} error=${error} />`}
    ${rows === null ? html`<${Loading} />` : html`<ul class="rows" aria-label="Sessions">
      ${rows.length === 0 && html`<li class="empty">No sessions in ${env.toLowerCase()} yet.</li>`}
      ${rows.map((s) => html`<li key=${s.id}><a href=${href(env, 'sessions', s.id)}>
        <strong>${s.title || '(untitled)'}</strong> <span class="muted">${s.agent?.slug || ''} · ${shortTime(s.updatedAt)}</span></a></li>`)}
    </ul><${Pager} page=${page} onMore=${() => load(page.endCursor)} />`}
  </section>`;
}

function SessionDetail({ ctx }) {
  const env = ctx.environment;
  const [sessionData, setSession] = useState(undefined);
  const [messages, setMessages] = useState([]);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const load = useCallback((after) => run('sessions', 'Session', { environment: env, id: ctx.id, first: 50, after: after || null })
    .then((d) => {
      setSession(d.session);
      if (d.session) {
        setMessages((prev) => (after ? [...prev, ...d.session.messages.nodes] : d.session.messages.nodes));
        setPage(d.session.messages.pageInfo);
      }
    }).catch(setError), [env, ctx.id]);
  useEffect(() => { load(null); }, [load]);
  useEffect(() => live.subscribe('SessionEvents', { environment: env, sessionId: ctx.id }, (event) => {
    if (event.message) setMessages((prev) => (prev.some((m) => m.id === event.message.id) ? prev : [...prev, event.message]));
  }), [env, ctx.id]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (sessionData === undefined) return html`<${Loading} />`;
  if (sessionData === null) return html`<p>This session does not exist in ${env.toLowerCase()}.</p>`;
  return html`<section aria-labelledby="h-session">
    <p><a href=${href(env, 'sessions')}>← Sessions</a></p>
    <h1 id="h-session">${sessionData.title || 'Session'}</h1>
    <p class="muted">${sessionData.agent?.slug || ''} · started ${shortTime(sessionData.createdAt)}</p>
    <ol class="messages" aria-label="Messages">
      ${messages.map((m) => html`<li key=${m.id} class=${`msg role-${m.role.toLowerCase()}`}><span class="role">${m.role.toLowerCase()}</span><p>${m.content}</p><span class="muted">${shortTime(m.createdAt)}</span></li>`)}
    </ol>
    <${Pager} page=${page} onMore=${() => load(page.endCursor)} label="Older pages" />
  </section>`;
}

function Memory({ ctx }) {
  const env = ctx.environment;
  const [namespace, setNamespace] = useState('');
  const [rows, setRows] = useState(null);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const load = useCallback((after) => run('sessions', 'MemoryEntries', { environment: env, namespace: namespace || null, first: PAGE, after: after || null })
    .then((d) => { setRows((prev) => (after ? [...prev, ...d.memoryEntries.nodes] : d.memoryEntries.nodes)); setPage(d.memoryEntries.pageInfo); })
    .catch(setError), [env, namespace]);
  useEffect(() => { load(null); }, [load]);
  return html`<section aria-labelledby="h-memory">
    <h1 id="h-memory">Memory</h1>
    <p class="muted">${env === 'STAGING' ? 'Staging stores memory under the staging: namespace prefix; production never sees it.' : 'Production memory: what production agents remember.'}</p>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <${Field} label="Namespace" id="f-ns"><input id="f-ns" value=${namespace} placeholder="all" onChange=${(e) => setNamespace(e.target.value)} /></${Field}>
    </form>
    ${error && html`<${ErrorBox} error=${error} />`}
    ${rows === null ? html`<${Loading} />` : html`<table class="table">
      <caption class="sr-only">Memory entries</caption>
      <thead><tr><th scope="col">Namespace</th><th scope="col">Key</th><th scope="col">Value</th><th scope="col">Updated</th></tr></thead>
      <tbody>
        ${rows.length === 0 && html`<tr><td colspan="4" class="empty">No memory entries.</td></tr>`}
        ${rows.map((m) => html`<tr key=${m.id}><td><code>${m.namespace}</code></td><td>${m.key}</td><td><code class="wrap">${JSON.stringify(m.value)}</code></td><td>${shortTime(m.updatedAt)}</td></tr>`)}
      </tbody>
    </table><${Pager} page=${page} onMore=${() => load(page.endCursor)} />`}
  </section>`;
}

// ---------- agents ----------

function Agents({ ctx }) {
  const env = ctx.environment;
  const list = usePaged((page) => run('agents', 'Agents', { environment: env, ...page }), 'agents', [env]);
  const [open, setOpen] = useState(null);
  return html`<section aria-labelledby="h-agents">
    <h1 id="h-agents">Agents</h1>
    <p class="muted">Code is deployed with the <code>rf</code> CLI: <code>rf agents deploy</code> (always to staging), then publish from Releases or <code>rf agents promote</code>. Name and description are shared by both environments.</p>
    ${list.error && html`<${ErrorBox} error=${list.error} />`}
    ${!list.data ? html`<${Loading} />` : html`<ul class="rows" aria-label="Agents">
      ${list.data.agents.length === 0 && html`<li class="empty">No agents in ${env.toLowerCase()}.</li>`}
      ${list.data.agents.map((a) => html`<li key=${a.id}>
        <button class="linklike" aria-expanded=${open === a.slug} onClick=${() => setOpen(open === a.slug ? null : a.slug)}>
          <strong>${a.name || a.slug}</strong> <span class="muted">${a.slug} · commit #${a.currentCommit.number} ${a.currentCommit.message}</span>
        </button>
        ${open === a.slug && html`<${AgentDetail} ctx=${ctx} slug=${a.slug} onSaved=${list.reload} />`}
      </li>`)}
    </ul>`}
    <${Pager} page=${list.page} onMore=${list.more} />
  </section>`;
}

function AgentDetail({ ctx, slug, onSaved }) {
  const env = ctx.environment;
  const agent = useAsync(() => run('agents', 'Agent', { environment: env, slug }), [env, slug]);
  const [form, setForm] = useState(null);
  const [saveError, setSaveError] = useState(null);
  const [saved, setSaved] = useState(false);
  useEffect(() => { if (agent.data?.agent) setForm({ name: agent.data.agent.name, description: agent.data.agent.description }); }, [agent.data]);
  if (agent.error) return html`<${ErrorBox} error=${agent.error} />`;
  if (!agent.data || !form) return html`<${Loading} />`;
  const a = agent.data.agent;
  const save = async (e) => {
    e.preventDefault();
    try {
      await run('agents', 'UpdateAgent', { environment: env, input: { slug, name: form.name, description: form.description, expectedRevision: a.revision } });
      setSaveError(null); setSaved(true); agent.reload(); onSaved();
    } catch (err) { setSaveError(err); setSaved(false); }
  };
  return html`<div class="detail">
    <form onSubmit=${save} class="stack">
      <${Field} label="Name (shared)" id=${`an-${slug}`}><input id=${`an-${slug}`} data-edit value=${form.name} disabled=${!ctx.editable} onInput=${(e) => setForm({ ...form, name: e.target.value })} /></${Field}>
      <${Field} label="Description (shared)" id=${`ad-${slug}`}><textarea id=${`ad-${slug}`} data-edit rows="2" disabled=${!ctx.editable} onInput=${(e) => setForm({ ...form, description: e.target.value })} value=${form.description}></textarea></${Field}>
      ${ctx.editable && html`<button type="submit" data-edit>Save metadata</button>`}
      ${saved && html`<span role="status">Saved.</span>`}
      <${Conflict} error=${saveError} onReload=${() => { setSaveError(null); agent.reload(); }}
        latest=${() => run('agents', 'Agent', { environment: env, slug }).then((d) => `Name: ${d.agent.name}\nDescription: ${d.agent.description}`)} />
    </form>
    <dl class="facts">
      <dt>Endpoint</dt><dd><code class="wrap">${a.endpointUrl}</code></dd>
      <dt>Deployed</dt><dd>${shortTime(a.deployedAt)}</dd>
      <dt>Deploy</dt><dd><code>cd ${slug} && rf agents deploy</code></dd>
    </dl>
    <h3>Commits</h3>
    <ol class="commits">${a.commits.nodes.map((c) => html`<li key=${c.id}><code>#${c.number} ${c.hash.slice(0, 10)}</code> ${c.message} <span class="muted">${c.author} · ${shortTime(c.createdAt)} · ${c.fileCount} files</span></li>`)}</ol>
    <h3>Files of commit #${a.currentCommit.number}</h3>
    ${a.currentCommit.files.map((f) => html`<details class="file" key=${f.path}><summary><code>${f.path}</code> <span class="muted">${f.size} bytes</span></summary><pre tabindex="0">${f.content}</pre></details>`)}
  </div>`;
}

// ---------- prompts ----------

function placeholders(template) {
  const names = [];
  for (const m of template.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)) if (!names.includes(m[1])) names.push(m[1]);
  return names;
}

function Prompts({ ctx }) {
  const env = ctx.environment;
  const list = usePaged((page) => run('prompts', 'Prompts', { environment: env, ...page }), 'prompts', [env]);
  const [open, setOpen] = useState(null);
  const [newSlug, setNewSlug] = useState('');
  return html`<section aria-labelledby="h-prompts">
    <h1 id="h-prompts">Prompts</h1>
    <p class="muted">${env === 'STAGING' ? 'Staging serves the draft; publishing it from Releases makes it a version that production serves.' : 'Production serves the published versions.'}</p>
    ${list.error && html`<${ErrorBox} error=${list.error} />`}
    ${ctx.editable && html`<form class="inline" onSubmit=${(e) => { e.preventDefault(); if (newSlug) setOpen(newSlug.trim()); }}>
      <${Field} label="New prompt slug" id="np-slug"><input id="np-slug" data-edit value=${newSlug} onInput=${(e) => setNewSlug(e.target.value)} /></${Field}>
      <button type="submit" data-edit>New draft</button></form>`}
    ${!list.data ? html`<${Loading} />` : html`<ul class="rows" aria-label="Prompts">
      ${list.data.prompts.length === 0 && html`<li class="empty">No prompts in ${env.toLowerCase()}.</li>`}
      ${list.data.prompts.map((p) => html`<li key=${p.id}>
        <button class="linklike" aria-expanded=${open === p.slug} onClick=${() => setOpen(open === p.slug ? null : p.slug)}>
          <strong>${p.slug}</strong> <span class="muted">${p.resolved ? (p.resolved.source === 'DRAFT' ? 'draft' : `version ${p.resolved.version}`) : ''} · ${p.updatedBy} · ${shortTime(p.updatedAt)}</span>
        </button>
      </li>`)}
    </ul>`}
    <${Pager} page=${list.page} onMore=${list.more} />
    ${open && html`<${PromptEditor} ctx=${ctx} slug=${open} key=${open} onSaved=${list.reload} />`}
  </section>`;
}

function PromptEditor({ ctx, slug, onSaved }) {
  const env = ctx.environment;
  const prompt = useAsync(() => run('prompts', 'Prompt', { environment: env, slug }), [env, slug]);
  const [template, setTemplate] = useState(null);
  const [settings, setSettings] = useState('{}');
  const [values, setValues] = useState({});
  const [saveError, setSaveError] = useState(null);
  const [status, setStatus] = useState('');
  useEffect(() => {
    if (!prompt.data) return;
    const p = prompt.data.prompt;
    const source = p?.draft || p?.resolved;
    setTemplate(source?.template ?? '');
    setSettings(JSON.stringify(source?.modelSettings ?? {}, null, 2));
  }, [prompt.data]);
  if (prompt.error) return html`<${ErrorBox} error=${prompt.error} />`;
  if (!prompt.data || template === null) return html`<${Loading} />`;
  const p = prompt.data.prompt;
  const vars = placeholders(template);
  const preview = template.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_, n) => values[n] || `{{${n}}}`);
  const save = async (e) => {
    e.preventDefault();
    let modelSettings;
    try { modelSettings = JSON.parse(settings || '{}'); } catch { setSaveError(new ApiError('BAD_USER_INPUT', 'Model settings must be a JSON object.')); return; }
    try {
      await run('prompts', 'SavePromptDraft', { environment: env, input: { slug, template, modelSettings, expectedRevision: p ? p.revision : null } });
      setSaveError(null); setStatus('Draft saved.'); prompt.reload(); onSaved();
    } catch (err) { setSaveError(err); setStatus(''); }
  };
  return html`<div class="detail" aria-label=${`Prompt ${slug}`}>
    <h2>${slug}</h2>
    <form onSubmit=${save} class="stack">
      <${Field} label=${env === 'STAGING' ? 'Draft template' : 'Published template'} id="p-template">
        <textarea id="p-template" data-edit rows="6" disabled=${!ctx.editable} onInput=${(e) => setTemplate(e.target.value)} value=${template}></textarea>
      </${Field}>
      <${Field} label="Model settings (JSON)" id="p-settings">
        <textarea id="p-settings" data-edit rows="3" disabled=${!ctx.editable} onInput=${(e) => setSettings(e.target.value)} value=${settings}></textarea>
      </${Field}>
      <fieldset class="vars"><legend>Preview variables (${vars.length})</legend>
        ${vars.length === 0 && html`<p class="muted">The template has no <code>{{variables}}</code>.</p>`}
        ${vars.map((v) => html`<${Field} label=${v} id=${`pv-${v}`}><input id=${`pv-${v}`} value=${values[v] || ''} onInput=${(e) => setValues({ ...values, [v]: e.target.value })} /></${Field}>`)}
      </fieldset>
      <div class="preview" aria-label="Preview" data-testid="prompt-preview">${preview}</div>
      ${ctx.editable && html`<button type="submit" data-edit>Save draft</button>`}
      ${status && html`<span role="status">${status}</span>`}
      <${Conflict} error=${saveError} onReload=${() => { setSaveError(null); prompt.reload(); }}
        latest=${() => run('prompts', 'Prompt', { environment: env, slug }).then((d) => `${(d.prompt?.draft || d.prompt?.resolved)?.template ?? '(deleted)'}\n(saved by ${d.prompt?.updatedBy} ${shortTime(d.prompt?.updatedAt)})`)} />
    </form>
    <h3>Version history</h3>
    ${!p || p.versions.nodes.length === 0 ? html`<p class="muted">Never published.</p>` : html`<ol class="commits">
      ${p.versions.totalCount > p.versions.nodes.length ? html`<li class="muted">Showing the newest ${p.versions.nodes.length} of ${p.versions.totalCount} versions.</li>` : ''}
      ${p.versions.nodes.map((v) => html`<li key=${v.id}><details><summary>Version ${v.version} <span class="muted">${v.createdBy} · ${shortTime(v.createdAt)}</span></summary><pre tabindex="0">${v.template}</pre><${Json} value=${v.modelSettings} label="Model settings" /></details></li>`)}
    </ol>`}
  </div>`;
}

// ---------- connectors ----------

function parseJson(text, what) {
  try { return JSON.parse(text || '{}'); } catch { throw new ApiError('BAD_USER_INPUT', `${what} must be valid JSON.`); }
}

function Connectors({ ctx }) {
  const env = ctx.environment;
  const list = usePaged((page) => run('connectors', 'Connectors', { environment: env, ...page }), 'connectors', [env], 10);
  const [error, setError] = useState(null);
  const [create, setCreate] = useState({ slug: '', kind: 'http' });
  const act = async (fn) => { try { await fn(); setError(null); list.reload(); } catch (e) { setError(e); } };
  return html`<section aria-labelledby="h-connectors">
    <h1 id="h-connectors">Connectors</h1>
    <p class="muted">Each environment has its own instances and resources; credentials are shared.</p>
    <${Conflict} error=${error} onReload=${() => { setError(null); list.reload(); }} />
    ${ctx.editable && html`<form class="inline" onSubmit=${(e) => { e.preventDefault(); act(() => run('connectors', 'CreateConnector', { environment: env, input: { slug: create.slug, kind: create.kind } })); }}>
      <${Field} label="New connector slug" id="nc-slug"><input id="nc-slug" data-edit value=${create.slug} onInput=${(e) => setCreate({ ...create, slug: e.target.value })} /></${Field}>
      <${Field} label="Kind" id="nc-kind"><input id="nc-kind" data-edit value=${create.kind} onInput=${(e) => setCreate({ ...create, kind: e.target.value })} /></${Field}>
      <button type="submit" data-edit>Create connector</button></form>`}
    ${!list.data ? html`<${Loading} />` : list.data.connectors.length === 0 ? html`<p class="empty">No connectors in ${env.toLowerCase()}.</p>` : list.data.connectors.map((c) => html`
      <article class="card" key=${c.id} aria-label=${`Connector ${c.slug}`}>
        <h2>${c.slug} <span class="muted">${c.kind}</span></h2>
        <${JsonEditor} label="Config" id=${`cc-${c.slug}`} value=${c.config} editable=${ctx.editable}
          onSave=${(config) => act(() => run('connectors', 'UpdateConnector', { environment: env, input: { slug: c.slug, config, expectedRevision: c.revision } }))} />
        <h3>Resources</h3>
        ${c.resources.map((r) => html`<div class="resource" key=${r.id}>
          <${JsonEditor} label=${`Resource ${r.key}`} id=${`cr-${c.slug}-${r.key}`} value=${r.config} editable=${ctx.editable}
            onSave=${(config) => act(() => run('connectors', 'UpdateConnectorResource', { environment: env, input: { connector: c.slug, key: r.key, config, expectedRevision: r.revision } }))} />
          ${ctx.editable && html`<button class="danger" data-edit onClick=${() => act(() => run('connectors', 'DeleteConnectorResource', { environment: env, connector: c.slug, key: r.key, expectedRevision: r.revision }))}>Delete resource ${r.key}</button>`}
        </div>`)}
        ${ctx.editable && html`<${NewResource} slug=${c.slug} onCreate=${(key, config) => act(() => run('connectors', 'CreateConnectorResource', { environment: env, input: { connector: c.slug, key, config } }))} />`}
        ${ctx.editable && html`<button class="danger" data-edit onClick=${() => confirm(`Delete the staging connector ${c.slug}?`) && act(() => run('connectors', 'DeleteConnector', { environment: env, slug: c.slug, expectedRevision: c.revision }))}>Delete connector</button>`}
      </article>`)}
    <${Pager} page=${list.page} onMore=${list.more} />
  </section>`;
}

function NewResource({ slug, onCreate }) {
  const [key, setKey] = useState('');
  const [config, setConfig] = useState('{}');
  const [error, setError] = useState(null);
  return html`<form class="inline" onSubmit=${(e) => { e.preventDefault(); try { onCreate(key, parseJson(config, 'Config')); setError(null); } catch (err) { setError(err); } }}>
    <${Field} label="New resource key" id=${`nr-${slug}`}><input id=${`nr-${slug}`} data-edit value=${key} onInput=${(e) => setKey(e.target.value)} /></${Field}>
    <${Field} label="Config (JSON)" id=${`nrc-${slug}`}><input id=${`nrc-${slug}`} data-edit value=${config} onInput=${(e) => setConfig(e.target.value)} /></${Field}>
    <button type="submit" data-edit>Add resource</button>
    ${error && html`<${ErrorBox} error=${error} />`}
  </form>`;
}

function JsonEditor({ label, id, value, editable, onSave }) {
  const [text, setText] = useState(JSON.stringify(value, null, 2));
  const [error, setError] = useState(null);
  useEffect(() => setText(JSON.stringify(value, null, 2)), [JSON.stringify(value)]);
  return html`<form class="stack" onSubmit=${(e) => { e.preventDefault(); try { onSave(parseJson(text, label)); setError(null); } catch (err) { setError(err); } }}>
    <${Field} label=${label} id=${id}><textarea id=${id} data-edit rows="3" class="code" disabled=${!editable} onInput=${(e) => setText(e.target.value)} value=${text}></textarea></${Field}>
    ${editable && html`<button type="submit" data-edit>Save ${label.toLowerCase()}</button>`}
    ${error && html`<${ErrorBox} error=${error} />`}
  </form>`;
}

// ---------- triggers ----------

function Triggers({ ctx }) {
  const env = ctx.environment;
  const list = usePaged((page) => run('triggers', 'Triggers', { environment: env, ...page }), 'triggers', [env]);
  const agents = useAsync(() => run('executions', 'ExecutionFilters', { environment: env }), [env]);
  const [error, setError] = useState(null);
  const [form, setForm] = useState({ name: '', agent: '', kind: 'WEBHOOK', schedule: '', secret: '' });
  const act = async (fn) => { try { await fn(); setError(null); list.reload(); } catch (e) { setError(e); } };
  const create = (e) => {
    e.preventDefault();
    const input = { name: form.name, agent: form.agent, kind: form.kind, enabled: true };
    if (form.kind === 'SCHEDULE') input.schedule = form.schedule; else input.secret = form.secret;
    act(() => run('triggers', 'CreateTrigger', { environment: env, input })).then(() => setForm({ ...form, name: '', secret: '' }));
  };
  return html`<section aria-labelledby="h-triggers">
    <h1 id="h-triggers">Triggers</h1>
    <p class="muted">Each trigger fires in one environment only; create one per environment for the same behaviour in both.</p>
    <${Conflict} error=${error} onReload=${() => { setError(null); list.reload(); }} />
    ${ctx.editable && html`<form class="inline" onSubmit=${create} aria-label="New trigger">
      <${Field} label="Name" id="nt-name"><input id="nt-name" data-edit value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} /></${Field}>
      <${Field} label="Agent" id="nt-agent"><select id="nt-agent" data-edit value=${form.agent} onChange=${(e) => setForm({ ...form, agent: e.target.value })}>
        <option value="">Choose…</option>${(agents.data?.agents.nodes || []).map((a) => html`<option value=${a.slug}>${a.slug}</option>`)}</select></${Field}>
      <${Field} label="Kind" id="nt-kind"><select id="nt-kind" data-edit value=${form.kind} onChange=${(e) => setForm({ ...form, kind: e.target.value })}>
        <option value="WEBHOOK">webhook</option><option value="SCHEDULE">schedule</option></select></${Field}>
      ${form.kind === 'SCHEDULE'
        ? html`<${Field} label="Cron schedule" id="nt-cron"><input id="nt-cron" data-edit placeholder="0 */5 * * * *" value=${form.schedule} onInput=${(e) => setForm({ ...form, schedule: e.target.value })} /></${Field}>`
        : html`<${Field} label="Signing secret (16+ characters, write-only)" id="nt-secret"><input id="nt-secret" data-edit type="password" autocomplete="new-password" value=${form.secret} onInput=${(e) => setForm({ ...form, secret: e.target.value })} /></${Field}>`}
      <button type="submit" data-edit>Create trigger</button>
    </form>`}
    ${!list.data ? html`<${Loading} />` : list.data.triggers.length === 0 ? html`<p class="empty">No triggers in ${env.toLowerCase()}.</p>` : list.data.triggers.map((t) => html`
      <article class="card" key=${t.id} aria-label=${`Trigger ${t.name}`}>
        <h2>${t.name} <span class="muted">${t.kind.toLowerCase()} → ${t.agentSlug}</span></h2>
        <label class="check"><input type="checkbox" data-edit checked=${t.enabled} disabled=${!ctx.editable}
          onChange=${(e) => act(() => run('triggers', 'UpdateTrigger', { environment: env, input: { name: t.name, enabled: e.target.checked, expectedRevision: t.revision } }))} /> Enabled</label>
        ${t.schedule && html`<p>Schedule <code>${t.schedule}</code></p>`}
        ${t.webhookUrl && html`<div><p>Webhook URL <code class="wrap">${t.webhookUrl}</code></p>
          <p class="muted">Sign each call: <code>X-Runflow-Signature: sha256=&lt;hex HMAC-SHA256 of the body with the trigger's secret&gt;</code>${t.hasSecret ? ' (a secret is set)' : ''}.</p>
          <pre class="wrap" tabindex="0">BODY='{"hello":"world"}'
SIG=$(printf %s "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -hex | sed 's/^.* //')
curl -X POST '${t.webhookUrl}' -H 'content-type: application/json' -H "X-Runflow-Signature: sha256=$SIG" -d "$BODY"</pre></div>`}
        ${ctx.editable && html`<button class="danger" data-edit onClick=${() => confirm(`Delete the trigger ${t.name}?`) && act(() => run('triggers', 'DeleteTrigger', { environment: env, name: t.name, expectedRevision: t.revision }))}>Delete trigger</button>`}
      </article>`)}
    <${Pager} page=${list.page} onMore=${list.more} />
  </section>`;
}

// ---------- shared records ----------

const SHARED_PAGE = 50;

const SHARED_KINDS = [
  ['knowledgeBases', 'Knowledge bases', 'KnowledgeBase'],
  ['llmProviders', 'LLM providers', 'LlmProvider'],
  ['dataSources', 'Data sources', 'DataSource'],
];

function Shared({ ctx }) {
  const env = ctx.environment;
  const list = useAsync(() => run('shared', 'SharedRecords', { environment: env, first: SHARED_PAGE }).then((d) => {
    const out = { totals: {} };
    for (const key of Object.keys(d)) { out[key] = d[key].nodes; out.totals[key] = d[key].totalCount; }
    return out;
  }), [env]);
  const [error, setError] = useState(null);
  const admin = ctx.viewer.role === 'admin' && ctx.environment === 'STAGING';
  const act = async (fn) => { try { await fn(); setError(null); list.reload(); return true; } catch (e) { setError(e); return false; } };
  return html`<section aria-labelledby="h-shared">
    <h1 id="h-shared">Shared records <span class="shared-tag">Shared by both environments</span></h1>
    <p class="muted">Credentials, knowledge bases, LLM providers and data sources are shared by staging and production: a change here affects production immediately. Editing needs the admin role${ctx.environment === 'PRODUCTION' ? ' and is done from staging' : ''}.</p>
    <${Conflict} error=${error} onReload=${() => { setError(null); list.reload(); }} />
    ${!list.data ? html`<${Loading} />` : html`
      <h2>Credentials <span class="shared-tag">Shared by both environments</span></h2>
      ${list.data.totals.credentials > list.data.credentials.length && html`<p class="muted">Showing ${list.data.credentials.length} of ${list.data.totals.credentials}.</p>`}
      ${admin && html`<${NewCredential} onCreate=${(input) => act(() => run('shared', 'CreateCredential', { environment: env, input }))} />`}
      <ul class="rows" aria-label="Credentials">
        ${list.data.credentials.length === 0 && html`<li class="empty">No credentials.</li>`}
        ${list.data.credentials.map((c) => html`<li key=${c.id} class="cred">
          <span><strong>${c.name}</strong> <span class="muted">${c.kind} · <code>${c.hint}</code> · ${c.rotatedAt ? `rotated by ${c.rotatedBy} ${shortTime(c.rotatedAt)}` : `created by ${c.createdBy}`}</span></span>
          ${admin && html`<${RotateCredential} credential=${c} onRotate=${(secret) => act(() => run('shared', 'RotateCredential', { environment: env, input: { name: c.name, secret, expectedRevision: c.revision } }))} />`}
          ${admin && html`<button class="danger" data-edit onClick=${() => confirm(`Delete the credential ${c.name}? Production loses it too.`) && act(() => run('shared', 'DeleteCredential', { environment: env, name: c.name, expectedRevision: c.revision }))}>Delete</button>`}
        </li>`)}
      </ul>
      ${SHARED_KINDS.map(([field, title, type]) => html`
        <h2>${title} <span class="shared-tag">Shared by both environments</span></h2>
        ${list.data.totals[field] > list.data[field].length && html`<p class="muted">Showing ${list.data[field].length} of ${list.data.totals[field]}.</p>`}
        ${admin && html`<${NewShared} type=${type} title=${title} onCreate=${(input) => act(() => run('shared', `Create${type}`, { environment: env, input }))} />`}
        <ul class="rows" aria-label=${title}>
          ${list.data[field].length === 0 && html`<li class="empty">None.</li>`}
          ${list.data[field].map((r) => html`<li key=${r.id} class="cred">
            <span><strong>${r.name}</strong> <span class="muted">${r.kind}${r.credentials.length ? ` · uses ${r.credentials.join(', ')}` : ''}</span> <code class="wrap">${JSON.stringify(r.config)}</code></span>
            ${admin && html`<button class="danger" data-edit onClick=${() => confirm(`Delete ${r.name}? Production loses it too.`) && act(() => run('shared', `Delete${type}`, { environment: env, name: r.name, expectedRevision: r.revision }))}>Delete</button>`}
          </li>`)}
        </ul>`)}
    `}
  </section>`;
}

function NewCredential({ onCreate }) {
  const [form, setForm] = useState({ name: '', kind: 'api_key', secret: '' });
  return html`<form class="inline" aria-label="New credential" onSubmit=${async (e) => { e.preventDefault(); if (await onCreate(form)) setForm({ name: '', kind: 'api_key', secret: '' }); }}>
    <${Field} label="Name" id="cr-name"><input id="cr-name" data-edit value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} /></${Field}>
    <${Field} label="Kind" id="cr-kind"><input id="cr-kind" data-edit value=${form.kind} onInput=${(e) => setForm({ ...form, kind: e.target.value })} /></${Field}>
    <${Field} label="Secret (write-only: never shown again)" id="cr-secret"><input id="cr-secret" data-edit type="password" autocomplete="new-password" value=${form.secret} onInput=${(e) => setForm({ ...form, secret: e.target.value })} /></${Field}>
    <button type="submit" data-edit>Create credential</button>
  </form>`;
}

function RotateCredential({ credential, onRotate }) {
  const [secret, setSecret] = useState('');
  const id = `rot-${credential.name}`;
  return html`<form class="inline" onSubmit=${async (e) => { e.preventDefault(); if (await onRotate(secret)) setSecret(''); }}>
    <${Field} label=${`New secret for ${credential.name}`} id=${id}><input id=${id} data-edit type="password" autocomplete="new-password" value=${secret} onInput=${(e) => setSecret(e.target.value)} /></${Field}>
    <button type="submit" data-edit>Rotate</button>
  </form>`;
}

function NewShared({ type, title, onCreate }) {
  const [form, setForm] = useState({ name: '', kind: '', config: '{}' });
  const [error, setError] = useState(null);
  const id = `ns-${type}`;
  return html`<form class="inline" aria-label=${`New ${title}`} onSubmit=${async (e) => {
    e.preventDefault();
    try { const config = parseJson(form.config, 'Config'); setError(null); if (await onCreate({ name: form.name, kind: form.kind, config })) setForm({ name: '', kind: '', config: '{}' }); } catch (err) { setError(err); }
  }}>
    <${Field} label="Name" id=${`${id}-name`}><input id=${`${id}-name`} data-edit value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} /></${Field}>
    <${Field} label="Kind" id=${`${id}-kind`}><input id=${`${id}-kind`} data-edit value=${form.kind} onInput=${(e) => setForm({ ...form, kind: e.target.value })} /></${Field}>
    <${Field} label="Config (JSON)" id=${`${id}-config`}><input id=${`${id}-config`} data-edit value=${form.config} onInput=${(e) => setForm({ ...form, config: e.target.value })} /></${Field}>
    <button type="submit" data-edit>Create</button>
    ${error && html`<${ErrorBox} error=${error} />`}
  </form>`;
}

// ---------- start ----------

takeSigninToken();
for (const file of ['viewer', 'executions', 'live']) documentOf(file);
const root = document.getElementById('app');
root.textContent = ''; // the static "Loading…" placeholder
render(html`<${App} />`, root);
