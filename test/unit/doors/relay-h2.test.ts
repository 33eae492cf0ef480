/**
 * Watches relayed from an API server over HTTP/2 (src/upstream/multiplexed.ts):
 * node ends a stream whose connection is lost exactly as one that finished, so
 * a cut must still reach the client as a cut and the audit as a failure, masked
 * or not; a watch the API server ends is an error-free completion.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type IncomingMessage, type Server } from 'node:http';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '../../../src/audit/event.js';
import type { Identity } from '../../../src/identity/identity.js';
import type { Decision, MaskDirective } from '../../../src/policy/decision.js';
import { selfSignedTls } from '../../../src/tls.js';
import { startBlackhole, type Blackhole } from '../../support/blackhole.js';
import { closeServers, completedRecord, startTestPipeline } from '../../support/pipeline.js';

const ALICE: Identity = { username: 'alice@example.com', uid: '', groups: ['dev', 'system:authenticated'], extra: {}, claims: {}, agent: null };
const event = (i: number) => `{"type":"ADDED","object":{"kind":"Secret","metadata":{"name":"s-${i}"},"data":{"k":"c2VjcmV0"}}}\n`;
const allow = (mask: MaskDirective[]): Decision => ({ effect: 'allow', reasons: ['test'], mask, inspect: [], audit: { level: 'Metadata' } });

for (const masked of [false, true]) {
  describe(`doors/http: a watch over HTTP/2 to the API server, ${masked ? 'masked' : 'unmasked'}`, () => {
    let dir: string;
    let upstream: Http2SecureServer;
    let gateway: Server;
    let port: number;
    /** Between the gateway and the upstream: it can go silent, as a vanished host does. */
    let hole: Blackhole;
    const audit: AuditEvent[] = [];
    const sockets = new Set<Socket>();
    /** The upstream's answer to the next stream. */
    let answer: (stream: ServerHttp2Stream) => void = (s) => s.respond({ ':status': 200 }, { endStream: true });

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'gatehouse-relay-h2-'));
      const tls = selfSignedTls(dir, ['127.0.0.1']);
      upstream = createSecureServer({ cert: tls.cert, key: tls.key });
      upstream.on('secureConnection', (s: Socket) => sockets.add(s));
      upstream.on('stream', (s) => {
        s.on('error', () => {});
        answer(s);
      });
      await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
      hole = await startBlackhole((upstream.address() as AddressInfo).port);
      ({ server: gateway, port } = await startTestPipeline({
        upstreamUrl: `https://127.0.0.1:${hole.port}`,
        upstreamCa: Buffer.from(tls.caPem),
        upstreamPing: { intervalMs: 100, timeoutMs: 300 },
        identity: () => ALICE,
        decision: allow(masked ? [{ path: '$.data.*', action: 'redact' }] : []),
        audit,
      }));
    });
    after(() => {
      closeServers(gateway);
      hole.close();
      for (const s of sockets) s.destroy();
      upstream.close();
      rmSync(dir, { recursive: true, force: true });
    });

    /** The client's watch, its body as it comes, and how its response ended: an end, or a cut. */
    async function watch(): Promise<{ got: () => string; ended: Promise<'end' | 'aborted'> }> {
      const req = request({
        host: '127.0.0.1',
        port,
        path: '/api/v1/namespaces/dev/secrets?watch=1',
        headers: { accept: 'application/json', authorization: 'Bearer alice' },
      });
      req.end();
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      let got = '';
      res.on('data', (d: Buffer) => (got += d.toString()));
      const ended = new Promise<'end' | 'aborted'>((resolve) => {
        res.once('end', () => resolve('end'));
        res.once('aborted', () => resolve('aborted'));
        res.once('error', () => resolve('aborted'));
      });
      return { got: () => got, ended };
    }

    it('the API server ends the watch: the client gets its end, and the record has no error', async () => {
      answer = (s) => {
        s.respond({ ':status': 200, 'content-type': 'application/json' });
        s.write(event(0));
        setTimeout(() => s.end(event(1)), 50);
      };
      const before = audit.length;
      const w = await watch();
      assert.equal(await w.ended, 'end');
      assert.equal(w.got().split('\n').length, 3);
      assert.equal(w.got().includes('c2VjcmV0'), !masked);
      const e = await completedRecord(audit, before);
      assert.deepEqual([e.responseStatus, e.gatehouse.error, e.gatehouse.bytesOut], [{ code: 200 }, undefined, w.got().length]);
    });

    it("the connection to the API server is lost mid-watch: the client's response is cut, and the record says the API server broke it off", async () => {
      let first = '';
      answer = (s) => {
        s.respond({ ':status': 200, 'content-type': 'application/json' });
        s.write(event(0));
        // The whole connection goes, as when the API server's process dies: node ends its streams as if finished.
        setTimeout(() => {
          for (const sock of sockets) sock.destroy();
        }, 50);
      };
      const before = audit.length;
      const w = await watch();
      assert.equal(await w.ended, 'aborted', 'a cut watch is not passed off as one the API server ended');
      first = w.got();
      const e = await completedRecord(audit, before);
      assert.deepEqual([e.responseStatus?.status, e.gatehouse.error?.code, e.gatehouse.bytesOut], ['Failure', 'GATEHOUSE_UPSTREAM_UNAVAILABLE', first.length]);
      assert.match(e.gatehouse.error!.message, /broke off after \d+ bytes had been passed on \(NGHTTP2_CANCEL\)/);
    });

    it("the API server resets the watch's stream: the client's response is cut, and the record says why", async () => {
      answer = (s) => {
        s.respond({ ':status': 200, 'content-type': 'application/json' });
        s.write(event(0));
        // RST_STREAM with INTERNAL_ERROR, as Go's server sends when a handler fails mid-body.
        setTimeout(() => s.destroy(new Error('the handler failed')), 50);
      };
      const before = audit.length;
      const w = await watch();
      assert.equal(await w.ended, 'aborted');
      const e = await completedRecord(audit, before);
      assert.equal(e.gatehouse.error?.code, 'GATEHOUSE_UPSTREAM_UNAVAILABLE');
    });

    it("attack: the path to the API server goes silent mid-watch (no reset, no close): the client's response is cut once a PING goes unanswered, and the record says why", async () => {
      answer = (s) => {
        s.respond({ ':status': 200, 'content-type': 'application/json' });
        s.write(event(0));
        // Nothing more gets through either way, and nothing is closed: TCP alone would never notice.
        setTimeout(() => hole.silence(), 50);
      };
      const before = audit.length;
      const w = await watch();
      assert.equal(await w.ended, 'aborted', 'the watch does not hang on a dead connection, and its cut reaches the client');
      const e = await completedRecord(audit, before);
      assert.deepEqual(
        [e.responseStatus?.status, e.gatehouse.error?.code, e.gatehouse.bytesOut],
        ['Failure', 'GATEHOUSE_UPSTREAM_UNAVAILABLE', w.got().length],
      );
      assert.match(e.gatehouse.error!.message, /broke off after \d+ bytes had been passed on \(HTTP2_PING_TIMEOUT\)/);
    });
  });
}
