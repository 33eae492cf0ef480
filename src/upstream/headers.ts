/**
 * The header set sent upstream, built new from an allow-list (DESIGN §3): the
 * caller's Authorization, every Impersonate-*, hop-by-hop headers and anything
 * its Connection header names never get through, because nothing is copied
 * that is not on the list. Precomputed sets, no per-request regexes.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { EXTRA_AGENT, EXTRA_ON_BEHALF_OF, EXTRA_SESSION, type Identity } from '../identity/identity.js';
import type { UpstreamTarget } from './credentials.js';

/** Request headers a Kubernetes client needs the API server to see. */
const FORWARDED = ['accept', 'content-type', 'user-agent', 'kubectl-command', 'kubectl-session', 'x-stream-protocol-version'] as const;

export interface UpstreamHeaderOptions {
  readonly auditId: string;
  /** Responses that may be masked: JSON only and uncompressed, so the redactor can read them. */
  readonly forMasking: boolean;
}

export type UpstreamHeaders = Record<string, string | string[]>;

/** `Impersonate-Extra-<key>`: the key is percent-encoded, since "/" is not allowed in a header name. */
export function extraHeaderName(key: string): string {
  return 'impersonate-extra-' + encodeURIComponent(key).toLowerCase();
}

/** Content types that cannot be masked are swapped for JSON; Table and metadata-only requests keep their parameters. */
export function jsonOnlyAccept(accept: string | undefined): string {
  if (!accept) return 'application/json';
  const kept = accept
    .split(',')
    .map((s) => s.trim())
    .filter((s) => /^application\/json\b/i.test(s));
  return kept.length ? kept.join(', ') : 'application/json';
}

/** `auth.authorization`: the gateway's own credentials, when it uses a token (a client certificate is in the connection). */
export function buildUpstreamHeaders(
  incoming: IncomingHttpHeaders,
  identity: Identity,
  auth: Pick<UpstreamTarget, 'authorization'>,
  options: UpstreamHeaderOptions,
): UpstreamHeaders {
  const out = Object.create(null) as UpstreamHeaders;
  for (const name of FORWARDED) {
    const v = incoming[name];
    if (typeof v === 'string') out[name] = v;
  }
  if (options.forMasking) {
    out['accept'] = jsonOnlyAccept(incoming.accept);
    out['accept-encoding'] = 'identity';
  } else if (typeof incoming['accept-encoding'] === 'string') {
    out['accept-encoding'] = incoming['accept-encoding'];
  }
  if (auth.authorization) out['authorization'] = auth.authorization();
  out['impersonate-user'] = identity.username;
  // The API server adds system:authenticated to every impersonated non-anonymous user.
  const groups = identity.groups.filter((g) => g !== 'system:authenticated');
  if (groups.length) out['impersonate-group'] = groups;
  if (identity.agent) {
    out[extraHeaderName(EXTRA_AGENT)] = identity.agent.name;
    if (identity.agent.onBehalfOf) out[extraHeaderName(EXTRA_ON_BEHALF_OF)] = identity.agent.onBehalfOf;
    if (identity.agent.session) out[extraHeaderName(EXTRA_SESSION)] = identity.agent.session;
  }
  out['audit-id'] = options.auditId;
  return out;
}

/** Response headers the client may see; everything else from upstream is dropped. */
const RETURNED = new Set([
  'content-type',
  'content-encoding',
  'cache-control',
  'warning',
  'x-kubernetes-pf-flowschema-uid',
  'x-kubernetes-pf-prioritylevel-uid',
  'retry-after',
  'location',
  'etag',
  'last-modified',
]);

export function buildClientHeaders(upstream: Record<string, string | string[] | undefined>, auditId: string): Record<string, string | string[]> {
  const out = Object.create(null) as Record<string, string | string[]>;
  for (const k in upstream) {
    const v = upstream[k];
    if (v !== undefined && RETURNED.has(k)) out[k] = v;
  }
  out['audit-id'] = auditId;
  return out;
}
