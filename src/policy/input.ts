/**
 * The policy input document (README, "Policy contract"): a snapshot of plain
 * data built from values earlier stages already verified and parsed.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Identity } from '../identity/identity.js';
import type { Query, RequestTarget } from '../request/attributes.js';
import type { PolicyBody } from '../request/body.js';

export interface ExecFacts {
  readonly command: readonly string[];
  readonly container: string;
  readonly stdin: boolean;
  readonly tty: boolean;
}

export interface RequestedImpersonation {
  readonly user: string | null;
  readonly uid: string | null;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
}

export interface PolicyInput {
  readonly user: Identity;
  readonly resourceAttributes: Omit<Extract<RequestTarget, { kind: 'resource' }>['attributes'], never> | null;
  readonly nonResourceAttributes: Extract<RequestTarget, { kind: 'nonResource' }>['attributes'] | null;
  readonly request: {
    readonly id: string;
    readonly method: string;
    readonly path: string;
    readonly query: Query;
    readonly userAgent: string;
    readonly sourceIP: string;
    readonly dryRun: boolean;
    readonly contentType: string;
    readonly body: unknown;
    readonly bodyTooLarge: boolean;
    /** Only in the second evaluation of an inspected write (admission/inspect.ts): the dry run's object. */
    readonly object?: Readonly<Record<string, unknown>>;
    /** With `object`: the object before the write, or null. */
    readonly oldObject?: Readonly<Record<string, unknown>> | null;
    readonly exec?: ExecFacts;
    /** Ports named in the query (WebSocket clients); kubectl names them later, inside the tunnel: then empty. */
    readonly portForward?: { readonly ports: readonly string[] };
    /** Present when the request was made for an MCP tool call (/gatehouse/mcp): which tool, in which session. */
    readonly mcp?: { readonly tool: string; readonly session: string };
    readonly impersonate: RequestedImpersonation | null;
  };
  readonly context: { readonly now_ns: number; readonly cluster: string };
}

/** A malformed escape is still an impersonation attempt: keep the raw key rather than fail. */
function safeDecode(key: string): string {
  try {
    return decodeURIComponent(key);
  } catch {
    return key;
  }
}

/** What the caller asked to be impersonated as; the gateway never forwards it. */
export function requestedImpersonation(headers: IncomingHttpHeaders): RequestedImpersonation | null {
  const list = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : v.split(',').map((s) => s.trim()));
  const extra: Record<string, string[]> = {};
  let any = false;
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('impersonate-')) continue;
    any = true;
    if (name.startsWith('impersonate-extra-')) extra[safeDecode(name.slice('impersonate-extra-'.length))] = list(value);
  }
  if (!any) return null;
  const user = headers['impersonate-user'];
  const uid = headers['impersonate-uid'];
  return { user: typeof user === 'string' ? user : null, uid: typeof uid === 'string' ? uid : null, groups: list(headers['impersonate-group']), extra };
}

function execFacts(target: RequestTarget): ExecFacts | undefined {
  if (target.kind !== 'resource') return undefined;
  const a = target.attributes;
  if (a.resource !== 'pods' || (a.subresource !== 'exec' && a.subresource !== 'attach')) return undefined;
  const q = target.query;
  const flag = (k: string) => ['true', '1'].includes((q[k]?.[0] ?? '').toLowerCase());
  return { command: [...(q['command'] ?? [])], container: q['container']?.[0] ?? '', stdin: flag('stdin'), tty: flag('tty') };
}

export function buildInput(args: {
  identity: Identity;
  target: RequestTarget;
  id: string;
  method: string;
  headers: IncomingHttpHeaders;
  sourceIP: string;
  body: PolicyBody;
  nowNs: number;
  cluster: string;
  mcp?: { tool: string; session: string } | null;
}): PolicyInput {
  const { target, headers } = args;
  const exec = execFacts(target);
  const portForward =
    target.kind === 'resource' && target.attributes.resource === 'pods' && target.attributes.subresource === 'portforward'
      ? { ports: (target.query['ports'] ?? []).flatMap((p) => p.split(',')).filter(Boolean) }
      : undefined;
  return {
    user: args.identity,
    resourceAttributes: target.kind === 'resource' ? target.attributes : null,
    nonResourceAttributes: target.kind === 'nonResource' ? target.attributes : null,
    request: {
      id: args.id,
      method: args.method,
      path: target.path,
      query: target.query,
      userAgent: headers['user-agent'] ?? '',
      sourceIP: args.sourceIP,
      dryRun: (target.query['dryRun'] ?? []).length > 0,
      contentType: headers['content-type'] ?? '',
      body: args.body.body,
      bodyTooLarge: args.body.bodyTooLarge,
      ...(exec ? { exec } : {}),
      ...(portForward ? { portForward } : {}),
      ...(args.mcp ? { mcp: { tool: args.mcp.tool, session: args.mcp.session } } : {}),
      impersonate: requestedImpersonation(headers),
    },
    context: { now_ns: args.nowNs, cluster: args.cluster },
  };
}
