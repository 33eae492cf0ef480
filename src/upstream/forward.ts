import type { Readable } from 'node:stream';
import { Agent, errors, request, type Dispatcher } from 'undici';
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
  readonly dispatcher?: Dispatcher;
}

export function createForwarder(target: UpstreamTarget, options: ForwarderOptions): Forwarder {
  const connect = { ...target.tls, timeout: options.connectTimeoutMs };
  const dispatcher = options.dispatcher ?? new Agent({ connect, keepAliveTimeout: 30_000, connections: options.maxConnections ?? 256, pipelining: 1 });
  // Each watch or `logs -f` holds a connection for as long as it lives: in the bounded pool,
  // 256 of them would starve every other request (found by bench/run.ts with 1,000 watches).
  // They get a pool of their own, bounded only by what the API server accepts.
  const streams = options.dispatcher ?? new Agent({ connect, keepAliveTimeout: 30_000, pipelining: 1 });
  return {
    async forward({ method, pathAndQuery, headers, body, longRunning, signal }) {
      try {
        const res = await request(target.server + pathAndQuery, {
          method: method,
          headers,
          body: body ?? null,
          dispatcher: longRunning ? streams : dispatcher,
          signal,
          headersTimeout: options.headersTimeoutMs,
          bodyTimeout: longRunning ? 0 : options.bodyTimeoutMs,
          // undici's request() relays redirects and never follows them (no redirect interceptor here):
          // following one would replay the gateway's credentials elsewhere.
        });
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
