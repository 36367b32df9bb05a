// Outgoing webhook endpoints (shared by both environments; admins only) and their delivery log.
import { html, useState } from './vendor/htm-preact-standalone.module.js';
import { run } from './api.js';
import { Loading, ErrorBox, shortTime, Field, useAsync, Conflict } from './ui.js';

const EVENT_TYPES = [
  ['RELEASE_PUBLISHED', 'Release published'],
  ['RELEASE_ROLLED_BACK', 'Release rolled back'],
  ['EXECUTION_FAILED', 'Execution failed in production'],
  ['RELEASE_REQUEST_OPENED', 'Release request opened'],
  ['RELEASE_REQUEST_APPROVED', 'Release request approved'],
  ['SCHEDULED_RELEASE_FAILED', 'Scheduled release failed'],
];
const LOG_PAGE = 20;

export function Webhooks({ ctx }) {
  const env = ctx.environment;
  const admin = ctx.viewer.role === 'admin';
  const editable = admin && env === 'STAGING';
  const list = useAsync(() => (admin ? run('webhooks', 'WebhookEndpoints', { environment: env, first: 20 }) : Promise.resolve(null)), [env, admin]);
  const [error, setError] = useState(null);
  const [secret, setSecret] = useState(null);
  const act = async (fn) => { try { const out = await fn(); setError(null); list.reload(); return out || true; } catch (e) { setError(e); return false; } };
  return html`<section aria-labelledby="h-webhooks">
    <h1 id="h-webhooks">Webhooks <span class="shared-tag">Shared by both environments</span></h1>
    <p class="muted">Signed messages (Standard Webhooks) about production releases, release requests, scheduled releases and failed production executions. Admins only${env === 'PRODUCTION' ? '; edited from staging' : ''}.</p>
    ${!admin ? html`<p>Webhook endpoints need the admin role.</p>` : html`
      <${Conflict} error=${error} onReload=${() => { setError(null); list.reload(); }} />
      ${secret && html`<div class="banner" role="status" data-testid="webhook-secret">
        <p><strong>Signing secret</strong> (shown once, copy it now): <code>${secret}</code></p>
        <button onClick=${() => setSecret(null)}>Done</button>
      </div>`}
      ${editable && html`<${NewEndpoint} onCreate=${async (input) => {
        const out = await act(() => run('webhooks', 'CreateWebhookEndpoint', { environment: env, input }));
        if (out && out.createWebhookEndpoint) setSecret(out.createWebhookEndpoint.signingSecret);
        return !!out;
      }} />`}
      ${!list.data ? html`<${Loading} />` : html`<ul class="rows" aria-label="Webhook endpoints">
        ${list.data.webhookEndpoints.nodes.length === 0 && html`<li class="empty">No webhook endpoints.</li>`}
        ${list.data.webhookEndpoints.nodes.map((e) => html`<${Endpoint} key=${e.id} endpoint=${e} env=${env} editable=${editable} act=${act} />`)}
      </ul>`}
    `}
  </section>`;
}

function Endpoint({ endpoint: e, env, editable, act }) {
  const [open, setOpen] = useState(false);
  return html`<li class="cred">
    <span><strong>${e.url}</strong> <span class="muted">${e.eventTypes.join(', ')} · <code>${e.secretHint}</code> · ${e.enabled ? 'enabled' : 'disabled'} · </span>
      <span class=${e.status === 'FAILING' ? 'bad' : 'muted'}>${e.status === 'FAILING' ? `failing since ${shortTime(e.failingSince)}` : 'healthy'}</span></span>
    <button onClick=${() => setOpen(!open)} aria-expanded=${open}>${open ? 'Hide deliveries' : 'Deliveries'}</button>
    ${editable && html`<button data-edit onClick=${() => act(() => run('webhooks', 'TestWebhookEndpoint', { environment: env, id: e.id }))}>Send test</button>`}
    ${editable && html`<button data-edit onClick=${() => act(() => run('webhooks', 'UpdateWebhookEndpoint', { environment: env, input: { id: e.id, enabled: !e.enabled, expectedRevision: e.revision } }))}>${e.enabled ? 'Disable' : 'Enable'}</button>`}
    ${editable && html`<button class="danger" data-edit onClick=${() => confirm(`Delete the webhook endpoint ${e.url} and its delivery log?`) && act(() => run('webhooks', 'DeleteWebhookEndpoint', { environment: env, id: e.id, expectedRevision: e.revision }))}>Delete</button>`}
    ${open && html`<${DeliveryLog} id=${e.id} env=${env} editable=${editable} act=${act} />`}
  </li>`;
}

function DeliveryLog({ id, env, editable, act }) {
  const log = useAsync(() => run('webhooks', 'WebhookDeliveries', { environment: env, id, first: LOG_PAGE }), [id, env]);
  if (log.error) return html`<${ErrorBox} error=${log.error} />`;
  if (!log.data) return html`<${Loading} />`;
  const page = log.data.node ? log.data.node.deliveries : { nodes: [], totalCount: 0 };
  return html`<div>
    <p class="muted">${page.totalCount} deliveries${page.totalCount > page.nodes.length ? `, the latest ${page.nodes.length} shown` : ''}. <button onClick=${() => log.reload()}>Refresh</button></p>
    <table class="table" aria-label="Delivery log"><thead><tr><th>Queued</th><th>Type</th><th>Status</th><th>Attempts</th><th>Response</th><th>Latency</th><th>Error</th><th></th></tr></thead>
      <tbody>${page.nodes.map((d) => html`<tr key=${d.id}>
        <td>${shortTime(d.createdAt)}</td><td>${d.eventType}</td>
        <td>${d.status}${d.status === 'PENDING' && d.nextAttemptAt ? ` (next ${shortTime(d.nextAttemptAt)})` : ''}</td>
        <td>${d.attempts}</td><td>${d.responseStatus ?? ''}</td><td>${d.latencyMs != null ? `${d.latencyMs} ms` : ''}</td>
        <td>${d.lastError || ''}</td>
        <td>${editable && html`<button data-edit onClick=${async () => { await act(() => run('webhooks', 'RedeliverWebhook', { environment: env, id: d.id })); log.reload(); }}>Redeliver</button>`}</td>
      </tr>`)}</tbody>
    </table>
  </div>`;
}

function NewEndpoint({ onCreate }) {
  const blank = { url: '', eventTypes: ['RELEASE_PUBLISHED'] };
  const [form, setForm] = useState(blank);
  const toggle = (t) => setForm({ ...form, eventTypes: form.eventTypes.includes(t) ? form.eventTypes.filter((x) => x !== t) : [...form.eventTypes, t] });
  return html`<form class="inline" aria-label="New webhook endpoint" onSubmit=${async (e) => { e.preventDefault(); if (await onCreate(form)) setForm(blank); }}>
    <${Field} label="URL" id="wh-url"><input id="wh-url" data-edit type="url" value=${form.url} onInput=${(e) => setForm({ ...form, url: e.target.value })} /></${Field}>
    <fieldset><legend>Events</legend>
      ${EVENT_TYPES.map(([value, label]) => html`<label key=${value}><input type="checkbox" data-edit checked=${form.eventTypes.includes(value)} onChange=${() => toggle(value)} /> ${label}</label>`)}
    </fieldset>
    <button type="submit" data-edit>Create endpoint</button>
  </form>`;
}
