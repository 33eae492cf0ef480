/**
 * The gateway's web pages under /gatehouse/: approvals (list, one approval with
 * its preview, the decision form) and session recordings (list, replay), plain
 * server-rendered HTML through the escaping template, no script but the
 * player's, behind the OIDC login of web/login.ts.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { readSmallBody, visibleApproval, visibleApprovals } from '../approval/api.js';
import type { ApprovalService } from '../approval/service.js';
import type { ApprovalStore } from '../approval/store.js';
import type { AuditWriter } from '../audit/writer.js';
import { asGatehouseError, GatehouseError } from '../errors.js';
import type { Identity } from '../identity/identity.js';
import { projectRoot } from '../paths.js';
import { auditRead, sendCast, type ReadAudit } from '../recording/api.js';
import type { SessionStore } from '../recording/sessions.js';
import { detailPage, listPage } from './approval-pages.js';
import { CSP, page, PLAYER_CSP, STYLE } from './html.js';
import { createLogin, redirect, type WebOptions } from './login.js';
import { PLAYER_HEAD, REPLAY_SCRIPT, sessionListPage, sessionPage } from './session-pages.js';
import { html } from './template.js';

export type { WebOptions } from './login.js';
export const WEB_PREFIX = '/gatehouse/';

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

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string | string[]> = {}): void {
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

export function createWeb(deps: {
  readonly store: ApprovalStore;
  readonly service: ApprovalService;
  readonly verify: (idToken: string) => Promise<Identity>;
  readonly options: WebOptions;
  readonly sessions?: WebSessions;
  readonly now?: () => number;
}) {
  const assets = playerAssets();
  const login = createLogin({ verify: deps.verify, options: deps.options, now: deps.now ?? Date.now });

  return async function handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL): Promise<void> {
    try {
      const asset = req.method === 'GET' ? assets[path] : undefined;
      if (asset) {
        res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'max-age=3600', 'x-content-type-options': 'nosniff' });
        res.end(asset.body);
        return;
      }
      if (req.method === 'GET' && path === '/gatehouse/callback') return await login.callback(req, res, url);
      const session = login.sessionOf(req);
      if (req.method === 'POST' && path === '/gatehouse/logout') {
        const cleared = login.logout(req, session, new URLSearchParams(await readSmallBody(req, 4096)));
        return send(res, 200, page('Logged out', undefined, undefined, html`<p>You are logged out. <a href="/gatehouse/approvals">Log in again</a></p>`), {
          'set-cookie': cleared,
        });
      }
      const m = /^\/gatehouse\/approvals(?:\/(ap-[a-z0-9]+)(\/decision)?)?\/?$/.exec(path);
      const sm = /^\/gatehouse\/sessions(?:\/(se-[a-z0-9]+)(\/cast)?)?\/?$/.exec(path);
      if (!m && !(sm && deps.sessions)) throw new GatehouseError('GATEHOUSE_NOT_FOUND', `no page at ${path}`);
      if (!session) {
        if (req.method !== 'GET') throw new GatehouseError('GATEHOUSE_UNAUTHENTICATED', 'your session has ended; log in again');
        return await login.login(res, path);
      }
      if (sm && deps.sessions) {
        if (req.method !== 'GET') throw new GatehouseError('GATEHOUSE_METHOD_NOT_ALLOWED', 'session recordings are read-only');
        const [, sid, cast] = sm;
        const read = auditRead(deps.sessions.audit, req, res);
        try {
          await deps.sessions.authorize(session.identity, sid ? 'get' : 'list', sid ?? '', req, read);
          if (!sid) return send(res, 200, page('Sessions', session.identity, session.csrf, sessionListPage(await deps.sessions.store.list())));
          const rec = await deps.sessions.store.get(sid);
          if (!rec) throw new GatehouseError('GATEHOUSE_NOT_FOUND', `session ${sid} does not exist`);
          if (cast) return await sendCast(res, deps.sessions.store, sid, false);
          return send(res, 200, page(`Session ${sid}`, session.identity, session.csrf, sessionPage(rec), PLAYER_HEAD), {
            'content-security-policy': PLAYER_CSP,
          });
        } catch (err) {
          read.failed(err);
          throw err;
        }
      }
      if (!m) throw new GatehouseError('GATEHOUSE_NOT_FOUND', `no page at ${path}`);
      const [, id, decision] = m;
      if (req.method === 'GET' && !id) {
        return send(
          res,
          200,
          page('Approvals', session.identity, session.csrf, listPage(await visibleApprovals(deps.store, session.identity, undefined, 200))),
        );
      }
      if (req.method === 'GET' && id && !decision) {
        const a = await visibleApproval(deps.store, session.identity, id);
        return send(res, 200, page(`Approval ${a.id}`, session.identity, session.csrf, detailPage(a, session.identity, session.csrf)));
      }
      if (req.method === 'POST' && id && decision) {
        const form = new URLSearchParams(await readSmallBody(req, 16 * 1024));
        login.checkForm(req, session, form);
        await visibleApproval(deps.store, session.identity, id);
        const action = form.get('action');
        if (action !== 'approve' && action !== 'deny') throw new GatehouseError('GATEHOUSE_BAD_REQUEST', 'choose Approve or Deny');
        const seconds = form.get('grant');
        const names = (form.get('grant-names') ?? '')
          .split(',')
          .map((n) => n.trim())
          .filter(Boolean);
        const grant = seconds ? { seconds: Number(seconds), ...(names.length ? { names } : {}) } : undefined;
        await deps.service.decide(id, session.identity, action === 'approve', form.get('reason') ?? '', grant);
        return redirect(res, `/gatehouse/approvals/${id}`);
      }
      throw new GatehouseError('GATEHOUSE_METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on ${path}`);
    } catch (err) {
      const e = asGatehouseError(err);
      const s = login.sessionOf(req);
      send(
        res,
        e.status,
        page(
          'Error',
          s?.identity,
          s?.csrf,
          html`<h1>${e.reason}</h1><p role="alert">${e.publicMessage}</p><p><a href="/gatehouse/approvals">Back to approvals</a></p>`,
        ),
      );
    }
  };
}
