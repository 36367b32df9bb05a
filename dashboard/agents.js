// Agents: shared metadata, this environment's deployment, commits and files.
import { html, useState, useEffect } from './vendor/htm-preact-standalone.module.js';
import { run } from './api.js';
import { Loading, ErrorBox, Pager, shortTime, Field, useAsync, usePaged, Conflict } from './ui.js';

export function Agents({ ctx }) {
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
