/**
 * The per-user limit on long-running requests (limits.maxLongRunningPerUser) as kubectl meets it:
 * a watch past the limit is refused with 429 and Retry-After, kubectl waits and tries again on its
 * own, and gets in once a place is free; if none comes free, it prints the gateway's reason.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { AuditEvent } from '../../src/audit/event.js';
import { createMemoryAuditWriter } from '../../src/audit/writer.js';
import { DEMO_USERS, startDemo, type RunningDemo } from '../../src/demo/demo.js';
import { runRoot } from '../../src/paths.js';
import { kubectl } from '../support/run.js';
import { waitFor } from '../support/wait.js';
import { testbed } from './hooks.js';

describe('limits: kubectl against the per-user limit on watches (kube-apiserver v1.35.4)', function () {
  this.timeout(90_000);
  let demo: RunningDemo;
  const audit: AuditEvent[] = [];
  const children: ChildProcess[] = [];

  before(async function () {
    this.timeout(120_000);
    demo = await startDemo({
      dir: join(runRoot, `test-${process.pid}`, 'demo-limits'),
      testbed: testbed(),
      audit: createMemoryAuditWriter((e) => e.kind === 'Event' && audit.push(e)),
      limits: { maxLongRunningPerUser: 1 },
    });
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await demo?.stop();
  });

  const alice = DEMO_USERS.alice.user;
  const admin = (args: string[]) => kubectl(testbed().kubeconfigs.admin, args);
  /** `kubectl get configmaps -n dev -w -o name` as alice, with what it has printed so far. */
  function watch(): { out: () => string; err: () => string; exit: Promise<number | null>; child: ChildProcess } {
    const child = spawn('kubectl', ['--kubeconfig', demo.kubeconfigs.alice, 'get', 'configmaps', '-n', 'dev', '-w', '-o', 'name'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    return { out: () => out, err: () => err, exit: new Promise((r) => child.once('exit', r)), child };
  }
  const watches = (pred: (e: AuditEvent) => boolean) =>
    audit.filter((e) => e.verb === 'watch' && e.user.username === alice && e.objectRef?.resource === 'configmaps' && pred(e));
  const refusals = () => watches((e) => e.responseStatus?.code === 429 && e.gatehouse.error?.code === 'GATEHOUSE_TOO_MANY_REQUESTS');
  const started = () => watches((e) => e.stage === 'ResponseStarted' && e.responseStatus?.code === 200);

  it('a watch past the limit is refused with Retry-After; kubectl tries again by itself and gets in once the first watch ends, and sees changes', async () => {
    const first = watch();
    await waitFor('the first watch is open', () => started().length === 1, 30_000);
    const second = watch();
    await waitFor('the second watch is refused with 429 TooManyRequests', () => refusals().length >= 1, 30_000);
    // Its list (not long-running) went through; only the watch waits.
    await waitFor('the second kubectl printed its list', () => second.out().includes('configmap/app-config'), 10_000);
    first.child.kill('SIGTERM');
    await first.exit;
    // client-go waits the Retry-After's second and watches again: now there is a place.
    await waitFor('the second watch gets in after the first one ended', () => started().length === 2, 30_000);
    assert.equal((await admin(['create', 'configmap', 'limits-canary', '-n', 'dev', '--from-literal=a=b'])).code, 0);
    try {
      await waitFor('the second watch sees a change', () => second.out().includes('configmap/limits-canary'), 30_000);
    } finally {
      await admin(['delete', 'configmap', 'limits-canary', '-n', 'dev', '--ignore-not-found']);
    }
    second.child.kill('SIGTERM');
    await second.exit;
  });

  it("with no place coming free, kubectl gives up after its retries and prints the gateway's reason", async () => {
    const holder = watch();
    const before = started().length;
    await waitFor('the holding watch is open', () => started().length === before + 1, 30_000);
    const refusedBefore = refusals().length;
    const r = await kubectl(demo.kubeconfigs.alice, ['get', 'configmaps', '-n', 'dev', '-w', '-o', 'name']);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /Error from server \(TooManyRequests\): alice@example\.com already has 1 watches, follows and sessions open through this gateway \(limits\.maxLongRunningPerUser\)/,
    );
    // It did try again, as the Retry-After told it to, before it gave up.
    assert.ok(refusals().length - refusedBefore > 1, `refused ${refusals().length - refusedBefore} times`);
    holder.child.kill('SIGTERM');
    await holder.exit;
  });
});
