/**
 * The front door: every request the listener hands over. `/healthz` and
 * `/readyz` are answered here; the gateway's own pages and APIs (`/gatehouse/`,
 * and the MCP endpoint's OAuth metadata at RFC 9728's well-known path) go to
 * one handler and every other path, which belongs to the Kubernetes API, to the
 * other; upgrades (exec, attach, port-forward) go to the upgrade door. Handlers
 * write their own responses (they stream, and they decide when a connection is
 * cut) and are counted while they run, so that a shutdown can wait for them.
 *
 * A plain function, not Koa middleware: a watch holds its request for hours,
 * and Koa's context, its middleware chain and its finish listeners cost 5.5 KiB
 * of heap per request held (bench/README.md, "Memory per watch").
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;
/** exec, attach and port-forward: WebSocket GETs and SPDY POSTs that upgrade the connection. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => Promise<void>;

export interface FrontDoorDeps {
  /** Until the server listens (the approval links need its URL): undefined; requests get 503, upgrades a closed socket. */
  readonly routes: () => { readonly kubernetes: Handler; readonly gatehouse: Handler; readonly upgrade: UpgradeHandler } | undefined;
  /** Path prefixes of the gateway's own handler. */
  readonly ownPrefixes: readonly string[];
  readonly upstreamReady: () => Promise<boolean>;
  readonly draining: () => boolean;
  readonly onError: (err: Error) => void;
  readonly now?: () => number;
}

/** The path of a request target: origin-form (`/a?b`) or absolute-form (`https://h/a?b`). */
export function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  if (u.startsWith('/')) {
    const q = u.indexOf('?');
    return q < 0 ? u : u.slice(0, q);
  }
  try {
    return new URL(u).pathname;
  } catch {
    return u;
  }
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function createFrontDoor(deps: FrontDoorDeps) {
  const now = deps.now ?? Date.now;
  let inFlight = 0;
  // A readiness probe every second from each of several balancers must not become as many upstream calls.
  let readyCache = { at: -Infinity, ok: false };

  async function ready(res: ServerResponse): Promise<void> {
    if (now() - readyCache.at > 2000) readyCache = { at: now(), ok: !deps.draining() && (await deps.upstreamReady()) };
    const draining = deps.draining();
    text(res, readyCache.ok ? 200 : 503, readyCache.ok ? 'ok' : draining ? 'shutting down' : 'the Kubernetes API server is not reachable');
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = pathOf(req.url);
    if (req.method === 'GET' && path === '/healthz') return text(res, 200, 'ok');
    if (req.method === 'GET' && path === '/readyz') return ready(res);
    const routes = deps.routes();
    if (!routes) return text(res, 503, 'starting');
    inFlight++;
    try {
      await (deps.ownPrefixes.some((p) => path.startsWith(p)) ? routes.gatehouse : routes.kubernetes)(req, res);
    } finally {
      inFlight--;
    }
  }

  return {
    /** For the listener: never rejects. */
    handle: (req: IncomingMessage, res: ServerResponse): void => {
      handle(req, res).catch((err: unknown) => {
        deps.onError(err instanceof Error ? err : new Error(String(err)));
        // Handlers answer their own failures; this is for a bug, and says nothing about it to the client.
        if (!res.headersSent) text(res, 500, 'Internal Server Error');
        else res.destroy();
      });
    },
    /** For the listener's and the internal socket's 'upgrade': none is taken before the routes exist or while draining. */
    upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      const routes = deps.routes();
      if (!routes || deps.draining()) return void socket.destroy();
      inFlight++;
      void routes.upgrade(req, socket, head).finally(() => inFlight--);
    },
    /** Requests and upgrades being handled: a shutdown waits for them. */
    inFlight: (): number => inFlight,
  };
}
