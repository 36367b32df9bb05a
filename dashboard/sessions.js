// Sessions (threads) with their messages, live; memory entries.
import { html, useState, useEffect, useCallback } from './vendor/htm-preact-standalone.module.js';
import { run, live } from './api.js';
import { Loading, ErrorBox, Pager, shortTime, Field, href } from './ui.js';
import { PAGE } from './executions.js';

export function Sessions({ ctx }) {
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

export function SessionDetail({ ctx }) {
  const env = ctx.environment;
  const [sessionData, setSession] = useState(undefined);
  const [messages, setMessages] = useState([]);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const [liveState, setLiveState] = useState(live.state);
  const load = useCallback((after) => run('sessions', 'Session', { environment: env, id: ctx.id, first: 50, after: after || null })
    .then((d) => {
      setSession(d.session);
      if (d.session) {
        // A re-read keeps messages that arrived live meanwhile (merged by id, in order).
        setMessages((prev) => (after
          ? [...prev, ...d.session.messages.nodes]
          : [...d.session.messages.nodes, ...prev.filter((m) => !d.session.messages.nodes.some((n) => n.id === m.id))]));
        setPage(d.session.messages.pageInfo);
      }
    }).catch(setError), [env, ctx.id]);
  useEffect(() => { load(null); }, [load]);
  useEffect(() => live.subscribe('SessionEvents', { environment: env, sessionId: ctx.id }, (event) => {
    if (event.message) setMessages((prev) => (prev.some((m) => m.id === event.message.id) ? prev : [...prev, event.message]));
  }), [env, ctx.id]);
  // A message posted between the first read and the subscription's start is in no event this
  // subscription receives (the API has no "cursor as of this read"): read again once the live
  // connection is up, which closes that gap.
  useEffect(() => live.onState((state) => {
    setLiveState(state);
    if (state === 'live') load(null);
  }), [load]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (sessionData === undefined) return html`<${Loading} />`;
  if (sessionData === null) return html`<p>This session does not exist in ${env.toLowerCase()}.</p>`;
  return html`<section aria-labelledby="h-session">
    <p><a href=${href(env, 'sessions')}>← Sessions</a></p>
    <h1 id="h-session">${sessionData.title || 'Session'} <span class=${`live live-${liveState}`} role="status">${liveState}</span></h1>
    <p class="muted">${sessionData.agent?.slug || ''} · started ${shortTime(sessionData.createdAt)}</p>
    <ol class="messages" aria-label="Messages">
      ${messages.map((m) => html`<li key=${m.id} class=${`msg role-${m.role.toLowerCase()}`}><span class="role">${m.role.toLowerCase()}</span><p>${m.content}</p><span class="muted">${shortTime(m.createdAt)}</span></li>`)}
    </ol>
    <${Pager} page=${page} onMore=${() => load(page.endCursor)} label="Older pages" />
  </section>`;
}

export function Memory({ ctx }) {
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
