/**
 * The test bed itself, against the real kube-apiserver v1.35.4 + etcd v3.6.5 it
 * starts and the machine's kubectl.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, readState } from '../../src/testbed/controlplane.js';
import { projectRoot, runRoot } from '../../src/paths.js';
import { PEOPLE } from '../../src/testbed/world.js';
import { kubectl } from '../support/run.js';
import { rawClient } from '../support/upstream.js';
import { waitFor } from '../support/wait.js';
import { testbed } from './hooks.js';

const alice = ['--as', PEOPLE.alice.user, '--as-group', 'dev'];

describe('test bed (kube-apiserver v1.35.4, etcd v3.6.5, kubectl on PATH)', () => {
  it('the admin kubeconfig lists the seeded namespaces', async () => {
    const r = await kubectl(testbed().kubeconfigs.admin, ['get', 'ns', '-o', 'name']);
    assert.equal(r.code, 0, r.stderr);
    const names = r.stdout.trim().split('\n');
    assert.ok(names.includes('namespace/dev'), r.stdout);
    assert.ok(names.includes('namespace/prod'), r.stdout);
  });

  it('reports its real version', async () => {
    const r = await kubectl(testbed().kubeconfigs.admin, ['get', '--raw', '/version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).gitVersion, 'v1.35.4');
  });

  it('the gateway identity cannot read anything as itself', async () => {
    const r = await kubectl(testbed().kubeconfigs.gateway, ['get', 'secrets', '-n', 'dev']);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /Error from server \(Forbidden\): secrets is forbidden: User "gatehouse-gateway" cannot list resource "secrets" in API group "" in the namespace "dev"/,
    );
  });

  it('the gateway identity may impersonate a dev user, who may edit in dev', async () => {
    const r = await kubectl(testbed().kubeconfigs.gateway, ['get', 'secrets', '-n', 'dev', '-o', 'name', ...alice]);
    assert.equal(r.code, 0, r.stderr);
    const names = r.stdout.trim().split('\n');
    assert.ok(names.includes('secret/api-token') && names.includes('secret/db-credentials'), r.stdout);
    const can = await kubectl(testbed().kubeconfigs.gateway, ['auth', 'can-i', 'delete', 'deployments', '-n', 'dev', ...alice]);
    assert.equal(can.stdout.trim(), 'yes');
  });

  it('RBAC lets a dev user read Secrets in prod but not change them', async () => {
    const read = await kubectl(testbed().kubeconfigs.gateway, ['get', 'secrets', '-n', 'prod', '-o', 'name', ...alice]);
    assert.equal(read.code, 0, read.stderr);
    assert.match(read.stdout, /secret\/db-credentials/);
    const del = await kubectl(testbed().kubeconfigs.gateway, ['delete', 'secret', 'api-token', '-n', 'prod', '--dry-run=server', ...alice]);
    assert.notEqual(del.code, 0);
    assert.match(
      del.stderr,
      /secrets "api-token" is forbidden: User "alice@example.com" cannot delete resource "secrets" in API group "" in the namespace "prod"/,
    );
  });

  it('a user in no group is forbidden everywhere', async () => {
    const r = await kubectl(testbed().kubeconfigs.gateway, ['get', 'configmaps', '-n', 'dev', '--as', PEOPLE.dave.user]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /User "dave@example.com" cannot list resource "configmaps"/);
  });

  it('the gateway may not impersonate a user extra it was not granted', async () => {
    // kubectl 1.32 has no --as-user-extra; send the header itself.
    const client = rawClient(testbed().kubeconfigs.gateway);
    try {
      const headers = { 'impersonate-user': PEOPLE.alice.user, 'impersonate-group': 'dev' };
      const granted = await client.get('/api/v1/namespaces/dev/configmaps', { ...headers, 'impersonate-extra-gatehouse.dev%2fagent': 'deploy-bot' });
      assert.equal(granted.status, 200, JSON.stringify(granted.body));
      const refused = await client.get('/api/v1/namespaces/dev/configmaps', { ...headers, 'impersonate-extra-scopes': 'all' });
      assert.equal(refused.status, 403);
      assert.match(String(refused.body['message']), /cannot impersonate resource "userextras\/scopes"/);
    } finally {
      await client.close();
    }
  });

  it('records what it was asked, as whom, in its own audit log', async () => {
    await kubectl(testbed().kubeconfigs.gateway, ['get', 'configmap', 'app-config', '-n', 'dev', ...alice]);
    const { readFileSync } = await import('node:fs');
    // The audit backend writes in batches: wait for the line, not for a time.
    const e = await waitFor('an audit event for the impersonated get', () =>
      readFileSync(testbed().auditLog, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .find((ev) => ev.objectRef?.name === 'app-config' && ev.impersonatedUser?.username === PEOPLE.alice.user),
    );
    assert.equal(e.user.username, 'gatehouse-gateway');
  });
});

describe('test bed lifecycle', () => {
  it('stops the servers and removes its folder when the process that owns it is killed', async function () {
    this.timeout(120_000);
    const dir = join(runRoot, `test-${process.pid}`, 'orphan');
    // A separate owner process, killed with SIGKILL: it gets no chance to clean up.
    const owner = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { up } from ${JSON.stringify(join(projectRoot, 'dist/src/testbed/controlplane.js'))};
       await up({ dir: ${JSON.stringify(dir)}, ownerPid: process.pid });
       console.log('ready');
       setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      owner.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      owner.on('exit', (code) => reject(new Error(`owner exited early with ${code}`)));
    });
    const state = readState(dir)!;
    assert.ok(isAlive(state.pids.apiserver) && isAlive(state.pids.etcd));
    owner.kill('SIGKILL');
    const deadline = Date.now() + 20_000;
    while ((isAlive(state.pids.apiserver) || isAlive(state.pids.etcd) || existsSync(dir)) && Date.now() < deadline) await sleep(200);
    assert.equal(isAlive(state.pids.apiserver), false, 'kube-apiserver still running');
    assert.equal(isAlive(state.pids.etcd), false, 'etcd still running');
    assert.equal(existsSync(dir), false, 'run folder left behind');
  });

  it('attack: the owner killed half-way through `down` (after the servers got SIGTERM) leaves nothing running: the watchdog finishes', async function () {
    this.timeout(120_000);
    const dir = join(runRoot, `test-${process.pid}`, 'half-down');
    // The owner brings the test bed up, starts taking it down, and is killed while it waits for the
    // servers to exit, as a supervisor's SIGKILL after a SIGTERM would do to a draining demo.
    const owner = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { down, up } from ${JSON.stringify(join(projectRoot, 'dist/src/testbed/controlplane.js'))};
       await up({ dir: ${JSON.stringify(dir)}, ownerPid: process.pid });
       console.log('ready');
       process.stdin.once('data', () => { console.log('down'); void down(${JSON.stringify(dir)}); });`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let out = '';
    owner.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    await waitFor(
      'the owner to bring the test bed up',
      () => out.includes('ready') || (owner.exitCode !== null && assert.fail(`owner exited early with ${owner.exitCode}`)),
      90_000,
    );
    const state = readState(dir)!;
    owner.stdin.write('go\n');
    await waitFor('the owner to start taking it down', () => out.includes('down'));
    // down() signals the servers in the same turn of the event loop that printed 'down'.
    owner.kill('SIGKILL');
    await waitFor(
      'every server and the watchdog to be gone',
      () => ![state.pids.apiserver, state.pids.etcd, state.pids.kubelet, state.pids.watchdog].some(isAlive),
      30_000,
    ).catch(() => {
      assert.deepEqual(
        Object.entries(state.pids)
          .filter(([, p]) => isAlive(p))
          .map(([n]) => n),
        [],
        'left running',
      );
    });
    await waitFor('the run folder to be removed', () => !existsSync(dir), 10_000);
  });
});
