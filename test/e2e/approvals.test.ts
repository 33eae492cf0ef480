/**
 * Approvals end to end: kubectl 1.32 → Gatehouse (SQLite store) → kube-apiserver
 * v1.35.4, the bundled policy, the demo issuer's tokens, and the real
 * `gatehouse approvals` CLI run with the demo's security.kubeconfig. A local
 * HTTP receiver stands in for Slack's incoming webhook.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApprovalEvent, AuditEvent, AuditRecord } from '../../src/audit/event.js';
import { createMemoryAuditWriter } from '../../src/audit/writer.js';
import { startDemo, type RunningDemo } from '../../src/demo/demo.js';
import { runRoot } from '../../src/paths.js';
import { canary } from '../../src/testbed/world.js';
import { kubectl } from '../support/run.js';
import { approvalsCli, kubectlInBackground, pendingFor } from '../support/approvals.js';
import { waitFor } from '../support/wait.js';
import { testbed } from './hooks.js';

describe('approvals (kubectl → Gatehouse → kube-apiserver v1.35.4, gatehouse approvals CLI)', function () {
  this.timeout(90_000);
  let demo: RunningDemo;
  const audit: AuditRecord[] = [];
  const hooks: { body: Record<string, unknown>; at: number }[] = [];
  let receiver: Server;
  const dir = join(runRoot, `test-${process.pid}`, 'approvals');

  const admin = (args: string[]) => kubectl(testbed().kubeconfigs.admin, args);
  const security = () => demo.kubeconfigs.security;
  const approvalEvents = (id: string) => audit.filter((e): e is ApprovalEvent => e.kind === 'ApprovalEvent' && e.approvalID === id);

  async function start(extra: Record<string, unknown> = {}) {
    demo = await startDemo({
      dir,
      testbed: testbed(),
      audit: createMemoryAuditWriter((e) => audit.push(e)),
      approvals: {
        holdSeconds: 60,
        sweepSeconds: 0.5,
        webhook: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, retries: 1, backoffSeconds: 0.1 },
        ...extra,
      },
    });
  }

  before(async function () {
    this.timeout(120_000);
    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        hooks.push({ body: JSON.parse(body) as Record<string, unknown>, at: Date.now() });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    await admin(['delete', 'deployments,configmaps', '-n', 'prod', '-l', 'gatehouse-test=approvals', '--ignore-not-found']);
    await start();
  });
  after(async () => {
    await demo?.stop();
    await admin(['delete', 'deployments,configmaps', '-n', 'prod', '-l', 'gatehouse-test=approvals', '--ignore-not-found']);
    receiver?.close();
  });

  async function deployment(name: string) {
    const r = await admin(['create', 'deployment', name, '--image=registry.invalid/app:1', '-n', 'prod']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await admin(['label', 'deployment', name, '-n', 'prod', 'gatehouse-test=approvals'])).code, 0);
  }

  it("holds the agent's `kubectl delete deployment -n prod` until security approves with the CLI; the deployment is gone", async () => {
    await deployment('held-1');
    const held = kubectlInBackground(demo.kubeconfigs.agent, ['delete', 'deployment', 'held-1', '-n', 'prod']);
    const pending = await pendingFor(security(), 'held-1');
    assert.equal(pending.subject.requester.agent?.name, 'deploy-bot');
    assert.equal(pending.subject.requester.agent?.onBehalfOf, 'alice@example.com');
    assert.deepEqual(pending.approverGroups, ['security']);
    await sleep(500);
    assert.equal(held.exited(), false, 'kubectl waits while the approval is pending');

    // The preview: a server-side dry run as the agent, shown as a diff against the current object.
    const shown = await waitFor('the preview', async () => {
      const r = await approvalsCli(security(), ['show', pending.id]);
      return !/being prepared/.test(r.stdout) && r;
    });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /Request: +agent deploy-bot \(for alice@example\.com\): delete deployments\.apps held-1 in prod/);
    assert.match(shown.stdout, /--- current\n +\+\+\+ \(deleted\)/);
    assert.match(shown.stdout, /-kind: Deployment/);
    assert.match(shown.stdout, /- +name: held-1/);
    // The preview is a dry run: kubectl's DeleteOptions body must not turn it into the real delete.
    assert.equal((await admin(['get', 'deployment', 'held-1', '-n', 'prod', '-o', 'name'])).stdout.trim(), 'deployment.apps/held-1');

    const ok = await approvalsCli(security(), ['approve', pending.id, '--reason', 'planned cleanup']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`approval ${pending.id} approved`));
    const r = await held.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deployment.apps "held-1" deleted/);
    const gone = await admin(['get', 'deployment', 'held-1', '-n', 'prod']);
    assert.match(gone.stderr, /NotFound/);

    assert.deepEqual(
      approvalEvents(pending.id).map((e) => e.action),
      ['create', 'approve', 'use'],
    );
    const approveEvent = approvalEvents(pending.id)[1]!;
    assert.equal(approveEvent.actor, 'carol@example.com');
    assert.equal(approveEvent.reason, 'planned cleanup');
    const request = audit.find((e): e is AuditEvent => e.kind === 'Event' && e.gatehouse.approvalId === pending.id && e.stage === 'ResponseComplete');
    assert.ok(request, 'the request record names the approval');
    assert.equal(request.annotations['gatehouse.dev/approved-by'], 'carol@example.com');
    assert.equal(request.responseStatus?.code, 200);

    // The webhook: Slack-shaped, with the link to the page.
    const hook = hooks.find((h) => String(h.body['text']).includes(pending.id));
    assert.ok(hook, 'the webhook got the new approval');
    assert.match(String(hook.body['text']), new RegExp(`${demo.gateway.url}/gatehouse/approvals/${pending.id}`));
    assert.equal((hook.body['blocks'] as { type: string }[])[0]!.type, 'section');
  });

  it("the preview of a write to a Secret is masked as the requester's policy masks it", async () => {
    const held = kubectlInBackground(demo.kubeconfigs.agent, ['label', 'secret', 'db-credentials', '-n', 'dev', 'reviewed=yes']);
    const pending = await pendingFor(security(), 'db-credentials');
    const preview = await waitFor(
      'the preview',
      async () => JSON.parse((await approvalsCli(security(), ['show', pending.id, '-o', 'json'])).stdout).preview as { status: string; diff: string } | null,
    );
    assert.equal(preview.status, 'ok');
    assert.match(preview.diff, /\+ +reviewed: "?yes"?/);
    assert.match(preview.diff, /password: GATEHOUSE\+REDACTED\+\+/);
    for (const v of [canary('dev', 'db-password'), Buffer.from(canary('dev', 'db-password')).toString('base64')])
      assert.ok(!preview.diff.includes(v), 'the preview leaks the Secret');
    assert.equal((await approvalsCli(security(), ['deny', pending.id])).code, 0);
    assert.equal((await held.done).code, 1);
  });

  it('is single-use: the same command again waits for a new approval', async () => {
    await deployment('held-1');
    const again = kubectlInBackground(demo.kubeconfigs.agent, ['delete', 'deployment', 'held-1', '-n', 'prod']);
    const second = await pendingFor(security(), 'held-1');
    const used = approvalEvents(second.id);
    assert.deepEqual(
      used.map((e) => e.action),
      ['create'],
      'a new approval, not the used one',
    );
    assert.equal((await approvalsCli(security(), ['deny', second.id, '--reason', 'once was enough'])).code, 0);
    const r = await again.done;
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`Error from server \\(Forbidden\\): approval ${second.id} was denied by carol@example.com: once was enough`));
    assert.equal((await admin(['get', 'deployment', 'held-1', '-n', 'prod', '-o', 'name'])).stdout.trim(), 'deployment.apps/held-1');
    assert.deepEqual(
      approvalEvents(second.id).map((e) => e.action),
      ['create', 'deny'],
    );
  });

  it('refuses at once for people, with the id, the command and the URL; the requester cannot approve it, an approver can, and the retry succeeds', async () => {
    const erin = demo.kubeconfigFor('erin', { user: 'erin@example.com', groups: ['admins', 'security'] });
    assert.equal((await admin(['create', 'configmap', 'erin-1', '-n', 'prod'])).code, 0);
    const first = await kubectl(erin, ['delete', 'configmap', 'erin-1', '-n', 'prod']);
    assert.equal(first.code, 1);
    const m =
      /Error from server \(Forbidden\): this request needs approval: approval (ap-[a-z0-9]+) by a member of security is pending until \S+ \(deletes in namespace prod need approval from group security\)\. An approver runs `gatehouse approvals approve (ap-[a-z0-9]+)` or opens (https:\/\/\S+); then run the same command again\./.exec(
        first.stderr,
      );
    assert.ok(m, first.stderr);
    assert.equal(m[1], m[2]);
    assert.equal(m[3], `${demo.gateway.url}/gatehouse/approvals/${m[1]}`);

    const self = await approvalsCli(erin, ['approve', m[1]!]);
    assert.equal(self.code, 1);
    assert.match(self.stderr, /Forbidden: erin@example.com may not decide on approval ap-\w+: you cannot approve your own request/);
    const bob = await approvalsCli(demo.kubeconfigs.admin, ['approve', m[1]!]);
    assert.equal(bob.code, 1);
    assert.match(bob.stderr, /Forbidden: bob@example.com may not decide on approval ap-\w+: only members of security may decide on this approval/);

    // Running it again before anyone decides reuses the pending approval.
    const twice = await kubectl(erin, ['delete', 'configmap', 'erin-1', '-n', 'prod']);
    assert.match(twice.stderr, new RegExp(`approval ${m[1]} by a member`));

    assert.equal((await approvalsCli(security(), ['approve', m[1]!])).code, 0);
    const retry = await kubectl(erin, ['delete', 'configmap', 'erin-1', '-n', 'prod']);
    assert.equal(retry.code, 0, retry.stderr);
    assert.match(retry.stdout, /configmap "erin-1" deleted/);
  });

  it('refuses an approval by the person an agent acts for', async () => {
    const bot = demo.kubeconfigFor('bot-for-carol', { user: 'deploy-bot', groups: ['agents'], agent: 'deploy-bot', onBehalfOf: 'carol@example.com' });
    await deployment('carols-bot-1');
    const held = kubectlInBackground(bot, ['delete', 'deployment', 'carols-bot-1', '-n', 'prod']);
    const pending = await pendingFor(security(), 'carols-bot-1');
    const r = await approvalsCli(security(), ['approve', pending.id]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /you cannot approve a request made by an agent acting on your behalf \(deploy-bot\)/);
    const list = await approvalsCli(security(), ['list']);
    assert.match(list.stdout, new RegExp(`${pending.id} +pending`));
    assert.equal((await approvalsCli(security(), ['deny', pending.id])).code, 1, 'carol cannot deny it either');
    const erin = demo.kubeconfigFor('erin', { user: 'erin@example.com', groups: ['admins', 'security'] });
    assert.equal((await approvalsCli(erin, ['deny', pending.id, '--reason', 'no'])).code, 0);
    assert.match((await held.done).stderr, /was denied by erin@example.com: no/);
  });

  it('a slow webhook receiver does not slow the request path', async () => {
    const slow = createServer(() => {
      /* never answers */
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    await demo.stop();
    await start({ webhook: { url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/hook`, timeoutSeconds: 30, retries: 2 } });
    try {
      assert.equal((await admin(['create', 'configmap', 'slow-hook', '-n', 'prod'])).code, 0);
      await admin(['label', 'configmap', 'slow-hook', '-n', 'prod', 'gatehouse-test=approvals']);
      const t0 = Date.now();
      const r = await kubectl(demo.kubeconfigs.admin, ['delete', 'configmap', 'slow-hook', '-n', 'prod']);
      assert.match(r.stderr, /this request needs approval/);
      // Not a timing assertion on the gateway: the receiver would hold the request 30 s if it were in the path.
      assert.ok(Date.now() - t0 < 25_000, 'the refusal did not wait for the webhook');
    } finally {
      slow.closeAllConnections();
      slow.close();
    }
  });

  it('expires approvals nobody decided on (approvals.maxTtlSeconds caps the policy ttl); the held request gets a 403', async () => {
    await demo.stop();
    await start({ maxTtlSeconds: 2 });
    await deployment('expiring-1');
    const r = await kubectl(demo.kubeconfigs.agent, ['delete', 'deployment', 'expiring-1', '-n', 'prod']);
    assert.equal(r.code, 1);
    const m = /approval (ap-\w+) expired before anyone approved it; run the command again to ask anew/.exec(r.stderr);
    assert.ok(m, r.stderr);
    await waitFor('the expire event', () => approvalEvents(m[1]!).some((e) => e.action === 'expire'));
    assert.deepEqual(
      approvalEvents(m[1]!).map((e) => e.action),
      ['create', 'expire'],
    );
    const late = await approvalsCli(security(), ['approve', m[1]!]);
    assert.match(late.stderr, /Conflict: approval ap-\w+ is expired, not pending/);
  });

  it('pending approvals survive a restart; the request held at shutdown gets a clean error and its retry, once approved, succeeds', async () => {
    await demo.stop();
    await start();
    await deployment('restart-1');
    const held = kubectlInBackground(demo.kubeconfigs.agent, ['delete', 'deployment', 'restart-1', '-n', 'prod']);
    const pending = await pendingFor(security(), 'restart-1');
    await demo.stop();
    const cut = await held.done;
    assert.equal(cut.code, 1);
    assert.match(
      cut.stderr,
      new RegExp(`Error from server \\(ServiceUnavailable\\): the gateway is shutting down while this request waited for approval ${pending.id}`),
    );
    await start();
    const after = await pendingFor(security(), 'restart-1');
    assert.equal(after.id, pending.id, 'the same approval, from the store');
    assert.equal((await approvalsCli(security(), ['approve', pending.id])).code, 0);
    const retry = await kubectl(demo.kubeconfigs.agent, ['delete', 'deployment', 'restart-1', '-n', 'prod']);
    assert.equal(retry.code, 0, retry.stderr);
    assert.match(retry.stdout, /deployment.apps "restart-1" deleted/);
  });
});
