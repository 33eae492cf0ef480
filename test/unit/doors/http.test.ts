/**
 * Audit before action, failing closed: when the record of a request's decision
 * cannot be written (a full disk, a revoked file), the request is not
 * forwarded; the client gets a 503 Status.
 */
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdmitter } from '../../../src/admission/admit.js';
import type { AuditRecord } from '../../../src/audit/event.js';
import { createHttpDoor } from '../../../src/doors/http.js';
import type { Identity } from '../../../src/identity/identity.js';
import { createForwarder } from '../../../src/upstream/forward.js';

const ALICE: Identity = { username: 'alice@example.com', uid: '', groups: ['dev'], extra: {}, claims: {}, agent: null };

describe('doors/http: audit before action', () => {
  let upstream: Server;
  let gateway: Server;
  let forwarded = 0;
  const written: AuditRecord[] = [];

  before(async () => {
    upstream = createServer((_req, res) => {
      forwarded++;
      res.end('{}');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const server = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const target = { server, tls: { rejectUnauthorized: true } };
    const forwarder = createForwarder(target, { connectTimeoutMs: 1000, headersTimeoutMs: 1000, bodyTimeoutMs: 1000 });
    const admit = createAdmitter({
      authenticator: { authenticate: () => Promise.resolve(ALICE), stats: { verified: 0, cached: 0, failed: 0 } },
      engine: { revision: 'r', evaluate: () => ({ effect: 'allow', reasons: ['ok'], mask: [], inspect: [], audit: { level: 'Metadata' } }) },
      cluster: 'test',
      limits: { maxBodyBytes: 1024, policyBodyBytes: 512 },
      requesterView: () => assert.fail('no approvals here'),
      now: Date.now,
    });
    const audit = {
      write: (e: AuditRecord) => void written.push(e),
      commit: () => {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      },
      flush: () => {},
    };
    const handle = createHttpDoor({ admit, forwarder, upstream: target, audit, masking: { hashKey: Buffer.from('k'), maxHoldBytes: 1024 }, now: Date.now });
    gateway = createServer((req, res) => void handle(req, res));
    await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
  });
  after(() => {
    gateway.close();
    upstream.close();
  });

  it('attack (or a full disk): a decision that cannot be recorded is not acted on — 503, nothing forwarded, the refusal recorded', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      request(
        { host: '127.0.0.1', port: (gateway.address() as AddressInfo).port, path: '/api/v1/namespaces/dev/configmaps', headers: { authorization: 'Bearer t' } },
        (res) => {
          let b = '';
          res.setEncoding('utf8').on('data', (d: string) => (b += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
        },
      )
        .on('error', reject)
        .end();
    });
    assert.equal(status, 503);
    assert.deepEqual(JSON.parse(body), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'the request cannot be audited, so it was not forwarded',
      reason: 'ServiceUnavailable',
      code: 503,
    });
    assert.equal(forwarded, 0, 'the API server never saw the request');
    const last = written.at(-1);
    assert.ok(last?.kind === 'Event');
    assert.deepEqual([last.stage, last.responseStatus?.code, last.gatehouse.error?.code], ['ResponseComplete', 503, 'GATEHOUSE_AUDIT_FAILED']);
  });
});

describe('doors/http: the length of a body', () => {
  let upstream: Server;
  let gateway: Server;
  const secret = JSON.stringify({ kind: 'Secret', apiVersion: 'v1', metadata: { name: 's' }, data: { password: 'aHVudGVyMg==' } });

  before(async () => {
    upstream = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(secret) });
      res.end(secret);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const target = { server: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, tls: { rejectUnauthorized: true } };
    const admit = createAdmitter({
      authenticator: { authenticate: () => Promise.resolve(ALICE), stats: { verified: 0, cached: 0, failed: 0 } },
      engine: {
        revision: 'r',
        evaluate: (input) => {
          const masked = (input as { resourceAttributes: { resource: string } }).resourceAttributes.resource === 'secrets';
          return { effect: 'allow', reasons: ['ok'], mask: masked ? [{ path: '$.data.*', action: 'redact' }] : [], inspect: [], audit: { level: 'Metadata' } };
        },
      },
      cluster: 'test',
      limits: { maxBodyBytes: 1024, policyBodyBytes: 512 },
      requesterView: () => assert.fail('no approvals here'),
      now: Date.now,
    });
    const audit = { write: () => {}, commit: () => {}, flush: () => {} };
    const handle = createHttpDoor({
      admit,
      forwarder: createForwarder(target, { connectTimeoutMs: 1000, headersTimeoutMs: 1000, bodyTimeoutMs: 1000 }),
      upstream: target,
      audit,
      masking: { hashKey: Buffer.from('k'), maxHoldBytes: 1024 },
      now: Date.now,
    });
    gateway = createServer((req, res) => void handle(req, res));
    await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
  });
  after(() => {
    gateway.close();
    upstream.close();
  });

  const get = (path: string) =>
    new Promise<{ headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      request({ host: '127.0.0.1', port: (gateway.address() as AddressInfo).port, path, headers: { authorization: 'Bearer t' } }, (res) => {
        let b = '';
        res.setEncoding('utf8').on('data', (d: string) => (b += d));
        res.on('end', () => resolve({ headers: res.headers, body: b }));
      })
        .on('error', reject)
        .end();
    });

  it('keeps the upstream content-length of a body passed on as it came', async () => {
    const { headers, body } = await get('/api/v1/namespaces/dev/configmaps/c');
    assert.equal(headers['content-length'], String(Buffer.byteLength(secret)));
    assert.equal(headers['transfer-encoding'], undefined);
    assert.equal(body, secret);
  });

  it('states the length of a small masked body as masked', async () => {
    const { headers, body } = await get('/api/v1/namespaces/dev/secrets/s');
    assert.notEqual((JSON.parse(body) as { data: { password: string } }).data.password, 'aHVudGVyMg==');
    assert.equal(headers['content-length'], String(Buffer.byteLength(body)));
    assert.notEqual(Buffer.byteLength(body), Buffer.byteLength(secret));
    assert.equal(headers['transfer-encoding'], undefined);
  });
});
