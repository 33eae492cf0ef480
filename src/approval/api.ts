/**
 * The approvals API the CLI talks to, under /gatehouse/v1/approvals, with the
 * same bearer tokens as the Kubernetes API:
 *   GET  /gatehouse/v1/approvals[?state=pending]   what the caller may see
 *   GET  /gatehouse/v1/approvals/ID
 *   POST /gatehouse/v1/approvals/ID/approve         {"reason": "...", "grant": {"seconds": 1800, "names": ["a"]}}
 *   POST /gatehouse/v1/approvals/ID/deny            {"reason": "..."}
 *   GET  /gatehouse/v1/grants                       the grants the caller may see (theirs, or theirs to revoke)
 *   POST /gatehouse/v1/grants/ID/revoke
 * Errors are Kubernetes Status objects, like everything else the gateway says.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatehouseError } from '../errors.js';
import { sendJson as send, sendStatus } from '../respond.js';
import type { Identity } from '../identity/identity.js';
import { mayView, type Approval, type ApprovalState } from './approval.js';
import type { ApprovalService, GrantRequest } from './service.js';
import type { ApprovalStore } from './store.js';

export const API_PREFIX = '/gatehouse/v1/approvals';
export const GRANTS_PREFIX = '/gatehouse/v1/grants';
const STATES = new Set<ApprovalState>(['pending', 'approved', 'used', 'denied', 'expired']);
const MAX_DECISION_BODY = 16 * 1024;

export async function readSmallBody(req: IncomingMessage, max: number): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new GatehouseError('GATEHOUSE_BODY_TOO_LARGE', `the body is larger than ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The approvals a person may see, newest first. */
export async function visibleApprovals(store: ApprovalStore, viewer: Identity, state: ApprovalState | undefined, limit = 200): Promise<Approval[]> {
  return (await store.list({ ...(state ? { state } : {}), limit: limit * 4 })).filter((a) => mayView(a, viewer)).slice(0, limit);
}

export async function visibleApproval(store: ApprovalStore, viewer: Identity, id: string): Promise<Approval> {
  const a = await store.get(id);
  // Someone who may not see it learns nothing, not even that it exists.
  if (!a || !mayView(a, viewer)) throw new GatehouseError('GATEHOUSE_NOT_FOUND', `approval ${id} does not exist or is not yours to see`);
  return a;
}

/** `{"seconds": N, "names": [...]}`, checked for shape here and for what the policy allows by the service. */
function grantOf(value: unknown): GrantRequest | undefined {
  if (value === undefined || value === null) return undefined;
  const g = value as { seconds?: unknown; names?: unknown };
  if (typeof g !== 'object' || typeof g.seconds !== 'number')
    throw new GatehouseError('GATEHOUSE_BAD_REQUEST', 'grant must be {"seconds": N} with, optionally, "names": ["…"]');
  if (g.names !== undefined && (!Array.isArray(g.names) || g.names.some((n) => typeof n !== 'string')))
    throw new GatehouseError('GATEHOUSE_BAD_REQUEST', 'grant.names must be a list of object names');
  return { seconds: g.seconds, ...(g.names ? { names: g.names as string[] } : {}) };
}

export function createApprovalsApi(deps: {
  readonly store: ApprovalStore;
  readonly service: ApprovalService;
  readonly authenticate: (req: IncomingMessage) => Promise<Identity>;
}) {
  return async function handle(req: IncomingMessage, res: ServerResponse, path: string, search: URLSearchParams): Promise<void> {
    try {
      const who = await deps.authenticate(req);
      if (path === GRANTS_PREFIX || path.startsWith(GRANTS_PREFIX + '/')) {
        const parts = path.slice(GRANTS_PREFIX.length).split('/').filter(Boolean);
        if (req.method === 'GET' && parts.length === 0)
          return send(res, 200, { kind: 'GrantList', apiVersion: 'gatehouse.dev/v1', items: await deps.service.grants(who) });
        if (req.method === 'POST' && parts.length === 2 && parts[1] === 'revoke') return send(res, 200, await deps.service.revoke(parts[0]!, who));
        throw new GatehouseError('GATEHOUSE_NOT_FOUND', `no such grants API: ${req.method} ${path}`);
      }
      const rest = path.slice(API_PREFIX.length).split('/').filter(Boolean);
      if (req.method === 'GET' && rest.length === 0) {
        const state = search.get('state') ?? undefined;
        if (state !== undefined && !STATES.has(state as ApprovalState))
          throw new GatehouseError('GATEHOUSE_BAD_REQUEST', `state must be one of ${[...STATES].join(', ')}`);
        const items = await visibleApprovals(deps.store, who, state as ApprovalState | undefined);
        return send(res, 200, {
          kind: 'ApprovalList',
          apiVersion: 'gatehouse.dev/v1',
          items: items.map((a) => ({ ...a, url: deps.service.approvalUrl(a.id) })),
        });
      }
      if (req.method === 'GET' && rest.length === 1) {
        const a = await visibleApproval(deps.store, who, rest[0]!);
        return send(res, 200, { ...a, url: deps.service.approvalUrl(a.id) });
      }
      if (req.method === 'POST' && rest.length === 2 && (rest[1] === 'approve' || rest[1] === 'deny')) {
        const text = await readSmallBody(req, MAX_DECISION_BODY);
        let reason = '';
        let grant: GrantRequest | undefined;
        if (text.trim()) {
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            throw new GatehouseError('GATEHOUSE_BAD_REQUEST', 'the body must be JSON: {"reason": "..."}');
          }
          const b = (body ?? {}) as { reason?: unknown; grant?: unknown };
          if (b.reason !== undefined && typeof b.reason !== 'string') throw new GatehouseError('GATEHOUSE_BAD_REQUEST', 'reason must be a string');
          reason = b.reason ?? '';
          grant = grantOf(b.grant);
        }
        // No visibility check first: someone who may not decide is told why (403), not "not found".
        const decided = await deps.service.decide(rest[0]!, who, rest[1] === 'approve', reason, grant);
        return send(res, 200, { ...decided, url: deps.service.approvalUrl(decided.id) });
      }
      throw new GatehouseError('GATEHOUSE_NOT_FOUND', `no such approvals API: ${req.method} ${path}`);
    } catch (err) {
      sendStatus(res, err);
    }
  };
}
