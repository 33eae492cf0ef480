/** The web pages of session recordings: a list, and a replay with asciinema-player. */
import { escapeHtml } from '../web/html.js';
import type { SessionSummary } from './sessions.js';

function who(s: SessionSummary): string {
  const g = s.header.gatehouse;
  return escapeHtml(g.agent ? `agent ${g.agent} for ${g.onBehalfOf ?? '(nobody)'}` : g.user);
}

function what(s: SessionSummary): string {
  const g = s.header.gatehouse;
  return escapeHtml(`${g.kind}${g.tty ? ' -it' : ''} ${g.command.join(' ')}`);
}

function ended(s: SessionSummary): string {
  return s.end ? escapeHtml(s.end.exitCode === null ? s.end.reason : `exit ${s.end.exitCode}`) : 'running';
}

export function sessionListPage(items: readonly SessionSummary[]): string {
  const rows = items.length
    ? items
        .map(
          (s) =>
            `<tr><td><a href="/gatehouse/sessions/${escapeHtml(s.id)}">${escapeHtml(s.id)}</a></td><td>${new Date(s.header.timestamp * 1000).toISOString().replace(/\.\d+Z$/, 'Z')}</td><td>${who(s)}</td><td>${escapeHtml(`${s.header.gatehouse.namespace}/${s.header.gatehouse.pod}`)}</td><td><code>${what(s)}</code></td><td>${ended(s)}</td><td>${s.durationSeconds.toFixed(1)} s</td></tr>`,
        )
        .join('')
    : '<tr><td colspan="7">None.</td></tr>';
  return `<h1>Sessions</h1><table id="sessions"><caption>Recorded exec and attach sessions, newest first</caption><thead><tr><th scope="col">ID</th><th scope="col">Started</th><th scope="col">Who</th><th scope="col">Pod</th><th scope="col">Command</th><th scope="col">Ended</th><th scope="col">Length</th></tr></thead><tbody>${rows}</tbody></table>`;
}

export const PLAYER_HEAD =
  '<link rel="stylesheet" href="/gatehouse/static/asciinema-player.css"><script src="/gatehouse/static/asciinema-player.min.js" defer></script><script src="/gatehouse/static/replay.js" defer></script>';

/** Started by /gatehouse/static/replay.js: no inline script, so the page's CSP allows only our own files. */
export const REPLAY_SCRIPT = `document.querySelectorAll('[data-cast]').forEach(function (el) {
  AsciinemaPlayer.create(el.getAttribute('data-cast'), el, { idleTimeLimit: 2, autoPlay: true, fit: 'width', terminalFontFamily: 'monospace' });
});
`;

export function sessionPage(s: SessionSummary): string {
  const g = s.header.gatehouse;
  return `<h1>Session ${escapeHtml(s.id)}</h1>
<dl><dt>Who</dt><dd>${who(s)}</dd><dt>Pod</dt><dd>${escapeHtml(`${g.namespace}/${g.pod}`)}${g.container ? ` (container ${escapeHtml(g.container)})` : ''}</dd>
<dt>Command</dt><dd><code>${what(s)}</code></dd><dt>Started</dt><dd>${new Date(s.header.timestamp * 1000).toISOString()}</dd><dt>Ended</dt><dd>${ended(s)} after ${s.durationSeconds.toFixed(1)} s</dd>
<dt>Recording</dt><dd><a href="/gatehouse/sessions/${escapeHtml(s.id)}/cast" download>${escapeHtml(s.id)}.cast</a> (asciicast v2)</dd></dl>
<div id="player" data-cast="/gatehouse/sessions/${escapeHtml(s.id)}/cast" aria-label="Replay of the session"></div>`;
}
