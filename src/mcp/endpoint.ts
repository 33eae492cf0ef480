/**
 * `/gatehouse/mcp`: the Model Context Protocol over Streamable HTTP, stateless
 * (any replica answers any message; nothing to share), on the gateway's own
 * listener. The bearer token is verified like any request's; without a good
 * one the answer is a 401 whose WWW-Authenticate points at the protected
 * resource metadata (RFC 9728), which names the issuers, so a client can find
 * where to log in. Each tool call is Kubernetes requests through the gateway
 * (kube.ts, tools.ts) and one McpToolCall audit record.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CancelledNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { ApprovalService } from '../approval/service.js';
import type { ApprovalStore } from '../approval/store.js';
import type { AuditWriter } from '../audit/writer.js';
import { messageOf } from '../errors.js';
import type { Identity } from '../identity/identity.js';
import { extractBearerToken } from '../identity/token.js';
import type { InternalClient } from './kube.js';
import type { CallSeal, ParkedCall } from './parked.js';
import { MCP_PATH, RESOURCE_METADATA_PATH } from './paths.js';
import { createDiscovery, registerTools, ToolRefusal, type McpApprovals } from './tools.js';

/** While a tool call waits (a request held for approval), the client hears of it this often. */
const PROGRESS_EVERY_MS = 5000;

export interface McpEndpointDeps {
  readonly authenticate: (token: string) => Promise<Identity>;
  readonly issuers: readonly string[];
  /** The gateway's URL as clients reach it (behind a balancer: the balancer's). */
  readonly publicUrl: string;
  readonly internal: InternalClient;
  readonly audit: AuditWriter;
  /** With approvals configured: a call held too long is parked for approvals_wait. */
  readonly approvals?: { readonly store: ApprovalStore; readonly service: ApprovalService; readonly seal: CallSeal };
  readonly log?: (message: string) => void;
  readonly version: string;
  readonly now?: () => number;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

export function createMcpEndpoint(deps: McpEndpointDeps) {
  const now = deps.now ?? Date.now;
  /**
   * Tool calls running on this replica, by caller and JSON-RPC id. Stateless, a
   * client's notifications/cancelled arrives in a request of its own, to a
   * server that never saw the call: it is looked up here. Keyed by the
   * verified username, so nobody cancels another's call.
   */
  const running = new Map<string, AbortController>();
  const runningKey = (username: string, id: string | number) => `${username}\u0000${typeof id}:${id}`;
  const discovery = createDiscovery();
  const digest = (args: unknown) => 'sha256:' + createHash('sha256').update(JSON.stringify(args)).digest('hex');
  const ap = deps.approvals;
  const approvals: McpApprovals | undefined = ap && {
    get: (id) => ap.store.get(id),
    waitFor: (id, untilMs, signal) => ap.service.waitFor(id, untilMs, signal),
    async parkedCall(id, username) {
      const sealed = await ap.store.parkedCall(id, username);
      return sealed === undefined ? undefined : ap.seal.open(id, username, sealed);
    },
    forgetCall: (id) => ap.store.forgetCall(id),
  };

  /**
   * A call refused because a request of it waits on an approval is kept for approvals_wait — only when that
   * approval is this user's and still pending (the Status's details name it, and a Status can be relayed).
   */
  async function park(username: string, ids: readonly string[], call: ParkedCall): Promise<string | undefined> {
    if (!ap) return undefined;
    for (const id of ids.toReversed()) {
      const a = await ap.store.get(id);
      if (a?.state !== 'pending' || a.subject.requester.username !== username) continue;
      await ap.store.parkCall(id, username, ap.seal.seal(id, username, call), now());
      return id;
    }
    return undefined;
  }
  const metadataUrl = `${deps.publicUrl}${RESOURCE_METADATA_PATH}${MCP_PATH}`;

  /** RFC 9728: at the well-known path, and at it with the resource's path appended. */
  function metadata(res: ServerResponse): void {
    sendJson(res, 200, {
      resource: `${deps.publicUrl}${MCP_PATH}`,
      authorization_servers: deps.issuers,
      bearer_methods_supported: ['header'],
      resource_name: 'Gatehouse (Kubernetes API gateway)',
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let token: string;
    let identity: Identity;
    try {
      token = extractBearerToken(req.headers);
      identity = await deps.authenticate(token);
    } catch (err) {
      const description = messageOf(err).replace(/["\\\r\n]/g, ' ');
      const presented = req.headers.authorization !== undefined;
      const challenge = presented
        ? `Bearer error="invalid_token", error_description="${description}", resource_metadata="${metadataUrl}"`
        : `Bearer resource_metadata="${metadataUrl}"`;
      sendJson(res, 401, { error: presented ? 'invalid_token' : 'unauthorized', error_description: description }, { 'www-authenticate': challenge });
      return;
    }
    const sourceIP = req.socket.remoteAddress ?? '';
    const server = new McpServer({ name: 'gatehouse', version: deps.version }, { capabilities: { tools: {} } });
    server.server.setNotificationHandler(CancelledNotificationSchema, (n) => {
      if (n.params.requestId !== undefined) running.get(runningKey(identity.username, n.params.requestId))?.abort(n.params.reason ?? 'cancelled');
    });
    // A client that goes away cancels what it was waiting for.
    const gone = new AbortController();
    res.once('close', () => gone.abort('the client went away'));
    registerTools(server, {
      identity,
      ...(approvals ? { approvals } : {}),
      now,
      resolve: discovery,
      async run(tool, args, requestId, requestSignal, progress, body) {
        const call = randomUUID();
        const started = now();
        const cancelled = new AbortController();
        const key = runningKey(identity.username, requestId);
        running.set(key, cancelled);
        const signal = AbortSignal.any([requestSignal, gone.signal, cancelled.signal]);
        const kube = deps.internal.caller(token, { tool, session: '', call, sourceIP });
        const ticker = setInterval(() => {
          progress(`still waiting on the gateway (a request may be held for approval: gatehouse approvals list)`).catch(() => {});
        }, PROGRESS_EVERY_MS);
        let result: CallToolResult;
        let outcome: 'ok' | 'error' | 'cancelled' = 'ok';
        let error: string | undefined;
        let parkable: ParkedCall = { tool, args };
        let resumed: ParkedCall | undefined;
        let parkedOn: string | undefined;
        try {
          result = await body(kube, signal, (call) => {
            parkable = resumed = call;
          });
        } catch (err) {
          outcome = signal.aborted ? 'cancelled' : 'error';
          error = err instanceof ToolRefusal ? err.message : `the tool failed: ${messageOf(err)}`;
          if (!signal.aborted && kube.pendingApprovals.length) {
            parkedOn = await park(identity.username, kube.pendingApprovals, parkable).catch((e: unknown) => {
              deps.log?.(`MCP: keeping the held call for approval ${kube.pendingApprovals.join(', ')} failed: ${messageOf(e)}`);
              return undefined;
            });
          }
          const next = parkedOn ? `\nOnce approved, call approvals_wait with {"id": "${parkedOn}"}: it waits for the decision and runs this call then.` : '';
          result = { isError: true, content: [{ type: 'text', text: error + next }] };
        } finally {
          clearInterval(ticker);
          if (running.get(key) === cancelled) running.delete(key);
        }
        deps.audit.write({
          kind: 'McpToolCall',
          apiVersion: 'gatehouse.dev/v1',
          call,
          session: '',
          timestamp: new Date(started).toISOString(),
          user: { username: identity.username, agent: identity.agent?.name ?? null, onBehalfOf: identity.agent?.onBehalfOf ?? null },
          sourceIP,
          tool,
          // A digest, never the arguments: a manifest may carry a Secret's data.
          argumentsDigest: digest(args),
          requests: [...kube.auditIds],
          outcome,
          ...(error ? { error } : {}),
          ...(parkedOn ? { parkedOn } : {}),
          ...(resumed ? { resumed: { tool: resumed.tool, argumentsDigest: digest(resumed.args) } } : {}),
          durationMs: now() - started,
        });
        return result;
      },
    });
    // Stateless (no sessionIdGenerator): a transport and a server per HTTP request, so any replica takes any message.
    const transport = new StreamableHTTPServerTransport({});
    res.once('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  }

  return { handle, metadata };
}
