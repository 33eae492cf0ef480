/**
 * The approver's web page: plain server-rendered HTML under /gatehouse/, no
 * script at all. Login is OpenID Connect authorization code + PKCE
 * (openid-client) against a configured issuer; the ID token is then verified
 * by the gateway's own authenticator, exactly like a bearer token, so a web
 * approver is the same identity as on the CLI.
 *
 * Sessions live in this process (a cookie names a random key); replicas behind
 * a load balancer need sticky sessions for the page, not for the API or the
 * approvals themselves, which are in the store.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as oidc from 'openid-client';
import { asGatehouseError, GatehouseError } from '../errors.js';
import { CSP, escapeHtml, page, PLAYER_CSP, STYLE } from '../web/html.js';
import { readFileSync } from 'node:fs';
import type { AuditWriter } from '../audit/writer.js';
import { auditRead, sendCast, type ReadAudit } from '../recording/api.js';
import { join } from 'node:path';
import { projectRoot } from '../paths.js';
import { PLAYER_HEAD, REPLAY_SCRIPT, sessionListPage, sessionPage } from '../recording/pages.js';
import type { SessionStore } from '../recording/sessions.js';
import type { Identity } from '../identity/identity.js';
import { visibleApproval, visibleApprovals, readSmallBody } from './api.js';
import { whyNotApprover, type Approval } from './approval.js';
import type { ApprovalService } from './service.js';
import type { ApprovalStore } from './store.js';

export const WEB_PREFIX = '/gatehouse/';
const SESSION_COOKIE = '__Host-gatehouse-session';
const LOGIN_COOKIE = '__Host-gatehouse-login';
const LOGIN_TTL_MS = 10 * 60 * 1000;
const MAX_SESSIONS = 10_000;

export interface WebOptions {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret?: string;
  readonly sessionMinutes: number;
  /** The gateway's URL as browsers reach it; the redirect URI is under it. */
  readonly publicUrl: string;
}

interface Session {
  readonly identity: Identity;
  readonly csrf: string;
  readonly expiresAt: number;
}

interface PendingLogin {
  readonly verifier: string;
  readonly state: string;
  readonly nonce: string;
  readonly returnTo: string;
  readonly expiresAt: number;
}

function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

function cookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}`;
}

function when(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

function who(a: Approval): string {
  const r = a.subject.requester;
  return r.agent ? `agent ${escapeHtml(r.agent.name)} for ${escapeHtml(r.agent.onBehalfOf ?? '(nobody)')}` : escapeHtml(r.username);
}

function what(a: Approval): string {
  const s = a.subject;
  const res = s.subresource ? `${s.resource}/${s.subresource}` : s.resource;
  return escapeHtml(`${s.verb} ${res || s.uri}${s.name ? ` ${s.name}` : ''}${s.namespace ? ` in ${s.namespace}` : ''}`);
}

function listPage(items: Approval[]): string {
  const rows = (list: Approval[]) =>
    list.length === 0
      ? '<tr><td colspan="6">None.</td></tr>'
      : list
          .map(
            (a) =>
              `<tr><td><a href="/gatehouse/approvals/${escapeHtml(a.id)}">${escapeHtml(a.id)}</a></td><td>${who(a)}</td><td>${what(a)}</td><td>${escapeHtml(a.subject.reasons.join('; '))}</td><td class="state ${a.state}">${a.state}</td><td>${when(a.createdAt)}</td></tr>`,
          )
          .join('');
  const head =
    '<tr><th scope="col">ID</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Why</th><th scope="col">State</th><th scope="col">Asked</th></tr>';
  const pending = items.filter((a) => a.state === 'pending');
  const recent = items.filter((a) => a.state !== 'pending').slice(0, 50);
  return `<h1>Approvals</h1><table id="pending"><caption>Pending (${pending.length})</caption><thead>${head}</thead><tbody>${rows(pending)}</tbody></table>
<table id="recent"><caption>Recent</caption><thead>${head}</thead><tbody>${rows(recent)}</tbody></table>`;
}

function diffHtml(diff: string): string {
  return diff
    .split('\n')
    .map((l) =>
      l.startsWith('+') && !l.startsWith('+++')
        ? `<span class="add">${escapeHtml(l)}</span>`
        : l.startsWith('-') && !l.startsWith('---')
          ? `<span class="del">${escapeHtml(l)}</span>`
          : escapeHtml(l),
    )
    .join('\n');
}

function detailPage(a: Approval, viewer: Identity, csrf: string): string {
  const s = a.subject;
  const preview = !a.preview
    ? '<p id="preview">The preview is being prepared; reload in a moment.</p>'
    : a.preview.status === 'ok'
      ? `<pre class="diff" id="preview" aria-label="What the request would change">${diffHtml(a.preview.diff)}</pre>`
      : `<p id="preview">${escapeHtml(a.preview.message)}</p>`;
  const why = whyNotApprover(a, viewer);
  const decide =
    a.state !== 'pending'
      ? ''
      : why
        ? `<p>${escapeHtml(why)}.</p>`
        : `<form class="decide" method="post" action="/gatehouse/approvals/${escapeHtml(a.id)}/decision">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}"><label for="reason">Reason (optional)<input id="reason" name="reason" maxlength="1024" size="40"></label>
<button class="approve" type="submit" name="action" value="approve">Approve</button><button class="deny" type="submit" name="action" value="deny">Deny</button></form>`;
  const decided =
    'decidedBy' in a
      ? `<dt>Decided</dt><dd>${a.state === 'denied' ? 'denied' : 'approved'} by ${escapeHtml(a.decidedBy)} at ${when(a.decidedAt)}${a.reason ? `: ${escapeHtml(a.reason)}` : ''}</dd>`
      : '';
  return `<h1>Approval ${escapeHtml(a.id)} <span class="state ${a.state}">${a.state}</span></h1>
<dl><dt>Who</dt><dd>${who(a)}${s.requester.groups.length ? ` (groups: ${escapeHtml(s.requester.groups.join(', '))})` : ''}</dd>
<dt>What</dt><dd>${what(a)}</dd><dt>Request</dt><dd><code>${escapeHtml(`${s.method} ${s.uri}`)}</code></dd>
${s.exec ? `<dt>Command</dt><dd><code>${escapeHtml(s.exec.command.join(' '))}</code>${s.exec.container ? ` in container ${escapeHtml(s.exec.container)}` : ''}${s.exec.tty ? ' (interactive)' : ''}</dd>` : ''}
<dt>Why</dt><dd>${escapeHtml(s.reasons.join('; ') || '(no reason given by the policy)')}</dd>
<dt>Approvers</dt><dd>${escapeHtml(a.approverGroups.join(', '))}</dd><dt>Asked</dt><dd>${when(a.createdAt)}</dd><dt>${a.state === 'approved' ? 'Valid until' : 'Expires'}</dt><dd>${when(a.expiresAt)}</dd>${decided}</dl>
<h2>Preview</h2>${preview}${decide}`;
}

/** The player's files, served from our own origin (no CDN): read once at start-up. */
function playerAssets(): Record<string, { type: string; body: Buffer | string }> {
  // The package's exports map hides its bundle folder from require.resolve.
  const bundle = join(projectRoot, 'node_modules', 'asciinema-player', 'dist', 'bundle');
  return {
    '/gatehouse/static/asciinema-player.min.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(join(bundle, 'asciinema-player.min.js')) },
    '/gatehouse/static/asciinema-player.css': { type: 'text/css; charset=utf-8', body: readFileSync(join(bundle, 'asciinema-player.css')) },
    '/gatehouse/static/replay.js': { type: 'text/javascript; charset=utf-8', body: REPLAY_SCRIPT },
    '/gatehouse/style.css': { type: 'text/css; charset=utf-8', body: STYLE },
  };
}

export interface WebSessions {
  readonly store: SessionStore;
  /** The policy's word on listing (`list`) or replaying (`get`) recordings; throws the 403. */
  readonly authorize: (who: Identity, verb: 'list' | 'get', name: string, req: IncomingMessage, read: ReadAudit) => Promise<void>;
  /** Every page and file of a recording read is audited like any request. */
  readonly audit: AuditWriter;
}

export function createApprovalsWeb(deps: {
  readonly store: ApprovalStore;
  readonly service: ApprovalService;
  readonly verify: (idToken: string) => Promise<Identity>;
  readonly options: WebOptions;
  readonly sessions?: WebSessions;
  readonly now?: () => number;
}) {
  const assets = playerAssets();
  const now = deps.now ?? Date.now;
  const { options } = deps;
  const sessions = new Map<string, Session>();
  const logins = new Map<string, PendingLogin>();
  const redirectUri = `${options.publicUrl}/gatehouse/callback`;
  const origin = new URL(options.publicUrl).origin;
  let config: Promise<oidc.Configuration> | undefined;

  function discover(): Promise<oidc.Configuration> {
    // Discovered on first use, and again after a failure: the issuer may start after the gateway.
    config ??= oidc
      .discovery(
        new URL(options.issuer),
        options.clientId,
        options.clientSecret,
        options.clientSecret ? oidc.ClientSecretPost(options.clientSecret) : oidc.None(),
        // eslint-disable-next-line @typescript-eslint/no-deprecated -- the demo issuer serves plain HTTP on loopback; openid-client marks this escape hatch deprecated so that it stands out, and it is used only for http: issuers
        new URL(options.issuer).protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : undefined,
      )
      .catch((err: unknown) => {
        config = undefined;
        throw err;
      });
    return config;
  }

  function sweep(): void {
    const t = now();
    for (const [k, s] of sessions) if (s.expiresAt <= t) sessions.delete(k);
    for (const [k, l] of logins) if (l.expiresAt <= t) logins.delete(k);
  }

  function html(res: ServerResponse, status: number, body: string, headers: Record<string, string | string[]> = {}): void {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      // same-origin, not no-referrer: with no-referrer, Chromium sends `Origin: null` on our own form posts.
      'referrer-policy': 'same-origin',
      ...headers,
    });
    res.end(body);
  }

  function redirect(res: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void {
    res.writeHead(303, { location, 'cache-control': 'no-store', ...headers });
    res.end();
  }

  function sessionOf(req: IncomingMessage): Session | undefined {
    const s = sessions.get(cookies(req).get(SESSION_COOKIE) ?? '');
    return s && s.expiresAt > now() ? s : undefined;
  }

  function sameString(a: string, b: string): boolean {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
  }

  /** A form post must come from our own page: same origin (when the browser says) and the session's CSRF token. */
  function checkForm(req: IncomingMessage, session: Session, form: URLSearchParams): void {
    const o = req.headers.origin;
    if (o !== undefined && o !== origin) throw new GatehouseError('GATEHOUSE_DENIED', 'this form was posted from another site');
    if (!sameString(form.get('csrf') ?? '', session.csrf)) throw new GatehouseError('GATEHOUSE_DENIED', 'the form has expired; reload the page and try again');
  }

  async function login(res: ServerResponse, returnTo: string): Promise<void> {
    sweep();
    const cfg = await discover();
    const pending: PendingLogin = {
      verifier: oidc.randomPKCECodeVerifier(),
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      returnTo,
      expiresAt: now() + LOGIN_TTL_MS,
    };
    const key = randomBytes(24).toString('base64url');
    logins.set(key, pending);
    const url = oidc.buildAuthorizationUrl(cfg, {
      redirect_uri: redirectUri,
      scope: 'openid email groups',
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    });
    redirect(res, url.href, { 'set-cookie': cookie(LOGIN_COOKIE, key, LOGIN_TTL_MS / 1000) });
  }

  async function callback(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const key = cookies(req).get(LOGIN_COOKIE) ?? '';
    const pending = logins.get(key);
    logins.delete(key);
    if (!pending || pending.expiresAt <= now())
      throw new GatehouseError('GATEHOUSE_UNAUTHENTICATED', 'this login is unknown or took too long; start again at /gatehouse/approvals');
    const cfg = await discover();
    const current = new URL(redirectUri);
    current.search = url.search;
    let idToken: string | undefined;
    try {
      const tokens = await oidc.authorizationCodeGrant(cfg, current, {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      idToken = tokens.id_token;
    } catch (err) {
      throw new GatehouseError('GATEHOUSE_UNAUTHENTICATED', `the login failed: ${(err as Error).message}`);
    }
    if (!idToken) throw new GatehouseError('GATEHOUSE_UNAUTHENTICATED', 'the issuer returned no ID token');
    const identity = await deps.verify(idToken);
    if (sessions.size >= MAX_SESSIONS) sweep();
    const sid = randomBytes(32).toString('base64url');
    sessions.set(sid, { identity, csrf: randomBytes(24).toString('base64url'), expiresAt: now() + options.sessionMinutes * 60_000 });
    redirect(res, pending.returnTo, { 'set-cookie': [cookie(SESSION_COOKIE, sid, options.sessionMinutes * 60), cookie(LOGIN_COOKIE, '', 0)] });
  }

  return async function handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL): Promise<void> {
    try {
      const asset = req.method === 'GET' ? assets[path] : undefined;
      if (asset) {
        res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'max-age=3600', 'x-content-type-options': 'nosniff' });
        res.end(asset.body);
        return;
      }
      if (req.method === 'GET' && path === '/gatehouse/callback') return await callback(req, res, url);
      const session = sessionOf(req);
      if (req.method === 'POST' && path === '/gatehouse/logout') {
        if (session) {
          checkForm(req, session, new URLSearchParams(await readSmallBody(req, 4096)));
          sessions.delete(cookies(req).get(SESSION_COOKIE) ?? '');
        }
        return html(res, 200, page('Logged out', undefined, undefined, '<p>You are logged out. <a href="/gatehouse/approvals">Log in again</a></p>'), {
          'set-cookie': cookie(SESSION_COOKIE, '', 0),
        });
      }
      const m = /^\/gatehouse\/approvals(?:\/(ap-[a-z0-9]+)(\/decision)?)?\/?$/.exec(path);
      const sm = /^\/gatehouse\/sessions(?:\/(se-[a-z0-9]+)(\/cast)?)?\/?$/.exec(path);
      if (!m && !(sm && deps.sessions)) throw new GatehouseError('GATEHOUSE_NOT_FOUND', `no page at ${path}`);
      if (!session) {
        if (req.method !== 'GET') throw new GatehouseError('GATEHOUSE_UNAUTHENTICATED', 'your session has ended; log in again');
        return await login(res, path);
      }
      if (sm && deps.sessions) {
        if (req.method !== 'GET') throw new GatehouseError('GATEHOUSE_METHOD_NOT_ALLOWED', 'session recordings are read-only');
        const [, sid, cast] = sm;
        const read = auditRead(deps.sessions.audit, req, res);
        try {
          await deps.sessions.authorize(session.identity, sid ? 'get' : 'list', sid ?? '', req, read);
          if (!sid) return html(res, 200, page('Sessions', session.identity, session.csrf, sessionListPage(deps.sessions.store.list())));
          const rec = deps.sessions.store.get(sid);
          if (!rec) throw new GatehouseError('GATEHOUSE_NOT_FOUND', `session ${sid} does not exist`);
          if (cast) return await sendCast(res, deps.sessions.store, sid, false);
          return html(res, 200, page(`Session ${sid}`, session.identity, session.csrf, sessionPage(rec), PLAYER_HEAD), {
            'content-security-policy': PLAYER_CSP,
          });
        } catch (err) {
          read.failed(err);
          throw err;
        }
      }
      if (!m) throw new GatehouseError('GATEHOUSE_NOT_FOUND', `no page at ${path}`);
      const [, id, decision] = m;
      if (req.method === 'GET' && !id)
        return html(
          res,
          200,
          page('Approvals', session.identity, session.csrf, listPage(await visibleApprovals(deps.store, session.identity, undefined, 200))),
        );
      if (req.method === 'GET' && id && !decision) {
        const a = await visibleApproval(deps.store, session.identity, id);
        return html(res, 200, page(`Approval ${a.id}`, session.identity, session.csrf, detailPage(a, session.identity, session.csrf)));
      }
      if (req.method === 'POST' && id && decision) {
        const form = new URLSearchParams(await readSmallBody(req, 16 * 1024));
        checkForm(req, session, form);
        await visibleApproval(deps.store, session.identity, id);
        const action = form.get('action');
        if (action !== 'approve' && action !== 'deny') throw new GatehouseError('GATEHOUSE_BAD_REQUEST', 'choose Approve or Deny');
        await deps.service.decide(id, session.identity, action === 'approve', form.get('reason') ?? '');
        return redirect(res, `/gatehouse/approvals/${id}`);
      }
      throw new GatehouseError('GATEHOUSE_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`);
    } catch (err) {
      const e = asGatehouseError(err);
      const s = sessionOf(req);
      html(
        res,
        e.status,
        page(
          'Error',
          s?.identity,
          s?.csrf,
          `<h1>${escapeHtml(e.reason)}</h1><p role="alert">${escapeHtml(e.publicMessage)}</p><p><a href="/gatehouse/approvals">Back to approvals</a></p>`,
        ),
      );
    }
  };
}
