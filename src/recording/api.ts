/**
 * Session recordings over HTTP, with the same bearer tokens as the Kubernetes API:
 *   GET /gatehouse/v1/sessions[?user=&pod=&since=]    the recordings the caller may see
 *   GET /gatehouse/v1/sessions/ID                     one recording's header and end
 *   GET /gatehouse/v1/sessions/ID/cast                the asciicast file
 * Who may list and replay is the policy's decision: the request is put to it as
 * `list` / `get` of `sessions` in API group `gatehouse.dev` (no namespace).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createReadStream } from 'node:fs';
import { GatehouseError } from '../errors.js';
import { sendJson as send, sendStatus } from '../web/respond.js';
import type { Identity } from '../identity/identity.js';
import type { PolicyEngine } from '../policy/engine.js';
import type { PolicyInput } from '../policy/input.js';
import type { SessionStore, SessionSummary } from './sessions.js';

export const SESSIONS_PREFIX = '/gatehouse/v1/sessions';

export interface SessionFilter {
  readonly user?: string;
  readonly pod?: string;
  /** Epoch seconds. */
  readonly since?: number;
}

/** Asks the policy whether this person may list or read session recordings; throws the 403 if not. */
export async function authorizeSessions(engine: PolicyEngine, cluster: string, who: Identity, verb: 'list' | 'get', name: string, path: string): Promise<void> {
  const input: PolicyInput = {
    user: who,
    resourceAttributes: { verb, group: 'gatehouse.dev', version: 'v1', resource: 'sessions', subresource: '', namespace: '', name, trailingPath: '' },
    nonResourceAttributes: null,
    request: { id: '', method: 'GET', path, query: {}, userAgent: '', sourceIP: '', dryRun: false, contentType: '', body: null, bodyTooLarge: false, impersonate: null },
    context: { now_ns: Date.now() * 1e6, cluster },
  };
  const d = await engine.evaluate(input);
  if (d.effect !== 'allow') throw new GatehouseError('GATEHOUSE_DENIED', `Gatehouse denied this request: ${d.effect === 'deny' ? d.reasons.join('; ') : 'replaying sessions cannot wait for an approval'}`);
}

export function filterSessions(list: readonly SessionSummary[], f: SessionFilter): SessionSummary[] {
  return list.filter((s) => (!f.user || s.header.gatehouse.user === f.user || s.header.gatehouse.onBehalfOf === f.user) && (!f.pod || s.header.gatehouse.pod === f.pod || `${s.header.gatehouse.namespace}/${s.header.gatehouse.pod}` === f.pod) && (!f.since || s.header.timestamp >= f.since));
}

/** The asciicast file of a session the caller may replay (checked before), streamed. */
export function sendCast(res: ServerResponse, store: SessionStore, id: string, download: boolean): void {
  res.writeHead(200, { 'content-type': 'application/x-asciicast', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...(download ? { 'content-disposition': `attachment; filename="${id}.cast"` } : {}) });
  createReadStream(store.file(id)).pipe(res);
}

export function createSessionsApi(deps: { readonly store: SessionStore; readonly engine: PolicyEngine; readonly cluster: string; readonly authenticate: (req: IncomingMessage) => Promise<Identity> }) {
  return async function handle(req: IncomingMessage, res: ServerResponse, path: string, search: URLSearchParams): Promise<void> {
    try {
      const who = await deps.authenticate(req);
      const rest = path.slice(SESSIONS_PREFIX.length).split('/').filter(Boolean);
      if (req.method !== 'GET') throw new GatehouseError('GATEHOUSE_METHOD_NOT_ALLOWED', 'session recordings are read-only');
      if (rest.length === 0) {
        await authorizeSessions(deps.engine, deps.cluster, who, 'list', '', path);
        const since = search.get('since');
        const items = filterSessions(deps.store.list(), { ...(search.get('user') ? { user: search.get('user')! } : {}), ...(search.get('pod') ? { pod: search.get('pod')! } : {}), ...(since ? { since: Number(since) } : {}) });
        return send(res, 200, { kind: 'SessionList', apiVersion: 'gatehouse.dev/v1', items });
      }
      const id = rest[0]!;
      await authorizeSessions(deps.engine, deps.cluster, who, 'get', id, path);
      const s = deps.store.get(id);
      if (!s) throw new GatehouseError('GATEHOUSE_NOT_FOUND', `session ${id} does not exist`);
      if (rest.length === 1) return send(res, 200, s);
      if (rest.length === 2 && rest[1] === 'cast') return sendCast(res, deps.store, id, true);
      throw new GatehouseError('GATEHOUSE_NOT_FOUND', `no such sessions API: ${path}`);
    } catch (err) {
      sendStatus(res, err);
    }
  };
}
