/**
 * Time-bound grants end to end: an agent's first write is held, security
 * approves it with `--for 10m`, and the agent's next writes of the same kind
 * in the same namespace go through at once, recorded with the grant — until
 * `gatehouse grants revoke`. kubectl 1.32 and the CLI, through the demo
 * gateway, in front of kube-apiserver v1.35.4.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ApprovalEvent, AuditEvent } from '../../src/audit/event.js';
import { startDemo, type RunningDemo } from '../../src/demo/demo.js';
import { projectRoot, runRoot } from '../../src/paths.js';
import { approvalsCli, kubectlInBackground, pendingFor } from '../support/approvals.js';
import { kubectl, run } from '../support/run.js';
import { readAudit } from '../support/audit.js';
import { testbed } from './hooks.js';

const grantsCli = (kubeconfig: string, args: string[]) =>
  run(process.execPath, [join(projectRoot, 'bin/gatehouse.js'), 'grants', ...args, '--kubeconfig', kubeconfig]);

describe('grants: one approval for a rollout, revocable at once', function () {
  this.timeout(120_000);
  let demo: RunningDemo;
  const admin = (args: string[]) => kubectl(testbed().kubeconfigs.admin, args);
  const records = () => readAudit(join(demo.dir, 'audit.log'));

  before(async function () {
    this.timeout(120_000);
    demo = await startDemo({ dir: join(runRoot, `test-${process.pid}`, 'grants'), testbed: testbed() });
  });
  after(async () => {
    await demo?.stop();
    await admin(['delete', 'configmap', 'grant-1', 'grant-2', 'grant-3', 'grant-4', 'grant-5', '-n', 'dev', '--ignore-not-found']);
  });

  const label = (name: string) => ['label', 'configmap', name, '-n', 'dev', 'rollout=2', '--overwrite'];

  before(async () => {
    for (let i = 1; i <= 5; i++) assert.equal((await admin(['create', 'configmap', `grant-${i}`, '-n', 'dev', '--from-literal=a=1'])).code, 0);
  });

  it("an agent's first write is held; approved with --for 10m, the next ones go through at once, named in the audit, until revoked", async () => {
    const first = kubectlInBackground(demo.kubeconfigs.agent, label('grant-1'));
    const approval = await pendingFor(demo.kubeconfigs.security, 'grant-1');
    const ok = await approvalsCli(demo.kubeconfigs.security, ['approve', approval.id, '--for', '10m', '--reason', 'rollout']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^grant gr-[0-9a-f]+ until \S+: agent:deploy-bot may patch configmaps in dev$/m);
    const grantId = /grant (gr-[0-9a-f]+)/.exec(ok.stdout)![1]!;
    assert.equal((await first.done).code, 0);

    // Within the grant: no hold (a held request would wait for the demo's 600 s hold, past this timeout).
    for (const name of ['grant-2', 'grant-3']) {
      const r = await kubectl(demo.kubeconfigs.agent, [...label(name), '--request-timeout=20s']);
      assert.equal(r.code, 0, r.stderr);
    }
    const events = records().filter((e): e is AuditEvent => e.kind === 'Event' && e.stage === 'ResponseComplete' && e.objectRef?.resource === 'configmaps');
    const granted = events.filter((e) => e.annotations['gatehouse.dev/grant'] === grantId);
    assert.equal(granted.length, 2, 'the two later writes name the grant');
    assert.equal(granted[0]!.annotations['gatehouse.dev/granted-by'], 'carol@example.com');
    assert.equal(granted[0]!.annotations['gatehouse.dev/effect'], 'approve', 'the policy still says approve: the grant stood in for the approval');

    const listed = await grantsCli(demo.kubeconfigs.security, ['list']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`${grantId} +active .*carol@example\\.com +${approval.id} +agent:deploy-bot may patch configmaps in dev`));
    const revoked = await grantsCli(demo.kubeconfigs.security, ['revoke', grantId]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const revocation = records().find((e): e is ApprovalEvent => e.kind === 'ApprovalEvent' && e.action === 'revoke');
    assert.equal(revocation?.grant?.id, grantId);
    assert.equal(revocation.actor, 'carol@example.com');

    // Revoked: the next write waits for an approval again.
    const after = kubectlInBackground(demo.kubeconfigs.agent, label('grant-4'));
    const again = await pendingFor(demo.kubeconfigs.security, 'grant-4');
    assert.equal((await approvalsCli(demo.kubeconfigs.security, ['deny', again.id, '--reason', 'enough'])).code, 0);
    const r = await after.done;
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /denied by carol@example\.com: enough/);
  });

  it('a grant longer than the policy allows is refused, and the approval stays pending', async () => {
    const held = kubectlInBackground(demo.kubeconfigs.agent, label('grant-5'));
    const approval = await pendingFor(demo.kubeconfigs.security, 'grant-5');
    const tooLong = await approvalsCli(demo.kubeconfigs.security, ['approve', approval.id, '--for', '2h']);
    assert.notEqual(tooLong.code, 0);
    assert.match(tooLong.stderr, /the policy allows a grant of at most 3600 s/);
    assert.equal((await approvalsCli(demo.kubeconfigs.security, ['deny', approval.id])).code, 0);
    assert.notEqual((await held.done).code, 0);
  });
});
