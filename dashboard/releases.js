// The Releases screen: pending changes with their diffs, the publish plan and confirmation,
// publish one item or all, CONFLICT handling, release history and rollback.
import { html, useState, useEffect, useCallback, useRef } from './vendor/htm-preact-standalone.module.js';
import { run, live } from './api.js';
import { ErrorBox, Loading, Json, Pager, shortTime, PUBLISH_ROLES, Field } from './ui.js';
import { GovernanceActions, ReleaseRequests, Schedule } from './governance.js';

// publish and its plan always target production (the only mutation that accepts it).
const KIND_LABEL = { AGENT: 'Agent', PROMPT: 'Prompt', CONNECTOR: 'Connector', TRIGGER: 'Trigger' };

export function Releases({ ctx }) {
  const env = ctx.environment;
  const publisher = PUBLISH_ROLES.includes(ctx.viewer.role);
  // Publishing is offered in the staging view only: no production screen has an enabled edit control.
  const canPublish = publisher && env === 'STAGING';
  const [pending, setPending] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const [confirming, setConfirming] = useState(null);
  const [historyTick, setHistoryTick] = useState(0);

  const load = useCallback(() => run('releases', 'PendingChanges', { environment: env })
    .then((d) => { setPending(d.pendingChanges); setError(null); })
    .catch(setError), [env]);
  useEffect(() => { load(); }, [load]);
  // Another publisher's release: refresh what is pending and the history.
  useEffect(() => live.subscribe('ReleaseEvents', { environment: env }, () => { load(); setHistoryTick((t) => t + 1); }), [env]);

  const startPublish = async (items) => {
    setNotice(null);
    const input = { items: items.map((i) => ({ key: i.key, fingerprint: i.fingerprint })) };
    setConfirming({ items, input, plan: null, error: null });
    try {
      const d = await run('releases', 'PublishPlan', { environment: 'PRODUCTION', input });
      setConfirming({ items, input, plan: d.publishPlan, error: null });
    } catch (e) { onPublishError(e); }
  };

  const onPublishError = (e) => {
    if (e.code === 'CONFLICT') {
      setConfirming(null);
      setNotice({ kind: 'conflict', text: `Staging changed since this page was loaded, so nothing was published. The diff below is refreshed: review it and publish again. (${e.message})` });
      load();
    } else {
      setConfirming((c) => (c ? { ...c, error: e } : c));
    }
  };

  const publish = async (note, at) => {
    try {
      // With `at`, publish schedules a release of exactly these items and fingerprints.
      const input = { ...confirming.input, note, ...(at ? { at: new Date(at).toISOString() } : {}) };
      const { release, scheduledRelease } = (await run('releases', 'Publish', { environment: 'PRODUCTION', input })).publish;
      setConfirming(null);
      if (scheduledRelease) {
        setNotice({ kind: 'ok', text: `Scheduled for ${shortTime(scheduledRelease.at)}: ${confirming.items.map((i) => i.key).join(', ')}. Cancel it under Scheduled releases.` });
        setHistoryTick((t) => t + 1);
        return;
      }
      setNotice({ kind: 'ok', text: `Release #${release.number} published: ${release.items.map((i) => i.key).join(', ')}.` });
      load();
      setHistoryTick((t) => t + 1);
    } catch (e) { onPublishError(e); }
  };

  return html`<section aria-labelledby="h-releases">
    <h1 id="h-releases">Releases</h1>
    <p class="muted">Everything that differs between staging and production. Publishing copies the reviewed staging state to production, atomically.</p>
    ${publisher && env === 'PRODUCTION' && html`<p class="who-publishes">You can publish: <a href="#/staging/releases">switch to staging</a> to review and publish these changes.</p>`}
    ${!publisher && !ctx.viewer.pending && html`<p class="who-publishes" data-testid="who-can-publish">Only members with the publisher or admin role can publish or roll back; you are signed in as ${ctx.viewer.role}. Ask a publisher of tenant ${ctx.viewer.tenant} to publish these changes.</p>`}
    ${notice && html`<div class=${notice.kind === 'ok' ? 'ok' : 'error conflict'} role=${notice.kind === 'ok' ? 'status' : 'alert'} data-testid=${notice.kind === 'ok' ? 'published' : 'conflict'}>${notice.text}</div>`}
    ${error && html`<${ErrorBox} error=${error} />`}
    ${pending === null ? html`<${Loading} />` : html`
      <div class="toolbar">
        <h2>Pending changes (${pending.length})</h2>
        ${canPublish && pending.length > 0 && html`<button class="primary" data-edit data-testid="publish-all" onClick=${() => startPublish(pending)}>Publish everything (${pending.length})</button>`}
        <button type="button" onClick=${load}>Refresh</button>
      </div>
      ${confirming && html`<${ConfirmPublish} confirming=${confirming} onCancel=${() => setConfirming(null)} onConfirm=${publish} />`}
      ${pending.length === 0 && html`<p class="empty" data-testid="nothing-pending">Production matches staging: nothing to publish.</p>`}
      ${pending.map((item) => html`<${PendingItem} key=${item.id} item=${item} canPublish=${canPublish} onPublish=${() => startPublish([item])} />`)}
      <${GovernanceActions} ctx=${ctx} items=${pending} onDone=${() => setHistoryTick((t) => t + 1)} />
    `}
    <${ReleaseRequests} ctx=${ctx} tick=${historyTick} />
    <${Schedule} ctx=${ctx} tick=${historyTick} />
    <${History} ctx=${ctx} canPublish=${canPublish} tick=${historyTick} onRolledBack=${() => { load(); setHistoryTick((t) => t + 1); }} />
  </section>`;
}

function ConfirmPublish({ confirming, onCancel, onConfirm, canSchedule = true }) {
  const [note, setNote] = useState('');
  const [at, setAt] = useState('');
  const heading = useRef(null);
  // Keyboard and screen-reader users land on the confirmation.
  useEffect(() => { heading.current?.focus(); }, []);
  const { plan, items, error } = confirming;
  return html`<div class="confirm" role="dialog" aria-modal="false" aria-labelledby="h-confirm" data-testid="confirm">
    <h2 id="h-confirm" tabindex="-1" ref=${heading}>${plan?.rollbackOf ? `Roll back release #${plan.rollbackOf.number}?` : `Publish ${items.length === 1 ? `${KIND_LABEL[items[0].kind].toLowerCase()} ${items[0].slug}` : `${items.length} changes`} to production?`}</h2>
    ${!plan && !error && html`<${Loading} />`}
    ${plan && html`
      <p>Production will change at once for every user:</p>
      <ul class="plan" data-testid="plan-items">${plan.items.map((i) => html`<li key=${i.id}><span class=${`chg chg-${i.change.toLowerCase()}`}>${i.change.toLowerCase()}</span> ${KIND_LABEL[i.kind]} <code>${i.key}</code></li>`)}</ul>
      ${plan.dependencies.length > 0 && html`<h3>Dependencies</h3><ul class="plan">${plan.dependencies.map((d) => html`<li><code>${d.item}</code> needs <code>${d.requires}</code>: ${d.status === 'MISSING' ? html`<strong class="bad">missing</strong>` : d.status === 'IN_THIS_PUBLISH' ? 'published with it' : 'already in production'}</li>`)}</ul>`}
      ${plan.missing.length > 0 && html`<p class="error" role="alert">Cannot publish: missing ${plan.missing.join(', ')}. Add them to staging or publish them together.</p>`}
      ${plan.warnings.map((w) => html`<p class="warning">${w}</p>`)}
      <${Field} label="Release note" id="release-note"><input id="release-note" data-edit value=${note} onInput=${(e) => setNote(e.target.value)} /></${Field}>
      ${canSchedule && !plan.rollbackOf && html`<${Field} label="Publish at (leave empty to publish now)" id="publish-at"><input id="publish-at" type="datetime-local" data-edit data-testid="publish-at" value=${at} onInput=${(e) => setAt(e.target.value)} /></${Field}>`}
    `}
    ${error && html`<${ErrorBox} error=${error} />`}
    <div class="actions">
      <button class="primary" data-edit data-testid="confirm-publish" disabled=${!plan || !plan.canPublish} onClick=${() => onConfirm(note, plan?.rollbackOf ? null : at || null)}>${plan?.rollbackOf ? 'Roll back' : at ? 'Schedule' : 'Publish'} ${plan ? plan.items.length : ''} item${plan?.items.length === 1 ? '' : 's'}</button>
      <button type="button" onClick=${onCancel}>Cancel</button>
    </div>
  </div>`;
}

function PendingItem({ item, canPublish, onPublish }) {
  return html`<article class="card pending" data-item=${item.key} aria-label=${`${KIND_LABEL[item.kind]} ${item.slug}`}>
    <div class="card-head">
      <h3><span class=${`chg chg-${item.change.toLowerCase()}`}>${item.change.toLowerCase()}</span> ${KIND_LABEL[item.kind]} <code>${item.slug}</code></h3>
      ${canPublish && html`<button data-edit data-testid="publish-one" onClick=${onPublish}>Publish ${item.slug}</button>`}
    </div>
    ${item.agent && html`<${AgentDiff} change=${item.agent} />`}
    ${item.prompt && html`<${PromptDiff} change=${item.prompt} />`}
    ${item.connector && html`<${ConnectorDiff} change=${item.connector} />`}
    ${item.trigger && html`<${KeyChanges} title="Fields" changes=${item.trigger.fields} />`}
  </article>`;
}

function AgentDiff({ change }) {
  return html`<div class="agent-diff">
    <p class="muted">Production runs ${change.productionCommit ? `commit #${change.productionCommit.number}` : 'nothing yet'}; staging runs ${change.stagingCommit ? `commit #${change.stagingCommit.number}` : 'nothing (removed)'}.</p>
    ${change.commits.length > 0 && html`<h4>Commits</h4><ol class="commits" data-testid="commits">${change.commits.map((c) => html`<li key=${c.id}><code>#${c.number} ${c.hash.slice(0, 10)}</code> ${c.message} <span class="muted">${c.author} · ${shortTime(c.createdAt)}</span></li>`)}</ol>`}
    <h4>Files (${change.files.length})</h4>
    ${change.files.map((f) => html`<${FileDiffView} key=${f.path} file=${f} />`)}
  </div>`;
}

function FileDiffView({ file }) {
  const [mode, setMode] = useState('unified');
  return html`<details class="file" open data-file=${file.path}>
    <summary><span class=${`chg chg-${file.change.toLowerCase()}`}>${file.change.toLowerCase()}</span> <code>${file.path}</code></summary>
    <div class="diff-mode" role="group" aria-label=${`Diff view of ${file.path}`}>
      <button type="button" aria-pressed=${mode === 'unified'} onClick=${() => setMode('unified')}>Unified</button>
      <button type="button" aria-pressed=${mode === 'split'} onClick=${() => setMode('split')}>Side by side</button>
    </div>
    <div class="diff-scroll" tabindex="0" role="region" aria-label=${`Diff of ${file.path}`}>
      ${mode === 'unified' ? html`<${Unified} hunks=${file.hunks} />` : html`<${Split} hunks=${file.hunks} />`}
    </div>
  </details>`;
}

const SIGN = { EQUAL: ' ', INSERT: '+', DELETE: '-' };

function Unified({ hunks }) {
  return html`<table class="diff unified" data-testid="unified-diff"><caption class="sr-only">Unified diff</caption>
    <thead class="sr-only"><tr><th scope="col">Old line</th><th scope="col">New line</th><th scope="col">Text</th></tr></thead>
    ${hunks.map((h) => html`<tbody>
      <tr class="hunk"><td colspan="3">@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@</td></tr>
      ${h.lines.map((l) => html`<tr class=${`l-${l.tag.toLowerCase()}`}><td class="ln">${l.oldNumber ?? ''}</td><td class="ln">${l.newNumber ?? ''}</td><td class="code"><span aria-hidden="true">${SIGN[l.tag]}</span>${l.text}</td></tr>`)}
    </tbody>`)}
  </table>`;
}

/** Pairs each run of deleted lines with the inserted lines that follow it. */
function splitRows(lines) {
  const rows = [];
  let i = 0;
  while (i < lines.length) {
    if (lines[i].tag === 'EQUAL') { rows.push([lines[i], lines[i]]); i++; continue; }
    const del = [];
    const ins = [];
    while (i < lines.length && lines[i].tag === 'DELETE') del.push(lines[i++]);
    while (i < lines.length && lines[i].tag === 'INSERT') ins.push(lines[i++]);
    for (let k = 0; k < Math.max(del.length, ins.length); k++) rows.push([del[k] || null, ins[k] || null]);
  }
  return rows;
}

function Split({ hunks }) {
  return html`<table class="diff split" data-testid="split-diff"><caption class="sr-only">Side-by-side diff: production left, staging right</caption>
    <thead><tr><th scope="col" class="ln">#</th><th scope="col">Production</th><th scope="col" class="ln">#</th><th scope="col">Staging</th></tr></thead>
    ${hunks.map((h) => html`<tbody>
      <tr class="hunk"><td colspan="4">@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@</td></tr>
      ${splitRows(h.lines).map(([l, r]) => html`<tr>
        <td class="ln">${l?.oldNumber ?? ''}</td><td class=${`code ${l && l.tag === 'DELETE' ? 'l-delete' : ''}`}>${l?.text ?? ''}</td>
        <td class="ln">${r?.newNumber ?? ''}</td><td class=${`code ${r && r.tag === 'INSERT' ? 'l-insert' : ''}`}>${r?.text ?? ''}</td>
      </tr>`)}
    </tbody>`)}
  </table>`;
}

/** The text with its highlighted character ranges in <mark>. */
function Highlighted({ cell, side }) {
  if (!cell) return '';
  const chars = Array.from(cell.text);
  const parts = [];
  let at = 0;
  for (const { start, end } of cell.highlights) {
    if (start > at) parts.push(chars.slice(at, start).join(''));
    parts.push(html`<mark class=${`w-${side}`}>${chars.slice(start, end).join('')}</mark>`);
    at = end;
  }
  if (at < chars.length) parts.push(chars.slice(at).join(''));
  return parts;
}

function PromptDiff({ change }) {
  return html`<div class="prompt-diff">
    <p class="muted">Production serves ${change.before ? `version ${change.before.version}` : 'nothing yet'}; staging serves ${change.after ? (change.after.source === 'DRAFT' ? 'the draft' : `version ${change.after.version}`) : 'nothing (removed)'}.</p>
    <div class="diff-scroll" tabindex="0" role="region" aria-label="Prompt text diff">
      <table class="diff split" data-testid="prompt-diff"><caption class="sr-only">Prompt text: production left, staging right</caption>
        <thead><tr><th scope="col" class="ln">#</th><th scope="col">Production</th><th scope="col" class="ln">#</th><th scope="col">Staging</th></tr></thead>
        <tbody>${change.rows.map((r) => html`<tr class=${`r-${r.tag.toLowerCase()}`}>
          <td class="ln">${r.left?.number ?? ''}</td><td class=${`code ${r.left && r.tag !== 'EQUAL' ? 'l-delete' : ''}`}><${Highlighted} cell=${r.left} side="old" /></td>
          <td class="ln">${r.right?.number ?? ''}</td><td class=${`code ${r.right && r.tag !== 'EQUAL' ? 'l-insert' : ''}`}><${Highlighted} cell=${r.right} side="new" /></td>
        </tr>`)}</tbody>
      </table>
    </div>
    ${(change.variablesAdded.length > 0 || change.variablesRemoved.length > 0) && html`<p>Variables: ${change.variablesAdded.map((v) => html`<span class="chg chg-added">+${v}</span> `)}${change.variablesRemoved.map((v) => html`<span class="chg chg-removed">−${v}</span> `)}</p>`}
    <${KeyChanges} title="Model settings" changes=${change.modelSettings} />
  </div>`;
}

function ConnectorDiff({ change }) {
  return html`<div class="connector-diff">
    ${change.kindBefore !== change.kindAfter && html`<p>Kind: ${change.kindBefore ?? '—'} → ${change.kindAfter ?? '—'}</p>`}
    <${KeyChanges} title="Config" changes=${change.config} />
    ${(change.credentialsAdded.length > 0 || change.credentialsRemoved.length > 0) && html`<p>Credentials: ${change.credentialsAdded.map((c) => html`<span class="chg chg-added">+${c}</span> `)}${change.credentialsRemoved.map((c) => html`<span class="chg chg-removed">−${c}</span> `)}</p>`}
    <${KeyChanges} title="Resources" changes=${change.resources} testid="resource-diff" />
  </div>`;
}

function KeyChanges({ title, changes, testid }) {
  if (!changes || changes.length === 0) return null;
  return html`<div class="keychanges"><h4>${title}</h4>
    <div class="diff-scroll" tabindex="0" role="region" aria-label=${`${title} before and after`}>
    <table class="diff kv" data-testid=${testid}><caption class="sr-only">${title}: before (production) and after (staging)</caption>
      <thead><tr><th scope="col">Key</th><th scope="col">Production (before)</th><th scope="col">Staging (after)</th></tr></thead>
      <tbody>${changes.map((c) => html`<tr key=${c.key}><th scope="row"><span class=${`chg chg-${c.change.toLowerCase()}`}>${c.change.toLowerCase()}</span> <code>${c.key}</code></th>
        <td class="code l-delete">${c.before == null ? '—' : JSON.stringify(c.before, null, 1)}</td>
        <td class="code l-insert">${c.after == null ? '—' : JSON.stringify(c.after, null, 1)}</td></tr>`)}</tbody>
    </table></div></div>`;
}

function History({ ctx, canPublish, tick, onRolledBack }) {
  const env = ctx.environment;
  const [releases, setReleases] = useState(null);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const [rollback, setRollback] = useState(null);
  const load = useCallback((after) => run('releases', 'Releases', { environment: env, first: 10, after: after || null })
    .then((d) => { setReleases((prev) => (after ? [...prev, ...d.releases.nodes] : d.releases.nodes)); setPage(d.releases.pageInfo); })
    .catch(setError), [env]);
  useEffect(() => { load(null); }, [load, tick]);

  const plan = async (release, itemKeys) => {
    const input = { rollbackTo: release.id, items: itemKeys ? itemKeys.map((key) => ({ key })) : null };
    setRollback({ items: release.items, input, plan: null, error: null });
    try {
      const d = await run('releases', 'PublishPlan', { environment: 'PRODUCTION', input });
      setRollback({ items: release.items, input, plan: d.publishPlan, error: null });
    } catch (e) { setRollback((r) => ({ ...r, error: e })); }
  };
  const confirm = async (note) => {
    try {
      await run('releases', 'Publish', { environment: 'PRODUCTION', input: { ...rollback.input, note } });
      setRollback(null);
      onRolledBack();
    } catch (e) { setRollback((r) => ({ ...r, error: e })); }
  };

  return html`<section aria-labelledby="h-history" class="history">
    <h2 id="h-history">Release history</h2>
    ${error && html`<${ErrorBox} error=${error} />`}
    ${rollback && html`<${ConfirmPublish} confirming=${rollback} canSchedule=${false} onCancel=${() => setRollback(null)} onConfirm=${confirm} />`}
    ${releases === null ? html`<${Loading} />` : releases.length === 0 ? html`<p class="empty">No releases yet.</p>` : html`<ol class="releases">
      ${releases.map((r) => html`<${ReleaseView} key=${r.id} release=${r} canPublish=${canPublish} onRollback=${plan} />`)}
    </ol>`}
    <${Pager} page=${page} onMore=${() => load(page.endCursor)} label="Older releases" />
  </section>`;
}

function ReleaseView({ release, canPublish, onRollback }) {
  const [chosen, setChosen] = useState([]);
  const toggle = (id) => setChosen((c) => (c.includes(id) ? c.filter((x) => x !== id) : [...c, id]));
  return html`<li class="card release" data-release=${release.number}>
    <details>
      <summary><strong>#${release.number}</strong> ${release.kind === 'ROLLBACK' ? `rollback of #${release.rollsBack?.number ?? '?'}` : 'publish'} · ${release.createdBy} · ${shortTime(release.createdAt)}${release.note ? ` · “${release.note}”` : ''} · ${release.items.length} item${release.items.length === 1 ? '' : 's'}</summary>
      <ul class="release-items">
        ${release.items.map((i) => html`<li key=${i.id}>
          ${canPublish && html`<label class="check"><input type="checkbox" data-edit checked=${chosen.includes(i.key)} onChange=${() => toggle(i.key)} /> <span class="sr-only">Choose ${i.key} for rollback</span></label>`}
          <span class=${`chg chg-${i.change.toLowerCase()}`}>${i.change.toLowerCase()}</span> <code>${i.key}</code>
          <div class="beforeafter"><${Json} value=${i.before} label="Before" /><${Json} value=${i.after} label="After" /></div>
        </li>`)}
      </ul>
      ${canPublish && html`<div class="actions">
        <button data-edit onClick=${() => onRollback(release, null)}>Roll back release #${release.number}</button>
        <button data-edit disabled=${chosen.length === 0} onClick=${() => onRollback(release, chosen)}>Roll back ${chosen.length} chosen item${chosen.length === 1 ? '' : 's'}</button>
      </div>`}
    </details>
  </li>`;
}
