/** The web pages of session recordings: a list, and a replay with asciinema-player. */
import type { SessionSummary } from '../recording/sessions.js';
import { html, trusted, type Html } from './template.js';

function who(s: SessionSummary): string {
  const g = s.header.gatehouse;
  return g.agent ? `agent ${g.agent} for ${g.onBehalfOf ?? '(nobody)'}` : g.user;
}

function what(s: SessionSummary): string {
  const g = s.header.gatehouse;
  return `${g.kind}${g.tty ? ' -it' : ''} ${g.command.join(' ')}`;
}

function ended(s: SessionSummary): string {
  return s.end ? (s.end.exitCode === null ? s.end.reason : `exit ${s.end.exitCode}`) : 'running';
}

export function sessionListPage(items: readonly SessionSummary[]): Html {
  const rows = items.length
    ? items.map(
        (s) =>
          html`<tr><td><a href="/gatehouse/sessions/${s.id}">${s.id}</a></td><td>${new Date(s.header.timestamp * 1000).toISOString().replace(/\.\d+Z$/, 'Z')}</td><td>${who(s)}</td><td>${`${s.header.gatehouse.namespace}/${s.header.gatehouse.pod}`}</td><td><code>${what(s)}</code></td><td>${ended(s)}</td><td>${s.durationSeconds.toFixed(1)} s</td></tr>`,
      )
    : html`<tr><td colspan="7">None.</td></tr>`;
  return html`<h1>Sessions</h1><table id="sessions"><caption>Recorded exec and attach sessions, newest first</caption><thead><tr><th scope="col">ID</th><th scope="col">Started</th><th scope="col">Who</th><th scope="col">Pod</th><th scope="col">Command</th><th scope="col">Ended</th><th scope="col">Length</th></tr></thead><tbody>${rows}</tbody></table>`;
}

export const PLAYER_HEAD = trusted(
  '<link rel="stylesheet" href="/gatehouse/static/asciinema-player.css"><script src="/gatehouse/static/asciinema-player.min.js" defer></script><script src="/gatehouse/static/replay.js" defer></script>',
);

/** Started by /gatehouse/static/replay.js: no inline script, so the page's CSP allows only our own files. */
export const REPLAY_SCRIPT = `document.querySelectorAll('[data-cast]').forEach(function (el) {
  AsciinemaPlayer.create(el.getAttribute('data-cast'), el, { idleTimeLimit: 2, autoPlay: true, fit: 'width', terminalFontFamily: 'monospace' });
});
`;

export function sessionPage(s: SessionSummary): Html {
  const g = s.header.gatehouse;
  return html`<h1>Session ${s.id}</h1>
<dl><dt>Who</dt><dd>${who(s)}</dd><dt>Pod</dt><dd>${`${g.namespace}/${g.pod}`}${g.container ? ` (container ${g.container})` : ''}</dd>
<dt>Command</dt><dd><code>${what(s)}</code></dd><dt>Started</dt><dd>${new Date(s.header.timestamp * 1000).toISOString()}</dd><dt>Ended</dt><dd>${ended(s)} after ${s.durationSeconds.toFixed(1)} s</dd>
<dt>Recording</dt><dd><a href="/gatehouse/sessions/${s.id}/cast" download>${s.id}.cast</a> (asciicast v2)</dd></dl>
<div id="player" data-cast="/gatehouse/sessions/${s.id}/cast" aria-label="Replay of the session"></div>`;
}
