/**
 * The errors a request can end in, each with a stable code, the HTTP status and
 * Kubernetes `reason` the client sees, and whether the message may be shown.
 * Config and programmer mistakes are plain `TypeError`/`ConfigError` and stop
 * start-up instead; they never reach a client.
 */

export type StatusReason =
  | 'Unauthorized'
  | 'Forbidden'
  | 'BadRequest'
  | 'MethodNotAllowed'
  | 'RequestEntityTooLarge'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'Timeout'
  | 'NotFound'
  | 'Conflict'
  | 'TooManyRequests';

interface Kind {
  readonly status: number;
  readonly reason: StatusReason;
  /** Whether `message` may reach the client; when false it sees `fallback`. */
  readonly expose: boolean;
  readonly fallback: string;
}

const KINDS = {
  GATEHOUSE_UNAUTHENTICATED: { status: 401, reason: 'Unauthorized', expose: true, fallback: 'Unauthorized' },
  GATEHOUSE_DENIED: { status: 403, reason: 'Forbidden', expose: true, fallback: 'Forbidden' },
  GATEHOUSE_BAD_REQUEST: { status: 400, reason: 'BadRequest', expose: true, fallback: 'Bad request' },
  GATEHOUSE_METHOD_NOT_ALLOWED: { status: 405, reason: 'MethodNotAllowed', expose: true, fallback: 'Method not allowed' },
  GATEHOUSE_BODY_TOO_LARGE: { status: 413, reason: 'RequestEntityTooLarge', expose: true, fallback: 'Request entity too large' },
  GATEHOUSE_POLICY_UNAVAILABLE: { status: 503, reason: 'ServiceUnavailable', expose: true, fallback: 'Policy unavailable' },
  GATEHOUSE_UPSTREAM_UNAVAILABLE: { status: 502, reason: 'ServiceUnavailable', expose: true, fallback: 'Upstream unavailable' },
  GATEHOUSE_MASKED_VALUE: { status: 400, reason: 'BadRequest', expose: true, fallback: 'Bad request' },
  GATEHOUSE_MASKING_FAILED: { status: 502, reason: 'InternalError', expose: true, fallback: 'The response could not be masked' },
  GATEHOUSE_UPSTREAM_REFUSED: { status: 502, reason: 'InternalError', expose: true, fallback: 'The API server refused the request' },
  GATEHOUSE_UPSTREAM_TIMEOUT: { status: 504, reason: 'Timeout', expose: true, fallback: 'Upstream timed out' },
  GATEHOUSE_APPROVAL_REQUIRED: { status: 403, reason: 'Forbidden', expose: true, fallback: 'Approval required' },
  GATEHOUSE_NOT_FOUND: { status: 404, reason: 'NotFound', expose: true, fallback: 'Not found' },
  GATEHOUSE_CONFLICT: { status: 409, reason: 'Conflict', expose: true, fallback: 'Conflict' },
  GATEHOUSE_RECORDING_FAILED: { status: 503, reason: 'ServiceUnavailable', expose: true, fallback: 'The session cannot be recorded' },
  GATEHOUSE_AUDIT_FAILED: { status: 503, reason: 'ServiceUnavailable', expose: true, fallback: 'The request cannot be audited' },
  GATEHOUSE_TOO_MANY_REQUESTS: { status: 429, reason: 'TooManyRequests', expose: true, fallback: 'Too many requests' },
  GATEHOUSE_SHUTTING_DOWN: { status: 503, reason: 'ServiceUnavailable', expose: true, fallback: 'The gateway is shutting down' },
  GATEHOUSE_INTERNAL: { status: 500, reason: 'InternalError', expose: false, fallback: 'Internal error in the gateway; see its log with the audit ID' },
} as const satisfies Record<string, Kind>;

export type ErrorCode = keyof typeof KINDS;

/** The API server's own refusal of a request the gateway made for the caller, passed on as it came. */
export interface RelayedStatus {
  readonly code: number;
  readonly reason: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export class GatehouseError extends Error {
  readonly status: number;
  /** A StatusReason, or the reason of a relayed Status. */
  readonly reason: string;
  readonly expose: boolean;
  readonly relayed: RelayedStatus | undefined;
  /** The Status's details (StatusDetails: what the failure is about), for a client that reads more than the message. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; relayed?: RelayedStatus; details?: Readonly<Record<string, unknown>> },
  ) {
    super(message, options);
    const kind: Kind = KINDS[code];
    this.relayed = options?.relayed;
    this.details = options?.relayed?.details ?? options?.details;
    this.status = this.relayed?.code ?? kind.status;
    this.reason = this.relayed?.reason ?? kind.reason;
    this.expose = kind.expose;
  }

  /** What the client may read. */
  get publicMessage(): string {
    return this.expose ? this.message : KINDS[this.code].fallback;
  }
}

/** A configuration problem found at start-up: names the option and the fix. */
export class ConfigError extends Error {
  readonly code = 'GATEHOUSE_CONFIG';
  constructor(
    readonly option: string,
    problem: string,
  ) {
    super(`config ${option}: ${problem}`);
  }
}

/** What a caught value says, for a log line or a message: its message if it is an Error. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Anything thrown becomes a GatehouseError; unknown errors are internal and not exposed. */
export function asGatehouseError(err: unknown): GatehouseError {
  if (err instanceof GatehouseError) return err;
  return new GatehouseError('GATEHOUSE_INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
}

export interface KubeStatus {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Failure';
  readonly message: string;
  readonly reason: string;
  readonly code: number;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** The Kubernetes `Status` object kubectl prints as "Error from server (Reason): message". */
export function toStatus(err: GatehouseError): KubeStatus {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: err.publicMessage,
    reason: err.reason,
    code: err.status,
    ...(err.details ? { details: err.details } : {}),
  };
}

/**
 * The headers that go with a refused request's Status, besides its type: what a client needs to act
 * on it. A 401 names the scheme to renew; a 429 says when to try again, from the Status's own
 * `retryAfterSeconds` (the gateway's limit, or the API server's priority and fairness relayed), so
 * the header and the body cannot disagree. client-go waits the header's seconds and retries.
 */
export function refusalHeaders(err: GatehouseError): Record<string, string> {
  if (err.status === 401) return { 'www-authenticate': 'Bearer realm="gatehouse"' };
  if (err.status !== 429) return {};
  const after = err.details?.['retryAfterSeconds'];
  return { 'retry-after': String(typeof after === 'number' && Number.isSafeInteger(after) && after > 0 ? after : 1) };
}

/**
 * A failure answer of the API server as a relayable Status: only a `Status`
 * with a failure code (4xx but 401, 5xx) is; anything else is not passed on as
 * the API server's word.
 */
export function relayedStatusOf(code: number, body: Buffer): RelayedStatus | undefined {
  // A 401 is about the gateway's own credentials, not the caller's: relayed, it would send kubectl
  // to renew a token that is fine.
  if (code < 400 || code > 599 || code === 401) return undefined;
  let s: unknown;
  try {
    s = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof s !== 'object' || s === null || (s as { kind?: unknown }).kind !== 'Status') return undefined;
  const { message, reason, details } = s as Record<string, unknown>;
  return {
    code,
    reason: typeof reason === 'string' && reason ? reason.slice(0, 64) : 'Unknown',
    message: typeof message === 'string' ? message.slice(0, 4096) : `the API server answered ${code}`,
    ...(typeof details === 'object' && details !== null && !Array.isArray(details) ? { details: details as Record<string, unknown> } : {}),
  };
}
