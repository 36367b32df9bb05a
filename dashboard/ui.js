// Shared pieces: the header (environment badge, viewer, sign out), the production banner,
// navigation, errors with CONFLICT handling, pagination, JSON display.
import { html, useState, useEffect, useCallback } from './vendor/htm-preact-standalone.module.js';

export function href(environment, screen, id) {
  return `#/${environment.toLowerCase()}/${screen}${id ? `/${encodeURIComponent(id)}` : ''}`;
}

const EDIT_ROLES = ['developer', 'publisher', 'admin'];
export const PUBLISH_ROLES = ['publisher', 'admin'];

/** Edit controls are enabled only in staging, for roles that may edit. */
export function canEdit(viewer, environment) {
  return environment === 'STAGING' && EDIT_ROLES.includes(viewer.role);
}

export function shortTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

const NAV = [
  ['releases', 'Releases'], ['executions', 'Executions'], ['sessions', 'Sessions'], ['memory', 'Memory'],
  ['agents', 'Agents'], ['prompts', 'Prompts'], ['connectors', 'Connectors'], ['triggers', 'Triggers'], ['shared', 'Shared'], ['webhooks', 'Webhooks'], ['audit', 'Audit log'],
];

export function Shell({ ctx, onSignOut, children }) {
  const env = ctx.environment;
  const other = env === 'STAGING' ? 'PRODUCTION' : 'STAGING';
  const path = (e) => href(e, ctx.screen, ctx.id);
  return html`<div class=${`shell env-${env.toLowerCase()}`}>
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <a class="brand" href=${href(env, 'executions')}>Runflow</a>
      <a class=${`badge badge-${env.toLowerCase()}`} data-testid="env-badge" href=${href(other, ctx.screen)}
        aria-label=${`Environment: ${env === 'STAGING' ? 'Staging' : 'Production'}. Switch to ${other === 'STAGING' ? 'staging' : 'production'}`}
        title=${`Switch to ${other.toLowerCase()}`}>${env === 'STAGING' ? 'Staging' : 'Production'}</a>
      <span class="who" data-testid="viewer" data-ready=${ctx.viewer.pending ? undefined : 'true'}><span class="muted">tenant</span> ${ctx.viewer.tenant} · <span class="muted">role</span> ${ctx.viewer.role}</span>
      <button class="signout" onClick=${onSignOut}>Sign out</button>
    </header>
    <nav aria-label="Screens"><ul>
      ${NAV.map(([screen, label]) => html`<li><a href=${href(env, screen)} aria-current=${ctx.screen === screen ? 'page' : undefined}>${label}</a></li>`)}
    </ul></nav>
    ${env === 'PRODUCTION' && html`<div class="banner" role="region" aria-label="Production is read-only" data-testid="prod-banner">
      <p><strong>Production is read-only.</strong> It changes only by publishing from staging on the Releases screen.</p>
      <a class="button" href=${path('STAGING')}>Switch to staging</a>
    </div>`}
    <main id="main" tabindex="-1" data-screen=${ctx.screen} data-environment=${env.toLowerCase()}>${children}</main>
  </div>`;
}

export function Loading() {
  return html`<p class="loading" role="status">Loading…</p>`;
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error" role="alert"><strong>${error.code || 'Error'}</strong>: ${error.message}</div>`;
}

/**
 * An error; for CONFLICT, says that someone else changed the record, shows what it is now
 * (`latest()` resolves to a short text, optional) and offers a reload.
 */
export function Conflict({ error, onReload, latest }) {
  const [now, setNow] = useState(null);
  useEffect(() => {
    setNow(null);
    if (error?.code === 'CONFLICT' && latest) latest().then(setNow, () => {});
  }, [error]);
  if (!error) return null;
  if (error.code !== 'CONFLICT') return html`<${ErrorBox} error=${error} />`;
  return html`<div class="error conflict" role="alert" data-testid="conflict">
    <p><strong>Someone changed this since you loaded it.</strong> ${error.message}</p>
    ${now && html`<p>Now in staging:</p><pre class="wrap" data-testid="conflict-latest">${now}</pre><p>Reloading replaces your unsaved edit with it.</p>`}
    <button type="button" onClick=${onReload}>Reload the current version</button>
  </div>`;
}

export function Pager({ page, onMore, label = 'Load more' }) {
  if (!page?.hasNextPage) return null;
  return html`<p><button type="button" class="more" onClick=${onMore}>${label}</button></p>`;
}

export function Json({ value, label, open }) {
  return html`<details class="json" open=${open}><summary>${label}</summary><pre tabindex="0">${JSON.stringify(value, null, 2)}</pre></details>`;
}

export function Field({ label, id, children }) {
  return html`<div class="field"><label for=${id}>${label}</label>${children}</div>`;
}

/** Runs `load` when `deps` change; returns { data, error, reload }. */
export function useAsync(load, deps) {
  const [state, setState] = useState({ data: null, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let alive = true;
    load().then((data) => alive && setState({ data, error: null }), (error) => alive && setState((s) => ({ data: s.data, error })));
    return () => { alive = false; };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/**
 * A Relay connection read page by page: `data[field]` is the rows loaded so far, `more()`
 * fetches the next page (after `page.endCursor`), `reload()` starts again from the first.
 */
export function usePaged(load, field, deps, pageSize = 20) {
  const [state, setState] = useState({ rows: null, page: null, error: null });
  const [tick, setTick] = useState(0);
  const fetchPage = useCallback((after) => load({ first: pageSize, after: after || null })
    .then((d) => setState((s) => ({
      rows: after ? [...(s.rows || []), ...d[field].nodes.filter((n) => !(s.rows || []).some((r) => r.id === n.id))] : d[field].nodes,
      page: d[field].pageInfo,
      error: null,
    })), (error) => setState((s) => ({ ...s, error }))), [...deps]);
  useEffect(() => { fetchPage(null); }, [fetchPage, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const more = useCallback(() => state.page?.endCursor && fetchPage(state.page.endCursor), [state.page, fetchPage]);
  return { data: state.rows ? { [field]: state.rows } : null, page: state.page, error: state.error, reload, more };
}
