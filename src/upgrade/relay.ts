/**
 * The upgraded connection (DESIGN §3, Upgrades): one HTTP/1.1 request upstream
 * with the gateway's credentials and the caller impersonated; only a 101
 * makes the connection upgraded, and then bytes flow both ways untouched while
 * taps read them. Any other answer (a 403 from RBAC, a 404, a redirect — never
 * followed) is relayed as it came, and the connection is closed.
 */
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import type { Duplex } from 'node:stream';
import { errors } from 'undici';
import type { Pressure } from '../recording/asciicast.js';
import type { UpstreamTarget } from '../upstream/credentials.js';
import type { UpstreamHeaders } from '../upstream/headers.js';

/** Response headers of a 101 the client needs to complete its handshake. */
const SWITCHING = ['upgrade', 'connection', 'sec-websocket-accept', 'sec-websocket-protocol', 'x-stream-protocol-version'];
const RELAYED = new Set(['content-type', 'cache-control', 'warning', 'retry-after', 'location']);
const MAX_RELAYED_BODY = 64 * 1024;

export type RelayOutcome = { readonly upgraded: true; readonly protocol: string; done: Promise<void> } | { readonly upgraded: false; readonly status: number };

export interface Taps {
  fromClient(chunk: Buffer): void;
  fromServer(chunk: Buffer): void;
  /** Where taps keep what they read (a recording) and it is slower than the session: read no more until it catches up. */
  readonly pressure?: Pressure;
}

/**
 * src → dst with a tap, like pipe(), but also paused while the tap's store is
 * full: a session runs at the pace its recording can be kept, and the memory
 * between the two stays bounded.
 */
function forward(src: Duplex, dst: Duplex, tap: (c: Buffer) => void, pressure: Pressure | undefined): void {
  const holds = new Set<'destination' | 'recording'>();
  const hold = (why: 'destination' | 'recording', until: (release: () => void) => void) => {
    if (holds.has(why)) return;
    holds.add(why);
    src.pause();
    until(() => {
      holds.delete(why);
      if (holds.size === 0) src.resume();
    });
  };
  src.on('data', (c: Buffer) => {
    tap(c);
    if (!dst.write(c)) hold('destination', (release) => dst.once('drain', release));
    if (pressure?.full()) hold('recording', (release) => pressure.whenDrained(release));
  });
  src.once('end', () => dst.end());
}

function head(status: number, message: string, headers: Record<string, string | string[] | undefined>): string {
  let s = `HTTP/1.1 ${status} ${message}\r\n`;
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) {
      // Never let a value end the header block early.
      if (/[\r\n]/.test(one)) continue;
      s += `${k}: ${one}\r\n`;
    }
  }
  return s + '\r\n';
}

export function writeHttpResponse(
  socket: Duplex,
  status: number,
  message: string,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer | string,
): void {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  socket.end(Buffer.concat([Buffer.from(head(status, message, { ...headers, 'content-length': String(b.length), connection: 'close' })), b]));
}

/** The client's upgrade headers, with the bearer-token WebSocket subprotocol removed (it authenticated the caller, and goes no further). */
export function upgradeHeaders(req: IncomingMessage): UpstreamHeaders {
  const out: UpstreamHeaders = { connection: 'Upgrade' };
  const h = req.headers;
  if (h.upgrade) out['upgrade'] = h.upgrade;
  for (const k of ['sec-websocket-key', 'sec-websocket-version'] as const) {
    const v = h[k];
    if (typeof v === 'string') out[k] = v;
  }
  const protocols = (h['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((p) => p && !p.startsWith('base64url.bearer.authorization.k8s.io.'));
  if (protocols.length) out['sec-websocket-protocol'] = protocols.join(', ');
  // SPDY clients offer several versions as repeated headers; the API server reads each.
  const versions = (req.headersDistinct['x-stream-protocol-version'] ?? [])
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  if (versions.length) out['x-stream-protocol-version'] = versions;
  return out;
}

/** The forwarder's limits (upstream.connectTimeoutSeconds, headersTimeoutSeconds), applied to upgrades too. */
export interface UpgradeTimeouts {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
}

export function relayUpgrade(args: {
  target: UpstreamTarget;
  timeouts: UpgradeTimeouts;
  method: string;
  pathAndQuery: string;
  headers: UpstreamHeaders;
  client: Duplex;
  clientHead: Buffer;
  auditId: string;
  taps: (protocol: string) => Taps;
  signal: AbortSignal;
}): Promise<RelayOutcome> {
  const u = new URL(args.target.server);
  return new Promise<RelayOutcome>((resolve, reject) => {
    // An API server that accepts and never answers must not hold the client forever: the same
    // connect and header timeouts as every other upstream request, as undici's errors, so the
    // client gets the same 504 Status (upstream/forward.ts upstreamError).
    let timer: NodeJS.Timeout | undefined;
    const giveUp = (err: Error, ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => up.destroy(err), ms);
    };
    const answered = () => clearTimeout(timer);
    const up = request({
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port || 443,
      method: args.method,
      path: args.pathAndQuery,
      headers: args.headers,
      ...args.target.tls,
      agent: false,
      signal: args.signal,
    });
    giveUp(new errors.ConnectTimeoutError(), args.timeouts.connectTimeoutMs);
    up.on('socket', (socket) => socket.once('secureConnect', () => giveUp(new errors.HeadersTimeoutError(), args.timeouts.headersTimeoutMs)));
    up.on('error', (err) => {
      answered();
      reject(err);
    });
    up.on('upgrade', (res, upstream, upstreamHead) => {
      answered();
      const keep: Record<string, string | string[] | undefined> = {};
      for (const k of SWITCHING) keep[k] = res.headers[k];
      keep['audit-id'] = args.auditId;
      args.client.write(head(101, 'Switching Protocols', keep));
      // Sessions are many small frames (keystrokes, SPDY stream set-up): Nagle's algorithm would hold
      // each one for a delayed ACK. bench/sessions.ts: SPDY `kubectl exec -- true` took 192 ms through the
      // gateway with it, 73 ms without (direct: 58–64 ms).
      for (const s of [upstream, args.client] as { setNoDelay?: (v: boolean) => void }[]) s.setNoDelay?.(true);
      const protocol = String(res.headers['sec-websocket-protocol'] ?? res.headers['x-stream-protocol-version'] ?? '');
      const taps = args.taps(protocol);
      const done = new Promise<void>((finish) => {
        let ended = 0;
        const end = () => {
          if (++ended === 1) {
            upstream.destroy();
            args.client.destroy();
            finish();
          }
        };
        forward(upstream, args.client, (c) => taps.fromServer(c), taps.pressure);
        forward(args.client, upstream, (c) => taps.fromClient(c), taps.pressure);
        upstream.once('close', end);
        args.client.once('close', end);
        upstream.on('error', end);
        args.client.on('error', end);
        args.signal.addEventListener('abort', end, { once: true });
      });
      if (upstreamHead.length) {
        taps.fromServer(upstreamHead);
        args.client.write(upstreamHead);
      }
      if (args.clientHead.length) {
        taps.fromClient(args.clientHead);
        upstream.write(args.clientHead);
      }
      resolve({ upgraded: true, protocol, done });
    });
    up.on('response', (res) => {
      answered();
      // Not upgraded: relay the answer (bounded) and close; never follow a redirect.
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_RELAYED_BODY) chunks.push(c);
      });
      res.on('end', () => {
        const headers: Record<string, string | string[] | undefined> = { 'audit-id': args.auditId };
        for (const [k, v] of Object.entries(res.headers)) if (RELAYED.has(k)) headers[k] = v;
        writeHttpResponse(args.client, res.statusCode ?? 502, res.statusMessage ?? '', headers, Buffer.concat(chunks));
        resolve({ upgraded: false, status: res.statusCode ?? 502 });
      });
      res.on('error', reject);
    });
    up.end();
  });
}
