/**
 * HA end to end: `gatehouse demo --replicas 3` as the suite starts it — three
 * `gatehouse serve` processes sharing a real PostgreSQL, behind a real HAProxy,
 * in front of kube-apiserver v1.35.4 — driven by kubectl 1.32 and the CLI.
 * Approvals and recordings cross replicas; one replica is SIGKILLed under load
 * and the balancer, the clients and the audit trail cope.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { ApprovalEvent, AuditRecord } from '../../src/audit/event.js';
import { DEMO_USERS } from '../../src/demo/demo.js';
import { startHaDemo, type RunningHaDemo } from '../../src/demo/ha.js';
import { mintDemoToken } from '../../src/demo/issuer.js';
import { isAlive } from '../../src/testbed/controlplane.js';
import { projectRoot, runRoot } from '../../src/paths.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Agent as UndiciAgent } from 'undici';
import { approvalsCli, kubectlInBackground, pendingFor } from '../support/approvals.js';
import { launchChromium, logInThroughDemoIssuer } from '../support/browser.js';
import { connectMcp } from '../support/mcp.js';
import { kubectl, run } from '../support/run.js';
import { waitFor } from '../support/wait.js';
import { testbed } from './hooks.js';

const CLI = join(projectRoot, 'bin/gatehouse.js');

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(false);
    });
    c.once('error', () => resolve(true));
  });
}

describe('HA: three replicas behind HAProxy sharing PostgreSQL (kube-apiserver v1.35.4, kubectl 1.32)', function () {
  this.timeout(180_000);
  let demo: RunningHaDemo;
  const admin = (args: string[]) => kubectl(testbed().kubeconfigs.admin, args);
  /** A kubeconfig for one demo identity that talks to one replica directly, not through the balancer. */
  const direct = (who: keyof typeof DEMO_USERS, replica: number) => {
    const r = demo.replicas()[replica]!;
    return demo.kubeconfigFor(`${who}-${r.name}`, DEMO_USERS[who], r.url);
  };
  /** The lines of one replica's audit log; the one a SIGKILL cut in two (if any) is kept apart. */
  const lines = (replica: number): { parsed: AuditRecord[]; unfinished: string[] } => {
    const f = join(demo.dir, demo.replicas()[replica]!.name, 'audit.log');
    const parsed: AuditRecord[] = [];
    const unfinished: string[] = [];
    for (const l of existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []) {
      try {
        parsed.push(JSON.parse(l) as AuditRecord);
      } catch {
        unfinished.push(l);
      }
    }
    return { parsed, unfinished };
  };
  const records = (replica: number): AuditRecord[] => lines(replica).parsed;
  const allRecords = () => [0, 1, 2].flatMap(records);

  before(async function () {
    this.timeout(180_000);
    demo = await startHaDemo({
      replicas: 3,
      dir: join(runRoot, `test-${process.pid}`, 'demo-ha'),
      testbed: testbed(),
      restartAfterMs: null,
      approvals: { holdSeconds: 120, sweepSeconds: 1 },
    });
  });
  after(async function () {
    this.timeout(60_000);
    await demo?.stop();
    await admin(['delete', 'configmap', 'ha-held', 'ha-held-2', 'ha-mcp', '-n', 'prod', '--ignore-not-found']);
  });

  it('writes replicas.json (pid and URL of each) and ready, and kubectl through the balancer reaches every replica', async () => {
    const listed = JSON.parse(readFileSync(join(demo.dir, 'replicas.json'), 'utf8')) as { pid: number; url: string }[];
    assert.equal(listed.length, 3);
    for (const r of listed) {
      assert.ok(isAlive(r.pid));
      assert.match(r.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    }
    assert.equal(readFileSync(join(demo.dir, 'ready'), 'utf8').trim(), demo.url);
    for (let i = 0; i < 6; i++) {
      const r = await kubectl(demo.kubeconfigs.alice, ['get', 'configmaps', '-n', 'dev', '-o', 'name']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /configmap\/app-config/);
    }
    // Each kubectl is a new connection; round robin spreads them.
    for (const i of [0, 1, 2])
      assert.ok(
        records(i).some((e) => e.kind === 'Event' && e.requestURI.startsWith('/api/v1/namespaces/dev/configmaps')),
        `replica ${i + 1} served`,
      );
    assert.deepEqual(Object.values(await demo.balancerStatus()), ['UP', 'UP', 'UP']);
  });

  it("an agent's request held on one replica proceeds when security approves through another", async () => {
    await admin(['create', 'configmap', 'ha-held', '-n', 'prod', '--from-literal=a=b']);
    const held = kubectlInBackground(direct('agent', 0), ['delete', 'configmap', 'ha-held', '-n', 'prod']);
    const approval = await pendingFor(direct('security', 1), 'ha-held');
    assert.ok(
      records(0).some((e) => e.kind === 'ApprovalEvent' && e.action === 'create' && e.approvalID === approval.id),
      'replica 1 opened it',
    );
    assert.equal(held.exited(), false);
    const ok = await approvalsCli(direct('security', 2), ['approve', approval.id, '--reason', 'HA test']);
    assert.equal(ok.code, 0, ok.stderr);
    const r = await held.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configmap "ha-held" deleted/);
    const approve = records(2).find((e): e is ApprovalEvent => e.kind === 'ApprovalEvent' && e.action === 'approve' && e.approvalID === approval.id);
    assert.equal(approve?.actor, DEMO_USERS.security.user);
  });

  it('an MCP call refused for approval on one replica is resumed with approvals_wait on another, once approved through a third', async () => {
    await admin(['create', 'configmap', 'ha-mcp', '-n', 'prod', '--from-literal=a=b']);
    const token = await mintDemoToken(demo.dir, DEMO_USERS.admin);
    const dispatcher = new UndiciAgent({ connect: { ca: demo.caPem } });
    const textOf = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
    const callOn = async (replica: number, name: string, args: Record<string, unknown>) => {
      const client = await connectMcp(`${demo.replicas()[replica]!.url}/gatehouse/mcp`, token, dispatcher);
      try {
        return (await client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 })) as CallToolResult;
      } finally {
        await client.close();
      }
    };
    try {
      // A person (bob, an admin) is refused at once, not held: the call is parked in PostgreSQL.
      const refused = await callOn(0, 'resources_delete', { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'prod', name: 'ha-mcp' });
      assert.equal(refused.isError, true);
      const id = /call approvals_wait with \{"id": "([^"]+)"\}/.exec(textOf(refused))?.[1];
      assert.ok(id, textOf(refused));
      const waiting = callOn(2, 'approvals_wait', { id, timeout: 50 });
      assert.equal((await approvalsCli(direct('security', 1), ['approve', id, '--reason', 'HA MCP'])).code, 0);
      const done = await waiting;
      assert.equal(done.isError, undefined, textOf(done));
      assert.match(textOf(done), /resources_delete ran:\nConfigMap "ha-mcp" deleted$/);
      assert.notEqual((await admin(['get', 'configmap', 'ha-mcp', '-n', 'prod'])).code, 0, 'deleted');
    } finally {
      await dispatcher.close();
    }
  });

  it('an exec session recorded through one replica is listed and replayed through the two others', async () => {
    const ex = await kubectl(direct('alice', 0), ['exec', 'web-0', '-n', 'dev', '--', 'sh', '-c', 'echo recorded-through-replica-1']);
    assert.equal(ex.code, 0, ex.stderr);
    const id = await waitFor('the session in the list', async () => {
      const l = await run(process.execPath, [CLI, 'sessions', 'list', '-o', 'json', '--kubeconfig', direct('security', 1)]);
      const items = (JSON.parse(l.stdout || '{"items":[]}') as { items: { id: string; header: { title: string }; end: unknown }[] }).items;
      return items.find((s) => s.header.title.includes('recorded-through-replica-1') && s.end)?.id;
    });
    const casts = [];
    for (const replica of [1, 2]) {
      const e = await run(process.execPath, [CLI, 'sessions', 'export', id, '--kubeconfig', direct('security', replica)]);
      assert.equal(e.code, 0, e.stderr);
      casts.push(e.stdout);
    }
    assert.equal(casts[0], casts[1]);
    assert.match(casts[0]!, /recorded-through-replica-1/);
    assert.match(casts[0]!.trimEnd().split('\n').at(-1)!, /"m","exit \{\\"exitCode\\":0/);
  });

  it('a session whose output outruns PostgreSQL is paced, not cut: 16 MiB arrive whole and are recorded whole', async () => {
    const size = 16 * 1024 * 1024;
    const ex = await run(
      'kubectl',
      ['--kubeconfig', direct('alice', 0), 'exec', 'web-0', '-n', 'dev', '--', 'sh', '-c', `yes paced-output | head -c ${size}`],
      {
        timeoutMs: 120_000,
      },
    );
    assert.equal(ex.code, 0, ex.stderr);
    assert.equal(ex.stdout.length, size);
    const id = await waitFor('the session, ended', async () => {
      const l = await run(process.execPath, [CLI, 'sessions', 'list', '-o', 'json', '--kubeconfig', direct('security', 2)]);
      const items = (JSON.parse(l.stdout || '{"items":[]}') as { items: { id: string; header: { title: string }; end: unknown }[] }).items;
      return items.find((s) => s.header.title.includes('paced-output') && s.end)?.id;
    });
    const cast = await run(process.execPath, [CLI, 'sessions', 'export', id, '--kubeconfig', direct('security', 1)], { timeoutMs: 120_000 });
    assert.equal(cast.code, 0, cast.stderr);
    const output = cast.stdout
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((l) => JSON.parse(l) as [number, string, string])
      .filter((e) => e[1] === 'o')
      .reduce((n, e) => n + e[2].length, 0);
    assert.equal(output, size);
  });

  it('a web login made through the balancer is good on every replica: no sticky sessions (Chromium)', async () => {
    const browser = await launchChromium();
    try {
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await context.newPage();
      await logInThroughDemoIssuer(page, `${demo.url}/gatehouse/approvals`, 'carol');
      for (const r of demo.replicas()) {
        // Each replica directly, with the cookie the login left: same host, so the browser sends it.
        await page.goto(`${r.url}/gatehouse/sessions`);
        assert.equal(page.url(), `${r.url}/gatehouse/sessions`, `${r.name} did not send the browser to log in again`);
        assert.match((await page.textContent('header')) ?? '', /carol@example\.com/, r.name);
      }
      await context.close();
    } finally {
      await browser.close();
    }
  });

  it('SIGKILL of a replica under load: new requests keep succeeding, the balancer takes it out, no completed request loses its audit record, and it rejoins', async () => {
    const token = await mintDemoToken(demo.dir, DEMO_USERS.alice);
    const agent = new Agent({ ca: demo.caPem, keepAlive: false });
    const get = () =>
      new Promise<{ status: number; auditId: string; at: number; error?: string }>((resolve) => {
        const at = Date.now();
        request(`${demo.url}/api/v1/namespaces/dev/configmaps`, { agent, headers: { authorization: `Bearer ${token}` }, timeout: 20_000 }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, auditId: String(res.headers['audit-id'] ?? ''), at }));
          res.on('error', () => resolve({ status: 0, auditId: '', at }));
        })
          .on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, auditId: '', at, error: `${err.code ?? ''} ${err.message}` }))
          .on('timeout', function (this: { destroy(): void }) {
            this.destroy();
          })
          .end();
      });
    const victim = demo.replicas()[1]!;
    let killedAt = Infinity;
    const results: { status: number; auditId: string; at: number; error?: string }[] = [];
    let stop = false;
    const workers = Array.from({ length: 4 }, async () => {
      while (!stop) results.push(await get());
    });
    await waitFor('some answers before the kill', () => results.length >= 40);
    process.kill(victim.pid, 'SIGKILL');
    await waitFor('the replica to be gone', () => !isAlive(victim.pid));
    // A killed process's listening socket is torn down a moment after the process is reaped; a
    // connection accepted in that moment is reset, and a TCP balancer cannot retry it.
    await waitFor('its port to refuse connections', () => refuses(Number(new URL(victim.url).port)));
    killedAt = Date.now();
    await waitFor('the balancer to mark it down', async () => (await demo.balancerStatus())[victim.name] === 'DOWN');
    const countAfterDown = results.length;
    await waitFor('answers after the balancer took it out', () => results.length >= countAfterDown + 40);
    stop = true;
    await Promise.all(workers);

    const failed = results.filter((r) => r.status !== 200);
    const startedAfter = results.filter((r) => r.at > killedAt);
    assert.ok(startedAfter.length >= 40);
    assert.deepEqual(
      startedAfter.filter((r) => r.status !== 200),
      [],
      'every request started after the replica was gone succeeded (a refused connection is tried on another replica)',
    );
    // Only requests in flight on the victim at the kill may fail.
    assert.ok(failed.length <= 4, `${failed.length} failed`);
    const recorded = new Set(allRecords().flatMap((e) => (e.kind === 'Event' ? [e.auditID] : [])));
    const lost = results.filter((r) => r.status === 200 && !recorded.has(r.auditId));
    assert.deepEqual(lost, [], 'every answered request has its audit record on the replica that served it');

    await demo.restart(1);
    await waitFor('the balancer to take it back', async () => (await demo.balancerStatus())[victim.name] === 'UP');
    const before = records(1).length;
    for (let i = 0; i < 6; i++) assert.equal((await get()).status, 200);
    assert.ok(records(1).length > before, 'the restarted replica serves again');
    // A SIGKILL during a write(2) of several pages may leave one record unfinished: it stays on its own line and the
    // restarted replica's records are whole.
    assert.ok(lines(1).unfinished.length <= 1, lines(1).unfinished.join('\n'));
    assert.deepEqual(
      [0, 2].flatMap((r) => lines(r).unfinished),
      [],
    );
    agent.destroy();
    process.stdout.write(`      (${results.length} requests, ${failed.length} failed at the kill)\n`);
  });

  it('a request held on a replica that dies fails cleanly, and succeeds when retried once approved', async () => {
    await admin(['create', 'configmap', 'ha-held-2', '-n', 'prod', '--from-literal=a=b']);
    const held = kubectlInBackground(direct('agent', 2), ['delete', 'configmap', 'ha-held-2', '-n', 'prod']);
    const approval = await pendingFor(direct('security', 0), 'ha-held-2');
    process.kill(demo.replicas()[2]!.pid, 'SIGKILL');
    const r = await held.done;
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /EOF|connection reset|connection refused|unexpected EOF|error/i);
    const ok = await approvalsCli(demo.kubeconfigs.security, ['approve', approval.id, '--reason', 'after the crash']);
    assert.equal(ok.code, 0, ok.stderr);
    const again = await kubectl(demo.kubeconfigs.agent, ['delete', 'configmap', 'ha-held-2', '-n', 'prod']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /configmap "ha-held-2" deleted/);
    await demo.restart(2);
  });
});
