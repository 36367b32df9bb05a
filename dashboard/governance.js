// Release governance: the Releases screen's release requests (request, approve, reject; live)
// and scheduled releases (schedule, list, cancel), and the Audit log screen (admins).
import { html, useState, useEffect, useCallback } from './vendor/htm-preact-standalone.module.js';
import { run, live } from './api.js';
import { ErrorBox, Loading, Json, shortTime, PUBLISH_ROLES, Field, usePaged, Pager } from './ui.js';

const EDIT_ROLES = ['developer', 'publisher', 'admin'];

/** Request approval for, or schedule, the given pending items (at the fingerprints shown). */
export function GovernanceActions({ ctx, items, onDone }) {
  const [note, setNote] = useState('');
  const [at, setAt] = useState('');
  const [error, setError] = useState(null);
  const canRequest = ctx.environment === 'STAGING' && EDIT_ROLES.includes(ctx.viewer.role);
  const canSchedule = ctx.environment === 'STAGING' && PUBLISH_ROLES.includes(ctx.viewer.role);
  if (!canRequest || items.length === 0) return null;
  const input = { items: items.map((i) => ({ key: i.key, fingerprint: i.fingerprint })), note: note || null };
  const request = () => run('governance', 'RequestRelease', { input })
    .then(() => { setError(null); setNote(''); onDone(); }, setError);
  const schedule = () => run('releases', 'Publish', { environment: 'PRODUCTION', input: { ...input, at: new Date(at).toISOString() } })
    .then(() => { setError(null); setAt(''); onDone(); }, setError);
  return html`<div class="card governance-actions" data-testid="governance-actions">
    <h3>Approval and scheduling (${items.length} item${items.length === 1 ? '' : 's'})</h3>
    <${Field} label="Note" id="gov-note"><input id="gov-note" data-edit value=${note} onInput=${(e) => setNote(e.target.value)} /></${Field}>
    <div class="actions">
      <button data-edit data-testid="request-release" onClick=${request}>Request approval</button>
      ${canSchedule && html`<label for="gov-at">Publish at</label>
        <input id="gov-at" type="datetime-local" data-edit data-testid="schedule-at" value=${at} onInput=${(e) => setAt(e.target.value)} />
        <button data-edit data-testid="schedule-release" disabled=${!at} onClick=${schedule}>Schedule</button>`}
    </div>
    ${error && html`<${ErrorBox} error=${error} />`}
  </div>`;
}

/** Release requests with their state, approve/reject for publishers; refreshed live. */
export function ReleaseRequests({ ctx, tick }) {
  const env = ctx.environment;
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const load = useCallback(() => run('governance', 'ReleaseRequests', { environment: env, first: 20 })
    .then((d) => { setData(d); setError(null); }, setError), [env]);
  useEffect(() => { load(); }, [load, tick]);
  useEffect(() => live.subscribe('ReleaseRequestEvents', { environment: env }, () => load()), [env]);
  const reviewer = PUBLISH_ROLES.includes(ctx.viewer.role) && env === 'STAGING';
  const review = (id, approve, comment) => run('governance', approve ? 'ApproveReleaseRequest' : 'RejectReleaseRequest', { id, comment: comment || null })
    .then(() => { setError(null); load(); }, setError);
  return html`<section aria-labelledby="h-requests" class="requests" data-testid="release-requests">
    <h2 id="h-requests">Release requests</h2>
    ${data && html`<p class="muted" data-testid="required-approvals">${data.settings.requiredApprovals === 0 ? 'Approvals are off: publishers publish directly.' : `Publishing needs ${data.settings.requiredApprovals} approval(s) of a release request by another publisher.`}</p>`}
    ${error && html`<${ErrorBox} error=${error} />`}
    ${data === null ? html`<${Loading} />` : data.releaseRequests.nodes.length === 0 ? html`<p class="empty">No release requests.</p>` : html`<ol class="request-list">
      ${data.releaseRequests.nodes.map((r) => html`<${RequestView} key=${r.id} request=${r} canReview=${reviewer && r.state === 'OPEN' && r.requestedBy !== ctx.viewer.subject} onReview=${review} />`)}
    </ol>`}
  </section>`;
}

function RequestView({ request, canReview, onReview }) {
  const [comment, setComment] = useState('');
  return html`<li class="card request" data-request-state=${request.state}>
    <p><strong class=${`state state-${request.state.toLowerCase()}`}>${request.state.toLowerCase()}</strong> · ${request.requestedBy} · ${shortTime(request.createdAt)}${request.note ? ` · “${request.note}”` : ''}${request.release ? ` · release #${request.release.number}` : ''}</p>
    <ul>${request.items.map((i) => html`<li key=${i.key}><code>${i.key}</code></li>`)}</ul>
    ${request.staleItems.length > 0 && html`<p class="warning">Stale: ${request.staleItems.join('; ')}</p>`}
    ${request.reviews.map((v) => html`<p class="muted">${v.approved ? 'Approved' : 'Rejected'} by ${v.reviewer}${v.comment ? `: “${v.comment}”` : ''}</p>`)}
    ${canReview && html`<div class="actions">
      <label class="sr-only" for=${`c-${request.id}`}>Comment</label>
      <input id=${`c-${request.id}`} data-edit placeholder="Comment" value=${comment} onInput=${(e) => setComment(e.target.value)} />
      <button data-edit data-testid="approve-request" onClick=${() => onReview(request.id, true, comment)}>Approve</button>
      <button data-edit data-testid="reject-request" onClick=${() => onReview(request.id, false, comment)}>Reject</button>
    </div>`}
  </li>`;
}

/** Scheduled releases with their state; publishers cancel those still scheduled. */
export function Schedule({ ctx, tick }) {
  const env = ctx.environment;
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  const load = useCallback(() => run('governance', 'ScheduledReleases', { environment: env, first: 20 })
    .then((d) => { setRows(d.scheduledReleases.nodes); setError(null); }, setError), [env]);
  useEffect(() => { load(); }, [load, tick]);
  const canCancel = PUBLISH_ROLES.includes(ctx.viewer.role) && env === 'STAGING';
  const cancel = (r) => run('governance', 'CancelScheduledRelease', { id: r.id, expectedRevision: r.revision })
    .then(() => { setError(null); load(); }, setError);
  return html`<section aria-labelledby="h-schedule" class="schedule" data-testid="scheduled-releases">
    <h2 id="h-schedule">Scheduled releases</h2>
    ${error && html`<${ErrorBox} error=${error} />`}
    ${rows === null ? html`<${Loading} />` : rows.length === 0 ? html`<p class="empty">Nothing scheduled.</p>` : html`<ol class="schedule-list">
      ${rows.map((r) => html`<li key=${r.id} class="card scheduled" data-schedule-state=${r.state}>
        <p><strong>${r.state.toLowerCase()}</strong> · at ${shortTime(r.at)} · by ${r.createdBy}${r.note ? ` · “${r.note}”` : ''}${r.release ? ` · release #${r.release.number}` : ''}</p>
        <p>${r.items.map((i) => html`<code>${i.key}</code> `)}</p>
        ${r.failure && html`<p class="warning">${r.failure}</p>`}
        ${canCancel && r.state === 'SCHEDULED' && html`<button data-edit data-testid="cancel-scheduled" onClick=${() => cancel(r)}>Cancel</button>`}
      </li>`)}
    </ol>`}
  </section>`;
}

/** What an entry's before/after summaries say changed: created, deleted, or the fields that differ. */
function changeOf(before, after) {
  if (!before && after) return 'created';
  if (before && !after) return 'deleted';
  if (!before || !after) return '';
  const show = (v) => (v === null || v === undefined ? '–' : typeof v === 'object' ? (Array.isArray(v) ? `[${v.length}]` : '{…}') : String(v));
  const plain = (v) => v && typeof v === 'object' && !Array.isArray(v);
  // One level of nesting is spelled out (`deployment.revision 1 → 2`).
  const changes = [];
  for (const k of Object.keys(after)) {
    if (JSON.stringify(before[k]) === JSON.stringify(after[k])) continue;
    if (plain(before[k]) && plain(after[k])) {
      for (const n of Object.keys(after[k])) {
        if (JSON.stringify(before[k][n]) !== JSON.stringify(after[k][n])) changes.push(`${k}.${n} ${show(before[k][n])} → ${show(after[k][n])}`);
      }
    } else {
      changes.push(`${k} ${show(before[k])} → ${show(after[k])}`);
    }
  }
  return changes.slice(0, 4).join(', ');
}

/** The Audit log screen (admins): every change, newest first, filtered by actor or action. */
export function AuditLog({ ctx }) {
  const env = ctx.environment;
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const [filter, setFilter] = useState({});
  const { data, page, error, more } = usePaged(
    (p) => run('governance', 'AuditLog', { environment: env, filter, ...p }),
    'auditLog', [env, JSON.stringify(filter)],
  );
  if (ctx.viewer.role !== 'admin' && !ctx.viewer.pending) {
    return html`<section><h1>Audit log</h1><p data-testid="audit-admins-only">Only admins can read the audit log; you are signed in as ${ctx.viewer.role}.</p></section>`;
  }
  return html`<section aria-labelledby="h-audit" data-testid="audit-log">
    <h1 id="h-audit">Audit log</h1>
    <p class="muted">Every change in ${env === 'STAGING' ? 'staging and to shared records' : 'production (publishes and rollbacks)'}: who, when, what. Secrets are never recorded.</p>
    <form class="toolbar" onSubmit=${(e) => { e.preventDefault(); setFilter({ actor: actor || null, action: action || null }); }}>
      <${Field} label="Actor" id="audit-actor"><input id="audit-actor" value=${actor} onInput=${(e) => setActor(e.target.value)} /></${Field}>
      <${Field} label="Action" id="audit-action"><input id="audit-action" placeholder="e.g. publish" value=${action} onInput=${(e) => setAction(e.target.value)} /></${Field}>
      <button type="submit">Filter</button>
    </form>
    ${error && html`<${ErrorBox} error=${error} />`}
    ${!data ? html`<${Loading} />` : data.auditLog.length === 0 ? html`<p class="empty">No entries.</p>` : html`<table class="audit" data-testid="audit-table">
      <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Record</th><th scope="col">Change</th><th scope="col">Summary</th></tr></thead>
      <tbody>${data.auditLog.map((e) => html`<tr key=${e.id} data-action=${e.action} data-record=${e.recordKind}>
        <td>${shortTime(e.createdAt)}</td><td>${e.actor} <span class="muted">${String(e.actorRole || '').toLowerCase()}</span></td>
        <td><code>${e.action}</code></td><td>${e.recordKind} <code>${e.recordKey ?? ''}</code></td>
        <td data-testid="audit-change">${changeOf(e.before, e.after)}</td>
        <td><${Json} value=${e.summary} label="Input" />${e.before && html`<${Json} value=${e.before} label="Before" />`}${e.after && html`<${Json} value=${e.after} label="After" />`}</td></tr>`)}</tbody>
    </table>`}
    <${Pager} page=${page} onMore=${more} label="Older entries" />
  </section>`;
}
