// Connector instances of the environment and their resources.
import { html, useState, useEffect } from './vendor/htm-preact-standalone.module.js';
import { run, ApiError } from './api.js';
import { Loading, ErrorBox, Pager, Field, usePaged, Conflict } from './ui.js';

export function parseJson(text, what) {
  try { return JSON.parse(text || '{}'); } catch { throw new ApiError('BAD_USER_INPUT', `${what} must be valid JSON.`); }
}

export function Connectors({ ctx }) {
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

export function JsonEditor({ label, id, value, editable, onSave }) {
  const [text, setText] = useState(JSON.stringify(value, null, 2));
  const [error, setError] = useState(null);
  useEffect(() => setText(JSON.stringify(value, null, 2)), [JSON.stringify(value)]);
  return html`<form class="stack" onSubmit=${(e) => { e.preventDefault(); try { onSave(parseJson(text, label)); setError(null); } catch (err) { setError(err); } }}>
    <${Field} label=${label} id=${id}><textarea id=${id} data-edit rows="3" class="code" disabled=${!editable} onInput=${(e) => setText(e.target.value)} value=${text}></textarea></${Field}>
    ${editable && html`<button type="submit" data-edit>Save ${label.toLowerCase()}</button>`}
    ${error && html`<${ErrorBox} error=${error} />`}
  </form>`;
}
