/**
 * Masking as a stage of the proxy, against a scripted upstream (the end-to-end
 * suite does the same against kube-apiserver): what is asked upstream, what the
 * client gets, and that every failure fails closed and is audited.
 */
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { AuditEvent } from '../../src/audit/event.js';
import type { Identity } from '../../src/identity/identity.js';
import { REDACTED } from '../../src/redact/stream.js';
import { startTestPipeline, startTestUpstream } from '../support/pipeline.js';

const ALICE: Identity = { username: 'alice@example.com', uid: '', groups: ['dev', 'system:authenticated'], extra: {}, claims: {}, agent: null };
const SECRET = { kind: 'Secret', apiVersion: 'v1', metadata: { name: 'db' }, data: { password: Buffer.from('hunter2').toString('base64') } };

describe('pipeline: masked responses', () => {
  let upstream: Server;
  let gateway: Server;
  let received: IncomingHttpHeaders | undefined;
  /** `cut`: the upstream's connection is destroyed after its chunks instead of the body ending. */
  let reply: { status?: number; headers: Record<string, string>; chunks: (string | Buffer)[]; cut?: boolean };
  const audit: AuditEvent[] = [];
  let filterPath = false;

  before(async () => {
    let upstreamUrl: string;
    ({ server: upstream, url: upstreamUrl } = await startTestUpstream((req, res) => {
      received = req.headers;
      res.writeHead(reply.status ?? 200, reply.headers);
      for (const c of reply.chunks) res.write(c);
      if (reply.cut) setTimeout(() => req.socket.destroy(), 50);
      else res.end();
    }));
    ({ server: gateway } = await startTestPipeline({
      upstreamUrl,
      identity: () => ALICE,
      decision: () => ({
        effect: 'allow',
        reasons: [],
        mask: [{ path: '$.data.*', action: 'redact' }, ...(filterPath ? [{ path: "$.items[?(@.name == 'a')].value", action: 'redact' as const }] : [])],
        inspect: [],
        audit: { level: 'Metadata' },
      }),
      audit,
      maxBodyBytes: 64 * 1024,
    }));
  });
  after(() => {
    upstream.close();
    gateway.close();
  });
  beforeEach(() => (received = undefined));

  function send(path: string, headers: Record<string, string> = {}, method = 'GET', body?: string) {
    return new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer; aborted: boolean }>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: (gateway.address() as AddressInfo).port, path, method, headers: { authorization: 'Bearer t', ...headers } },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts), aborted: false }));
          res.on('aborted', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts), aborted: true }));
          res.on('error', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts), aborted: true }));
        },
      );
      // A response cut off before its first byte is a hung-up socket: that is an abort too.
      req.on('error', (err: NodeJS.ErrnoException) =>
        err.code === 'ECONNRESET' ? resolve({ status: 0, headers: {}, body: Buffer.alloc(0), aborted: true }) : reject(err),
      );
      req.end(body);
    });
  }

  it('asks upstream for uncompressed JSON only, keeping as=Table, and masks the answer', async () => {
    reply = { headers: { 'content-type': 'application/json' }, chunks: [JSON.stringify(SECRET).slice(0, 50), JSON.stringify(SECRET).slice(50)] };
    const r = await send('/api/v1/namespaces/dev/secrets/db', {
      accept: 'application/vnd.kubernetes.protobuf;as=Table;g=meta.k8s.io;v=v1, application/json;as=Table;g=meta.k8s.io;v=v1, application/json',
      'accept-encoding': 'deflate, br',
    });
    assert.equal(received!['accept'], 'application/json;as=Table;g=meta.k8s.io;v=v1, application/json');
    assert.equal(received!['accept-encoding'], 'identity');
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body.toString()).data.password, REDACTED);
  });

  it('gunzips an upstream that compressed anyway, and gzips for a client that asked', async () => {
    reply = { headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, chunks: [gzipSync(JSON.stringify(SECRET))] };
    const r = await send('/api/v1/namespaces/dev/secrets/db', { 'accept-encoding': 'gzip' });
    assert.equal(r.headers['content-encoding'], 'gzip');
    const body = JSON.parse(gunzipSync(r.body).toString());
    assert.equal(body.data.password, REDACTED);
    const plain = await send('/api/v1/namespaces/dev/secrets/db');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(JSON.parse(plain.body.toString()).data.password, REDACTED);
  });

  it('refuses a response it cannot read (protobuf) with a Status before any byte', async () => {
    reply = { headers: { 'content-type': 'application/vnd.kubernetes.protobuf' }, chunks: [Buffer.from([0x6b, 0x38, 0x73, 0, 1, 2]), 'hunter2'] };
    const r = await send('/api/v1/namespaces/dev/secrets/db');
    assert.equal(r.status, 502);
    const status = JSON.parse(r.body.toString());
    assert.equal(status.kind, 'Status');
    assert.match(status.message, /masks this response, but it is application\/vnd\.kubernetes\.protobuf/);
    assert.doesNotMatch(r.body.toString(), /hunter2/);
  });

  it('cuts a malformed response off, sends no unmasked byte, and audits why', async () => {
    reply = {
      headers: { 'content-type': 'application/json' },
      chunks: ['{"kind":"Secret","data":{"password":"aHVudGVyMg=="', ' "x": }} then garbage "aHVudGVyMg=="'],
    };
    const r = await send('/api/v1/namespaces/dev/secrets/db');
    // The status line went out with the first masked bytes; the malformed rest is cut off.
    assert.deepEqual(
      { status: r.status, aborted: r.aborted, body: r.body.toString() },
      { status: 200, aborted: true, body: `{"kind":"Secret","data":{"password":"${REDACTED}"` },
    );
    const e = audit.at(-1)!;
    assert.equal(e.gatehouse.error?.code, 'GATEHOUSE_MASKING_FAILED');
    assert.match(e.gatehouse.error.message, /not valid JSON/);
  });

  it('a masked list the API server cuts off mid-body: the client sees the cut, no unmasked byte, and the record says the API server broke it off', async () => {
    reply = { headers: { 'content-type': 'application/json' }, chunks: ['{"kind":"SecretList","items":[{"data":{"password":"aHVudGVyMg=="}},'], cut: true };
    const r = await send('/api/v1/namespaces/dev/secrets');
    assert.equal(r.aborted, true, 'the cut is passed on, not a whole response');
    assert.doesNotMatch(r.body.toString(), /aHVudGVyMg==/);
    const e = audit.at(-1)!;
    assert.equal(e.gatehouse.error?.code, 'GATEHOUSE_UPSTREAM_UNAVAILABLE');
    assert.match(e.gatehouse.error.message, /response broke off after \d+ bytes/);
  });

  it("a gzip body that does not inflate: cut off, and recorded as a failure with zlib's reason, not as a client that left", async () => {
    const gz = gzipSync(JSON.stringify(SECRET));
    // The gzip header intact, the deflate stream after it garbage.
    const broken = Buffer.concat([gz.subarray(0, 10), Buffer.alloc(64, 0xff)]);
    reply = { headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, chunks: [broken] };
    const r = await send('/api/v1/namespaces/dev/secrets/db');
    assert.equal(r.aborted, true);
    const e = audit.at(-1)!;
    assert.equal(e.gatehouse.error?.code, 'GATEHOUSE_UPSTREAM_UNAVAILABLE');
    assert.match(e.gatehouse.error.message, /\(Z_[A-Z_]+\)/);
  });

  it('answers a small sized response it cannot mask with a Status, before any byte of it', async () => {
    // With its length known and small, the body is read whole and masked before anything is sent.
    const bad = '{"kind":"Secret","data":{"password":"aHVudGVyMg=="} "x": }} then garbage';
    reply = { headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(bad)) }, chunks: [bad] };
    const r = await send('/api/v1/namespaces/dev/secrets/db');
    assert.equal(r.status, 502);
    const status = JSON.parse(r.body.toString()) as { kind: string; message: string };
    assert.equal(status.kind, 'Status');
    assert.match(status.message, /could not be masked/);
    assert.doesNotMatch(r.body.toString(), /aHVudGVyMg==/);
    assert.equal(audit.at(-1)!.gatehouse.error?.code, 'GATEHOUSE_MASKING_FAILED');
  });

  it('sends a small sized masked body whole, with its masked length, uncompressed even for a client that takes gzip', async () => {
    const body = JSON.stringify(SECRET);
    reply = { headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }, chunks: [body.slice(0, 40), body.slice(40)] };
    const r = await send('/api/v1/namespaces/dev/secrets/db', { 'accept-encoding': 'gzip' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(r.headers['content-length'], String(r.body.length));
    assert.equal(JSON.parse(r.body.toString()).data.password, REDACTED);
  });

  it('cuts off a sized response that ends before its length, and sends none of it', async () => {
    const body = JSON.stringify(SECRET);
    reply = { headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body) + 10) }, chunks: [body] };
    const r = await send('/api/v1/namespaces/dev/secrets/db');
    assert.doesNotMatch(r.body.toString(), /aHVudGVyMg==/);
    assert.notEqual(r.status, 200);
  });

  it('cuts a truncated response off and audits it', async () => {
    reply = { headers: { 'content-type': 'application/json' }, chunks: ['{"kind":"SecretList","items":[{"data":{"password":"x"}}'] };
    const r = await send('/api/v1/namespaces/dev/secrets');
    assert.deepEqual(
      { status: r.status, aborted: r.aborted, body: r.body.toString() },
      { status: 200, aborted: true, body: `{"kind":"SecretList","items":[{"data":{"password":"${REDACTED}"}}` },
    );
    assert.equal(audit.at(-1)!.gatehouse.error?.code, 'GATEHOUSE_MASKING_FAILED');
    assert.match(audit.at(-1)!.gatehouse.error!.message, /ended in the middle/);
  });

  it('attack: an upstream that writes a member the filter reads twice: refused, none of the element sent, and audited', async () => {
    // A client's parser keeps the last `name`: deciding on the first would let 'aHVudGVyMg==' through as 'a'.
    reply = { headers: { 'content-type': 'application/json' }, chunks: ['{"kind":"Secret","items":[{"name":"b","value":"aHVudGVyMg==","name":"a"}]}'] };
    filterPath = true;
    try {
      const r = await send('/api/v1/namespaces/dev/secrets/db');
      assert.equal(r.aborted, true);
      assert.doesNotMatch(r.body.toString(), /aHVudGVyMg==/);
      assert.equal(audit.at(-1)!.gatehouse.error?.code, 'GATEHOUSE_MASKING_FAILED');
      assert.match(audit.at(-1)!.gatehouse.error!.message, /written twice/);
    } finally {
      filterPath = false;
    }
  });

  it('cuts a response off when a filter must hold more than the cap, and audits it', async () => {
    // The member the filter reads comes last, after a value larger than maxHoldBytes (4096 here).
    reply = {
      headers: { 'content-type': 'application/json' },
      chunks: [JSON.stringify({ kind: 'Secret', data: { password: 'aHVudGVyMg==' }, items: [{ value: 'x'.repeat(9000), name: 'a' }] })],
    };
    filterPath = true;
    try {
      const r = await send('/api/v1/namespaces/dev/secrets/db');
      assert.equal(r.aborted, true, 'the response is cut off, not completed');
      assert.doesNotMatch(r.body.toString(), /aHVudGVyMg==/);
      assert.equal(audit.at(-1)!.gatehouse.error?.code, 'GATEHOUSE_MASKING_FAILED');
      assert.match(audit.at(-1)!.gatehouse.error!.message, /larger than 4096 bytes/);
    } finally {
      filterPath = false;
    }
  });

  it('masks every event of a watch as it arrives', async () => {
    const ev = (v: string) => JSON.stringify({ type: 'MODIFIED', object: { ...SECRET, data: { password: v } } }) + '\n';
    reply = { headers: { 'content-type': 'application/json;stream=watch' }, chunks: [ev('YQ=='), ev('Yg==').slice(0, 30), ev('Yg==').slice(30)] };
    const r = await send('/api/v1/namespaces/dev/secrets?watch=1');
    const lines = r.body
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.object.data.password),
      [REDACTED, REDACTED],
    );
  });

  for (const [what, body] of [
    ['a replace carrying the redaction marker back', JSON.stringify({ ...SECRET, data: { password: REDACTED } })],
    ['a patch carrying a hash back', JSON.stringify({ data: { password: 'GATEHOUSE+HMAC++abcdefghijklmnopqrstuvwx' } })],
    [
      'an apply whose last-applied copy holds the marker',
      JSON.stringify({ metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': `{"data":{"password":"${REDACTED}"}}` } } }),
    ],
  ] as const) {
    it(`refuses ${what}, before the upstream sees it`, async () => {
      const r = await send('/api/v1/namespaces/dev/secrets/db', { 'content-type': 'application/json' }, 'PUT', body);
      assert.equal(r.status, 400);
      assert.match(JSON.parse(r.body.toString()).message, /carries back a value Gatehouse masked/);
      assert.equal(received, undefined);
    });
  }
});
