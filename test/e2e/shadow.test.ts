/**
 * Shadow mode end to end (policy.shadow): a candidate policy decides every
 * request beside the live one, in the gateway in front of kube-apiserver
 * v1.35.4. kubectl gets the live decision, always; the audit record and a
 * metric say where the candidate would have decided otherwise; a candidate
 * that does not compile never stops the gateway.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent } from '../../src/audit/event.js';
import { startDemo, type RunningDemo } from '../../src/demo/demo.js';
import { runRoot } from '../../src/paths.js';
import { writeCandidate } from '../support/policy.js';
import { kubectl } from '../support/run.js';
import { readAudit } from '../support/audit.js';
import { testbed } from './hooks.js';

describe('policy.shadow: a candidate decides beside the live policy, recorded and never enforced', function () {
  this.timeout(90_000);
  const root = join(runRoot, `test-${process.pid}`, 'shadow');
  let demo: RunningDemo;
  const events = () => readAudit(join(demo.dir, 'audit.log')).filter((e): e is AuditEvent => e.kind === 'Event' && e.stage === 'ResponseComplete');

  before(async function () {
    this.timeout(120_000);
    // The candidate: admins lose their blanket allow, and Secret values are no longer masked.
    mkdirSync(root, { recursive: true });
    const candidate = writeCandidate(join(root, 'candidate'));
    demo = await startDemo({ dir: join(root, 'demo'), testbed: testbed(), policy: { shadow: { dir: candidate } } });
  });
  after(async () => {
    await demo?.stop();
  });

  it('the caller gets the live decision; the record names what the candidate would have done', async () => {
    const admin = await kubectl(demo.kubeconfigs.admin, ['get', 'secret', 'db-credentials', '-n', 'prod', '-o', 'jsonpath={.data}']);
    assert.equal(admin.code, 0, admin.stderr);
    assert.doesNotMatch(admin.stdout, /GATEHOUSE\+REDACTED/, 'live: admins read Secret values');
    const alice = await kubectl(demo.kubeconfigs.alice, ['get', 'secret', 'db-credentials', '-n', 'dev', '-o', 'jsonpath={.data}']);
    assert.equal(alice.code, 0, alice.stderr);
    assert.match(alice.stdout, /GATEHOUSE\+REDACTED/, 'live: still masked for alice, whatever the candidate says');
    const configmaps = await kubectl(demo.kubeconfigs.alice, ['get', 'configmaps', '-n', 'dev']);
    assert.equal(configmaps.code, 0, configmaps.stderr);

    const all = events();
    const bob = all.find((e) => e.user.username === 'bob@example.com' && e.objectRef?.resource === 'secrets' && e.objectRef.name === 'db-credentials');
    assert.equal(bob?.annotations['gatehouse.dev/effect'], 'allow');
    assert.equal(bob.annotations['gatehouse.dev/shadow-effect'], 'deny');
    assert.equal(bob.annotations['gatehouse.dev/shadow-change'], 'effect');
    assert.match(bob.annotations['gatehouse.dev/shadow-reasons'] ?? '', /no rule allows this request/);
    const masked = all.find((e) => e.user.username === 'alice@example.com' && e.objectRef?.resource === 'secrets');
    assert.equal(masked?.annotations['gatehouse.dev/shadow-change'], 'mask');
    assert.deepEqual((masked.gatehouse.shadow as { mask: string[] }).mask.includes('redact $.dataX.*'), true);
    const same = all.find((e) => e.user.username === 'alice@example.com' && e.objectRef?.resource === 'configmaps');
    assert.ok(same && !('gatehouse.dev/shadow-effect' in same.annotations), 'no annotation where both agree');

    const metrics = await (await fetch(demo.gateway.metricsUrl!)).text();
    assert.match(metrics, /^gatehouse_shadow_decisions_total\{outcome="differs",change="effect"\} [1-9]/m);
    assert.match(metrics, /^gatehouse_shadow_decisions_total\{outcome="same",change=""\} [1-9]/m);
  });

  it('a candidate that does not compile is left out: the gateway serves, with the live policy alone', async () => {
    const broken = join(root, 'broken');
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, 'p.rego'), 'package gatehouse\nthis is not rego\n');
    const other = await startDemo({ dir: join(root, 'demo-broken'), testbed: testbed(), policy: { shadow: { dir: broken } } });
    try {
      const r = await kubectl(other.kubeconfigs.alice, ['get', 'configmaps', '-n', 'dev', '-o', 'name']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /configmap\/app-config/);
    } finally {
      await other.stop();
    }
  });
});
