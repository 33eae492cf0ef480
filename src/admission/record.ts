/**
 * What an admission and its outcome are as an audit record: a pure function
 * from the typed values the stages returned to the facts audit/record.ts
 * writes down. Every door (HTTP, upgrade) records through here.
 */
import type { AuditEvent, AuditUser } from '../audit/event.js';
import type { AuditWriter } from '../audit/writer.js';
import { storableInput } from '../audit/event.js';
import { requestEvent, type AuditStage, type ObjectRef, type RequestFacts } from '../audit/record.js';
import { GatehouseError } from '../errors.js';
import { EXTRA_AGENT, EXTRA_ON_BEHALF_OF, EXTRA_SESSION, type Identity } from '../identity/identity.js';
import type { Decision } from '../policy/decision.js';
import type { RequestTarget } from '../request/attributes.js';
import type { Admission, Refusal } from './admit.js';

export interface Outcome {
  readonly stage: AuditStage;
  readonly at: Date;
  /** The status the client got (101 for a session); none yet at RequestReceived. */
  readonly code: number;
  readonly error: GatehouseError | null;
  /** Facts of an exec/attach/port-forward session, once it happened. */
  readonly session: object | null;
  readonly bytesOut: number | null;
}

/** The verified caller as audit records name it; the same user the gateway impersonates upstream. */
export function auditUser(identity: Identity): AuditUser {
  const a = identity.agent;
  if (!a) return { username: identity.username, groups: identity.groups };
  const extra = {
    [EXTRA_AGENT]: [a.name],
    ...(a.onBehalfOf ? { [EXTRA_ON_BEHALF_OF]: [a.onBehalfOf] } : {}),
    ...(a.session ? { [EXTRA_SESSION]: [a.session] } : {}),
  };
  return { username: identity.username, groups: identity.groups, extra };
}

/** A decision as audit records write it: the mask as `action path [when filter]` lines, none for a deny. */
export function decisionFacts(d: Decision): NonNullable<RequestFacts['decision']> {
  return {
    effect: d.effect,
    reasons: d.reasons,
    mask: d.effect === 'deny' ? [] : d.mask.map((m) => `${m.action} ${m.path}${m.when === undefined ? '' : ` when ${m.when}`}`),
    level: d.audit.level,
    ...(d.effect === 'approve' && d.approval.fields.length ? { fields: d.approval.fields } : {}),
  };
}

export function objectRefOf(target: RequestTarget): ObjectRef | null {
  if (target.kind !== 'resource') return null;
  const a = target.attributes;
  return {
    resource: a.resource,
    apiVersion: a.version,
    ...(a.namespace ? { namespace: a.namespace } : {}),
    ...(a.name ? { name: a.name } : {}),
    ...(a.group ? { apiGroup: a.group } : {}),
    ...(a.subresource ? { subresource: a.subresource } : {}),
  };
}

export function auditEventOf(a: Admission | Refusal, o: Outcome): AuditEvent {
  const t = a.target;
  const d = a.decision;
  const level = d?.audit.level ?? 'Metadata';
  const resourceKey = t?.kind === 'resource' ? (t.attributes.subresource ? `${t.attributes.resource}/${t.attributes.subresource}` : t.attributes.resource) : '';
  return requestEvent({
    auditId: a.received.auditId,
    received: a.received.received,
    at: o.at,
    stage: o.stage,
    uri: t ? t.path + t.search : a.received.url,
    verb: t ? t.attributes.verb : a.received.method.toLowerCase(),
    sourceIP: a.received.sourceIP,
    userAgent: a.received.headers['user-agent'],
    user: a.identity ? auditUser(a.identity) : null,
    // Only an admitted request is forwarded, and it is forwarded as the verified caller.
    impersonated: a.admitted ? auditUser(a.identity) : null,
    objectRef: t ? objectRefOf(t) : null,
    decision: d ? decisionFacts(d) : null,
    policyRevision: a.policyRevision,
    approval: a.admitted && a.approval ? a.approval : null,
    code: o.code,
    error: o.error ? { code: o.error.code, reason: o.error.reason, publicMessage: o.error.publicMessage, message: o.error.message } : null,
    input: a.input ? storableInput(a.input, level, resourceKey, a.body) : null,
    session: o.session,
    bytesOut: o.bytesOut,
    shadow: a.shadow,
  });
}

/**
 * Audit before action: the decision of an admitted request is handed to the
 * kernel before either door forwards it, so a crash cannot lose the record of a
 * request the API server acted on. Returns the error to refuse with when the
 * record cannot be written (fail closed), or null.
 */
export function recordDecision(audit: AuditWriter, a: Admission, at: Date): GatehouseError | null {
  try {
    audit.commit(auditEventOf(a, { stage: 'RequestReceived', at, code: 0, error: null, session: null, bytesOut: null }));
    return null;
  } catch (err) {
    return new GatehouseError('GATEHOUSE_AUDIT_FAILED', 'the request cannot be audited, so it was not forwarded', { cause: err });
  }
}
