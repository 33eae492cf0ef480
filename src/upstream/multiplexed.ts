/**
 * Watches and follows over HTTP/2, on node:http2 directly: each connection to
 * the API server carries up to STREAMS_PER_CONNECTION of them, and a response's
 * body is its HTTP/2 stream itself. undici over HTTP/2 wraps every stream in a
 * request, a handler and a body stream of its own, and a watch holds all of it
 * for as long as it lives (bench/README.md, thirteenth session).
 */
import { connect as http2Connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { GatehouseError } from '../errors.js';
import { heartbeat, type PingOptions } from '../heartbeat.js';
import type { UpstreamTarget } from './credentials.js';
import type { UpstreamHeaders } from './headers.js';

/** Streams a connection may carry (fewer if the API server says so): below Go's HTTP/2 server's 250 that kube-apiserver keeps by default. */
const STREAMS_PER_CONNECTION = 100;

/** The API server answered ALPN without h2: its connection is dropped before any request is sent on it. */
export class Http2Declined extends Error {
  constructor() {
    super('the Kubernetes API server does not speak HTTP/2');
  }
}

export interface MultiplexedRequest {
  readonly method: string;
  readonly pathAndQuery: string;
  readonly headers: UpstreamHeaders;
  readonly body: Buffer | undefined;
  readonly signal: AbortSignal;
}

export interface MultiplexedResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: ClientHttp2Stream;
  readonly cutShort: () => Error | undefined;
}

export interface MultiplexedOptions {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  /** How long a connection with no stream left stays open for the next one. */
  readonly idleMs: number;
  /** How often each connection is asked for a PING, and how long its answer may take before it is taken for dead and its streams are cut. */
  readonly ping: PingOptions;
}

interface Connection {
  readonly session: ClientHttp2Session;
  /** Streams taken on it and not yet closed, counted from the moment one is picked. */
  streams: number;
  /** Set on GOAWAY, an error, a close or idleness: no new stream goes on it. */
  retired: boolean;
  idle: NodeJS.Timeout | undefined;
}

/** RST_STREAM error codes by number (RFC 9113, section 7), named as node names them, for the audit record. */
const RST_NAMES = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];

/** A stream refused this many times in a row is a failure. */
const REFUSED_ATTEMPTS = 3;

/** The API server refused the stream before processing it (RST_STREAM REFUSED_STREAM): safe to send again. */
class StreamRefused extends Error {
  readonly code = 'NGHTTP2_REFUSED_STREAM';
  constructor() {
    super('the HTTP/2 stream was refused (NGHTTP2_REFUSED_STREAM)');
  }
}

/** Heard and let go: the body's reader reports a stream's error; this only keeps it from being unheard before it listens. */
const ignore = (): void => {};

/** An error with the code the audit record and upstreamError read; no header is ever in its message. */
function failure(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * Why a stream's body ended, if it was not the API server's END_STREAM. node ends the readable side
 * of a stream that is reset, or whose connection is lost (it closes them with CANCEL), exactly as one
 * that finished, and only its rstCode, already set by then, tells them apart.
 */
function streamCut(stream: Pick<ClientHttp2Stream, 'rstCode'>): Error | undefined {
  // Typed as a number, but undefined until the stream closes.
  const code = stream.rstCode as number | undefined;
  if (code === undefined || code === constants.NGHTTP2_NO_ERROR) return undefined;
  const name = `NGHTTP2_${RST_NAMES[code] ?? code}`;
  return failure(`the HTTP/2 stream was reset (${name})`, name);
}

export function createMultiplexed(target: UpstreamTarget, options: MultiplexedOptions) {
  const url = new URL(target.server);
  const port = Number(url.port || 443);
  // SNI takes a host name, never an address.
  const servername = target.tls.servername ?? (/^[\d.]+$|^\[/.test(url.hostname) ? undefined : url.hostname);
  let connections: Connection[] = [];
  let connecting: Promise<Connection> | undefined;
  let closed = false;
  /** Once the API server declines h2, every watch goes over HTTP/1.1 (forward.ts). */
  let declined = false;

  /** A TLS connection on which the server chose h2; Http2Declined if it chose anything else. */
  function dial(): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ ...target.tls, host: url.hostname.replace(/^\[|\]$/g, ''), port, servername, ALPNProtocols: ['h2', 'http/1.1'] });
      const timer = setTimeout(
        () => socket.destroy(new GatehouseError('GATEHOUSE_UPSTREAM_TIMEOUT', 'the Kubernetes API server did not answer in time')),
        options.connectTimeoutMs,
      );
      socket.once('error', (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        if (socket.alpnProtocol === 'h2') return resolve(socket);
        socket.destroy();
        reject(new Http2Declined());
      });
    });
  }

  function retire(c: Connection): void {
    c.retired = true;
    if (c.idle) clearTimeout(c.idle);
    connections = connections.filter((x) => x !== c);
  }

  async function open(): Promise<Connection> {
    const socket = await dial();
    // The socket's own error listener stays: node's session takes its errors over from here.
    const session = http2Connect(target.server, { createConnection: () => socket });
    const c: Connection = { session, streams: 0, retired: false, idle: undefined };
    heartbeat(session, options.ping, 'the Kubernetes API server');
    // A session's error also reaches its open streams, and each reports it; here it only retires the connection.
    session.on('error', () => retire(c));
    session.once('goaway', () => retire(c));
    session.once('close', () => retire(c));
    if (closed) session.close();
    else connections.push(c);
    return c;
  }

  const room = (c: Connection) => Math.min(STREAMS_PER_CONNECTION, c.session.remoteSettings.maxConcurrentStreams ?? STREAMS_PER_CONNECTION);

  /**
   * A connection with room for one more stream, its place taken at once (before anyone else picks),
   * opened when none has room; one opens at a time.
   */
  async function reserve(): Promise<Connection> {
    for (;;) {
      if (declined) throw new Http2Declined();
      if (closed) throw failure('the gateway is shutting down', 'GATEHOUSE_CLOSED');
      // A session destroyed or closing is retired only once its events come round: never picked meanwhile.
      const free = connections.find((c) => !c.retired && !c.session.destroyed && !c.session.closed && c.streams < room(c));
      if (free) {
        free.streams++;
        return free;
      }
      if (connecting) {
        // Whoever opened it takes the first place and the rest look again; if it failed, they all fail with it.
        await connecting;
        continue;
      }
      connecting = open();
      try {
        const c = await connecting;
        c.streams++;
        return c;
      } catch (err) {
        if (err instanceof Http2Declined) declined = true;
        throw err;
      } finally {
        connecting = undefined;
      }
    }
  }

  /** The place a stream held is given back; a connection left with none closes after idleMs. */
  function release(c: Connection): void {
    if (--c.streams > 0 || c.retired) return;
    c.idle = setTimeout(() => {
      retire(c);
      c.session.close();
    }, options.idleMs).unref();
  }

  /**
   * A stream the API server refused (REFUSED_STREAM: it crossed a GOAWAY, or was past the GOAWAY's last stream)
   * was never processed, so it is sent again (RFC 9113, 8.7): on a new connection when the refusing one is going
   * away, on any with room otherwise. kube-apiserver sends GOAWAY when it stops and, with --goaway-chance, to
   * spread clients over replicas: a watch that crossed one failed with a 502.
   */
  async function request(req: MultiplexedRequest): Promise<MultiplexedResponse> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await requestOnce(req);
      } catch (err) {
        if (!(err instanceof StreamRefused) || attempt === REFUSED_ATTEMPTS || req.signal.aborted) throw err;
      }
    }
  }

  async function requestOnce(req: MultiplexedRequest): Promise<MultiplexedResponse> {
    const c = await reserve();
    if (c.idle) {
      clearTimeout(c.idle);
      c.idle = undefined;
    }
    let stream: ClientHttp2Stream;
    try {
      const length = req.body === undefined ? {} : { 'content-length': String(req.body.length) };
      stream = c.session.request({ ...req.headers, ...length, ':method': req.method, ':path': req.pathAndQuery }, { endStream: req.body === undefined });
    } catch (err) {
      // The session was closing, or ran out of stream ids: no stream goes on it again.
      retire(c);
      release(c);
      throw err;
    }
    if (req.body !== undefined) stream.end(req.body);
    return answered(c, stream, req.signal);
  }

  /**
   * The stream's response, once its headers are in. What a watch's stream keeps listening with for as
   * long as it lives holds only the stream, the connection and the signal: no request headers, no
   * timer, no settled promise's functions.
   */
  function answered(c: Connection, stream: ClientHttp2Stream, signal: AbortSignal): Promise<MultiplexedResponse> {
    const cancel = () => stream.close(constants.NGHTTP2_CANCEL);
    signal.addEventListener('abort', cancel, { once: true });
    if (signal.aborted) cancel();
    // `on`, not `once`, for events that come once: a once wrapper is two more objects a watch holds for its life.
    stream.on('close', () => {
      signal.removeEventListener('abort', cancel);
      release(c);
    });
    const cutShort = () => streamCut(stream);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.close(constants.NGHTTP2_CANCEL);
        reject(new GatehouseError('GATEHOUSE_UPSTREAM_TIMEOUT', 'the Kubernetes API server did not answer in time'));
      }, options.headersTimeoutMs);
      const settled = () => {
        clearTimeout(timer);
        stream.removeListener('error', failed);
        stream.removeListener('close', closedEarly);
        stream.removeListener('response', responded);
        // Until whoever reads the body listens, an error must still be heard.
        stream.on('error', ignore);
      };
      const failed = (err: Error) => {
        settled();
        // Typed as a number, but undefined until the stream closes.
        reject((stream.rstCode as number | undefined) === constants.NGHTTP2_REFUSED_STREAM ? new StreamRefused() : err);
      };
      const closedEarly = () => failed(streamCut(stream) ?? failure('the HTTP/2 stream closed before its response', 'NGHTTP2_CANCEL'));
      const responded = (headers: IncomingHttpHeaders & { ':status'?: number }) => {
        settled();
        resolve({ statusCode: headers[':status'] ?? 502, headers, body: stream, cutShort });
      };
      stream.on('error', failed);
      stream.on('close', closedEarly);
      stream.on('response', responded);
    });
  }

  return {
    request,
    async close(): Promise<void> {
      closed = true;
      await Promise.all(connections.map((c) => new Promise<void>((r) => (c.session.closed ? r() : c.session.close(() => r())))));
    },
  };
}
