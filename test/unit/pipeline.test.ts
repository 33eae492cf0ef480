/**
 * Header smuggling through the whole pipeline, asserting the complete header set
 * the upstream received. The upstream is a small capturing HTTP server (the
 * end-to-end suite runs the same attacks against the real kube-apiserver); the
 * policy allows everything here, so only the header builder stands in the way.
 */
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuditEvent } from '../../src/audit/event.js';
import type { Identity } from '../../src/identity/identity.js';
import { closeServers, GATEWAY_TOKEN, startTestPipeline, startTestUpstream } from '../support/pipeline.js';
import { WS_BEARER_PREFIX } from '../../src/identity/token.js';

const ALICE: Identity = { username: 'alice@example.com', uid: '', groups: ['dev', 'system:authenticated'], extra: {}, claims: {}, agent: null };
const BOT: Identity = {
  ...ALICE,
  username: 'agent:deploy-bot',
  groups: ['agents', 'system:authenticated'],
  agent: { name: 'deploy-bot', onBehalfOf: 'alice@example.com', session: 's-1' },
};

describe('pipeline: the upstream header set is built from an allow-list', () => {
  let upstream: Server;
  let gateway: Server;
  let received: IncomingHttpHeaders | undefined;
  let identity: Identity = ALICE;
  let status = 200;
  let holdWatch: Promise<void> | undefined;
  const audit: AuditEvent[] = [];

  before(async () => {
    let upstreamUrl: string;
    ({ server: upstream, url: upstreamUrl } = await startTestUpstream((req, res) => {
      received = req.headers;
      res.writeHead(status, { 'content-type': 'application/json', 'set-cookie': 'upstream=1', 'x-internal': 'leak', authorization: 'Bearer upstream' });
      const hold = holdWatch;
      if (hold) {
        res.flushHeaders();
        void hold.then(() => res.end('{"type":"ADDED","object":{}}\n'));
      } else res.end('{"kind":"ConfigMapList","items":[]}');
    }));
    ({ server: gateway } = await startTestPipeline({
      upstreamUrl,
      identity: () => identity,
      decision: { effect: 'allow', reasons: ['test'], mask: [], inspect: [], audit: { level: 'Metadata' } },
      audit,
    }));
  });
  // A held watch (the flush test failing) must not keep the run alive.
  after(() => closeServers(upstream, gateway));
  beforeEach(() => {
    received = undefined;
    identity = ALICE;
    status = 200;
  });

  function send(
    path: string,
    headers: Record<string, string | string[]>,
    method = 'GET',
    body?: string,
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: (gateway.address() as AddressInfo).port, path, method, headers }, (res) => {
        let data = '';
        res.on('data', (d: Buffer) => (data += d.toString())).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: data }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** What the upstream must receive for alice, whatever she sent. */
  function expectedFor(auditId: string, extra: Record<string, string> = {}) {
    return {
      host: received!['host'],
      connection: 'keep-alive',
      accept: 'application/json',
      'user-agent': 'kubectl/v1.32.4',
      authorization: `Bearer ${GATEWAY_TOKEN}`,
      'impersonate-user': 'alice@example.com',
      'impersonate-group': 'dev',
      'audit-id': auditId,
      ...extra,
    };
  }

  // Even when the policy allows the request, caller impersonation never reaches the upstream.
  const IMPERSONATION: [string, Record<string, string | string[]>][] = [
    ['Impersonate-User', { 'impersonate-user': 'bob@example.com' }],
    ['Impersonate-Group: system:masters', { 'impersonate-group': 'system:masters' }],
    ['Impersonate-Uid', { 'impersonate-uid': '0' }],
    ['Impersonate-Extra-*', { 'impersonate-extra-scopes': 'all', 'impersonate-extra-gatehouse.dev%2fagent': 'root-bot' }],
    ['a malformed Impersonate-Extra-* name', { 'impersonate-extra-%zz': 'x' }],
    ['Connection: Impersonate-User', { connection: 'Impersonate-User', 'impersonate-user': 'bob@example.com' }],
  ];
  for (const [what, headers] of IMPERSONATION) {
    it(`refuses ${what} (allowed by policy, not honoured by the gateway)`, async () => {
      const r = await send('/api/v1/namespaces/dev/configmaps', {
        authorization: 'Bearer caller-token',
        accept: 'application/json',
        'user-agent': 'kubectl/v1.32.4',
        ...headers,
      });
      assert.equal(r.status, 403, r.body);
      assert.match(JSON.parse(r.body).message, /^Gatehouse does not forward impersonation/);
      assert.equal(received, undefined, 'nothing reached the upstream');
    });
  }

  const ATTACKS: [string, Record<string, string | string[]>][] = [
    ['Connection naming a header', { connection: 'X-Remote-User', 'x-remote-user': 'admin' }],
    [
      'hop-by-hop and proxy headers',
      {
        te: 'trailers',
        'proxy-authorization': 'Basic eDp5',
        'keep-alive': 'timeout=5',
        'x-forwarded-for': '10.0.0.1',
        'x-remote-user': 'admin',
        'x-remote-group': 'system:masters',
        cookie: 'a=b',
        'audit-id': 'caller-chosen',
      },
    ],
    [
      'the WebSocket bearer subprotocol next to the same token',
      { 'sec-websocket-protocol': WS_BEARER_PREFIX + Buffer.from('caller-token').toString('base64url') },
    ],
  ];
  for (const [what, headers] of ATTACKS) {
    it(`drops ${what}`, async () => {
      const r = await send('/api/v1/namespaces/dev/configmaps', {
        authorization: 'Bearer caller-token',
        accept: 'application/json',
        'user-agent': 'kubectl/v1.32.4',
        ...headers,
      });
      assert.equal(r.status, 200, r.body);
      assert.deepEqual({ ...received }, expectedFor(String(r.headers['audit-id'])));
    });
  }

  it('sends an agent as itself, with the person it acts for as user extras', async () => {
    identity = BOT;
    const r = await send('/api/v1/namespaces/dev/configmaps', {
      authorization: 'Bearer caller-token',
      accept: 'application/json',
      'user-agent': 'kubectl/v1.32.4',
    });
    assert.deepEqual(
      { ...received },
      {
        ...expectedFor(String(r.headers['audit-id'])),
        'impersonate-user': 'agent:deploy-bot',
        'impersonate-group': 'agents',
        'impersonate-extra-gatehouse.dev%2fagent': 'deploy-bot',
        'impersonate-extra-gatehouse.dev%2fon-behalf-of': 'alice@example.com',
        'impersonate-extra-gatehouse.dev%2fsession': 's-1',
      },
    );
  });

  it('forwards a write body byte for byte with its content type', async () => {
    const body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}';
    const r = await send(
      '/api/v1/namespaces/dev/configmaps',
      { authorization: 'Bearer caller-token', accept: 'application/json', 'user-agent': 'kubectl/v1.32.4', 'content-type': 'application/json' },
      'POST',
      body,
    );
    assert.deepEqual(
      { ...received },
      expectedFor(String(r.headers['audit-id']), { 'content-type': 'application/json', 'content-length': String(body.length) }),
    );
  });

  it('sends the headers of a watch at once, before its first event', async () => {
    // The upstream holds the watch open, eventless, until the client has seen the headers: without a flush this deadlocks.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    holdWatch = released;
    const headersSeen = new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: (gateway.address() as AddressInfo).port,
          path: '/api/v1/namespaces/dev/configmaps?watch=1',
          headers: { authorization: 'Bearer caller-token' },
        },
        (res) => {
          resolve(res.statusCode!);
          release();
          res.resume();
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(await headersSeen, 200);
    holdWatch = undefined;
  });

  it('returns only allow-listed response headers, never upstream credentials or cookies', async () => {
    const r = await send('/api/v1/namespaces/dev/configmaps', { authorization: 'Bearer caller-token' });
    assert.equal(r.headers['set-cookie'], undefined);
    assert.equal(r.headers['x-internal'], undefined);
    assert.equal(r.headers['authorization'], undefined);
    assert.match(String(r.headers['audit-id']), /^[0-9a-f-]{36}$/);
  });

  it('refuses malformed JSON in a write before it reaches the upstream', async () => {
    const r = await send(
      '/api/v1/namespaces/dev/configmaps',
      { authorization: 'Bearer caller-token', 'content-type': 'application/json' },
      'POST',
      '{"kind": ',
    );
    assert.equal(r.status, 400);
    assert.equal(received, undefined);
    assert.match(JSON.parse(r.body).message, /^the request body is not valid JSON/);
  });

  it('refuses a body over the limit with 413 and audits it', async () => {
    const r = await send(
      '/api/v1/namespaces/dev/configmaps',
      { authorization: 'Bearer caller-token', 'content-type': 'application/json' },
      'POST',
      JSON.stringify({ data: { x: 'y'.repeat(2000) } }),
    );
    assert.equal(r.status, 413);
    assert.equal(JSON.parse(r.body).reason, 'RequestEntityTooLarge');
    assert.equal(received, undefined);
    assert.equal(audit.at(-1)?.responseStatus?.code, 413);
  });
});

describe('pipeline: a broken upstream', () => {
  it('is a 502 Status, audited, with no credential in the message', async () => {
    const audit: AuditEvent[] = [];
    // Port 1 on loopback: nothing listens there.
    const { server, port } = await startTestPipeline({
      upstreamUrl: 'http://127.0.0.1:1',
      identity: () => ALICE,
      decision: { effect: 'allow', reasons: [], mask: [], inspect: [], audit: { level: 'Metadata' } },
      audit,
    });
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/namespaces/dev/pods`, { headers: { authorization: 'Bearer caller-token' } });
    server.close();
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 502);
    assert.deepEqual(body, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'the Kubernetes API server is unreachable (ECONNREFUSED)',
      reason: 'ServiceUnavailable',
      code: 502,
    });
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.gatehouse.error?.code, 'GATEHOUSE_UPSTREAM_UNAVAILABLE');
    assert.ok(!JSON.stringify(audit).includes(GATEWAY_TOKEN) && !JSON.stringify(audit).includes('caller-token'));
  });
});

describe('pipeline: watches cannot starve the upstream pool', () => {
  it('with a pool of 2 connections, 5 open watches still leave room for a GET', async () => {
    const held: import('node:http').ServerResponse[] = [];
    const { server: upstream, url: upstreamUrl } = await startTestUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.url!.includes('watch=1')) {
        res.flushHeaders();
        held.push(res); // an eventless watch, open until the end of the test
      } else res.end('{"kind":"ConfigMap"}');
    });
    const { server, port } = await startTestPipeline({
      upstreamUrl,
      identity: () => ALICE,
      decision: { effect: 'allow', reasons: [], mask: [], inspect: [], audit: { level: 'Metadata' } },
      audit: [],
      maxConnections: 2,
    });
    const get = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, headers: { authorization: 'Bearer t' } }, (res) => {
          resolve(res.statusCode!);
          res.resume();
        });
        req.on('error', reject);
        req.end();
      });
    try {
      const watches = await Promise.all([1, 2, 3, 4, 5].map(() => get('/api/v1/namespaces/dev/configmaps?watch=1')));
      assert.deepEqual(watches, [200, 200, 200, 200, 200]);
      assert.equal(await get('/api/v1/namespaces/dev/configmaps/app-config'), 200);
    } finally {
      for (const r of held) r.destroy();
      closeServers(upstream, server);
    }
  });
});
