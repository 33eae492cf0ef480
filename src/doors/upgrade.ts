/**
 * The upgrade door (DESIGN §3, Upgrades): exec, attach and port-forward are
 * admitted exactly like HTTP requests — decided and, if need be, approved
 * before anything goes upstream — then relayed byte for byte, recorded (exec,
 * attach) from the frames as they pass, and audited when the decision is made,
 * when the session starts and when it ends.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { receive, type Admission, type Admit, type Refusal } from '../admission/admit.js';
import { auditEventOf, recordDecision, type Outcome } from '../admission/record.js';
import type { AuditWriter } from '../audit/writer.js';
import { GatehouseError, refusalHeaders, toStatus } from '../errors.js';
import type { SessionStore } from '../recording/sessions.js';
import { openSession } from '../upgrade/open.js';
import { relayUpgrade, upgradeHeaders, writeHttpResponse, type UpgradeTimeouts } from '../upgrade/relay.js';
import type { UpstreamTarget } from '../upstream/credentials.js';
import { upstreamError } from '../upstream/forward.js';
import { buildUpstreamHeaders } from '../upstream/headers.js';
import { CLIENT_GONE } from './gone.js';
import type { StreamQuota } from './quota.js';

export interface UpgradeDoorDeps {
  readonly admit: Admit;
  readonly upstream: UpstreamTarget;
  readonly timeouts: UpgradeTimeouts;
  readonly audit: AuditWriter;
  /** Where exec and attach sessions are recorded; without it, they are refused (fail closed). */
  readonly sessions: SessionStore | undefined;
  /** Sessions (and watches) each user may hold open at once; unbounded without it. */
  readonly quota?: StreamQuota;
  readonly now: () => number;
}

export function createUpgradeDoor(deps: UpgradeDoorDeps) {
  const at = () => new Date(deps.now());
  const outcome = (stage: Outcome['stage'], code: number, error: GatehouseError | null, session: Outcome['session'] = null): Outcome => ({
    stage,
    at: at(),
    code,
    error,
    session,
    bytesOut: null,
  });

  /** An upgrade answered before it happened: a Status over the raw connection, then close. */
  function refuse(socket: Duplex, a: Admission | Refusal, error: GatehouseError): void {
    deps.audit.write(auditEventOf(a, outcome('ResponseComplete', error.status, error)));
    if (socket.destroyed) return;
    writeHttpResponse(
      socket,
      error.status,
      error.reason,
      { 'content-type': 'application/json', 'audit-id': a.received.auditId, 'cache-control': 'no-store', ...refusalHeaders(error) },
      JSON.stringify(toStatus(error)),
    );
  }

  async function relay(a: Admission, req: IncomingMessage, socket: Duplex, clientHead: Buffer, signal: AbortSignal): Promise<void> {
    if (a.target.kind !== 'resource') throw new TypeError('admit() lets only session subresources through the upgrade door');
    const headers = {
      ...buildUpstreamHeaders(a.received.headers, a.identity, deps.upstream, { auditId: a.received.auditId, forMasking: false }),
      ...upgradeHeaders(req),
    };
    const session = await openSession({
      store: deps.sessions,
      audit: deps.audit,
      auditId: a.received.auditId,
      identity: a.identity,
      attributes: a.target.attributes,
      exec: a.input.request.exec ?? null,
      kill: () => socket.destroy(),
      now: deps.now,
    });
    const relayed = await relayUpgrade({
      target: deps.upstream,
      timeouts: deps.timeouts,
      method: a.received.method,
      pathAndQuery: a.target.path + a.target.search,
      headers,
      client: socket,
      clientHead,
      auditId: a.received.auditId,
      signal,
      taps: (protocol) => session.taps(req.headers.upgrade ?? '', protocol),
    }).catch((err: unknown) => {
      session.discard();
      throw upstreamError(err);
    });
    if (!relayed.upgraded) {
      // No session happened: its record carries the upstream answer, not session facts.
      session.discard();
      deps.audit.write(auditEventOf(a, outcome('ResponseComplete', relayed.status, null)));
      return;
    }
    deps.audit.write(auditEventOf(a, outcome('ResponseStarted', 101, null, session.facts)));
    await relayed.done;
    session.ended();
    deps.audit.write(auditEventOf(a, outcome('ResponseComplete', 101, null, session.facts)));
  }

  return async function upgrade(req: IncomingMessage, socket: Duplex, clientHead: Buffer): Promise<void> {
    const abort = new AbortController();
    socket.once('close', () => abort.abort(CLIENT_GONE));
    socket.on('error', () => abort.abort(CLIENT_GONE));
    const received = receive(req, deps.now);
    const admission = await deps.admit(received, req, abort.signal, 'upgrade');
    if (!admission.admitted) return refuse(socket, admission, admission.error);
    const unrecorded = recordDecision(deps.audit, admission, at());
    if (unrecorded) return refuse(socket, admission, unrecorded);
    const place = deps.quota?.take(admission.identity.username);
    if (place instanceof GatehouseError) return refuse(socket, admission, place);
    try {
      await relay(admission, req, socket, clientHead, abort.signal);
    } catch (err) {
      refuse(socket, admission, err instanceof GatehouseError ? err : upstreamError(err));
    } finally {
      place?.();
    }
  };
}
