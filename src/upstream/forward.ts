import type { Readable } from 'node:stream';
import { Agent, errors, request, type Dispatcher } from 'undici';
import { GatehouseError } from '../errors.js';
import { CLIENT_GO_PING, type PingOptions } from '../heartbeat.js';
import type { UpstreamTarget } from './credentials.js';
import type { UpstreamHeaders } from './headers.js';
import { createMultiplexed, Http2Declined } from './multiplexed.js';

export interface UpstreamResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Readable;
  /**
   * Asked when the body has ended: the error that cut it short, if one did. An HTTP/2 stream that is
   * reset or loses its connection ends like one that finished (multiplexed.ts); undici's bodies
   * report a cut as an error instead.
   */
  readonly cutShort?: () => Error | undefined;
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
  /** How often an HTTP/2 connection is pinged, and how long its answer may take (heartbeat.ts): client-go's 30 s and 15 s unless given. */
  readonly ping?: PingOptions;
  readonly dispatcher?: Dispatcher;
}

export function createForwarder(target: UpstreamTarget, options: ForwarderOptions): Forwarder {
  const connect = { ...target.tls, timeout: options.connectTimeoutMs };
  const dispatcher = options.dispatcher ?? new Agent({ connect, keepAliveTimeout: 30_000, connections: options.maxConnections ?? 256, pipelining: 1 });
  // Each watch or `logs -f` holds a connection for as long as it lives: in the bounded pool,
  // 256 of them would starve every other request (found by bench/run.ts with 1,000 watches).
  // They get a pool of their own, bounded only by what the API server accepts.
  const streams = options.dispatcher ?? new Agent({ connect, keepAliveTimeout: 30_000, pipelining: 1 });
  // Over HTTP/2 they share connections instead, up to 100 streams each (multiplexed.ts); each stream has its own flow-control window,
  // so a watcher that stops reading holds back its own stream only. A server that declines h2 is
  // remembered, and watches go on over HTTP/1.1.
  let multiplexed =
    options.http2 && !options.dispatcher && target.server.startsWith('https:')
      ? createMultiplexed(target, {
          connectTimeoutMs: options.connectTimeoutMs,
          headersTimeoutMs: options.headersTimeoutMs,
          idleMs: 30_000,
          ping: options.ping ?? CLIENT_GO_PING,
        })
      : undefined;
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
        const mux = req.longRunning ? multiplexed : undefined;
        if (mux) {
          try {
            return await mux.request(req);
          } catch (err) {
            if (!(err instanceof Http2Declined)) throw err;
            // Several watches may learn it at once; one of them drops the connections.
            if (multiplexed === mux) {
              multiplexed = undefined;
              void mux.close();
            }
          }
        }
        const res = await send(req.longRunning ? streams : dispatcher, req);
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
