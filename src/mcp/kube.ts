/**
 * The Kubernetes API as a tool call reaches it: ordinary HTTP requests with
 * the agent's own bearer token, sent to this gateway over an internal socket
 * (a Unix socket in a 0700 folder, so only this process connects), where each
 * goes through the whole pipeline — identity, policy, approval, impersonated
 * upstream, masking, audit — exactly as kubectl's would. The signed MCP marker
 * tells the policy which tool made it.
 */
import { Agent, request } from 'undici';
import { MCP_HEADER, type McpFacts, type McpMarker } from './marker.js';

export interface KubeAnswer {
  readonly status: number;
  readonly body: string;
  readonly auditId: string;
}

export interface KubeRequest {
  readonly method: 'GET' | 'DELETE' | 'PATCH' | 'POST' | 'PUT';
  readonly path: string;
  readonly body?: string;
  readonly contentType?: string;
  readonly accept?: string;
  readonly signal: AbortSignal;
}

/** What one tool call may send: its token and marker are fixed; every answer's audit ID is kept for the call's record. */
export interface KubeCaller {
  call(r: KubeRequest): Promise<KubeAnswer>;
  readonly auditIds: readonly string[];
}

/** Above this, a tool's reading of an answer stops: an agent reads text, not a dump of the cluster. */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

export function createInternalClient(socketPath: string, marker: McpMarker) {
  // No timeouts here: a request held for approval waits as long as the gateway holds it, and the
  // tool call's own signal (the client's cancellation) ends it.
  const agent = new Agent({ connect: { socketPath }, headersTimeout: 0, bodyTimeout: 0 });
  return {
    caller(token: string, facts: McpFacts): KubeCaller {
      const auditIds: string[] = [];
      return {
        auditIds,
        async call(r) {
          const res = await request(`http://gatehouse.internal${r.path}`, {
            dispatcher: agent,
            method: r.method,
            headers: {
              authorization: `Bearer ${token}`,
              [MCP_HEADER]: marker.sign(facts),
              accept: r.accept ?? 'application/json',
              'user-agent': `gatehouse-mcp/${facts.tool}`,
              ...(r.contentType ? { 'content-type': r.contentType } : {}),
            },
            ...(r.body !== undefined ? { body: r.body } : {}),
            signal: r.signal,
          });
          const auditId = String(res.headers['audit-id'] ?? '');
          if (auditId) auditIds.push(auditId);
          const chunks: Buffer[] = [];
          let size = 0;
          for await (const chunk of res.body as AsyncIterable<Buffer>) {
            size += chunk.length;
            if (size > MAX_ANSWER_BYTES) {
              res.body.destroy();
              throw new Error(`the answer is over ${MAX_ANSWER_BYTES} bytes: narrow the request (a namespace, a label selector)`);
            }
            chunks.push(chunk);
          }
          return { status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), auditId };
        },
      };
    },
    close: () => agent.close(),
  };
}

export type InternalClient = ReturnType<typeof createInternalClient>;
