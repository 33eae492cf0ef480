/**
 * Audit shipping to a receiver that is down for a while, fails, and comes
 * back: every Event arrives exactly once and in order, as kube-apiserver's
 * webhook backend sends them (EventList batches), also across a restart.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent, AuditRecord } from '../../../src/audit/event.js';
import { createAuditShipper, type AuditShipper } from '../../../src/audit/webhook.js';
import { freePort } from '../../../src/testbed/ports.js';
import { loadUpstream } from '../../../src/upstream/credentials.js';
import { waitFor } from '../../support/wait.js';

const event = (i: number): AuditEvent => ({
  kind: 'Event',
  apiVersion: 'audit.k8s.io/v1',
  level: 'Metadata',
  auditID: `e${i}`,
  stage: 'ResponseComplete',
  requestURI: '/api/v1/namespaces/dev/configmaps',
  verb: 'list',
  user: { username: 'alice@example.com' },
  sourceIPs: ['127.0.0.1'],
  requestReceivedTimestamp: '2026-12-02T00:00:00.000Z',
  stageTimestamp: '2026-12-02T00:00:00.001Z',
  annotations: {},
  gatehouse: { durationMs: 1 },
});

describe('audit/webhook: EventList batches, spooled, each record once and in order', function () {
  this.timeout(30_000);
  let dir: string;
  let port: number;
  let receiver: Server | undefined;
  let received: string[] = [];
  let failNext = 0;
  let kubeconfig: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-webhook-'));
    port = await freePort();
    kubeconfig = join(dir, 'receiver.kubeconfig');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: r\n  cluster:\n    server: http://127.0.0.1:${port}/audit\nusers:\n- name: gatehouse\n  user: {}\ncontexts:\n- name: r\n  context: {cluster: r, user: gatehouse}\ncurrent-context: r\n`,
    );
  });
  after(() => {
    receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function up(): Promise<void> {
    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        if (failNext > 0) {
          failNext--;
          res.writeHead(503).end();
          return;
        }
        const list = JSON.parse(body) as { kind: string; apiVersion: string; items: AuditEvent[] };
        assert.equal(req.url, '/audit');
        assert.equal(list.kind, 'EventList');
        assert.equal(list.apiVersion, 'audit.k8s.io/v1');
        received.push(...list.items.map((e) => e.auditID));
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver!.listen(port, '127.0.0.1', r));
  }
  async function down(): Promise<void> {
    await new Promise((r) => receiver?.close(r));
    receiver?.closeAllConnections();
    receiver = undefined;
  }

  const shipper = (bufferMaxBytes = 64 * 1024 * 1024): AuditShipper =>
    createAuditShipper({
      target: loadUpstream({ kind: 'kubeconfig', file: kubeconfig }, { as: 'audit.webhook.kubeconfig', anonymous: true }),
      bufferDir: join(dir, 'spool'),
      bufferMaxBytes,
      batchMaxSize: 50,
      timeoutMs: 2000,
      backoffMs: 20,
    });

  it('a receiver down for a while, then failing, then up: every Event arrives exactly once, in order', async () => {
    const s = shipper();
    try {
      for (let i = 0; i < 300; i++) {
        s.write(event(i));
        // Approval and session records are not audit.k8s.io Events: the file keeps them.
        if (i % 100 === 0) s.write({ kind: 'ApprovalEvent' } as unknown as AuditRecord);
      }
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(received, []);
      failNext = 2;
      await up();
      for (let i = 300; i < 400; i++) s.commit(event(i));
      await waitFor('all delivered', async () => received.length >= 400 && s.pendingBytes() === 0, 20_000);
      assert.deepEqual(
        received,
        Array.from({ length: 400 }, (_, i) => `e${i}`),
      );
    } finally {
      await s.close();
    }
  });

  it('records spooled while the receiver is down survive a restart, and nothing delivered is sent again', async () => {
    received = [];
    await down();
    const first = shipper();
    for (let i = 400; i < 420; i++) first.write(event(i));
    assert.ok(first.pendingBytes() > 0);
    await first.close();
    await up();
    const second = shipper();
    try {
      await waitFor('the spooled records are delivered', async () => received.length >= 20 && second.pendingBytes() === 0, 20_000);
      assert.deepEqual(
        received,
        Array.from({ length: 20 }, (_, i) => `e${400 + i}`),
      );
    } finally {
      await second.close();
    }
  });

  it('a record cut in two by a crash is dropped from the spool, and the records after the restart arrive intact', async () => {
    received = [];
    await down();
    const first = shipper();
    for (let i = 500; i < 503; i++) first.write(event(i));
    await first.close();
    // What SIGKILL in the middle of a write(2) leaves: the start of a record and no newline.
    appendFileSync(join(dir, 'spool', 'spool.jsonl'), JSON.stringify(event(503)).slice(0, 40));
    await up();
    const second = shipper();
    try {
      second.write(event(504));
      await waitFor('the spool is delivered', async () => received.length >= 4 && second.pendingBytes() === 0, 20_000);
      assert.deepEqual(received, ['e500', 'e501', 'e502', 'e504']);
    } finally {
      await second.close();
    }
  });

  it('a full buffer stops taking records, and counts them, instead of growing without bound', async () => {
    await down();
    const s = shipper(64 * 1024);
    try {
      for (let i = 0; i < 1000; i++) s.write(event(i));
      assert.ok(s.pendingBytes() <= 64 * 1024);
      assert.ok(s.dropped() > 0);
    } finally {
      await s.close();
    }
  });
});
