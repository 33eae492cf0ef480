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

const ANONYMOUS: AuditUser = { username: 'system:anonymous', groups: ['system:unauthenticated'] };

export function requestEvent(f: RequestFacts): AuditEvent {
  const d = f.decision;
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: d?.level ?? 'Metadata',
    auditID: f.auditId,
    stage: f.stage,
    // A credential that came in the URL is never written down, whatever else happened to the request.
    requestURI: scrubUri(f.uri.slice(0, 2048)),
    verb: f.verb,
    user: f.user ?? ANONYMOUS,
    ...(f.impersonated ? { impersonatedUser: f.impersonated } : {}),
    sourceIPs: [f.sourceIP],
    ...(f.userAgent ? { userAgent: f.userAgent } : {}),
    ...(f.objectRef ? { objectRef: f.objectRef } : {}),
    ...(f.stage === 'RequestReceived'
      ? {}
      : { responseStatus: f.error ? { code: f.code, status: 'Failure', reason: f.error.reason, message: f.error.publicMessage } : { code: f.code } }),
    requestReceivedTimestamp: f.received.toISOString(),
    stageTimestamp: f.at.toISOString(),
    annotations: {
      'gatehouse.dev/effect': d?.effect ?? 'none',
      ...(d && f.policyRevision ? { 'gatehouse.dev/policy-revision': f.policyRevision } : {}),
      ...(f.approval
        ? f.approval.id.startsWith('gr-')
          ? { 'gatehouse.dev/grant': f.approval.id, 'gatehouse.dev/granted-by': f.approval.approvedBy }
          : { 'gatehouse.dev/approval': f.approval.id, 'gatehouse.dev/approved-by': f.approval.approvedBy }
        : {}),
      ...(f.shadow?.outcome === 'differs'
        ? {
            'gatehouse.dev/shadow-effect': f.shadow.effect,
            'gatehouse.dev/shadow-change': f.shadow.change,
            'gatehouse.dev/shadow-reasons': f.shadow.reasons.join('; ').slice(0, 1024),
          }
        : {}),
      ...(f.shadow?.outcome === 'error' ? { 'gatehouse.dev/shadow-error': f.shadow.message } : {}),
    },
    gatehouse: {
      ...(d ? { decision: { effect: d.effect, reasons: d.reasons, mask: d.effect === 'deny' ? [] : d.mask, ...(d.fields ? { fields: d.fields } : {}) } } : {}),
      ...(d && f.policyRevision ? { policyRevision: f.policyRevision } : {}),
      ...(f.approval ? { approvalId: f.approval.id } : {}),
      ...(f.shadow ? { shadow: f.shadow } : {}),
      ...(f.session ? { session: { ...f.session } } : {}),
      // The internal message stays in the audit record, never in the client's answer.
      ...(f.error ? { error: { code: f.error.code, message: f.error.message } } : {}),
      ...(f.input !== undefined && f.input !== null ? { input: f.input } : {}),
      durationMs: f.at.getTime() - f.received.getTime(),
      ...(f.bytesOut !== null ? { bytesOut: f.bytesOut } : {}),
    },
  };
}
