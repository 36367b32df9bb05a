// Triggers of the environment: create, edit the schedule, enable/disable, delete; webhook signing.
import { html, useState } from './vendor/htm-preact-standalone.module.js';
import { run } from './api.js';
import { Loading, Pager, Field, useAsync, usePaged, Conflict } from './ui.js';

export function Triggers({ ctx }) {
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
        ${t.kind === 'SCHEDULE' && html`<${ScheduleEditor} trigger=${t} editable=${ctx.editable}
          onSave=${(schedule) => act(() => run('triggers', 'UpdateTrigger', { environment: env, input: { name: t.name, schedule, expectedRevision: t.revision } }))} />`}
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

function ScheduleEditor({ trigger, editable, onSave }) {
  const [schedule, setSchedule] = useState(trigger.schedule || '');
  const id = `ts-${trigger.name}`;
  return html`<form class="inline" onSubmit=${(e) => { e.preventDefault(); onSave(schedule); }}>
    <${Field} label="Cron schedule" id=${id}><input id=${id} data-edit value=${schedule} disabled=${!editable} onInput=${(e) => setSchedule(e.target.value)} /></${Field}>
    ${editable && html`<button type="submit" data-edit>Save schedule</button>`}
  </form>`;
}
