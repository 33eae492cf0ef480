/**
 * Attack: an API server (or whatever answers at its address) that accepts an
 * exec/attach/port-forward connection and never answers held the client
 * forever, because upgrades opened their own HTTPS request with no timeouts.
 * The upgrade door now applies the forwarder's connect and header timeouts and
 * answers 504 with a Status, audited.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdmitter } from '../../../src/admission/admit.js';
import type { AuditEvent } from '../../../src/audit/event.js';
import { createMemoryAuditWriter } from '../../../src/audit/writer.js';
import { createStreamQuota, type StreamQuota } from '../../../src/doors/quota.js';
import { createUpgradeDoor } from '../../../src/doors/upgrade.js';
import type { Identity } from '../../../src/identity/identity.js';
import { selfSignedTls } from '../../../src/tls.js';

const ALICE: Identity = { username: 'alice@example.com', uid: '', groups: ['dev'], extra: {}, claims: {}, agent: null };

describe('doors/upgrade: an upstream that never answers', function () {
  this.timeout(20_000);
  let dir: string;
  const held: Socket[] = [];
  const servers: (Server | TlsServer | TcpServer)[] = [];
  before(() => (dir = mkdtempSync(join(tmpdir(), 'gatehouse-upgrade-'))));
  after(() => {
    for (const s of held) s.destroy();
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function listen(s: Server | TlsServer | TcpServer): Promise<number> {
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return (s.address() as AddressInfo).port;
  }

  /** A gateway whose only door is the upgrade door, in front of `upstreamPort`. */
  async function gateway(upstreamPort: number, ca: Buffer, audit: AuditEvent[], quota?: StreamQuota): Promise<number> {
    const admit = createAdmitter({
      authenticator: { authenticate: async () => ALICE, stats: { verified: 0, cached: 0, failed: 0 } },
      engine: { revision: 'test', evaluate: () => ({ effect: 'allow', reasons: ['test'], mask: [], inspect: [], audit: { level: 'Metadata' } }) },
      cluster: 'test',
      limits: { maxBodyBytes: 1024, policyBodyBytes: 512 },
      requesterView: () => assert.fail('no approvals here'),
      now: Date.now,
    });
    const upgrade = createUpgradeDoor({
      admit,
      upstream: { server: `https://127.0.0.1:${upstreamPort}`, tls: { ca, rejectUnauthorized: true, servername: 'localhost' } },
      timeouts: { connectTimeoutMs: 300, headersTimeoutMs: 300 },
      audit: createMemoryAuditWriter((e) => e.kind === 'Event' && audit.push(e)),
      sessions: undefined,
      now: Date.now,
      ...(quota ? { quota } : {}),
    });
    const server = createHttpServer();
    server.on('upgrade', (req, socket, head) => void upgrade(req, socket, head));
    return listen(server);
  }

  /** kubectl's port-forward upgrade (no recording needed), answered with whatever comes back. */
  function portForward(port: number): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/api/v1/namespaces/dev/pods/web-0/portforward',
        headers: { authorization: 'Bearer t', connection: 'Upgrade', upgrade: 'SPDY/3.1', 'x-stream-protocol-version': 'portforward.k8s.io' },
      });
      req.on('upgrade', () => reject(new Error('upgraded')));
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  const tls = () => selfSignedTls(join(dir, 'tls'), ['localhost', '127.0.0.1']);

  it('attack: a black hole that accepts TCP and never completes TLS gets the connect timeout: 504 Status, audited', async () => {
    const hole = await listen(createTcpServer((s) => held.push(s)));
    const audit: AuditEvent[] = [];
    const r = await portForward(await gateway(hole, Buffer.from(tls().caPem), audit));
    assert.equal(r.status, 504);
    assert.deepEqual(JSON.parse(r.body), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'the Kubernetes API server did not answer in time',
      reason: 'Timeout',
      code: 504,
    });
    const last = audit.at(-1)!;
    assert.equal(last.stage, 'ResponseComplete');
    assert.equal(last.responseStatus?.code, 504);
  });

  it('attack: an upstream that completes TLS and never answers the upgrade gets the header timeout: 504 Status', async () => {
    const m = tls();
    const silent = await listen(createTlsServer({ cert: m.cert, key: m.key }, (s) => held.push(s)));
    const audit: AuditEvent[] = [];
    const r = await portForward(await gateway(silent, Buffer.from(m.caPem), audit));
    assert.equal(r.status, 504);
    assert.equal(JSON.parse(r.body).reason, 'Timeout');
    assert.equal(audit.at(-1)?.gatehouse.error?.code, 'GATEHOUSE_UPSTREAM_TIMEOUT');
  });

  it("attack: one user opening sessions without end: a session past the user's long-running limit is refused with 429 before anything goes upstream; a session that ended gives its place back", async () => {
    const hole = await listen(createTcpServer((s) => held.push(s)));
    const audit: AuditEvent[] = [];
    const quota = createStreamQuota(1);
    const place = quota.take(ALICE.username);
    assert.equal(typeof place, 'function');
    const port = await gateway(hole, Buffer.from(tls().caPem), audit, quota);
    const before = held.length;
    const r = await portForward(port);
    assert.equal(r.status, 429);
    // kubectl (client-go) waits Retry-After's seconds and tries again, as it does with the HTTP door's 429.
    assert.equal(r.headers['retry-after'], '1');
    assert.deepEqual([JSON.parse(r.body).reason, JSON.parse(r.body).details], ['TooManyRequests', { retryAfterSeconds: 1 }]);
    assert.equal(audit.at(-1)?.gatehouse.error?.code, 'GATEHOUSE_TOO_MANY_REQUESTS');
    assert.equal(held.length, before, 'no connection upstream');
    (place as () => void)();
    // Now it goes upstream (to the black hole: a 504), and gives its place back when it ends.
    assert.equal((await portForward(port)).status, 504);
    assert.equal(typeof quota.take(ALICE.username), 'function');
  });
});
