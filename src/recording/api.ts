/**
 * Session recordings over HTTP, with the same bearer tokens as the Kubernetes API:
 *   GET /gatehouse/v1/sessions[?user=&pod=&since=]    the recordings the caller may see
 *   GET /gatehouse/v1/sessions/ID                     one recording's header and end
 *   GET /gatehouse/v1/sessions/ID/cast                the asciicast file
 * Who may list and replay is the policy's decision: the request is put to it as
 * `list` / `get` of `sessions` in API group `gatehouse.dev` (no namespace).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { auditUser, decisionFacts } from '../admission/record.js';
import { requestEvent } from '../audit/record.js';
import type { AuditWriter } from '../audit/writer.js';
import { asGatehouseError, GatehouseError } from '../errors.js';
import type { Decision } from '../policy/decision.js';
import { sendJson as send, sendStatus } from '../respond.js';
import type { Identity } from '../identity/identity.js';
import type { PolicyEngine } from '../policy/engine.js';
import { buildInput } from '../policy/input.js';
import type { SessionStore, SessionSummary } from './sessions.js';

export const SESSIONS_PREFIX = '/gatehouse/v1/sessions';

export interface SessionFilter {
  readonly user?: string;
  readonly pod?: string;
  /** Epoch seconds. */
  readonly since?: number;
}

/**
 * One audit record for each read of recordings (list, show, play, export, the
 * web player), like any request: who, which session, the policy's decision and
 * the status the reader got, written once the answer is done, however it ended.
 */
export interface ReadAudit {
  readonly auditId: string;
  identified(who: Identity): void;
  decided(verb: 'list' | 'get', name: string, decision: Decision, revision: string): void;
  failed(err: unknown): void;
}

export function auditRead(audit: AuditWriter, req: IncomingMessage, res: ServerResponse, now: () => number = Date.now): ReadAudit {
  const auditId = randomUUID();
  const received = new Date(now());
  let who: Identity | null = null;
  let verb: 'list' | 'get' = 'get';
  let name = '';
  let decision: { d: Decision; revision: string } | null = null;
  let error: GatehouseError | null = null;
  res.setHeader('audit-id', auditId);
  res.once('close', () => {
    const d = decision?.d;
    audit.write(
      requestEvent({
        auditId,
        received,
        at: new Date(now()),
        stage: 'ResponseComplete',
        uri: req.url ?? '',
        verb,
        sourceIP: req.socket.remoteAddress ?? '',
        userAgent: req.headers['user-agent'],
        user: who ? auditUser(who) : null,
        impersonated: null,
        objectRef: { resource: 'sessions', apiGroup: 'gatehouse.dev', apiVersion: 'v1', ...(name ? { name } : {}) },
        decision: d ? decisionFacts(d) : null,
        policyRevision: decision?.revision ?? null,
        approval: null,
        // A stream cut short (the recording removed while read) is not a complete answer.
        code: res.writableFinished ? res.statusCode : (error?.status ?? 500),
        error: error ? { code: error.code, reason: error.reason, publicMessage: error.publicMessage, message: error.message } : null,
        input: null,
        session: null,
        bytesOut: null,
      }),
    );
  });
  return {
    auditId,
    identified: (w) => void (who = w),
    decided: (v, n, d, revision) => {
      verb = v;
      name = n;
      decision = { d, revision };
    },
    failed: (err) => void (error = asGatehouseError(err)),
  };
}

/** Asks the policy whether this person may list or read session recordings; throws the 403 if not. */
export async function authorizeSessions(
  engine: PolicyEngine,
  cluster: string,
  who: Identity,
  verb: 'list' | 'get',
  name: string,
  req: IncomingMessage,
  read: ReadAudit,
): Promise<void> {
  read.identified(who);
  // The same input builder as every Kubernetes request: a policy sees recordings as one more resource.
  const path = new URL(req.url ?? '/', 'https://gatehouse.invalid').pathname;
  const input = buildInput({
    identity: who,
    target: {
      kind: 'resource',
      attributes: { verb, group: 'gatehouse.dev', version: 'v1', resource: 'sessions', subresource: '', namespace: '', name, trailingPath: '' },
      path,
      query: {},
      search: '',
    },
    id: read.auditId,
    method: 'GET',
    headers: req.headers,
    sourceIP: req.socket.remoteAddress ?? '',
    body: { body: null, bodyTooLarge: false },
    nowNs: Date.now() * 1e6,
    cluster,
  });
  const d = await engine.evaluate(input);
  read.decided(verb, name, d, engine.revision);
  if (d.effect !== 'allow')
    throw new GatehouseError(
      'GATEHOUSE_DENIED',
      `Gatehouse denied this request: ${d.effect === 'deny' ? d.reasons.join('; ') : 'replaying sessions cannot wait for an approval'}`,
    );
}

export function filterSessions(list: readonly SessionSummary[], f: SessionFilter): SessionSummary[] {
  return list.filter(
    (s) =>
      (!f.user || s.header.gatehouse.user === f.user || s.header.gatehouse.onBehalfOf === f.user) &&
      (!f.pod || s.header.gatehouse.pod === f.pod || `${s.header.gatehouse.namespace}/${s.header.gatehouse.pod}` === f.pod) &&
      (!f.since || s.header.timestamp >= f.since),
  );
}

/**
 * The asciicast of a session the caller may replay (checked before), streamed.
 * The store opens it before the answer starts, so one that is gone is a 404
 * Status; a file removed while it is read goes on from the open descriptor,
 * and any read error ends this answer, never the gateway.
 */
export async function sendCast(res: ServerResponse, store: SessionStore, id: string, download: boolean): Promise<void> {
  const cast = await store.read(id);
  if (!cast) throw new GatehouseError('GATEHOUSE_NOT_FOUND', `session ${id} does not exist`);
  res.writeHead(200, {
    'content-type': 'application/x-asciicast',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...(download ? { 'content-disposition': `attachment; filename="${id}.cast"` } : {}),
  });
  try {
    await pipeline(cast, res);
  } catch {
    // The headers are gone: cutting the connection is the only signal left (the audit record says so).
    res.destroy();
  }
}

export function createSessionsApi(deps: {
  readonly store: SessionStore;
  readonly engine: PolicyEngine;
  readonly cluster: string;
  readonly authenticate: (req: IncomingMessage) => Promise<Identity>;
  readonly audit: AuditWriter;
}) {
  return async function handle(req: IncomingMessage, res: ServerResponse, path: string, search: URLSearchParams): Promise<void> {
    const read = auditRead(deps.audit, req, res);
    try {
      const who = await deps.authenticate(req);
      const rest = path.slice(SESSIONS_PREFIX.length).split('/').filter(Boolean);
      if (req.method !== 'GET') throw new GatehouseError('GATEHOUSE_METHOD_NOT_ALLOWED', 'session recordings are read-only');
      if (rest.length === 0) {
        await authorizeSessions(deps.engine, deps.cluster, who, 'list', '', req, read);
        const since = search.get('since');
        const items = filterSessions(await deps.store.list(), {
          ...(search.get('user') ? { user: search.get('user')! } : {}),
          ...(search.get('pod') ? { pod: search.get('pod')! } : {}),
          ...(since ? { since: Number(since) } : {}),
        });
        return send(res, 200, { kind: 'SessionList', apiVersion: 'gatehouse.dev/v1', items });
      }
      const id = rest[0]!;
      await authorizeSessions(deps.engine, deps.cluster, who, 'get', id, req, read);
      const s = await deps.store.get(id);
      if (!s) throw new GatehouseError('GATEHOUSE_NOT_FOUND', `session ${id} does not exist`);
      if (rest.length === 1) return send(res, 200, s);
      if (rest.length === 2 && rest[1] === 'cast') return await sendCast(res, deps.store, id, true);
      throw new GatehouseError('GATEHOUSE_NOT_FOUND', `no such sessions API: ${path}`);
    } catch (err) {
      read.failed(err);
      sendStatus(res, err);
    }
  };
}
