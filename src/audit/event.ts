/**
 * Audit records shaped like Kubernetes audit.k8s.io/v1 Event, so audit tooling
 * reads them, plus the decision and the policy input (DESIGN §5). Built as plain
 * data by a pure function; the writer only serializes.
 */
import { createHash } from 'node:crypto';
import { scrubQuery, scrubText } from './scrub.js';

export interface AuditUser {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

export interface AuditEvent {
  readonly kind: 'Event';
  readonly apiVersion: 'audit.k8s.io/v1';
  readonly level: 'Metadata' | 'Request' | 'RequestResponse';
  readonly auditID: string;
  /**
   * RequestReceived carries the decision and is written before anything is forwarded (audit before
   * action: a crash cannot lose the record of a request the API server acted on); ResponseStarted
   * when a long-running response begins; ResponseComplete when the request ends, however it ends.
   */
  readonly stage: 'RequestReceived' | 'ResponseStarted' | 'ResponseComplete' | 'Panic';
  readonly requestURI: string;
  readonly verb: string;
  readonly user: AuditUser;
  readonly impersonatedUser?: AuditUser;
  readonly sourceIPs: readonly string[];
  readonly userAgent?: string;
  readonly objectRef?: {
    readonly resource: string;
    readonly namespace?: string;
    readonly name?: string;
    readonly apiGroup?: string;
    readonly apiVersion: string;
    readonly subresource?: string;
  };
  /** Absent at RequestReceived, as in Kubernetes' own audit events: nothing has been answered yet. */
  readonly responseStatus?: { readonly code: number; readonly status?: 'Failure'; readonly reason?: string; readonly message?: string };
  readonly requestReceivedTimestamp: string;
  readonly stageTimestamp: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly gatehouse: {
    readonly decision?: {
      readonly effect: string;
      readonly reasons: readonly string[];
      readonly mask: readonly string[];
      /** The object's fields that made the request need approval. */
      readonly fields?: readonly string[];
    };
    readonly policyRevision?: string;
    readonly approvalId?: string;
    /** What the shadow policy would have decided (policy.shadow), where it differs. */
    readonly shadow?: unknown;
    readonly error?: { readonly code: string; readonly message: string };
    readonly input?: unknown;
    readonly durationMs: number;
    readonly bytesOut?: number;
    readonly session?: Readonly<Record<string, unknown>>;
  };
}

/** The life of an approval (DESIGN §4): each step is a record of its own, next to the request records. */
export interface ApprovalEvent {
  readonly kind: 'ApprovalEvent';
  readonly apiVersion: 'gatehouse.dev/v1';
  readonly action: 'create' | 'approve' | 'deny' | 'expire' | 'use' | 'grant' | 'revoke';
  readonly approvalID: string;
  readonly fingerprint: string;
  readonly timestamp: string;
  readonly requester: { readonly username: string; readonly agent: string | null; readonly onBehalfOf: string | null };
  /** Who approved, denied or used it; absent for create and expire, which the gateway does. */
  readonly actor?: string;
  readonly reason?: string;
  readonly request: {
    readonly verb: string;
    readonly uri: string;
    readonly namespace: string;
    readonly name: string;
    readonly resource: string;
    readonly summary: string;
  };
  readonly approverGroups: readonly string[];
  /** The audit ID of the request that created or used the approval. */
  readonly auditID?: string;
  /** A grant given with the approval (action grant) or revoked (action revoke). */
  readonly grant?: { readonly id: string; readonly scope: string; readonly expiresAt: string; readonly revokedBy?: string };
}

/** A line typed in an exec/attach session: the command-level record, tied to the session and its request. */
export interface SessionCommandEvent {
  readonly kind: 'SessionCommand';
  readonly apiVersion: 'gatehouse.dev/v1';
  readonly session: string;
  readonly auditID: string;
  readonly timestamp: string;
  readonly user: { readonly username: string; readonly agent: string | null; readonly onBehalfOf: string | null };
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  readonly line: string;
}

/**
 * One MCP tool call (/gatehouse/mcp): which tool, a digest of its arguments
 * (never the arguments: a manifest may hold a Secret), the audit IDs of the
 * Kubernetes requests it made — each with its own Event — and how it ended.
 */
export interface McpToolCallEvent {
  readonly kind: 'McpToolCall';
  readonly apiVersion: 'gatehouse.dev/v1';
  readonly call: string;
  readonly session: string;
  readonly timestamp: string;
  readonly user: { readonly username: string; readonly agent: string | null; readonly onBehalfOf: string | null };
  readonly sourceIP: string;
  readonly tool: string;
  readonly argumentsDigest: string;
  readonly requests: readonly string[];
  readonly outcome: 'ok' | 'error' | 'cancelled';
  readonly error?: string;
  /** The call was held for this approval and is kept (sealed) for approvals_wait. */
  readonly parkedOn?: string;
  /** approvals_wait: the parked call it ran. */
  readonly resumed?: { readonly tool: string; readonly argumentsDigest: string };
  readonly durationMs: number;
}

/** Opens the hash chain of an audit file (audit/chain.ts): a new file, or a restart that appends to one. */
export interface AuditAnchor {
  readonly kind: 'AuditAnchor';
  readonly apiVersion: 'gatehouse.dev/v1';
  readonly timestamp: string;
  readonly reason: 'new file' | 'restart';
  /** Keyed checkpoints follow: the file must end with the shutdown one. */
  readonly checkpointed: boolean;
  /** The bytes of a record a crash left unfinished just before this anchor. */
  readonly unfinishedBytes?: number;
}

/** An HMAC of the chain's head with the checkpoint key: periodic, and `final` at shutdown. */
export interface AuditCheckpoint {
  readonly kind: 'AuditCheckpoint';
  readonly apiVersion: 'gatehouse.dev/v1';
  readonly timestamp: string;
  readonly final: boolean;
  readonly mac: string;
}

export type AuditRecord = AuditEvent | ApprovalEvent | SessionCommandEvent | McpToolCallEvent | AuditAnchor | AuditCheckpoint;

/** Request bodies of these resources are credentials: the record keeps a digest, never the body. */
const SECRET_BODIES = new Set(['secrets', 'serviceaccounts/token', 'tokenreviews', 'certificatesigningrequests']);

/** The parts of the policy input that storableInput rewrites. */
interface StorableRequest {
  readonly path: string;
  readonly query: Readonly<Record<string, readonly string[]>>;
  readonly body: unknown;
  readonly object?: unknown;
  readonly oldObject?: unknown;
  readonly exec?: { readonly command: readonly string[] };
}

/**
 * The policy input as it may be stored: credentials that arrived in the path,
 * the query or an exec command are replaced by a marker (audit/scrub.ts), and
 * the body is dropped for a digest unless the policy asked for Request-level
 * audit of a non-secret resource; so are the object and old object of an
 * inspected write (null: not kept at this level).
 */
export function storableInput<I extends { readonly request: StorableRequest }>(
  input: I,
  level: AuditEvent['level'],
  resourceKey: string,
  rawBody: Buffer | undefined,
): I {
  const r = input.request;
  const keepBody = level !== 'Metadata' && !SECRET_BODIES.has(resourceKey) && !SECRET_BODIES.has(resourceKey.split('/')[0]!);
  // Hashed only when the body is dropped for its digest: this runs for every record of every request.
  const dropBody = !keepBody && r.body !== null;
  const request = {
    ...r,
    path: scrubText(r.path),
    query: scrubQuery(r.query),
    ...(r.exec ? { exec: { ...r.exec, command: r.exec.command.map(scrubText) } } : {}),
    ...(dropBody ? { body: null, bodyDigest: rawBody ? { sha256: createHash('sha256').update(rawBody).digest('hex'), bytes: rawBody.length } : null } : {}),
    ...(!keepBody && r.object !== undefined ? { object: null, oldObject: null } : {}),
  };
  return { ...input, request };
}
