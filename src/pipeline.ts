/**
 * One request through the stages, in order: identity → request → policy →
 * (approval, masking) → upstream → audit. Every path out of here, success or
 * any error, writes exactly one audit record (two for long-running requests:
 * when the stream starts and when it ends).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline as streamPipeline } from 'node:stream/promises';
import type { AuditEvent, AuditUser } from './audit/event.js';
import { storableInput } from './audit/event.js';
import type { AuditWriter } from './audit/writer.js';
import { asGatehouseError, GatehouseError, toStatus } from './errors.js';
import { EXTRA_AGENT, EXTRA_ON_BEHALF_OF, EXTRA_SESSION, type Identity } from './identity/identity.js';
import type { Authenticator } from './identity/oidc.js';
import { extractBearerToken } from './identity/token.js';
import type { Decision } from './policy/decision.js';
import type { PolicyEngine } from './policy/engine.js';
import { buildInput, type PolicyInput } from './policy/input.js';
import { parseTarget, type RequestTarget } from './request/attributes.js';
import { bodyForPolicy, readBody } from './request/body.js';
import type { UpstreamTarget } from './upstream/credentials.js';
import type { Forwarder } from './upstream/forward.js';
import { upstreamError } from './upstream/forward.js';
import { buildClientHeaders, buildUpstreamHeaders } from './upstream/headers.js';
import { carriesMaskMarker } from './redact/guard.js';
import { createProgramCache, maskBuffer, maskedBody, shapeOf } from './redact/response.js';
import { RedactError, type RedactOptions } from './redact/stream.js';
import { fingerprint, subjectOf } from './approval/approval.js';
import { previewWrite, type AsRequester } from './approval/preview.js';
import type { ApprovalService, Granted } from './approval/service.js';
import type { Duplex } from 'node:stream';
import type { SessionStore } from './recording/sessions.js';
import { relayUpgrade, upgradeHeaders, writeHttpResponse } from './upgrade/relay.js';
import { openSession, type SessionAudit } from './upgrade/open.js';

export interface PipelineDeps {
  readonly authenticator: Authenticator;
  readonly engine: PolicyEngine;
  readonly forwarder: Forwarder;
  readonly upstream: UpstreamTarget;
  readonly audit: AuditWriter;
  readonly cluster: string;
  readonly limits: { readonly maxBodyBytes: number; readonly policyBodyBytes: number };
  readonly masking: RedactOptions;
  /** Where exec and attach sessions are recorded; without it, sessions are refused (fail closed). */
  readonly sessions?: SessionStore;
  /** Without it, requests the policy sends to `approve` are refused (fail closed). */
  readonly approvals?: ApprovalService;
  readonly now?: () => number;
}

/** Facts gathered as the request moves through the stages, for its audit record. */
interface Trace {
  readonly auditId: string;
  readonly received: Date;
  identity?: Identity;
  target?: RequestTarget;
  input?: PolicyInput;
  rawBody?: Buffer | undefined;
  decision?: Decision;
  forwardedAs?: AuditUser;
  approval?: Granted;
  session?: SessionAudit;
  bytesOut: number;
}

function isLongRunning(target: RequestTarget): boolean {
  if (target.kind !== 'resource') return false;
  const a = target.attributes;
  if (a.verb === 'watch' || a.verb === 'proxy') return true;
  const follow = (target.query['follow']?.[0] ?? '').toLowerCase();
  return a.subresource === 'log' && follow !== '' && follow !== 'false' && follow !== '0';
}

export function createPipeline(deps: PipelineDeps) {
  const now = deps.now ?? Date.now;
  const programFor = createProgramCache();

  function record(trace: Trace, req: IncomingMessage, stage: AuditEvent['stage'], code: number, err?: GatehouseError): void {
    const t = trace.target;
    const d = trace.decision;
    const id = trace.identity;
    const resourceKey = t?.kind === 'resource' ? (t.attributes.subresource ? `${t.attributes.resource}/${t.attributes.subresource}` : t.attributes.resource) : '';
    const level = d?.audit.level ?? 'Metadata';
    const event: AuditEvent = {
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level,
      auditID: trace.auditId,
      stage,
      requestURI: t ? t.path + t.search : (req.url ?? '').slice(0, 2048),
      verb: t ? t.attributes.verb : (req.method ?? '').toLowerCase(),
      user: id ? auditUser(id) : { username: 'system:anonymous', groups: ['system:unauthenticated'] },
      ...(trace.forwardedAs ? { impersonatedUser: trace.forwardedAs } : {}),
      sourceIPs: [req.socket.remoteAddress ?? ''],
      ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}),
      ...(t?.kind === 'resource'
        ? {
            objectRef: {
              resource: t.attributes.resource,
              apiVersion: t.attributes.version,
              ...(t.attributes.namespace ? { namespace: t.attributes.namespace } : {}),
              ...(t.attributes.name ? { name: t.attributes.name } : {}),
              ...(t.attributes.group ? { apiGroup: t.attributes.group } : {}),
              ...(t.attributes.subresource ? { subresource: t.attributes.subresource } : {}),
            },
          }
        : {}),
      responseStatus: err ? { code, status: 'Failure', reason: err.reason, message: err.publicMessage } : { code },
      requestReceivedTimestamp: trace.received.toISOString(),
      stageTimestamp: new Date(now()).toISOString(),
      annotations: {
        'gatehouse.dev/effect': d?.effect ?? 'none',
        ...(d ? { 'gatehouse.dev/policy-revision': deps.engine.revision } : {}),
        ...(trace.approval ? { 'gatehouse.dev/approval': trace.approval.id, 'gatehouse.dev/approved-by': trace.approval.approvedBy } : {}),
      },
      gatehouse: {
        ...(d ? { decision: { effect: d.effect, reasons: d.reasons, mask: d.effect === 'deny' ? [] : d.mask.map((m) => `${m.action} ${m.path}`) } } : {}),
        ...(d ? { policyRevision: deps.engine.revision } : {}),
        ...(trace.approval ? { approvalId: trace.approval.id } : {}),
        ...(trace.session ? { session: { ...trace.session } } : {}),
        // The internal message stays in the audit record, never in the client's answer.
        ...(err ? { error: { code: err.code, message: err.message } } : {}),
        ...(trace.input ? { input: storableInput(trace.input as unknown as { request: { body: unknown } }, level, resourceKey, trace.rawBody) } : {}),
        durationMs: now() - trace.received.getTime(),
        ...(stage === 'ResponseComplete' ? { bytesOut: trace.bytesOut } : {}),
      },
    };
    deps.audit.write(event);
  }

  /** The requester's own view of the API (impersonated, JSON), for approval previews; bodies capped. */
  function asRequester(identity: Identity, auditId: string): AsRequester {
    return async ({ method, pathAndQuery, body, contentType }) => {
      const headers = buildUpstreamHeaders({ accept: 'application/json', ...(contentType ? { 'content-type': contentType } : {}) }, identity, deps.upstream, { auditId, forMasking: true });
      const res = await deps.forwarder.forward({ method, pathAndQuery, headers, body, longRunning: false, signal: AbortSignal.timeout(30_000) });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > deps.limits.maxBodyBytes) {
          res.body.destroy();
          throw new Error(`the preview's answer is larger than limits.maxBodyBytes (${deps.limits.maxBodyBytes})`);
        }
        chunks.push(chunk);
      }
      return { status: res.statusCode, body: Buffer.concat(chunks) };
    };
  }

  function fail(res: ServerResponse, trace: Trace, req: IncomingMessage, err: GatehouseError): void {
    record(trace, req, 'ResponseComplete', err.status, err);
    if (res.headersSent) {
      // The status line is gone; cutting the connection is the only honest signal left.
      res.destroy();
      return;
    }
    const body = JSON.stringify(toStatus(err));
    res.writeHead(err.status, { 'content-type': 'application/json', 'audit-id': trace.auditId, 'cache-control': 'no-store', ...(err.status === 401 ? { 'www-authenticate': 'Bearer realm="gatehouse"' } : {}) });
    res.end(body);
  }

  /**
   * identity → request → policy → (approval): what plain and upgraded requests
   * both pass. Returns the decision to act on, or throws the error the client gets.
   */
  async function admit(req: IncomingMessage, trace: Trace, signal: AbortSignal, upgrade: boolean): Promise<Exclude<Decision, { effect: 'deny' }>> {
    const token = extractBearerToken(req.headers);
    trace.identity = await deps.authenticator.authenticate(token);

    const url = req.url ?? '/';
    const q = url.indexOf('?');
    trace.target = parseTarget(req.method ?? '', q < 0 ? url : url.slice(0, q), q < 0 ? '' : url.slice(q));
    // Refused before any decision: no policy or approval for what could never be forwarded.
    if (upgrade && !isSession(trace.target)) throw new GatehouseError('GATEHOUSE_BAD_REQUEST', 'Gatehouse upgrades only pods/exec, pods/attach and pods/portforward connections');
    // An upgrade request has no body: the connection is the session.
    trace.rawBody = upgrade ? undefined : await readBody(req, deps.limits.maxBodyBytes);
    const target = trace.target;
    const isWrite = target.kind === 'resource' && ['create', 'update', 'patch'].includes(target.attributes.verb);
    if (isWrite && trace.rawBody && carriesMaskMarker(trace.rawBody)) {
      throw new GatehouseError(
        'GATEHOUSE_MASKED_VALUE',
        'this write carries back a value Gatehouse masked (GATEHOUSE+REDACTED++ or GATEHOUSE+HMAC++…); a masked value must never overwrite the real one: change only the fields you mean to change (kubectl edit, patch), or set new values in full',
      );
    }
    const body = isWrite ? bodyForPolicy(trace.rawBody, req.headers['content-type'], deps.limits.policyBodyBytes) : { body: null, bodyTooLarge: false };

    trace.input = buildInput({
      identity: trace.identity,
      target,
      id: trace.auditId,
      method: (req.method ?? '').toUpperCase(),
      headers: req.headers,
      sourceIP: req.socket.remoteAddress ?? '',
      body,
      nowNs: now() * 1e6,
      cluster: deps.cluster,
    });
    const decision = await deps.engine.evaluate(trace.input);
    trace.decision = decision;

    if (decision.effect === 'deny') {
      throw new GatehouseError('GATEHOUSE_DENIED', `Gatehouse denied this request: ${decision.reasons.join('; ')}`);
    }
    if (trace.input.request.impersonate !== null) {
      // The gateway impersonates the verified caller and nobody else. Dropping the caller's
      // Impersonate-* and going ahead would run `kubectl --as=X` with the caller's own, wider rights.
      throw new GatehouseError('GATEHOUSE_DENIED', 'Gatehouse does not forward impersonation: drop --as/--as-group (Impersonate-* headers); requests run as the identity in your token');
    }
    if (decision.effect === 'approve') {
      if (!deps.approvals) {
        // Fail closed: the request needs a person, and nobody can be asked.
        throw new GatehouseError(
          'GATEHOUSE_DENIED',
          `Gatehouse requires approval by a member of ${decision.approval.approverGroups.join(' or ')} (${decision.reasons.join('; ')}), and this gateway has no approval store configured`,
        );
      }
      const identity = trace.identity;
      const rawBody = trace.rawBody;
      const mask = decision.mask;
      const verb = target.attributes.verb;
      trace.approval = await deps.approvals.gate({
        identity,
        // kubectl tries a session over WebSocket (GET) and then SPDY (POST): one logical request, one approval.
        fingerprint: fingerprint(identity, isSession(target) ? 'connect' : verb, target.path + target.search, rawBody),
        subject: subjectOf(identity, target, (req.method ?? '').toUpperCase(), trace.input.request.exec ?? null, decision.reasons, rawBody),
        policy: decision.approval,
        auditId: trace.auditId,
        signal,
        // previewWrite answers "nothing to preview" itself, without I/O, for what writes no object (exec).
        preview: () =>
          previewWrite(
            { verb, method: (req.method ?? '').toUpperCase(), path: target.path, search: target.search, body: rawBody, contentType: header(req.headers['content-type']) },
            asRequester(identity, `${trace.auditId}-preview`),
            (body) => (mask.length ? maskBuffer(programFor(mask, 'object'), deps.masking, body) : Promise.resolve(body)),
          ),
      });
    }
    return decision;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const trace: Trace = { auditId: randomUUID(), received: new Date(now()), bytesOut: 0 };
    try {
      const abort = new AbortController();
      res.once('close', () => abort.abort());
      const decision = await admit(req, trace, abort.signal, false);
      const target = trace.target!;
      const identity = trace.identity!;
      const masking = decision.mask.length > 0;
      const headers = buildUpstreamHeaders(req.headers, identity, deps.upstream, { auditId: trace.auditId, forMasking: masking });
      trace.forwardedAs = auditUser(identity);
      const longRunning = isLongRunning(target);
      const upstream = await deps.forwarder.forward({ method: req.method ?? 'GET', pathAndQuery: target.path + target.search, headers, body: trace.rawBody, longRunning, signal: abort.signal });

      const clientHeaders = buildClientHeaders(upstream.headers, trace.auditId);
      let stages: NodeJS.ReadWriteStream[] = [];
      if (masking) {
        const masked = maskedBody(
          programFor(decision.mask, shapeOf(target)),
          deps.masking,
          header(upstream.headers['content-type']),
          header(upstream.headers['content-encoding']),
          /\bgzip\b/i.test(header(req.headers['accept-encoding']) ?? ''),
          longRunning,
        );
        if ('unreadable' in masked) {
          // Decided before any byte is sent, so the client gets a Status, not unmasked bytes.
          upstream.body.destroy();
          throw new GatehouseError('GATEHOUSE_MASKING_FAILED', `the policy masks this response, but it is ${masked.unreadable}, which Gatehouse cannot read`);
        }
        stages = masked.stages;
        delete clientHeaders['content-encoding'];
        if (masked.contentEncoding) clientHeaders['content-encoding'] = masked.contentEncoding;
      }
      res.writeHead(upstream.statusCode, clientHeaders);
      if (longRunning) {
        // Node sends queued headers with the first body byte; a quiet watch has none for a while,
        // and its client must learn at once that the watch started (kube-apiserver flushes too).
        res.flushHeaders();
        record(trace, req, 'ResponseStarted', upstream.statusCode);
      }
      const last = stages.length ? stages[stages.length - 1]! : upstream.body;
      last.on('data', (chunk: Buffer) => (trace.bytesOut += chunk.length));
      try {
        await runPipeline(upstream.body, ...stages, res);
      } catch (err) {
        if (err instanceof RedactError) throw new GatehouseError('GATEHOUSE_MASKING_FAILED', `the response could not be masked, so it was cut off: ${err.message}`, { cause: err });
        if (abort.signal.aborted || res.destroyed) {
          // The client went away: that ends a watch normally.
          record(trace, req, 'ResponseComplete', upstream.statusCode);
          return;
        }
        throw upstreamError(err);
      }
      record(trace, req, 'ResponseComplete', upstream.statusCode);
    } catch (err) {
      fail(res, trace, req, asGatehouseError(err));
    }
  }

  /** An upgrade answered before it happened: a Status over the raw connection, then close. */
  function failUpgrade(socket: Duplex, trace: Trace, req: IncomingMessage, err: GatehouseError): void {
    record(trace, req, 'ResponseComplete', err.status, err);
    if (socket.destroyed) return;
    writeHttpResponse(socket, err.status, err.reason, { 'content-type': 'application/json', 'audit-id': trace.auditId, 'cache-control': 'no-store' }, JSON.stringify(toStatus(err)));
  }

  /**
   * exec, attach and port-forward (DESIGN §3, Upgrades): decided and, if need
   * be, approved before anything goes upstream; recorded (exec, attach) from
   * the frames as they pass; audited when the session starts and when it ends.
   */
  async function upgrade(req: IncomingMessage, socket: Duplex, clientHead: Buffer): Promise<void> {
    const trace: Trace = { auditId: randomUUID(), received: new Date(now()), bytesOut: 0 };
    const abort = new AbortController();
    socket.once('close', () => abort.abort());
    socket.on('error', () => abort.abort());
    try {
      await admit(req, trace, abort.signal, true);
      const target = trace.target!;
      const identity = trace.identity!;
      const a = (target as Extract<RequestTarget, { kind: 'resource' }>).attributes;
      const headers = { ...buildUpstreamHeaders(req.headers, identity, deps.upstream, { auditId: trace.auditId, forMasking: false }), ...upgradeHeaders(req) };
      trace.forwardedAs = auditUser(identity);
      const session = openSession({ store: deps.sessions, audit: deps.audit, auditId: trace.auditId, identity, attributes: a, exec: trace.input!.request.exec ?? null, kill: () => socket.destroy(), now });
      const outcome = await relayUpgrade({
        target: deps.upstream,
        method: req.method ?? 'GET',
        pathAndQuery: target.path + target.search,
        headers,
        client: socket,
        clientHead,
        auditId: trace.auditId,
        signal: abort.signal,
        taps: (protocol) => session.taps(String(req.headers.upgrade ?? ''), protocol),
      }).catch((err: unknown) => {
        session.discard();
        throw upstreamError(err);
      });
      if (!outcome.upgraded) {
        // No session happened: its record carries the upstream answer, not session facts.
        session.discard();
        record(trace, req, 'ResponseComplete', outcome.status);
        return;
      }
      trace.session = session.facts;
      record(trace, req, 'ResponseStarted', 101);
      await outcome.done;
      session.ended();
      record(trace, req, 'ResponseComplete', 101);
    } catch (err) {
      failUpgrade(socket, trace, req, asGatehouseError(err));
    }
  }

  return { handle, upgrade };
}

/** A session subresource: the request opens a stream into a container. */
function isSession(target: RequestTarget): boolean {
  return target.kind === 'resource' && target.attributes.resource === 'pods' && ['exec', 'attach', 'portforward'].includes(target.attributes.subresource);
}

// stream.promises.pipeline's overloads do not take a spread of stages.
const runPipeline = streamPipeline as unknown as (...streams: (NodeJS.ReadableStream | NodeJS.WritableStream)[]) => Promise<void>;

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The verified caller as audit records name it; the same user the gateway impersonates upstream. */
function auditUser(identity: Identity): AuditUser {
  const a = identity.agent;
  if (!a) return { username: identity.username, groups: identity.groups };
  const extra = {
    [EXTRA_AGENT]: [a.name],
    ...(a.onBehalfOf ? { [EXTRA_ON_BEHALF_OF]: [a.onBehalfOf] } : {}),
    ...(a.session ? { [EXTRA_SESSION]: [a.session] } : {}),
  };
  return { username: identity.username, groups: identity.groups, extra };
}
