// Executions: the filtered, paginated, live list and one execution with its trace waterfall.
import { html, useState, useEffect, useCallback, useRef } from './vendor/htm-preact-standalone.module.js';
import { run, live } from './api.js';
import { Loading, ErrorBox, Pager, Json, shortTime, Field, useAsync, href } from './ui.js';

const STATUSES = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
export const PAGE = 20;

function toIso(local) { return local ? new Date(local).toISOString() : null; }

function matches(execution, filters) {
  if (filters.agent && execution.agent?.slug !== filters.agent) return false;
  if (filters.status && execution.status !== filters.status) return false;
  const created = Date.parse(execution.createdAt);
  if (filters.since && created < Date.parse(toIso(filters.since))) return false;
  if (filters.until && created >= Date.parse(toIso(filters.until))) return false;
  return true;
}

/** The list after an execution event: updated in place, added on top, or dropped by the filters. */
function applyEvent(rows, execution, filters) {
  const index = rows.findIndex((r) => r.id === execution.id);
  if (index >= 0) {
    const next = rows.slice();
    next[index] = matches(execution, filters) ? execution : null;
    return next.filter(Boolean);
  }
  return matches(execution, filters) ? [execution, ...rows] : rows;
}

export function Executions({ ctx }) {
  const env = ctx.environment;
  const [filters, setFilters] = useState({ agent: '', status: '', since: '', until: '' });
  const [rows, setRows] = useState(null);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const [liveState, setLiveState] = useState(live.state);
  const agents = useAsync(() => run('executions', 'ExecutionFilters', { environment: env }), [env]);
  const filtersRef = useRef(filters);
  filtersRef.current = filters;
  const rowsRef = useRef(null);
  rowsRef.current = rows;
  const pendingEvents = useRef([]);

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
      // Events that arrived while the first page was read are applied on top of it.
      const early = after ? [] : pendingEvents.current.splice(0);
      setRows((prev) => (after
        ? [...prev, ...nodes.filter((n) => !prev.some((p) => p.id === n.id))]
        : early.reduce((rows, execution) => applyEvent(rows, execution, filtersRef.current), nodes)));
      setPage(pageInfo);
      setError(null);
    } catch (e) { setError(e); }
  }, [env, filters]);

  useEffect(() => { load(null); }, [load]);

  useEffect(() => {
    const offState = live.onState(setLiveState);
    const unsubscribe = live.subscribe('ExecutionEvents', { environment: env }, (event) => {
      const execution = event.execution;
      if (!rowsRef.current) pendingEvents.current.push(execution);
      else setRows((prev) => applyEvent(prev, execution, filtersRef.current));
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

export function ExecutionDetail({ ctx }) {
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
