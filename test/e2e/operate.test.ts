/**
 * Operating the gateway: its metrics scraped by a real Prometheus (Debian's),
 * and its policy reloaded while a watch is open — kubectl 1.32, the demo's
 * identities, kube-apiserver v1.35.4.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent, AuditRecord } from '../../src/audit/event.js';
import { createMemoryAuditWriter } from '../../src/audit/writer.js';
import { startDemo, type RunningDemo } from '../../src/demo/demo.js';
import { projectRoot, runRoot } from '../../src/paths.js';
import { freePort } from '../../src/testbed/ports.js';
import { kubectl } from '../support/run.js';
import { waitFor } from '../support/wait.js';
import { testbed } from './hooks.js';

describe('operate: Prometheus metrics and policy hot reload (kubectl → Gatehouse → kube-apiserver v1.35.4)', function () {
  this.timeout(120_000);
  let demo: RunningDemo;
  let prometheus: ChildProcess | undefined;
  let promUrl = '';
  const audit: AuditRecord[] = [];
  const dir = join(runRoot, `test-${process.pid}`, 'operate');
  const policyDir = join(dir, 'policy');
  const admin = (args: string[]) => kubectl(testbed().kubeconfigs.admin, args);
  const alice = (args: string[]) => kubectl(demo.kubeconfigs.alice, ['-n', 'dev', ...args]);

  async function query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    assert.equal(body.status, 'success');
    return body.data.result;
  }

  before(async function () {
    this.timeout(120_000);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    cpSync(join(projectRoot, 'policies/gatehouse'), policyDir, { recursive: true });
    await admin(['delete', 'configmap', 'reload-canary', '-n', 'dev', '--ignore-not-found']);
    demo = await startDemo({ dir, testbed: testbed(), audit: createMemoryAuditWriter((e) => audit.push(e)), policyDir });
  });
  after(async () => {
    prometheus?.kill('SIGTERM');
    await demo?.stop();
    await admin(['delete', 'configmap', 'reload-canary', '-n', 'dev', '--ignore-not-found']);
  });

  it('the demo writes where its metrics are; Prometheus scrapes the request counter and the policy revision', async () => {
    const metricsUrl = readFileSync(join(dir, 'metrics.url'), 'utf8').trim();
    assert.equal(metricsUrl, demo.gateway.metricsUrl);
    const target = new URL(metricsUrl);
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: gatehouse\n    static_configs:\n      - targets: ['${target.host}']\n`,
    );
    prometheus = spawn(
      'prometheus',
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 3; i++) assert.equal((await alice(['get', 'configmaps'])).code, 0);
    assert.equal((await alice(['delete', 'configmap', 'app-config', '-n', 'prod'])).code, 1);
    // The main listener keeps /metrics for the API server: it is not the gateway's.
    const onMain = await alice(['get', '--raw', '/metrics']);
    assert.doesNotMatch(onMain.stdout, /gatehouse_requests_total/);

    const listed = await waitFor(
      'Prometheus has the request counter',
      async () => {
        const r = await query('sum(gatehouse_requests_total{verb="list",resource="configmaps",effect="allow",code="200"})').catch(() => []);
        return r.length > 0 && Number(r[0]!.value[1]) >= 3 && r;
      },
      60_000,
    );
    assert.ok(Number(listed[0]!.value[1]) >= 3);
    const denied = await query('gatehouse_requests_total{verb="delete",effect="deny",code="403"}');
    assert.equal(denied.length, 1);
    // The three lists were the same request as far as the policy reads it: decided once, remembered twice.
    const hits = await query('gatehouse_policy_decision_cache_total{result="hit"}');
    assert.ok(Number(hits[0]?.value[1]) >= 2, JSON.stringify(hits));
    const info = await query('gatehouse_policy_info');
    assert.deepEqual(
      info.map((s) => s.metric['revision']),
      [demo.gateway.policyRevision],
    );
  });

  it('a policy changed on disk is reloaded without cutting an open watch or exec session; a broken one keeps the old one serving', async () => {
    const before = demo.gateway.policyRevision;
    const watch = spawn('kubectl', ['--kubeconfig', demo.kubeconfigs.alice, 'get', 'configmaps', '-n', 'dev', '-w', '-o', 'name'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // An exec session open across the reload, too: `cat` echoes what is typed into it.
    const shell = spawn('kubectl', ['--kubeconfig', demo.kubeconfigs.alice, 'exec', '-i', 'web-0', '-n', 'dev', '--', 'cat'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let echoed = '';
    shell.stdout.setEncoding('utf8').on('data', (d: string) => (echoed += d));
    const shellExit = new Promise<number | null>((r) => shell.once('exit', r));
    let seen = '';
    let exited = false;
    watch.stdout.setEncoding('utf8').on('data', (d: string) => (seen += d));
    watch.on('exit', () => (exited = true));
    try {
      await waitFor('the watch is open', async () => seen.includes('configmap/app-config'), 20_000);
      shell.stdin.write('before the reload\n');
      await waitFor('the session echoes', async () => echoed.includes('before the reload'), 20_000);
      // A new rule: the canary ConfigMap is denied to everyone.
      writeFileSync(
        join(policyDir, 'access', 'reload.rego'),
        'package gatehouse.access\n\ndeny contains "the reload canary is denied" if {\n\tinput.resourceAttributes.name == "reload-canary"\n}\n',
      );
      await waitFor('the new revision serves', async () => demo.gateway.policyRevision !== before, 30_000);
      const after = demo.gateway.policyRevision;
      const refused = await alice(['get', 'configmap', 'reload-canary']);
      assert.match(refused.stderr, /the reload canary is denied/);
      const record = audit.findLast((e): e is AuditEvent => e.kind === 'Event' && e.stage === 'ResponseComplete' && e.objectRef?.name === 'reload-canary');
      assert.equal(record?.gatehouse.policyRevision, after, 'the record names the revision that decided');

      // The watch opened under the old revision is still there, and still delivers.
      assert.equal(exited, false, 'the reload cut the watch');
      assert.equal((await admin(['create', 'configmap', 'reload-canary', '-n', 'dev', '--from-literal=a=b'])).code, 0);
      await waitFor('the open watch sees a change made after the reload', async () => seen.includes('configmap/reload-canary'), 20_000);
      shell.stdin.write('after the reload\n');
      await waitFor('the session opened before the reload still echoes', async () => echoed.includes('after the reload'), 20_000);
      shell.stdin.end();
      assert.equal(await shellExit, 0);

      // A policy that does not compile: logged, counted, and the last good one keeps serving.
      writeFileSync(join(policyDir, 'access', 'reload.rego'), 'package gatehouse.access\n\ndeny contains "x" if {\n');
      const metrics = async () => (await fetch(demo.gateway.metricsUrl!)).text();
      await waitFor('a failed reload is counted', async () => /gatehouse_policy_reloads_total\{result="failure"\} [1-9]/.test(await metrics()), 30_000);
      assert.equal(demo.gateway.policyRevision, after);
      assert.match((await alice(['get', 'configmap', 'reload-canary'])).stderr, /the reload canary is denied/);
      // Still ready: a bad policy on disk is not an outage.
      assert.equal((await alice(['get', '--raw', '/readyz'])).stdout.trim(), 'ok');
      assert.equal(exited, false);
    } finally {
      watch.kill();
      shell.kill();
      rmSync(join(policyDir, 'access', 'reload.rego'), { force: true });
    }
  });
});
