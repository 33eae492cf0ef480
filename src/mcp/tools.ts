/**
 * The MCP tools: the core set of containers/kubernetes-mcp-server — same tool
 * and argument names, so agents' prompts carry over — plus `whoami`. Each tool
 * is the Kubernetes requests kubectl would make for it, sent through the
 * gateway (kube.ts); its answer is text an agent reads: a table (the API
 * server's own Table rendering, as kubectl prints) or YAML, cut with a note
 * past MAX_TEXT. A refused request is a tool error carrying the refusal.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import { parseAllDocuments, stringify } from 'yaml';
import { z } from 'zod';
import type { Approval } from '../approval/approval.js';
import type { Identity } from '../identity/identity.js';
import type { KubeAnswer, KubeCaller, KubeRequest } from './kube.js';
import type { ParkedCall } from './parked.js';

export const MAX_TEXT = 64 * 1024;
const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';

/** A refusal or failure of one of the tool's requests: the tool call's error, with the gateway's or API server's message. */
export class ToolRefusal extends Error {}

function text(t: string): CallToolResult {
  const cut = t.length > MAX_TEXT ? `${t.slice(0, MAX_TEXT)}\n… [output cut: ${t.length} characters, the first ${MAX_TEXT} shown; narrow the request]` : t;
  return { content: [{ type: 'text', text: cut }] };
}

function statusOf(a: KubeAnswer): string {
  try {
    const s = JSON.parse(a.body) as { kind?: string; message?: string; reason?: string };
    if (s.kind === 'Status' && s.message) return s.message;
  } catch {
    // Not a Status: the body itself, below.
  }
  return a.body.slice(0, 2000) || `HTTP ${a.status}`;
}

/** A Table cell: a string, number or boolean in practice; anything else as JSON. */
function cell(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return v === undefined || v === null ? '' : JSON.stringify(v);
}

/** The cells of a meta.k8s.io Table, aligned as kubectl prints them. */
export function renderTable(body: string): string {
  const t = JSON.parse(body) as { columnDefinitions?: { name: string; priority?: number }[]; rows?: { cells: unknown[] }[] };
  const shown = (t.columnDefinitions ?? []).map((c, i) => ({ name: c.name.toUpperCase(), i, priority: c.priority ?? 0 })).filter((c) => c.priority === 0);
  const rows = [shown.map((c) => c.name), ...(t.rows ?? []).map((r) => shown.map((c) => cell(r.cells[c.i])))];
  if (rows.length === 1) return 'No resources found.';
  const widths = shown.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('')).join('\n');
}

interface ApiResource {
  readonly name: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

/** apiVersion/kind → the resource's path, from discovery (through the gateway, as the agent), cached and asked again on a miss. */
export function createDiscovery() {
  const cache = new Map<string, readonly ApiResource[]>();
  const fetchList = async (kube: KubeCaller, apiVersion: string, signal: AbortSignal) => {
    const a = await kube.call({ method: 'GET', path: apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`, signal });
    if (a.status !== 200) throw new ToolRefusal(`discovery of ${apiVersion}: ${statusOf(a)}`);
    const list = (JSON.parse(a.body) as { resources: ApiResource[] }).resources.filter((r) => !r.name.includes('/'));
    cache.set(apiVersion, list);
    return list;
  };
  return async function resolve(kube: KubeCaller, apiVersion: string, kind: string, signal: AbortSignal) {
    if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion)) throw new ToolRefusal(`apiVersion ${JSON.stringify(apiVersion)} is not group/version or v1`);
    let r = cache.get(apiVersion)?.find((x) => x.kind === kind);
    if (!r) r = (await fetchList(kube, apiVersion, signal)).find((x) => x.kind === kind);
    if (!r) throw new ToolRefusal(`the API server has no kind ${kind} in ${apiVersion}`);
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    return {
      namespaced: r.namespaced,
      path: (namespace: string | undefined, name?: string) =>
        `${base}${r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${r.name}${name ? `/${encodeURIComponent(name)}` : ''}`,
    };
  };
}

type Resolve = ReturnType<typeof createDiscovery>;

/** What approvals_wait needs of the approvals: the store's view, the service's wait, and the calls parked under them. */
export interface McpApprovals {
  get(id: string): Promise<Approval | undefined>;
  waitFor(id: string, untilMs: number, signal: AbortSignal): Promise<Approval | undefined>;
  /** The call this user left waiting on the approval, opened; undefined when there is none. */
  parkedCall(id: string, username: string): Promise<ParkedCall | undefined>;
  forgetCall(id: string): Promise<void>;
}

/** How long approvals_wait waits unless told (seconds). */
const WAIT_SECONDS = 300;

export interface ToolContext {
  readonly identity: Identity;
  /** Absent when the gateway has no approvals configured: approvals_wait is not offered. */
  readonly approvals?: McpApprovals;
  readonly now: () => number;
  /** One KubeCaller per tool call (its requests' audit IDs go in the call's record). */
  readonly run: (
    tool: string,
    args: unknown,
    requestId: string | number,
    signal: AbortSignal,
    progress: (message: string) => Promise<void>,
    /**
     * `signal` ends when the client cancels the call or goes away. `resumes` names the call approvals_wait runs
     * again: parked in its stead if it is held anew.
     */
    body: (kube: KubeCaller, signal: AbortSignal, resumes: (call: ParkedCall) => void) => Promise<CallToolResult>,
  ) => Promise<CallToolResult>;
  readonly resolve: Resolve;
}

const name = z.string().min(1).max(253);
const namespace = z.string().min(1).max(63);
const selector = z.string().max(1024).optional().describe('a label selector, as kubectl -l takes it');

/** Reads or writes one request, and turns a refusal into the tool's error. */
async function expect(kube: KubeCaller, r: KubeRequest, ok: (a: KubeAnswer) => string): Promise<CallToolResult> {
  const a = await kube.call(r);
  if (a.status >= 200 && a.status < 300) return text(ok(a));
  throw new ToolRefusal(statusOf(a));
}

const yaml = (a: KubeAnswer) => stringify(JSON.parse(a.body), { lineWidth: 0 });
const q = (params: Record<string, string | undefined>) => {
  const s = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')).toString();
  return s ? `?${s}` : '';
};

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export function registerTools(server: McpServer, ctx: ToolContext): void {
  // The SDK's generic signature does not survive a helper generic in the shape; the shape is
  // applied again below (z.object(shape).parse), so each tool's body gets its own typed arguments.
  const register = server.registerTool.bind(server) as (
    name: string,
    config: { description: string; inputSchema: z.ZodRawShape },
    cb: (args: Record<string, unknown>, extra: Extra) => Promise<CallToolResult>,
  ) => void;
  type Body = (args: unknown, kube: KubeCaller, signal: AbortSignal) => Promise<CallToolResult>;
  /** Every tool's body by name, its arguments checked again: what approvals_wait runs. */
  const bodies = new Map<string, Body>();
  const tool = <S extends z.ZodRawShape>(
    toolName: string,
    description: string,
    shape: S,
    body: (args: z.infer<z.ZodObject<S>>, kube: KubeCaller, signal: AbortSignal, resumes: (call: ParkedCall) => void) => Promise<CallToolResult>,
  ) => {
    bodies.set(toolName, (args, kube, signal) => body(z.object(shape).parse(args), kube, signal, () => {}));
    register(toolName, { description, inputSchema: shape }, (args, extra) => {
      const progressToken = extra._meta?.progressToken;
      let step = 0;
      const progress = async (message: string) => {
        if (progressToken === undefined) return;
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: ++step, message } });
      };
      const parsed = z.object(shape).parse(args);
      return ctx.run(toolName, args, extra.requestId, extra.signal, progress, (kube, signal, resumes) => body(parsed, kube, signal, resumes));
    });
  };

  tool('whoami', 'The identity and groups Gatehouse sees for you, and on whose behalf you act', {}, async () =>
    text(
      stringify({
        username: ctx.identity.username,
        groups: ctx.identity.groups,
        agent: ctx.identity.agent?.name ?? null,
        onBehalfOf: ctx.identity.agent?.onBehalfOf ?? null,
      }),
    ),
  );
  tool('namespaces_list', 'List the namespaces of the cluster', {}, (_a, kube, signal) =>
    expect(kube, { method: 'GET', path: '/api/v1/namespaces', accept: TABLE, signal }, (a) => renderTable(a.body)),
  );
  tool('events_list', 'List the events of a namespace, or of all namespaces', { namespace: namespace.optional() }, (a, kube, signal) =>
    expect(kube, { method: 'GET', path: `/api/v1${a.namespace ? `/namespaces/${a.namespace}` : ''}/events`, accept: TABLE, signal }, (r) =>
      renderTable(r.body),
    ),
  );
  tool('pods_list', 'List the pods of all namespaces', { labelSelector: selector }, (a, kube, signal) =>
    expect(kube, { method: 'GET', path: `/api/v1/pods${q({ labelSelector: a.labelSelector })}`, accept: TABLE, signal }, (r) => renderTable(r.body)),
  );
  tool('pods_list_in_namespace', 'List the pods of one namespace', { namespace, labelSelector: selector }, (a, kube, signal) =>
    expect(kube, { method: 'GET', path: `/api/v1/namespaces/${a.namespace}/pods${q({ labelSelector: a.labelSelector })}`, accept: TABLE, signal }, (r) =>
      renderTable(r.body),
    ),
  );
  tool('pods_get', 'Get one pod, as YAML', { namespace: namespace.optional(), name }, (a, kube, signal) =>
    expect(kube, { method: 'GET', path: `/api/v1/namespaces/${a.namespace ?? 'default'}/pods/${encodeURIComponent(a.name)}`, signal }, yaml),
  );
  tool('pods_delete', 'Delete one pod', { namespace: namespace.optional(), name }, (a, kube, signal) =>
    expect(
      kube,
      { method: 'DELETE', path: `/api/v1/namespaces/${a.namespace ?? 'default'}/pods/${encodeURIComponent(a.name)}`, signal },
      () => `pod "${a.name}" deleted`,
    ),
  );
  tool(
    'pods_log',
    'The log of a pod (its first container unless one is named)',
    {
      namespace: namespace.optional(),
      name,
      container: z.string().max(253).optional(),
      previous: z.boolean().optional(),
      tail: z.number().int().min(1).max(100_000).optional(),
    },
    (a, kube, signal) =>
      expect(
        kube,
        {
          method: 'GET',
          path: `/api/v1/namespaces/${a.namespace ?? 'default'}/pods/${encodeURIComponent(a.name)}/log${q({ container: a.container, previous: a.previous ? 'true' : undefined, tailLines: a.tail?.toString() })}`,
          accept: '*/*',
          signal,
        },
        (r) => r.body || '(empty log)',
      ),
  );
  tool(
    'pods_exec',
    'Run a command in a pod, without a terminal or stdin, and return its output (cut past 64 KiB; stopped after timeout seconds)',
    {
      namespace: namespace.optional(),
      name,
      command: z
        .array(z.string().max(64 * 1024))
        .min(1)
        .max(256),
      container: z.string().max(253).optional(),
      timeout: z.number().int().min(1).max(3600).optional().describe('seconds; 60 unless given'),
    },
    async (a, kube, signal) => {
      const pairs: [string, string][] = [...a.command.map((c): [string, string] => ['command', c]), ['stdout', 'true'], ['stderr', 'true']];
      if (a.container) pairs.push(['container', a.container]);
      const query = new URLSearchParams(pairs);
      const r = await kube.exec(
        `/api/v1/namespaces/${a.namespace ?? 'default'}/pods/${encodeURIComponent(a.name)}/exec?${query.toString()}`,
        { maxBytes: MAX_TEXT, timeoutMs: (a.timeout ?? 60) * 1000 },
        signal,
      );
      if (r.refused) throw new ToolRefusal(statusOf(r.refused));
      const notes = [
        r.stderr ? `[stderr]\n${r.stderr}` : '',
        r.truncated ? `[output cut at ${MAX_TEXT} bytes]` : '',
        r.timedOut ? `[stopped after ${a.timeout ?? 60} s]` : '',
        r.exitCode !== null && r.exitCode !== 0 ? `[exit code ${r.exitCode}]` : '',
      ].filter(Boolean);
      const result = text([r.stdout, ...notes].reduce((all, part) => (all && !all.endsWith('\n') ? `${all}\n${part}` : all + part), '') || '(no output)');
      return r.exitCode === 0 ? result : { ...result, isError: true };
    },
  );
  const resourceShape = { apiVersion: z.string().min(1).max(253), kind: z.string().min(1).max(253), namespace: namespace.optional() };
  tool(
    'resources_list',
    'List resources of any kind (apiVersion, kind), in a namespace or cluster-wide',
    { ...resourceShape, labelSelector: selector },
    async (a, kube, signal) => {
      const r = await ctx.resolve(kube, a.apiVersion, a.kind, signal);
      return expect(kube, { method: 'GET', path: r.path(a.namespace) + q({ labelSelector: a.labelSelector }), accept: TABLE, signal }, (x) =>
        renderTable(x.body),
      );
    },
  );
  tool('resources_get', 'Get one resource of any kind, as YAML', { ...resourceShape, name }, async (a, kube, signal) => {
    const r = await ctx.resolve(kube, a.apiVersion, a.kind, signal);
    return expect(kube, { method: 'GET', path: r.path(a.namespace ?? 'default', a.name), signal }, yaml);
  });
  tool('resources_delete', 'Delete one resource of any kind', { ...resourceShape, name }, async (a, kube, signal) => {
    const r = await ctx.resolve(kube, a.apiVersion, a.kind, signal);
    return expect(kube, { method: 'DELETE', path: r.path(a.namespace ?? 'default', a.name), signal }, () => `${a.kind} "${a.name}" deleted`);
  });
  tool(
    'resources_scale',
    'Read the scale of a Deployment, StatefulSet or ReplicaSet, or set it (scale)',
    { ...resourceShape, name, scale: z.number().int().min(0).max(100_000).optional() },
    async (a, kube, signal) => {
      const r = await ctx.resolve(kube, a.apiVersion, a.kind, signal);
      const path = `${r.path(a.namespace ?? 'default', a.name)}/scale`;
      if (a.scale === undefined) return expect(kube, { method: 'GET', path, signal }, yaml);
      return expect(
        kube,
        { method: 'PATCH', path, contentType: 'application/merge-patch+json', body: JSON.stringify({ spec: { replicas: a.scale } }), signal },
        () => `${a.kind} "${a.name}" scaled to ${a.scale}`,
      );
    },
  );
  tool(
    'resources_create_or_update',
    'Create or update resources from a YAML or JSON manifest (server-side apply, field manager gatehouse-mcp)',
    {
      resource: z
        .string()
        .min(1)
        .max(1024 * 1024),
    },
    async (a, kube, signal) => {
      const docs = parseAllDocuments(a.resource)
        .map((d) => d.toJS() as { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string } } | null)
        .filter((d) => d !== null);
      if (!docs.length) throw new ToolRefusal('the manifest holds no object');
      const out: string[] = [];
      for (const d of docs) {
        if (!d.apiVersion || !d.kind || !d.metadata?.name) throw new ToolRefusal('every object needs apiVersion, kind and metadata.name');
        const r = await ctx.resolve(kube, d.apiVersion, d.kind, signal);
        const path = `${r.path(d.metadata.namespace ?? 'default', d.metadata.name)}?fieldManager=gatehouse-mcp&force=true`;
        const applied = await expect(kube, { method: 'PATCH', path, contentType: 'application/apply-patch+yaml', body: JSON.stringify(d), signal }, yaml);
        out.push(applied.content.map((c) => (c.type === 'text' ? c.text : '')).join(''));
      }
      return text(out.join('---\n'));
    },
  );

  const approvals = ctx.approvals;
  if (approvals)
    tool(
      'approvals_wait',
      'Wait for the approval an earlier tool call of yours is waiting on, then run that call exactly as it was made (the approval covers only that request)',
      {
        id: z.string().min(1).max(64).describe('the approval id the earlier call returned'),
        timeout: z.number().int().min(1).max(3600).optional().describe(`seconds to wait; ${WAIT_SECONDS} unless given`),
      },
      async (a, kube, signal, resumes) => {
        const me = ctx.identity.username;
        const approval = await approvals.get(a.id);
        if (!approval) throw new ToolRefusal(`approval ${a.id} does not exist`);
        if (approval.subject.requester.username !== me) throw new ToolRefusal(`approval ${a.id} was asked for by someone else`);
        const call = await approvals.parkedCall(a.id, me);
        if (!call)
          throw new ToolRefusal(
            `approval ${a.id} is ${approval.state}, and no tool call of yours waits on it (it ran already, or the request came from kubectl: run that again)`,
          );
        const run = bodies.get(call.tool);
        if (!run || call.tool === 'approvals_wait') throw new ToolRefusal(`the call waiting on approval ${a.id} names no tool of this gateway (${call.tool})`);
        const decided = await approvals.waitFor(a.id, ctx.now() + (a.timeout ?? WAIT_SECONDS) * 1000, signal);
        if (signal.aborted) throw new ToolRefusal('cancelled while waiting for the approval; nothing ran');
        if (!decided || decided.state === 'pending')
          throw new ToolRefusal(`approval ${a.id} is still pending; call approvals_wait again (the call stays parked until the approval expires)`);
        if (decided.state !== 'approved') {
          await approvals.forgetCall(a.id);
          throw new ToolRefusal(
            decided.state === 'denied'
              ? `approval ${a.id} was denied by ${decided.decidedBy}${decided.reason ? `: ${decided.reason}` : ''}; nothing ran`
              : `approval ${a.id} is ${decided.state}; nothing ran`,
          );
        }
        // Held again (an approval used by someone else meanwhile): the original call is what waits, not this one.
        resumes(call);
        try {
          const result = await run(call.args, kube, signal);
          return { ...result, content: [{ type: 'text', text: `approval ${a.id} given by ${decided.decidedBy}; ${call.tool} ran:\n` }, ...result.content] };
        } finally {
          await approvals.forgetCall(a.id);
        }
      },
    );
}
