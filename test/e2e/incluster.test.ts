/**
 * upstream.inCluster from exactly what a pod has: KUBERNETES_SERVICE_HOST/PORT
 * and a service-account folder holding a real token from the TokenRequest API
 * (kube-apiserver v1.35.4) and the cluster's CA. The token is rotated mid-run
 * the way the kubelet does it, and the old one revoked: requests keep working.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDemo, type RunningDemo } from '../../src/demo/demo.js';
import { runRoot } from '../../src/paths.js';
import { kubectl } from '../support/run.js';
import { waitFor } from '../support/wait.js';
import { testbed } from './hooks.js';

describe('upstream.inCluster (a service-account token from the TokenRequest API, rotated mid-run)', function () {
  this.timeout(120_000);
  let demo: RunningDemo;
  let first = '';
  const dir = join(runRoot, `test-${process.pid}`, 'incluster');
  const sa = join(dir, 'serviceaccount');
  const saved = { host: process.env['KUBERNETES_SERVICE_HOST'], port: process.env['KUBERNETES_SERVICE_PORT'] };
  const admin = (args: string[], input?: string) => kubectl(testbed().kubeconfigs.admin, args, input);

  async function token(binding: string): Promise<string> {
    assert.equal((await admin(['create', 'secret', 'generic', binding, '-n', 'gatehouse-system'])).code, 0);
    const r = await admin([
      'create',
      'token',
      'gatehouse',
      '-n',
      'gatehouse-system',
      '--bound-object-kind',
      'Secret',
      '--bound-object-name',
      binding,
      '--duration',
      '10m',
    ]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  }

  /** As the kubelet's atomic writer does: the new file is renamed over the old one. */
  function mount(t: string): void {
    writeFileSync(join(sa, '..token.tmp'), t, { mode: 0o600 });
    renameSync(join(sa, '..token.tmp'), join(sa, 'token'));
  }

  before(async function () {
    this.timeout(120_000);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(sa, { recursive: true });
    const tb = testbed();
    await admin(['delete', 'namespace', 'gatehouse-system', '--ignore-not-found', '--wait=true']);
    await admin(['delete', 'clusterrolebinding', 'gatehouse-system:impersonator', '--ignore-not-found']);
    assert.equal((await admin(['create', 'namespace', 'gatehouse-system'])).code, 0);
    assert.equal((await admin(['create', 'serviceaccount', 'gatehouse', '-n', 'gatehouse-system'])).code, 0);
    // The gateway's service account may impersonate, and nothing else (the chart's ClusterRole).
    const bound = await admin([
      'create',
      'clusterrolebinding',
      'gatehouse-system:impersonator',
      '--clusterrole=testbed:impersonator',
      '--serviceaccount=gatehouse-system:gatehouse',
    ]);
    assert.equal(bound.code, 0, bound.stderr);
    copyFileSync(tb.caFile, join(sa, 'ca.crt'));
    writeFileSync(join(sa, 'namespace'), 'gatehouse-system');
    first = await token('token-binding-1');
    mount(first);
    const url = new URL(tb.server);
    process.env['KUBERNETES_SERVICE_HOST'] = url.hostname;
    process.env['KUBERNETES_SERVICE_PORT'] = url.port;
    demo = await startDemo({ dir, testbed: tb, upstream: { inCluster: { serviceAccountDir: sa } } });
  });
  after(async () => {
    await demo?.stop();
    // Put back as they were: the other suites' gateways must not think they run in a pod.
    if (saved.host === undefined) delete process.env['KUBERNETES_SERVICE_HOST'];
    else process.env['KUBERNETES_SERVICE_HOST'] = saved.host;
    if (saved.port === undefined) delete process.env['KUBERNETES_SERVICE_PORT'];
    else process.env['KUBERNETES_SERVICE_PORT'] = saved.port;
    await admin(['delete', 'namespace', 'gatehouse-system', '--ignore-not-found', '--wait=false']);
    await admin(['delete', 'clusterrolebinding', 'gatehouse-system:impersonator', '--ignore-not-found']);
  });

  it('forwards as the service account, impersonating the caller; keeps working after the token is rotated and the old one revoked', async () => {
    const alice = (args: string[]) => kubectl(demo.kubeconfigs.alice, ['-n', 'dev', ...args]);
    const whoami = await alice(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    assert.equal(whoami.stdout, 'alice@example.com', whoami.stderr);
    assert.equal((await alice(['get', 'configmap', 'app-config', '-o', 'name'])).stdout.trim(), 'configmap/app-config');

    // The kubelet rotates the projected token; the old one stops working when its bound object goes.
    mount(await token('token-binding-2'));
    assert.equal((await admin(['delete', 'secret', 'token-binding-1', '-n', 'gatehouse-system'])).code, 0);
    const tb = testbed();
    const withFirst = () => kubectl('/dev/null', ['--server', tb.server, '--certificate-authority', tb.caFile, '--token', first, 'get', '--raw', '/version']);
    await waitFor('the old token is revoked', async () => /Unauthorized/.test((await withFirst()).stderr), 20_000);
    await sleep(1100);
    const after = await alice(['get', 'configmap', 'app-config', '-o', 'name']);
    assert.equal(after.stdout.trim(), 'configmap/app-config', after.stderr);
    const again = await alice(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    assert.equal(again.stdout, 'alice@example.com', again.stderr);
  });
});
