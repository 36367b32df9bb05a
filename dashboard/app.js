// The Runflow dashboard: Preact + htm (vendored), hash routes `#/<environment>/<screen>/...`.
import { html, render, useState, useEffect, useCallback } from './vendor/htm-preact-standalone.module.js';
import { run, live, session, ApiError, documentOf } from './api.js';
import { Releases } from './releases.js';
import { Executions, ExecutionDetail } from './executions.js';
import { Sessions, SessionDetail, Memory } from './sessions.js';
import { Agents } from './agents.js';
import { Prompts } from './prompts.js';
import { Connectors } from './connectors.js';
import { Triggers } from './triggers.js';
import { Shared } from './shared.js';
import { AuditLog } from './governance.js';
import { Webhooks } from './webhooks.js';
import { Shell, ErrorBox, canEdit, href } from './ui.js';

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
  audit: () => AuditLog,
  webhooks: () => Webhooks,
};

function Screen({ ctx }) {
  if (ctx.screen === 'executions' && ctx.id) return html`<${ExecutionDetail} ctx=${ctx} />`;
  if (ctx.screen === 'sessions' && ctx.id) return html`<${SessionDetail} ctx=${ctx} />`;
  const component = SCREENS[ctx.screen];
  if (!component) return html`<p>No such screen. <a href=${href(ctx.environment, 'executions')}>Executions</a></p>`;
  const C = component();
  return html`<${C} ctx=${ctx} />`;
}

// ---------- start ----------

takeSigninToken();
for (const file of ['viewer', 'executions', 'live']) documentOf(file);
const root = document.getElementById('app');
root.textContent = ''; // the static "Loading…" placeholder
render(html`<${App} />`, root);
