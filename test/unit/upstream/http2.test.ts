import assert from 'node:assert/strict';
import { setMaxListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { constants, createSecureServer, type Http2SecureServer, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createForwarder, type Forwarder } from '../../../src/upstream/forward.js';
import { selfSignedTls, type TlsMaterial } from '../../../src/tls.js';
import { startBlackhole } from '../../support/blackhole.js';
import { waitFor } from '../../support/wait.js';

/**
 * Watches over HTTP/2 to the API server (a small h2 server standing in for it):
 * they share a connection, a watcher that stops reading holds back only its own
 * stream, and a server that declines h2 still gets its watches over HTTP/1.1.
 */
describe('upstream: watches over HTTP/2', () => {
  let dir: string;
  let tls: TlsMaterial;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-h2-'));
    tls = selfSignedTls(dir, ['127.0.0.1']);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const forwarderFor = (port: number, ping?: { intervalMs: number; timeoutMs: number }): Forwarder =>
    createForwarder(
      { server: `https://127.0.0.1:${port}`, tls: { ca: Buffer.from(tls.caPem), rejectUnauthorized: true } },
      { connectTimeoutMs: 5000, headersTimeoutMs: 5000, bodyTimeoutMs: 5000, http2: true, ...(ping ? { ping } : {}) },
    );
  const watch = (f: Forwarder, name: string, signal: AbortSignal) =>
    f.forward({
      method: 'GET',
      pathAndQuery: `/api/v1/namespaces/dev/configmaps?watch=1&name=${name}`,
      headers: {},
      body: undefined,
      longRunning: true,
      signal,
    });
  const listen = async (server: Http2SecureServer | HttpsServer) => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  };
  const count = (body: Readable) => {
    const seen = { bytes: 0 };
    body.on('data', (c: Buffer) => (seen.bytes += c.length));
    return seen;
  };

  it('multiplexes watches on one connection; a watcher that stops reading stalls its own stream, not the others', async function () {
    this.timeout(30_000);
    const server = createSecureServer({ cert: tls.cert, key: tls.key, allowHTTP1: false });
    const streams = new Map<string, ServerHttp2Stream>();
    let sessions = 0;
    server.on('session', () => sessions++);
    server.on('stream', (stream, headers) => {
      const name = new URL(String(headers[':path']), 'https://x').searchParams.get('name')!;
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      streams.set(name, stream);
    });
    const port = await listen(server);
    const f = forwarderFor(port);
    const aborts = new AbortController();
    try {
      const names = ['slow', 'a', 'b', 'c'];
      const responses = await Promise.all(names.map((n) => watch(f, n, aborts.signal)));
      assert.deepEqual(
        responses.map((r) => r.statusCode),
        [200, 200, 200, 200],
      );
      assert.equal(sessions, 1, 'one connection carries every watch');
      // The slow watcher reads nothing: its stream's window fills and the server can write no more to it.
      responses[0]!.body.pause();
      const seen = responses.slice(1).map((r) => count(r.body));
      const event = Buffer.from(JSON.stringify({ type: 'MODIFIED', object: { kind: 'ConfigMap', data: { v: 'x'.repeat(16 * 1024) } } }) + '\n');
      const slow = streams.get('slow')!;
      await waitFor('the slow stream to stop taking events', () => {
        slow.write(event);
        return slow.writableNeedDrain && slow.writableLength > 256 * 1024;
      });
      // Ten times the connection's default window (64 KiB) to each of the others, while the slow one stays stalled.
      const total = 40 * event.length;
      for (let i = 0; i < 40; i++) for (const n of ['a', 'b', 'c']) streams.get(n)!.write(event);
      await waitFor('every other watcher to read all of it', () => seen.every((s) => s.bytes === total), 20_000);
      assert.ok(slow.writableNeedDrain, 'the slow stream is still held back');
    } finally {
      aborts.abort();
      await f.close().catch(() => {});
      for (const s of streams.values()) s.destroy();
      server.close();
    }
  });

  it('150 watches opened at once: a connection carries 100 of them, a second the rest, and none waits on a full one', async function () {
    this.timeout(30_000);
    // Go's HTTP/2 server lets a connection carry 250 streams; this one, like a stricter API server, only 100.
    const server = createSecureServer({ cert: tls.cert, key: tls.key, allowHTTP1: false, settings: { maxConcurrentStreams: 100 } });
    const streams: ServerHttp2Stream[] = [];
    let sessions = 0;
    server.on('session', () => sessions++);
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      streams.push(stream);
    });
    const port = await listen(server);
    const f = forwarderFor(port);
    const aborts = new AbortController();
    setMaxListeners(200, aborts.signal);
    try {
      const responses = await Promise.all(Array.from({ length: 150 }, (_, i) => watch(f, `w${i}`, aborts.signal)));
      assert.ok(responses.every((r) => r.statusCode === 200));
      assert.equal(sessions, 2);
    } finally {
      aborts.abort();
      await f.close().catch(() => {});
      for (const s of streams) s.destroy();
      server.close();
    }
  });

  it('GOAWAY from the API server (a graceful restart, --goaway-chance): its watches stream on, new ones (one crossing it too) go on a new connection', async function () {
    this.timeout(30_000);
    const server = createSecureServer({ cert: tls.cert, key: tls.key, allowHTTP1: false });
    const streams: ServerHttp2Stream[] = [];
    let sessions = 0;
    server.on('session', () => sessions++);
    server.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      streams.push(stream);
      // The first watch is the last stream this connection takes.
      if (streams.length === 1) stream.session!.goaway(constants.NGHTTP2_NO_ERROR, stream.id);
    });
    const f = forwarderFor(await listen(server));
    const aborts = new AbortController();
    try {
      const first = await watch(f, 'a', aborts.signal);
      const got = count(first.body);
      // Sent at once, it may cross the GOAWAY and be refused: then it is sent again, on a new connection.
      const second = await watch(f, 'b', aborts.signal);
      assert.equal(second.statusCode, 200);
      assert.equal(sessions, 2, 'the watch after GOAWAY opened a new connection');
      streams[0]!.write('{"type":"ADDED","object":{}}\n');
      await waitFor('the first watch to go on streaming', () => got.bytes > 0);
    } finally {
      aborts.abort();
      await f.close().catch(() => {});
      for (const s of streams) s.destroy();
      server.close();
    }
  });

  it('a stream the API server refuses (REFUSED_STREAM, never processed) is sent again; refused three times, the watch fails', async function () {
    this.timeout(30_000);
    let refuse = 1;
    let seen = 0;
    const server = createSecureServer({ cert: tls.cert, key: tls.key, allowHTTP1: false });
    server.on('stream', (stream) => {
      seen++;
      stream.on('error', () => {});
      if (refuse-- > 0) return stream.close(constants.NGHTTP2_REFUSED_STREAM);
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
    });
    const f = forwarderFor(await listen(server));
    const aborts = new AbortController();
    try {
      assert.equal((await watch(f, 'a', aborts.signal)).statusCode, 200);
      assert.equal(seen, 2, 'refused once, sent again');
      refuse = 3;
      seen = 0;
      await assert.rejects(watch(f, 'b', aborts.signal), /the Kubernetes API server is unreachable \(NGHTTP2_REFUSED_STREAM\)/);
      assert.equal(seen, 3);
    } finally {
      aborts.abort();
      await f.close().catch(() => {});
      server.close();
    }
  });

  it('attack: the path to the API server goes silent mid-watch (no reset, no close): an unanswered PING takes its connection down, its watches fail, the next watch dials again', async function () {
    this.timeout(30_000);
    const server = createSecureServer({ cert: tls.cert, key: tls.key, allowHTTP1: false });
    const streams: ServerHttp2Stream[] = [];
    server.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.write('{"type":"ADDED","object":{}}\n');
      streams.push(stream);
    });
    const hole = await startBlackhole(await listen(server));
    const f = forwarderFor(hole.port, { intervalMs: 100, timeoutMs: 300 });
    const aborts = new AbortController();
    try {
      const responses = await Promise.all(['a', 'b'].map((n) => watch(f, n, aborts.signal)));
      // Pings answered in time keep a quiet connection up: nothing fails while the watches wait.
      await new Promise((r) => setTimeout(r, 600));
      const endings = responses.map(
        (r) =>
          new Promise<string>((resolve) => {
            r.body.on('data', () => {});
            r.body.once('error', (err: Error & { code?: string }) => resolve(`error ${err.code}`));
            r.body.once('end', () => resolve(`end, cut: ${String(r.cutShort?.()?.message)}`));
          }),
      );
      assert.equal(hole.connections(), 1);
      hole.silence();
      assert.deepEqual(await Promise.all(endings), ['error HTTP2_PING_TIMEOUT', 'error HTTP2_PING_TIMEOUT']);
      const again = await watch(f, 'c', aborts.signal);
      assert.equal(again.statusCode, 200);
      assert.equal(hole.connections(), 2, 'the dead connection is not used again');
    } finally {
      aborts.abort();
      await f.close().catch(() => {});
      hole.close();
      for (const s of streams) s.destroy();
      server.close();
    }
  });

  it('a server that declines h2: watches go over HTTP/1.1, one connection each', async function () {
    this.timeout(30_000);
    const server = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(JSON.stringify({ type: 'ADDED', object: { name: new URL(req.url!, 'https://x').searchParams.get('name') } }) + '\n');
    });
    const connections = new Set<unknown>();
    server.on('secureConnection', (s) => connections.add(s));
    const port = await listen(server);
    const f = forwarderFor(port);
    const aborts = new AbortController();
    try {
      const responses = await Promise.all(['a', 'b', 'c'].map((n) => watch(f, n, aborts.signal)));
      const first = await Promise.all(responses.map(async (r) => String((await r.body[Symbol.asyncIterator]().next()).value)));
      assert.deepEqual(
        first.map((l) => (JSON.parse(l) as { object: { name: string } }).object.name),
        ['a', 'b', 'c'],
      );
      // The connection that offered ALPN and got HTTP/1.1 was dropped; each watch then has its own.
      assert.ok(connections.size >= 3);
    } finally {
      aborts.abort();
      await f.close().catch(() => {});
      server.closeAllConnections();
      server.close();
    }
  });
});
