// Prompts: the staging draft editor with a live preview of its variables; version history.
import { html, useState, useEffect } from './vendor/htm-preact-standalone.module.js';
import { run, ApiError } from './api.js';
import { Loading, ErrorBox, Pager, Json, shortTime, Field, useAsync, usePaged, Conflict } from './ui.js';

function placeholders(template) {
  const names = [];
  for (const m of template.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)) if (!names.includes(m[1])) names.push(m[1]);
  return names;
}

export function Prompts({ ctx }) {
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
