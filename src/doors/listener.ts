/**
 * The gateway's TLS listener. ALPN picks the protocol of each connection:
 * HTTP/2 lets a client-go process multiplex its requests and watches on one
 * connection; HTTP/1.1 stays for clients that ask for it and for upgrades
 * (exec, attach, port-forward), which kubectl makes over HTTP/1.1. (node:http2's
 * own allowHTTP1 fallback emits no 'upgrade', so the two servers here are
 * handed their connections instead.)
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttp2Server, type Http2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { CLIENT_GO_PING, heartbeat, type PingOptions } from '../heartbeat.js';

export interface ListenerOptions {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly http2: boolean;
  readonly onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly onConnection?: (protocol: 'h2' | 'http/1.1') => void;
  /** How often an HTTP/2 client is pinged, and how long its answer may take (heartbeat.ts): client-go's 30 s and 15 s unless given. */
  readonly ping?: PingOptions;
  /** Streams an HTTP/2 connection may have open at once: kube-apiserver's 1000 unless given (tests make it small). */
  readonly maxStreamsPerConnection?: number;
  /** Node's defaults (60 s, 300 s, checked every 30 s) unless given: tests make them short. */
  readonly headersTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly checkIntervalMs?: number;
}

export interface Listener {
  readonly server: TlsServer;
  /** Stops taking connections; idle HTTP/1.1 connections close, HTTP/2 clients get GOAWAY (running streams may finish). */
  drain(): void;
}

export function createListener(o: ListenerOptions): Listener {
  const server = createTlsServer({
    cert: o.cert,
    key: o.key,
    minVersion: 'TLSv1.2',
    ALPNProtocols: o.http2 ? ['h2', 'http/1.1'] : ['http/1.1'],
    // https.createServer turns Nagle's algorithm off; a tls.Server does not. With it on, the last
    // segment of a response written in pieces (a masked one) waited for the client's delayed ACK:
    // bench/run.ts, masked GET at concurrency 1, +41.9 ms p50.
    noDelay: true,
    // An HTTP/1.1 client gone without a word (its watch's upstream stream held open for nobody) is found by TCP keepalive;
    // an HTTP/2 one by PINGs, below.
    keepAlive: true,
    keepAliveInitialDelay: 30_000,
  });
  const http1 = createHttpServer(o.checkIntervalMs ? { connectionsCheckingInterval: o.checkIntervalMs } : {}, o.onRequest);
  if (o.headersTimeoutMs) http1.headersTimeout = o.headersTimeoutMs;
  if (o.requestTimeoutMs) http1.requestTimeout = o.requestTimeoutMs;
  // It is handed connections and never listens itself, but only 'listening' starts its checks of
  // headersTimeout and requestTimeout: without it a client sending its headers slowly held a
  // connection open for ever (test: attack: … headers slowly …).
  http1.emit('listening');
  http1.on('upgrade', o.onUpgrade);
  // node:http2 sets no limit of its own: one connection could open streams (each a watch held upstream) until memory ran out.
  const http2 = createHttp2Server({ settings: { maxConcurrentStreams: o.maxStreamsPerConnection ?? 1000 } }, (req, res) =>
    o.onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse),
  );
  const sessions = new Set<Http2Session>();
  http2.on('session', (s: Http2Session) => {
    sessions.add(s);
    // Destroyed, its streams close, and each request's door lets its upstream watch go as for a client that left.
    heartbeat(s, o.ping ?? CLIENT_GO_PING, 'the client');
    s.once('close', () => sessions.delete(s));
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const h2 = socket.alpnProtocol === 'h2';
    o.onConnection?.(h2 ? 'h2' : 'http/1.1');
    (h2 ? http2 : http1).emit('connection', socket);
  });
  return {
    server,
    drain() {
      server.close();
      http1.closeIdleConnections();
      http1.close();
      for (const s of sessions) s.close();
    },
  };
}
