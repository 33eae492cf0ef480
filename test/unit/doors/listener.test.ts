import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as http2Connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { createListener, type Listener } from '../../../src/doors/listener.js';
import { selfSignedTls, type TlsMaterial } from '../../../src/tls.js';
import { startBlackhole } from '../../support/blackhole.js';

describe('doors: the TLS listener (ALPN: h2 and HTTP/1.1)', () => {
  let dir: string;
  let tls: TlsMaterial;
  let listener: Listener;
  let port: number;
  const protocols: string[] = [];
  const upgrades: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-listener-'));
    tls = selfSignedTls(dir, ['127.0.0.1']);
    listener = createListener({
      cert: tls.cert,
      key: tls.key,
      http2: true,
      onRequest: (req, res) => {
        // A response that takes a moment, so a drain can catch it running.
        setTimeout(() => res.end(`${req.method} ${req.url} over ${req.httpVersion}`), 100);
      },
      onUpgrade: (req, socket) => {
        upgrades.push(String(req.headers.upgrade));
        socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nupgraded');
      },
      onConnection: (p) => protocols.push(p),
      headersTimeoutMs: 500,
      requestTimeoutMs: 800,
      checkIntervalMs: 100,
    });
    await new Promise<void>((r) => listener.server.listen(0, '127.0.0.1', r));
    port = (listener.server.address() as AddressInfo).port;
  });
  after(() => {
    listener.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const h1 = (headers: Record<string, string> = {}) =>
    new Promise<{ status: number; body: string; upgraded: string }>((resolve, reject) => {
      const r = httpsRequest({ host: '127.0.0.1', port, path: '/api', ca: tls.caPem, headers, agent: false });
      r.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, upgraded: '' }));
      });
      r.on('upgrade', (res, socket, head) => {
        let upgraded = head.toString('utf8');
        socket.setEncoding('utf8').on('data', (d: string) => (upgraded += d));
        socket.on('end', () => resolve({ status: res.statusCode ?? 0, body: '', upgraded }));
      });
      r.on('error', reject);
      r.end();
    });

  it('answers HTTP/2 and HTTP/1.1 clients, and hands HTTP/1.1 upgrades to the upgrade door', async () => {
    const client = http2Connect(`https://127.0.0.1:${port}`, { ca: tls.caPem });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const s = client.request({ ':path': '/api' });
        let b = '';
        s.setEncoding('utf8').on('data', (d: string) => (b += d));
        s.on('end', () => resolve(b));
        s.on('error', reject);
      });
      assert.equal(body, 'GET /api over 2.0');
    } finally {
      client.close();
    }
    assert.deepEqual(await h1(), { status: 200, body: 'GET /api over 1.1', upgraded: '' });
    const up = await h1({ connection: 'Upgrade', upgrade: 'websocket' });
    assert.equal(up.status, 101);
    assert.equal(up.upgraded, 'upgraded');
    assert.deepEqual(upgrades, ['websocket']);
    assert.deepEqual(protocols.slice(0, 3), ['h2', 'http/1.1', 'http/1.1']);
  });

  it('attack: a client that sends its headers slowly is cut off (408), not held open for ever', async function () {
    this.timeout(10_000);
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: tls.caPem, ALPNProtocols: ['http/1.1'] });
    await new Promise((r) => socket.once('secureConnect', r));
    socket.write('GET /api HTTP/1.1\r\nHost: x\r\n');
    let answer = '';
    socket.setEncoding('utf8').on('data', (d: string) => (answer += d));
    const started = Date.now();
    // A byte now and then keeps the connection busy, but the headers never end.
    const dribble = setInterval(() => socket.write('X-Slow: 1\r\n'), 100);
    try {
      await new Promise((r) => socket.once('close', r));
    } finally {
      clearInterval(dribble);
    }
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.ok(Date.now() - started < 5000);
  });

  it('a drain sends HTTP/2 clients GOAWAY and lets their running streams finish', async () => {
    const client = http2Connect(`https://127.0.0.1:${port}`, { ca: tls.caPem });
    const goaway = new Promise((r) => client.once('goaway', r));
    const body = new Promise<string>((resolve, reject) => {
      const s = client.request({ ':path': '/slow' });
      let b = '';
      s.setEncoding('utf8').on('data', (d: string) => (b += d));
      s.on('end', () => resolve(b));
      s.on('error', reject);
    });
    await new Promise((r) => client.once('remoteSettings', r));
    await new Promise((r) => setImmediate(r));
    listener.drain();
    await goaway;
    assert.equal(await body, 'GET /slow over 2.0');
    client.close();
  });

  it('attack: an HTTP/2 client goes silent while its watch is open (no reset, no close): an unanswered PING ends its session, and the request closes', async function () {
    this.timeout(20_000);
    let held: Promise<void> | undefined;
    const pinged = createListener({
      cert: tls.cert,
      key: tls.key,
      http2: true,
      // A watch: the response starts and stays open; its close is what lets the upstream watch go.
      onRequest: (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"type":"ADDED","object":{}}\n');
        held = new Promise((r) => res.once('close', () => r()));
      },
      onUpgrade: (_req, socket) => socket.destroy(),
      ping: { intervalMs: 100, timeoutMs: 300 },
    });
    await new Promise<void>((r) => pinged.server.listen(0, '127.0.0.1', r));
    const hole = await startBlackhole((pinged.server.address() as AddressInfo).port);
    const client = http2Connect(`https://127.0.0.1:${hole.port}`, { ca: tls.caPem });
    client.on('error', () => {});
    try {
      const stream = client.request({ ':path': '/api/v1/configmaps?watch=1' });
      stream.on('error', () => {});
      await new Promise<void>((r) => stream.once('response', () => r()));
      // Pings answered in time keep a quiet client's session up.
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(stream.closed, false);
      hole.silence();
      await held;
    } finally {
      client.destroy();
      hole.close();
      pinged.server.close();
    }
  });

  it('attack: one HTTP/2 connection opening streams without end: it may have 1000 open at once, as kube-apiserver allows (node sets no limit)', async () => {
    const plain = createListener({
      cert: tls.cert,
      key: tls.key,
      http2: true,
      onRequest: (_req, res) => res.end(),
      onUpgrade: (_req, socket) => socket.destroy(),
    });
    await new Promise<void>((r) => plain.server.listen(0, '127.0.0.1', r));
    const client = http2Connect(`https://127.0.0.1:${(plain.server.address() as AddressInfo).port}`, { ca: tls.caPem });
    try {
      const settings = await new Promise<{ maxConcurrentStreams?: number }>((r) => client.once('remoteSettings', r));
      assert.equal(settings.maxConcurrentStreams, 1000);
    } finally {
      client.destroy();
      plain.server.close();
    }
  });

  it('a connection at its limit: the next stream waits for one to close instead of opening', async function () {
    this.timeout(10_000);
    const ends: (() => void)[] = [];
    const small = createListener({
      cert: tls.cert,
      key: tls.key,
      http2: true,
      onRequest: (_req, res) => {
        res.writeHead(200);
        res.write('open');
        ends.push(() => res.end());
      },
      onUpgrade: (_req, socket) => socket.destroy(),
      maxStreamsPerConnection: 2,
    });
    await new Promise<void>((r) => small.server.listen(0, '127.0.0.1', r));
    const client = http2Connect(`https://127.0.0.1:${(small.server.address() as AddressInfo).port}`, { ca: tls.caPem });
    try {
      await new Promise((r) => client.once('remoteSettings', r));
      const streams = [1, 2, 3].map(() => client.request({ ':path': '/api/v1/configmaps?watch=1' }));
      const answered = streams.map((s) => new Promise<void>((r) => s.once('response', () => r())));
      await Promise.all(answered.slice(0, 2));
      assert.equal(ends.length, 2, 'the third stream did not reach the gateway');
      ends[0]!();
      await answered[2];
      assert.equal(ends.length, 3);
      for (const end of ends.slice(1)) end();
    } finally {
      client.destroy();
      small.server.close();
    }
  });
});
