/**
 * Bodies passed on unmasked as they come (src/doors/http.ts, relay): a watch's
 * events as they happen, a large body whole at the client's pace, and either
 * side going away mid-body ends the other and is recorded.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AuditEvent } from '../../../src/audit/event.js';
import type { Identity } from '../../../src/identity/identity.js';
import { closeServers, completedRecord, startTestPipeline, startTestUpstream } from '../../support/pipeline.js';

const ALICE: Identity = { username: 'alice@example.com', uid: '', groups: ['dev', 'system:authenticated'], extra: {}, claims: {}, agent: null };
const WATCH = '/api/v1/namespaces/dev/configmaps?watch=1';
const event = (i: number) => `{"type":"ADDED","object":{"metadata":{"name":"cm-${i}"}}}\n`;

describe('doors/http: an unmasked body relayed as it comes', () => {
  let upstream: Server;
  let gateway: Server;
  let port: number;
  const audit: AuditEvent[] = [];
  /** The upstream's answer to the next request. */
  let answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();

  before(async () => {
    let upstreamUrl: string;
    ({ server: upstream, url: upstreamUrl } = await startTestUpstream((req, res) => answer(req, res)));
    ({ server: gateway, port } = await startTestPipeline({
      upstreamUrl,
      identity: () => ALICE,
      decision: { effect: 'allow', reasons: ['test'], mask: [], inspect: [], audit: { level: 'Metadata' } },
      audit,
    }));
  });
  after(() => closeServers(upstream, gateway));

  /** The client's request, and its response once the status line is in. */
  async function open(path: string): Promise<{ res: IncomingMessage; abort: () => void }> {
    const req = request({ host: '127.0.0.1', port, path, headers: { accept: 'application/json', authorization: 'Bearer alice' } });
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    return { res, abort: () => req.destroy() };
  }

  it("a watch's events reach the client one by one, as the upstream sends them, and the watch is recorded complete with its bytes", async () => {
    let send: ((chunk: string) => void) | undefined;
    let finish: (() => void) | undefined;
    answer = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      send = (chunk) => res.write(chunk);
      finish = () => res.end();
    };
    const before = audit.length;
    const { res } = await open(WATCH);
    let got = '';
    res.on('data', (d: Buffer) => (got += d.toString()));
    for (let i = 0; i < 3; i++) {
      send!(event(i));
      // Each event arrives before the next is sent: nothing waits for more.
      for (let t = 0; t < 500 && !got.endsWith(event(i)); t++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(
        got,
        [0, 1, 2]
          .slice(0, i + 1)
          .map(event)
          .join(''),
      );
    }
    finish!();
    await once(res, 'end');
    const e = await completedRecord(audit, before);
    assert.deepEqual([e.stage, e.responseStatus, e.gatehouse.bytesOut, e.gatehouse.error], ['ResponseComplete', { code: 200 }, got.length, undefined]);
  });

  it('a body of unknown length, streamed, arrives byte for byte to a slow reader', async () => {
    const body = Buffer.alloc(4 * 1024 * 1024, 'abcdefgh');
    answer = (_req, res) => {
      // No length: streamed, not read whole.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    };
    const before = audit.length;
    const { res } = await open('/api/v1/namespaces/dev/configmaps');
    const parts: Buffer[] = [];
    for await (const chunk of res as AsyncIterable<Buffer>) {
      parts.push(chunk);
      // A slow reader: the gateway must hold the upstream back, not drop or reorder.
      if (parts.length % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.ok(Buffer.concat(parts).equals(body));
    const e = await completedRecord(audit, before);
    assert.equal(e.gatehouse.bytesOut, body.length);
  });

  it("the upstream cut off mid-watch: the client's response is cut off too, and the record says the API server broke it off", async () => {
    answer = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(event(0));
      setTimeout(() => req.socket.destroy(), 50);
    };
    const before = audit.length;
    const { res } = await open(WATCH);
    const ended = await new Promise<string>((resolve) => {
      res.on('data', () => {});
      res.once('end', () => resolve('end'));
      res.once('aborted', () => resolve('aborted'));
      res.once('error', () => resolve('aborted'));
    });
    assert.equal(ended, 'aborted', 'a cut body is not passed off as a whole one');
    const e = await completedRecord(audit, before);
    // Not recorded as a watch its client ended: the cut came from the API server's side.
    assert.deepEqual(
      [e.stage, e.responseStatus?.status, e.gatehouse.error?.code, e.gatehouse.bytesOut],
      ['ResponseComplete', 'Failure', 'GATEHOUSE_UPSTREAM_UNAVAILABLE', event(0).length],
    );
    assert.match(e.gatehouse.error!.message, new RegExp(`broke off after ${event(0).length} bytes`));
  });

  it('the client walks away mid-watch: the upstream request is ended too, and the watch is recorded complete', async () => {
    let upstreamClosed: Promise<unknown> | undefined;
    answer = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(event(0));
      upstreamClosed = once(res, 'close');
    };
    const before = audit.length;
    const { res, abort } = await open(WATCH);
    await once(res, 'data');
    abort();
    await upstreamClosed;
    const e = await completedRecord(audit, before);
    assert.deepEqual([e.stage, e.responseStatus, e.gatehouse.error], ['ResponseComplete', { code: 200 }, undefined]);
  });
});
