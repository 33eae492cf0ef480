/**
 * identity → request → policy → (approval): the stages every door passes
 * (HTTP requests, exec/attach/port-forward upgrades) before anything is
 * forwarded. `admit` never throws: it returns an immutable Admission, or a
 * Refusal that carries the error the client gets and whatever was learned
 * before it, so that the audit record can say how far the request came.
 */
import { randomUUID } from 'node:crypto';
import { MCP_HEADER, type McpFacts, type McpMarker } from '../mcp/marker.js';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { fingerprint, subjectOf } from '../approval/approval.js';
import { credentialParamIn } from '../audit/scrub.js';
import { previewOf, previewWrite, type AsRequester, type PreviewRequest } from '../approval/preview.js';
import type { ApprovalService, Granted } from '../approval/service.js';
import { asGatehouseError, GatehouseError } from '../errors.js';
import type { Identity } from '../identity/identity.js';
import type { Authenticator } from '../identity/oidc.js';
import { extractBearerToken } from '../identity/token.js';
import type { Decision } from '../policy/decision.js';
import type { PolicyEngine } from '../policy/engine.js';
import { buildInput, requestedImpersonation, type PolicyInput } from '../policy/input.js';
import type { Shadow, ShadowVerdict } from '../policy/shadow.js';
import { carriesMaskMarker } from '../redact/guard.js';
import { parseTarget, type RequestTarget } from '../request/attributes.js';
import { bodyForPolicy, readBody } from '../request/body.js';
import { inspectWrite, type Inspection } from './inspect.js';

/** The request as it arrived, snapshotted once: later stages never read the live request's headers. */
export interface Received {
  readonly auditId: string;
  readonly received: Date;
  readonly method: string;
  /** Path and query as the client sent them. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly sourceIP: string;
}

export type Allowing = Exclude<Decision, { readonly effect: 'deny' }>;

export interface Admission {
  readonly admitted: true;
  readonly received: Received;
  readonly identity: Identity;
  readonly target: RequestTarget;
  readonly input: PolicyInput;
  /** The exact bytes that are forwarded (the policy saw them parsed). */
  readonly body: Buffer | undefined;
  readonly decision: Allowing;
  /** The approval this request used, when the policy asked for one. */
  readonly approval: Granted | null;
  readonly policyRevision: string;
  /** What the shadow policy would have decided, when it differs (or failed). */
  readonly shadow: ShadowVerdict | null;
}

export interface Refusal {
  readonly admitted: false;
  readonly received: Received;
  readonly error: GatehouseError;
  readonly identity: Identity | null;
  readonly target: RequestTarget | null;
  readonly input: PolicyInput | null;
  readonly body: Buffer | undefined;
  readonly decision: Decision | null;
  readonly policyRevision: string | null;
  readonly shadow: ShadowVerdict | null;
}

export type Door = 'http' | 'upgrade';

export interface AdmitDeps {
  readonly authenticator: Authenticator;
  readonly engine: PolicyEngine;
  readonly cluster: string;
  readonly limits: { readonly maxBodyBytes: number; readonly policyBodyBytes: number };
  /** Without it, requests the policy sends to `approve` are refused (fail closed). */
  readonly approvals?: ApprovalService;
  /**
   * The API as the requester sees it: for writes the policy inspects (unmasked, to the policy only)
   * and for approval previews (masked with the requester's directives).
   */
  readonly requesterView: (
    identity: Identity,
    auditId: string,
    decision: Allowing,
  ) => { readonly asRequester: AsRequester; readonly mask: (body: Buffer) => Promise<Buffer> };
  readonly now: () => number;
  /** Reads the signed header of requests made for MCP tool calls (mcp/marker.ts). */
  readonly mcpMarker?: McpMarker;
  /** policy.shadow: a candidate decides beside the live policy; its answer is recorded, never enforced. */
  readonly shadow?: Shadow;
}

export function receive(req: IncomingMessage, now: () => number): Received {
  return {
    auditId: randomUUID(),
    received: new Date(now()),
    method: (req.method ?? '').toUpperCase(),
    url: req.url ?? '/',
    headers: req.headers,
    sourceIP: req.socket.remoteAddress ?? '',
  };
}

/** A session subresource: the request opens a stream into a container. */
export function isSession(target: RequestTarget): target is Extract<RequestTarget, { kind: 'resource' }> {
  return target.kind === 'resource' && target.attributes.resource === 'pods' && ['exec', 'attach', 'portforward'].includes(target.attributes.subresource);
}

const WRITES = new Set(['create', 'update', 'patch']);

/** The facts of a request the MCP endpoint made for a tool call; a marker this process did not sign is refused. */
function mcpFactsOf(headers: IncomingHttpHeaders, marker: McpMarker | undefined): McpFacts | null {
  const header = headers[MCP_HEADER];
  if (header === undefined) return null;
  try {
    const facts = marker?.verify(header);
    if (facts) return facts;
  } catch {
    // Refused below, like a missing marker key.
  }
  throw new GatehouseError('GATEHOUSE_BAD_REQUEST', `the ${MCP_HEADER} header is the gateway's own: a request may not carry it`);
}

/** What admission has learned so far, filled in step by step (assigned, not spread: once per request per step). */
type Known = { -readonly [K in keyof Omit<Refusal, 'admitted' | 'received' | 'error'>]: Refusal[K] };

export function createAdmitter(deps: AdmitDeps) {
  /**
   * Each step adds what it learned to `known` before the next may throw, so a
   * refusal names the identity, target and decision that were already there.
   */
  return async function admit(received: Received, req: IncomingMessage, signal: AbortSignal, door: Door): Promise<Admission | Refusal> {
    const known: Known = {
      identity: null,
      target: null,
      input: null,
      body: undefined,
      decision: null,
      policyRevision: null,
      shadow: null,
    };
    try {
      // RFC 6750 §2.3 lets a token ride in the query; logs, proxies and browser histories keep it
      // there. The gateway never takes one from the URL, and never forwards one upstream, where the
      // API server's audit log would keep it (the gateway's own records are scrubbed: audit/scrub.ts).
      const credential = credentialParamIn(received.url);
      if (credential !== undefined) {
        throw new GatehouseError(
          'GATEHOUSE_BAD_REQUEST',
          `Gatehouse does not accept credentials in the URL (query parameter ${JSON.stringify(credential.slice(0, 64))}): send the token in the Authorization header`,
        );
      }
      const mcp = mcpFactsOf(received.headers, deps.mcpMarker);
      // A tool call's requests reach the gateway over its internal socket: the agent's address is in the marker,
      // and it is the one the policy and every record of the request name.
      if (mcp) received = { ...received, sourceIP: mcp.sourceIP };
      const identity = await deps.authenticator.authenticate(extractBearerToken(received.headers));
      known.identity = identity;
      const q = received.url.indexOf('?');
      const target = parseTarget(received.method, q < 0 ? received.url : received.url.slice(0, q), q < 0 ? '' : received.url.slice(q));
      known.target = target;
      // Refused before any decision: no policy or approval for what could never be forwarded.
      if (door === 'upgrade' && !isSession(target))
        throw new GatehouseError('GATEHOUSE_BAD_REQUEST', 'Gatehouse upgrades only pods/exec, pods/attach and pods/portforward connections');
      // The gateway impersonates the verified caller and nobody else (docs/threat-model.md). Refused
      // before the policy runs, so no record shows an `allow` next to this refusal; dropping the
      // headers and going ahead would run `kubectl --as=X` with the caller's own, wider rights.
      if (requestedImpersonation(received.headers) !== null) {
        throw new GatehouseError(
          'GATEHOUSE_DENIED',
          'Gatehouse does not forward impersonation: drop --as/--as-group (Impersonate-* headers); requests run as the identity in your token',
        );
      }
      // An upgrade request has no body: the connection is the session.
      const body = door === 'upgrade' ? undefined : await readBody(req, deps.limits.maxBodyBytes);
      known.body = body;
      const isWrite = target.kind === 'resource' && WRITES.has(target.attributes.verb);
      if (isWrite && body && carriesMaskMarker(body)) {
        throw new GatehouseError(
          'GATEHOUSE_MASKED_VALUE',
          'this write carries back a value Gatehouse masked (GATEHOUSE+REDACTED++ or GATEHOUSE+HMAC++…); a masked value must never overwrite the real one: change only the fields you mean to change (kubectl edit, patch), or set new values in full',
        );
      }
      const contentType = header(received.headers['content-type']);
      let input = buildInput({
        identity,
        target,
        id: received.auditId,
        method: received.method,
        headers: received.headers,
        sourceIP: received.sourceIP,
        body: isWrite ? bodyForPolicy(body, contentType, deps.limits.policyBodyBytes) : { body: null, bodyTooLarge: false },
        nowNs: deps.now() * 1e6,
        cluster: deps.cluster,
        mcp,
      });
      known.input = input;
      const engine = deps.engine.pin?.() ?? deps.engine;
      const policyRevision = engine.revision;
      let decision = await engine.evaluate(input);
      known.decision = decision;
      known.policyRevision = policyRevision;
      let inspection: Inspection | null = null;
      if (decision.effect !== 'deny' && decision.inspect.length > 0) {
        // Asked of anything but a write, the wish cannot be met: the first answer was given on
        // the promise of a second look, so it does not stand alone (fail closed).
        if (!isWrite) {
          throw new GatehouseError(
            'GATEHOUSE_DENIED',
            `Gatehouse denied this request: policy error: the policy asked to inspect the object of a ${target.attributes.verb}; only create, update and patch can be inspected`,
          );
        }
        inspection = await inspectWrite(
          writeOf(received, target, body),
          deps.requesterView(identity, `${received.auditId}-inspect`, decision).asRequester,
          deps.limits,
        );
        input = { ...input, request: { ...input.request, object: inspection.object, oldObject: inspection.oldObject } };
        known.input = input;
        // The second answer decides; a wish to inspect again is already met.
        decision = await engine.evaluate(input);
        known.decision = decision;
      }
      // The shadow judges the input the live policy decided on last (with the inspected object, if any).
      const shadow = deps.shadow?.judge(input, decision) ?? null;
      known.shadow = shadow;
      if (decision.effect === 'deny') throw new GatehouseError('GATEHOUSE_DENIED', `Gatehouse denied this request: ${decision.reasons.join('; ')}`);
      const approval = decision.effect === 'approve' ? await gate(received, identity, target, input, body, decision, inspection, signal) : null;
      return { admitted: true, received, identity, target, input, body, decision, approval, policyRevision, shadow };
    } catch (err) {
      return { admitted: false, received, error: asGatehouseError(err), ...known };
    }
  };

  function gate(
    received: Received,
    identity: Identity,
    target: RequestTarget,
    input: PolicyInput,
    body: Buffer | undefined,
    decision: Extract<Decision, { effect: 'approve' }>,
    inspection: Inspection | null,
    signal: AbortSignal,
  ): Promise<Granted> {
    if (!deps.approvals) {
      // Fail closed: the request needs a person, and nobody can be asked.
      throw new GatehouseError(
        'GATEHOUSE_DENIED',
        `Gatehouse requires approval by a member of ${decision.approval.approverGroups.join(' or ')} (${decision.reasons.join('; ')}), and this gateway has no approval store configured`,
      );
    }
    const view = deps.requesterView(identity, `${received.auditId}-preview`, decision);
    const write = writeOf(received, target, body);
    const fields = decision.approval.fields;
    return deps.approvals.gate({
      identity,
      // kubectl tries a session over WebSocket (GET) and then SPDY (POST): one logical request, one approval.
      fingerprint: fingerprint(identity, isSession(target) ? 'connect' : target.attributes.verb, target.path + target.search, body),
      subject: subjectOf(identity, target, received.method, input.request.exec ?? null, decision.reasons, body, {
        fields,
        parsedBody: input.request.body,
        grant: { maxSeconds: decision.approval.maxGrantSeconds, groups: decision.approval.grantGroups },
      }),
      policy: decision.approval,
      auditId: received.auditId,
      signal,
      // An inspected write was already dry-run: its answers are the preview's, with no second round
      // trip. previewWrite answers "nothing to preview" itself, without I/O, for what writes no object (exec).
      preview: () => (inspection ? previewOf(write, inspection.answers, view.mask, fields) : previewWrite(write, view.asRequester, view.mask, fields)),
    });
  }
}

function writeOf(received: Received, target: RequestTarget, body: Buffer | undefined): PreviewRequest {
  return {
    verb: target.attributes.verb,
    method: received.method,
    path: target.path,
    search: target.search,
    body,
    contentType: header(received.headers['content-type']),
  };
}

export type Admit = ReturnType<typeof createAdmitter>;

export function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
