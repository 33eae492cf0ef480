/**
 * The audit Event of one request at one stage, as a pure function of plain
 * facts: the stages say what they found (who, what, the decision, the outcome)
 * and this decides how it is written down. It is also the one place where what
 * came from the request is made safe to store (audit/scrub.ts).
 */
import type { ShadowVerdict } from '../policy/shadow.js';
import type { AuditEvent, AuditUser } from './event.js';
import { scrubUri } from './scrub.js';

export type AuditStage = AuditEvent['stage'];
export type ObjectRef = NonNullable<AuditEvent['objectRef']>;

export interface RequestFacts {
  readonly auditId: string;
  readonly received: Date;
  /** When this stage was reached. */
  readonly at: Date;
  readonly stage: AuditStage;
  /** The request line as the client sent it (path and query); scrubbed here. */
  readonly uri: string;
  readonly verb: string;
  readonly sourceIP: string;
  readonly userAgent: string | undefined;
  /** The verified caller; null when the request never got that far. */
  readonly user: AuditUser | null;
  /** Whom the API server was asked to act as, once the request was forwarded. */
  readonly impersonated: AuditUser | null;
  readonly objectRef: ObjectRef | null;
  readonly decision: {
    readonly effect: string;
    readonly reasons: readonly string[];
    readonly mask: readonly string[];
    readonly level: AuditEvent['level'];
    /** The fields that made the request need approval. */
    readonly fields?: readonly string[];
  } | null;
  readonly policyRevision: string | null;
  readonly approval: { readonly id: string; readonly approvedBy: string } | null;
  /** The outcome: the status code the client got, and the error when it was one. */
  readonly code: number;
  readonly error: { readonly code: string; readonly reason: string; readonly publicMessage: string; readonly message: string } | null;
  /** The policy input as it may be stored (audit/event.ts storableInput). */
  readonly input: unknown;
  readonly session: object | null;
  readonly bytesOut: number | null;
  /** policy.shadow's answer where it differs from the live decision (or failed). */
  readonly shadow?: ShadowVerdict | null;
}

type Writable<T> = { -readonly [K in keyof T]: T[K] };

const ANONYMOUS: AuditUser = { username: 'system:anonymous', groups: ['system:unauthenticated'] };

export function requestEvent(f: RequestFacts): AuditEvent {
  const d = f.decision;
  // Built by assignment, in the order the members are written down: object spreads of
  // conditional literals took ~3.5 µs a record, twice per request.
  const event: Writable<AuditEvent> = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: d?.level ?? 'Metadata',
    auditID: f.auditId,
    stage: f.stage,
    // A credential that came in the URL is never written down, whatever else happened to the request.
    requestURI: scrubUri(f.uri.slice(0, 2048)),
    verb: f.verb,
    user: f.user ?? ANONYMOUS,
  } as Writable<AuditEvent>;
  if (f.impersonated) event.impersonatedUser = f.impersonated;
  event.sourceIPs = [f.sourceIP];
  if (f.userAgent) event.userAgent = f.userAgent;
  if (f.objectRef) event.objectRef = f.objectRef;
  if (f.stage !== 'RequestReceived') {
    event.responseStatus = f.error ? { code: f.code, status: 'Failure', reason: f.error.reason, message: f.error.publicMessage } : { code: f.code };
  }
  event.requestReceivedTimestamp = f.received.toISOString();
  event.stageTimestamp = f.at.toISOString();
  event.annotations = annotationsOf(f);
  event.gatehouse = gatehouseOf(f);
  return event;
}

function annotationsOf(f: RequestFacts): AuditEvent['annotations'] {
  const d = f.decision;
  const a: Record<string, string> = { 'gatehouse.dev/effect': d?.effect ?? 'none' };
  if (d && f.policyRevision) a['gatehouse.dev/policy-revision'] = f.policyRevision;
  if (f.approval?.id.startsWith('gr-')) {
    a['gatehouse.dev/grant'] = f.approval.id;
    a['gatehouse.dev/granted-by'] = f.approval.approvedBy;
  } else if (f.approval) {
    a['gatehouse.dev/approval'] = f.approval.id;
    a['gatehouse.dev/approved-by'] = f.approval.approvedBy;
  }
  if (f.shadow?.outcome === 'differs') {
    a['gatehouse.dev/shadow-effect'] = f.shadow.effect;
    a['gatehouse.dev/shadow-change'] = f.shadow.change;
    a['gatehouse.dev/shadow-reasons'] = f.shadow.reasons.join('; ').slice(0, 1024);
  }
  if (f.shadow?.outcome === 'error') a['gatehouse.dev/shadow-error'] = f.shadow.message;
  return a;
}

function gatehouseOf(f: RequestFacts): AuditEvent['gatehouse'] {
  const d = f.decision;
  const g: Writable<AuditEvent['gatehouse']> = {} as Writable<AuditEvent['gatehouse']>;
  if (d) {
    const decision: Writable<NonNullable<AuditEvent['gatehouse']['decision']>> = {
      effect: d.effect,
      reasons: d.reasons,
      mask: d.effect === 'deny' ? [] : d.mask,
    };
    if (d.fields) decision.fields = d.fields;
    g.decision = decision;
  }
  if (d && f.policyRevision) g.policyRevision = f.policyRevision;
  if (f.approval) g.approvalId = f.approval.id;
  if (f.shadow) g.shadow = f.shadow;
  if (f.session) g.session = { ...f.session };
  // The internal message stays in the audit record, never in the client's answer.
  if (f.error) g.error = { code: f.error.code, message: f.error.message };
  if (f.input !== undefined && f.input !== null) g.input = f.input;
  g.durationMs = f.at.getTime() - f.received.getTime();
  if (f.bytesOut !== null) g.bytesOut = f.bytesOut;
  return g;
}
