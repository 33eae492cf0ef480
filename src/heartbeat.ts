/**
 * PINGs on an HTTP/2 connection, so that one whose peer is gone without a word (a host that
 * vanished, a dropped NAT entry, packets dropped on the path) is found out. A watch sends
 * nothing, so TCP alone never notices: the API server's side would hold its watches for ever
 * (upstream/multiplexed.ts), and a client's side would keep its upstream watches open for
 * nobody (doors/listener.ts). client-go pings the same way: after 30 s, 15 s for the answer.
 */
import type { Http2Session } from 'node:http2';

export interface PingOptions {
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

export const CLIENT_GO_PING: PingOptions = { intervalMs: 30_000, timeoutMs: 15_000 };

/**
 * Pings the session every intervalMs, one PING at a time; a session whose answer takes longer
 * than timeoutMs is destroyed with an error (code HTTP2_PING_TIMEOUT) naming `peer`, which takes
 * its streams down with it. Stops when the session closes; never keeps the process alive.
 */
export function heartbeat(session: Http2Session, o: PingOptions, peer: string): void {
  const dead = () => Object.assign(new Error(`${peer} did not answer an HTTP/2 PING within ${o.timeoutMs} ms`), { code: 'HTTP2_PING_TIMEOUT' });
  let waiting = false;
  const beat = setInterval(() => {
    if (waiting || session.destroyed) return;
    waiting = true;
    const late = setTimeout(() => session.destroy(dead()), o.timeoutMs).unref();
    const answered = () => {
      clearTimeout(late);
      waiting = false;
    };
    // Answered, or the session closed first (then ping reports an error and there is nothing left to take down).
    if (!session.ping(answered)) answered();
  }, o.intervalMs);
  beat.unref();
  session.once('close', () => clearInterval(beat));
}
