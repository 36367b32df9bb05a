// Shared records (credentials, knowledge bases, LLM providers, data sources): one set for both environments.
import { html, useState } from './vendor/htm-preact-standalone.module.js';
import { run } from './api.js';
import { Loading, ErrorBox, shortTime, Field, useAsync, Conflict } from './ui.js';
import { parseJson, JsonEditor } from './connectors.js';

const SHARED_PAGE = 50;

const SHARED_KINDS = [
  ['knowledgeBases', 'Knowledge bases', 'KnowledgeBase'],
  ['llmProviders', 'LLM providers', 'LlmProvider'],
  ['dataSources', 'Data sources', 'DataSource'],
];

export function Shared({ ctx }) {
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
            <span><strong>${r.name}</strong> <span class="muted">${r.kind}${r.credentials.length ? ` · uses ${r.credentials.join(', ')}` : ''}</span></span>
            <${JsonEditor} label=${`Config of ${r.name}`} id=${`sc-${type}-${r.name}`} value=${r.config} editable=${admin}
              onSave=${(config) => act(() => run('shared', `Update${type}`, { environment: env, input: { name: r.name, config, expectedRevision: r.revision } }))} />
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
