/**
 * The Kubernetes API as a tool call reaches it: ordinary HTTP requests with
 * the agent's own bearer token, sent to this gateway over an internal socket
 * (a Unix socket in a 0700 folder, so only this process connects), where each
 * goes through the whole pipeline — identity, policy, approval, impersonated
 * upstream, masking, audit — exactly as kubectl's would. The signed MCP marker
 * tells the policy which tool made it.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { request as httpRequest } from 'node:http';
import { Agent, request } from 'undici';
import { APPROVAL_GROUP, APPROVAL_KIND } from '../approval/service.js';
import { WebSocketReader } from '../upgrade/websocket.js';
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

/** What a non-interactive exec printed, and how it ended. */
export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  /** 0 on success; null when the session ended without saying (timeout, cut). */
  readonly exitCode: number | null;
  readonly truncated: boolean;
  readonly timedOut: boolean;
  /** The Status of a refusal before the upgrade (policy, RBAC), when there was one. */
  readonly refused: KubeAnswer | null;
}

/** What one tool call may send: its token and marker are fixed; every answer's audit ID is kept for the call's record. */
export interface KubeCaller {
  call(r: KubeRequest): Promise<KubeAnswer>;
  /** pods/exec over WebSocket (v5.channel.k8s.io), no stdin, no terminal; the session is recorded by the gateway like kubectl's. */
  exec(path: string, limits: { readonly maxBytes: number; readonly timeoutMs: number }, signal: AbortSignal): Promise<ExecResult>;
  readonly auditIds: readonly string[];
  /** Approvals the gateway opened (or found open) for requests of this call that it then refused. */
  readonly pendingApprovals: readonly string[];
}

/** The approval a refusal waits on, as the gateway names it in the Status's details. */
export function approvalOf(a: KubeAnswer): string | undefined {
  if (a.status !== 403) return undefined;
  try {
    const d = (JSON.parse(a.body) as { details?: { group?: unknown; kind?: unknown; name?: unknown } }).details;
    return d?.group === APPROVAL_GROUP && d.kind === APPROVAL_KIND && typeof d.name === 'string' ? d.name : undefined;
  } catch {
    return undefined;
  }
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
      const pendingApprovals: string[] = [];
      /** Who asks, and for which tool: the same on each of the call's requests (a fresh signature each). */
      const callerHeaders = () => ({ authorization: `Bearer ${token}`, [MCP_HEADER]: marker.sign(facts), 'user-agent': `gatehouse-mcp/${facts.tool}` });
      const remember = (auditId: string) => {
        if (auditId) auditIds.push(auditId);
      };
      const refusedFor = (a: KubeAnswer) => {
        const approval = approvalOf(a);
        if (approval) pendingApprovals.push(approval);
      };
      return {
        auditIds,
        pendingApprovals,
        async call(r) {
          const res = await request(`http://gatehouse.internal${r.path}`, {
            dispatcher: agent,
            method: r.method,
            headers: {
              ...callerHeaders(),
              accept: r.accept ?? 'application/json',
              ...(r.contentType ? { 'content-type': r.contentType } : {}),
            },
            ...(r.body !== undefined ? { body: r.body } : {}),
            signal: r.signal,
          });
          const auditId = String(res.headers['audit-id'] ?? '');
          remember(auditId);
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
          const answer = { status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), auditId };
          refusedFor(answer);
          return answer;
        },
        async exec(path, limits, signal) {
          const headers = {
            ...callerHeaders(),
            'sec-websocket-version': '13',
            'sec-websocket-key': randomBytes(16).toString('base64'),
            'sec-websocket-protocol': 'v5.channel.k8s.io,v4.channel.k8s.io',
          };
          // node:http over the socket: it hands over a 101's socket and a refusal's Status alike, with their headers.
          const answer = await new Promise<{ kind: 'upgraded'; socket: Duplex; auditId: string } | { kind: 'refused'; answer: KubeAnswer }>(
            (resolve, reject) => {
              const req = httpRequest({ socketPath, path, method: 'GET', headers: { ...headers, connection: 'Upgrade', upgrade: 'websocket' }, signal });
              req.once('upgrade', (res, socket, head) => {
                if (head.length) socket.unshift(head);
                resolve({ kind: 'upgraded', socket, auditId: String(res.headers['audit-id'] ?? '') });
              });
              req.once('response', (res) => {
                const chunks: Buffer[] = [];
                res.on('data', (c: Buffer) => chunks.push(c));
                res.once('end', () =>
                  resolve({
                    kind: 'refused',
                    answer: {
                      status: res.statusCode ?? 0,
                      body: Buffer.concat(chunks)
                        .toString('utf8')
                        .slice(0, 64 * 1024),
                      auditId: String(res.headers['audit-id'] ?? ''),
                    },
                  }),
                );
                res.once('error', reject);
              });
              req.once('error', reject);
              req.end();
            },
          );
          remember(answer.kind === 'upgraded' ? answer.auditId : answer.answer.auditId);
          if (answer.kind === 'refused') {
            refusedFor(answer.answer);
            return { stdout: '', stderr: '', exitCode: null, truncated: false, timedOut: false, refused: answer.answer };
          }
          return readExec(answer.socket, limits, signal);
        },
      };
    },
    destroy: () => agent.destroy(),
  };
}

export type InternalClient = ReturnType<typeof createInternalClient>;

/** The API server's messages on an exec's channels (1 stdout, 2 stderr, 3 its Status), until it closes, is cut or times out. */
function readExec(socket: Duplex, limits: { readonly maxBytes: number; readonly timeoutMs: number }, signal: AbortSignal): Promise<ExecResult> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let bytes = 0;
    let truncated = false;
    let timedOut = false;
    let exitCode: number | null = null;
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', cut);
      socket.destroy();
      resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), exitCode, truncated, timedOut, refused: null });
    };
    const cut = () => done();
    const timer = setTimeout(() => {
      timedOut = true;
      done();
    }, limits.timeoutMs);
    signal.addEventListener('abort', cut, { once: true });
    const reader = new WebSocketReader(
      false,
      (m) => {
        if (m.channel === 3) {
          exitCode = exitCodeOf(m.data.toString('utf8'));
          return;
        }
        if (m.channel !== 1 && m.channel !== 2) return;
        const room = limits.maxBytes - bytes;
        if (room <= 0) {
          truncated = true;
          return;
        }
        const piece = m.data.subarray(0, room);
        truncated ||= piece.length < m.data.length;
        bytes += piece.length;
        (m.channel === 1 ? out : err).push(piece);
      },
      () => done(),
      () => done(),
    );
    socket.on('data', (c: Buffer) => reader.push(c));
    socket.once('close', done);
    socket.once('error', done);
  });
}

/** The exit code in an exec's Status: Success is 0; a failure names it in details.causes (reason ExitCode). */
function exitCodeOf(status: string): number | null {
  try {
    const s = JSON.parse(status) as { status?: string; details?: { causes?: { reason?: string; message?: string }[] } };
    if (s.status === 'Success') return 0;
    const cause = s.details?.causes?.find((c) => c.reason === 'ExitCode');
    return cause?.message !== undefined ? Number(cause.message) : null;
  } catch {
    return null;
  }
}
