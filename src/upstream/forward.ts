import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { Agent, buildConnector, Client, errors, request, type Dispatcher } from 'undici';
import { GatehouseError } from '../errors.js';
import type { UpstreamTarget } from './credentials.js';
import type { UpstreamHeaders } from './headers.js';

export interface UpstreamResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Readable;
}

export interface Forwarder {
  forward(req: {
    method: string;
    pathAndQuery: string;
    headers: UpstreamHeaders;
    body: Buffer | undefined;
    longRunning: boolean;
    signal: AbortSignal;
  }): Promise<UpstreamResponse>;
  close(): Promise<void>;
  /** GET /readyz as the gateway itself (public-info-viewer allows it): is the API server there? */
  ready(): Promise<boolean>;
}

export interface ForwarderOptions {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  /** For requests that are not watches or follows: how long the whole body may take. */
  readonly bodyTimeoutMs: number;
  /** Connections for ordinary requests; watches and follows never count against it. */
  readonly maxConnections?: number;
  /** Carry watches and follows over HTTP/2 when the API server offers it (ALPN), multiplexed; HTTP/1.1 otherwise. */
  readonly http2?: boolean;
  readonly dispatcher?: Dispatcher;
}

/** The API server answered ALPN without h2: the watch pool's connection is dropped before any request is sent on it. */
class Http2Declined extends Error {
  constructor() {
    super('the Kubernetes API server does not speak HTTP/2');
  }
}

/** Streams a connection may carry: undici's default, below Go's HTTP/2 server's 250 that kube-apiserver keeps by default. */
const STREAMS_PER_CONNECTION = 100;

/**
 * A connector that keeps only connections on which the server chose h2. The
 * watch pool multiplexes many long-lived streams per connection; had ALPN
 * fallen back to HTTP/1.1 there, a second watch would queue behind the first
 * for as long as it lives.
 */
function http2Only(options: buildConnector.BuildOptions): buildConnector.connector {
  const base = buildConnector({ ...options, allowH2: true });
  return (opts, callback) =>
    base(opts, (err, socket) => {
      if (err) return callback(err, null);
      if ((socket as TLSSocket).alpnProtocol !== 'h2') {
        socket.destroy();
        return callback(new Http2Declined(), null);
      }
      callback(null, socket);
    });
}

/**
 * HTTP/2 connections for watches, each filled up to STREAMS_PER_CONNECTION
 * before the next is opened. (undici's pools open a connection for every
 * request that arrives while one is still connecting: 1,000 watches opened at
 * once made ~180 connections.)
 */
function http2Connections(origin: string, connect: buildConnector.BuildOptions) {
  const connector = http2Only(connect);
  let clients: Client[] = [];
  return {
    pick(): Client {
      clients = clients.filter((c) => !c.closed && !c.destroyed);
      const free = clients.find((c) => c.stats.size < STREAMS_PER_CONNECTION);
      if (free) return free;
      const c = new Client(origin, { connect: connector, allowH2: true, keepAliveTimeout: 30_000, pipelining: STREAMS_PER_CONNECTION });
      clients.push(c);
      return c;
    },
    async close(): Promise<void> {
      await Promise.all(clients.map((c) => c.close()));
    },
  };
}

const declinedHttp2 = (err: unknown): boolean => err instanceof Http2Declined || (err as { cause?: unknown } | undefined)?.cause instanceof Http2Declined;

export function createForwarder(target: UpstreamTarget, options: ForwarderOptions): Forwarder {
  const connect = { ...target.tls, timeout: options.connectTimeoutMs };
  const dispatcher = options.dispatcher ?? new Agent({ connect, keepAliveTimeout: 30_000, connections: options.maxConnections ?? 256, pipelining: 1 });
  // Each watch or `logs -f` holds a connection for as long as it lives: in the bounded pool,
  // 256 of them would starve every other request (found by bench/run.ts with 1,000 watches).
  // They get a pool of their own, bounded only by what the API server accepts.
  const streams = options.dispatcher ?? new Agent({ connect, keepAliveTimeout: 30_000, pipelining: 1 });
  // Over HTTP/2 they share connections instead, up to STREAMS_PER_CONNECTION each; each stream has its own flow-control window,
  // so a watcher that stops reading holds back its own stream only. A server that declines h2 is
  // remembered, and watches go on over HTTP/1.1.
  let multiplexed = options.http2 && !options.dispatcher ? http2Connections(new URL(target.server).origin, connect) : undefined;
  const send = (dispatcher: Dispatcher, { method, pathAndQuery, headers, body, longRunning, signal }: Parameters<Forwarder['forward']>[0]) =>
    request(target.server + pathAndQuery, {
      method: method,
      headers,
      body: body ?? null,
      dispatcher,
      signal,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: longRunning ? 0 : options.bodyTimeoutMs,
      // undici's request() relays redirects and never follows them (no redirect interceptor here):
      // following one would replay the gateway's credentials elsewhere.
    });
  return {
    async forward(req) {
      try {
        let res: Dispatcher.ResponseData | undefined;
        const mux = req.longRunning ? multiplexed : undefined;
        if (mux) {
          try {
            res = await send(mux.pick(), req);
          } catch (err) {
            if (!declinedHttp2(err)) throw err;
            // Several watches may learn it at once; one of them drops the connections.
            if (multiplexed === mux) {
              multiplexed = undefined;
              void mux.close();
            }
          }
        }
        res ??= await send(req.longRunning ? streams : dispatcher, req);
        return { statusCode: res.statusCode, headers: res.headers, body: res.body };
      } catch (err) {
        throw upstreamError(err);
      }
    },
    async ready() {
      try {
        const res = await request(target.server + '/readyz', {
          dispatcher,
          headersTimeout: 2000,
          bodyTimeout: 2000,
          headers: target.authorization ? { authorization: target.authorization() } : {},
        });
        await res.body.dump();
        return res.statusCode === 200;
      } catch {
        return false;
      }
    },
    close: async () => {
      await dispatcher.close();
      if (streams !== dispatcher) await streams.close();
      await multiplexed?.close();
    },
  };
}

/** Upstream failures as Status errors; undici's messages name no header, so no credential can leak through them. */
export function upstreamError(err: unknown): GatehouseError {
  if (err instanceof GatehouseError) return err;
  if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError || err instanceof errors.ConnectTimeoutError) {
    return new GatehouseError('GATEHOUSE_UPSTREAM_TIMEOUT', 'the Kubernetes API server did not answer in time', { cause: err });
  }
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code ?? 'unknown';
  return new GatehouseError('GATEHOUSE_UPSTREAM_UNAVAILABLE', `the Kubernetes API server is unreachable (${code})`, { cause: err });
}
