/** The approver's pages: the list of approvals and one approval with its preview and the decision form. */
import { objectName, whyNotApprover, type Approval } from '../approval/approval.js';
import type { Identity } from '../identity/identity.js';
import { html, type Html } from './template.js';

export function when(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

function who(a: Approval): string {
  const r = a.subject.requester;
  return r.agent ? `agent ${r.agent.name} for ${r.agent.onBehalfOf ?? '(nobody)'}` : r.username;
}

function what(a: Approval): string {
  const s = a.subject;
  const res = s.subresource ? `${s.resource}/${s.subresource}` : s.resource;
  const name = objectName(s);
  return `${s.verb} ${res || s.uri}${name ? ` ${name}` : ''}${s.namespace ? ` in ${s.namespace}` : ''}`;
}

const HEAD = html`<tr><th scope="col">ID</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Why</th><th scope="col">State</th><th scope="col">Asked</th></tr>`;

function rows(list: readonly Approval[]): Html {
  if (list.length === 0) return html`<tr><td colspan="6">None.</td></tr>`;
  return html`${list.map(
    (a) =>
      html`<tr><td><a href="/gatehouse/approvals/${a.id}">${a.id}</a></td><td>${who(a)}</td><td>${what(a)}</td><td>${a.subject.reasons.join('; ')}</td><td class="state ${a.state}">${a.state}</td><td>${when(a.createdAt)}</td></tr>`,
  )}`;
}

export function listPage(items: readonly Approval[]): Html {
  const pending = items.filter((a) => a.state === 'pending');
  const recent = items.filter((a) => a.state !== 'pending').slice(0, 50);
  return html`<h1>Approvals</h1><table id="pending"><caption>Pending (${pending.length})</caption><thead>${HEAD}</thead><tbody>${rows(pending)}</tbody></table>
<table id="recent"><caption>Recent</caption><thead>${HEAD}</thead><tbody>${rows(recent)}</tbody></table>`;
}

/**
 * The diff's lines in <pre>: each marked as added or removed, and those that
 * show a field the approval is about highlighted; joined by the newlines <pre> shows.
 */
function diffHtml(diff: string, highlight: readonly number[]): Html {
  const marked = new Set(highlight);
  const lines = diff.split('\n').map((l, i) => {
    const kind = l.startsWith('+') && !l.startsWith('+++') ? 'add' : l.startsWith('-') && !l.startsWith('---') ? 'del' : 'same';
    if (marked.has(i)) return html`<mark class="risky ${kind}" title="a field this approval is about">${l}</mark>`;
    if (kind === 'same') return html`${l}`;
    return html`<span class="${kind}">${l}</span>`;
  });
  return html`${lines.flatMap((l, i) => (i === 0 ? [l] : ['\n', l]))}`;
}

export function detailPage(a: Approval, viewer: Identity, csrf: string): Html {
  const s = a.subject;
  const preview = !a.preview
    ? html`<p id="preview">The preview is being prepared; reload in a moment.</p>`
    : a.preview.status === 'ok'
      ? html`<pre class="diff" id="preview" aria-label="What the request would change">${diffHtml(a.preview.diff, a.preview.highlight ?? [])}</pre>`
      : html`<p id="preview">${a.preview.message}</p>`;
  const why = whyNotApprover(a, viewer);
  // A grant, where the policy allows one and the viewer may give it: the same verb on the same kind, for a while.
  const g = s.grant;
  const grantable = g.maxSeconds > 0 && viewer.groups.some((x) => g.groups.includes(x));
  const lengths = [900, 1800, 3600, 4 * 3600, 8 * 3600, 24 * 3600].filter((n) => n <= g.maxSeconds);
  if (!lengths.includes(g.maxSeconds)) lengths.push(g.maxSeconds);
  const grant =
    grantable &&
    html`<fieldset class="grant"><legend>Also let ${s.requester.username} ${s.verb} ${s.subresource ? `${s.resource}/${s.subresource}` : s.resource}${s.namespace ? ` in ${s.namespace}` : ''} without asking again</legend>
<label for="grant">for<select id="grant" name="grant"><option value="">no grant: this request only</option>${lengths.map((n) => html`<option value="${String(n)}">${n % 3600 === 0 ? `${n / 3600} h` : `${n / 60} min`}</option>`)}</select></label>
<label for="grant-names">only these objects (comma-separated, optional)<input id="grant-names" name="grant-names" maxlength="4096" size="30"></label></fieldset>`;
  const decide =
    a.state === 'pending' &&
    (why
      ? html`<p>${why}.</p>`
      : html`<form class="decide" method="post" action="/gatehouse/approvals/${a.id}/decision">
<input type="hidden" name="csrf" value="${csrf}"><label for="reason">Reason (optional)<input id="reason" name="reason" maxlength="1024" size="40"></label>
${grant}<button class="approve" type="submit" name="action" value="approve">Approve</button><button class="deny" type="submit" name="action" value="deny">Deny</button></form>`);
  const decided =
    'decidedBy' in a &&
    html`<dt>Decided</dt><dd>${a.state === 'denied' ? 'denied' : 'approved'} by ${a.decidedBy} at ${when(a.decidedAt)}${a.reason ? `: ${a.reason}` : ''}</dd>`;
  const command =
    s.exec &&
    html`<dt>Command</dt><dd><code>${s.exec.command.join(' ')}</code>${s.exec.container ? ` in container ${s.exec.container}` : ''}${s.exec.tty ? ' (interactive)' : ''}</dd>`;
  return html`<h1>Approval ${a.id} <span class="state ${a.state}">${a.state}</span></h1>
<dl><dt>Who</dt><dd>${who(a)}${s.requester.groups.length ? ` (groups: ${s.requester.groups.join(', ')})` : ''}</dd>
<dt>What</dt><dd>${what(a)}</dd><dt>Request</dt><dd><code>${`${s.method} ${s.uri}`}</code></dd>
${command}
<dt>Why</dt><dd>${s.reasons.length ? html`<ul id="reasons">${s.reasons.map((r) => html`<li>${r}</li>`)}</ul>` : '(no reason given by the policy)'}</dd>
${s.fields.length > 0 && html`<dt>Fields</dt><dd id="fields">${s.fields.map((f) => html`<code>${f}</code> `)}(highlighted in the preview)</dd>`}
<dt>Approvers</dt><dd>${a.approverGroups.join(', ')}</dd><dt>Asked</dt><dd>${when(a.createdAt)}</dd><dt>${a.state === 'approved' ? 'Valid until' : 'Expires'}</dt><dd>${when(a.expiresAt)}</dd>${decided}</dl>
<h2>Preview</h2>${preview}${decide}`;
}
