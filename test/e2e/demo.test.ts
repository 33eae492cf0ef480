/**
 * The README's first command as a user meets it: `gatehouse demo` as a process,
 * its kubeconfigs used by the real kubectl, and a clean stop on Ctrl-C.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { isAlive, readState } from '../../src/testbed/controlplane.js';
import { projectRoot, runRoot } from '../../src/paths.js';
import { kubectl, run } from '../support/run.js';
import { waitFor } from '../support/wait.js';

/** `gatehouse demo ARGS` as a process in `dir`, its output collected as it comes. */
function spawnDemo(dir: string, args: readonly string[]) {
  const child = spawn(process.execPath, [join(projectRoot, 'bin/gatehouse.js'), 'demo', ...args], {
    env: { ...process.env, GATEHOUSE_DEMO_DIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = { child, out: '', log: '' };
  child.stdout.on('data', (d: Buffer) => (p.out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (p.log += d.toString()));
  return p;
}

describe('gatehouse demo (the embedded default, as a process)', function () {
  this.timeout(120_000);

  it('serves the demo identities, answers health checks, and cleans up on SIGINT', async () => {
    const dir = join(runRoot, `test-${process.pid}`, 'demo-process');
    const p = spawnDemo(dir, []);
    const child = p.child;
    try {
      const deadline = Date.now() + 90_000;
      while (!existsSync(join(dir, 'ready')) && Date.now() < deadline && child.exitCode === null) await sleep(200);
      assert.ok(existsSync(join(dir, 'ready')), `demo did not become ready: ${p.out}`);
      // `ready` is written before the message is printed, and the pipe may deliver it a moment later.
      await waitFor('the demo to print how to try it', () => p.out.includes('Stop with Ctrl-C') || child.exitCode !== null);
      assert.match(p.out, /Try:\n.*kubectl --kubeconfig .*alice\.kubeconfig get configmaps -n dev/);

      for (const name of ['admin', 'alice', 'agent', 'security']) assert.ok(existsSync(join(dir, `${name}.kubeconfig`)), name);
      const r = await kubectl(join(dir, 'alice.kubeconfig'), ['get', 'configmap', 'app-config', '-o', 'name']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'configmap/app-config');

      const url = readFileSync(join(dir, 'ready'), 'utf8').trim();
      const dispatcher = new Agent({ connect: { ca: readFileSync(join(dir, 'tls', 'ca.crt')) } });
      for (const path of ['/healthz', '/readyz']) {
        const res = await request(url + path, { dispatcher });
        assert.equal(res.statusCode, 200, path);
        assert.equal(await res.body.text(), 'ok');
      }
      await dispatcher.close();

      // gatehouse kubeconfig: a static-token kubeconfig for the same gateway works with stock kubectl.
      const tok = await run(process.execPath, [join(projectRoot, 'bin/gatehouse.js'), 'demo', 'token', '--user', 'alice@example.com', '--groups', 'dev'], {
        env: { ...process.env, GATEHOUSE_DEMO_DIR: dir },
      });
      assert.equal(tok.code, 0, tok.stderr);
      const kc = await run(process.execPath, [
        join(projectRoot, 'bin/gatehouse.js'),
        'kubeconfig',
        '--server',
        url,
        '--ca',
        join(dir, 'tls', 'ca.crt'),
        '--user',
        'alice',
        '--namespace',
        'dev',
        '--token',
        tok.stdout.trim(),
      ]);
      assert.equal(kc.code, 0, kc.stderr);
      const file = join(dir, 'static.kubeconfig');
      writeFileSync(file, kc.stdout, { mode: 0o600 });
      const whoami = await kubectl(file, ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
      assert.equal(whoami.stdout, 'alice@example.com', whoami.stderr);

      // Its metrics, where metrics.url says; SIGHUP loads the policy again (unchanged here).
      const metrics = await (await fetch(readFileSync(join(dir, 'metrics.url'), 'utf8').trim())).text();
      assert.match(metrics, /gatehouse_policy_info\{revision="[0-9a-f]{12}"\} 1/);
      child.kill('SIGHUP');
      await waitFor('the SIGHUP reload is logged', async () => /"trigger":"reload requested \(SIGHUP\)".*"msg":"policy reload: unchanged"/.test(p.log), 30_000);
      assert.equal(child.exitCode, null, 'SIGHUP stopped the demo');
    } finally {
      const state = readState(join(dir, 'testbed'));
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
      if (state) {
        const deadline = Date.now() + 10_000;
        while ((isAlive(state.pids.apiserver) || isAlive(state.pids.etcd)) && Date.now() < deadline) await sleep(100);
        assert.equal(isAlive(state.pids.apiserver), false, 'kube-apiserver left running');
        assert.equal(isAlive(state.pids.etcd), false, 'etcd left running');
      }
    }
    assert.equal(child.exitCode, 0);
    assert.equal(existsSync(join(dir, 'ready')), false);
    // Flushed at shutdown: the last request before Ctrl-C has its record.
    const lines = readFileSync(join(dir, 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const whoami = lines.find(
      (e) => e.objectRef?.resource === 'selfsubjectreviews' && e.user.username === 'alice@example.com' && e.stage === 'ResponseComplete',
    );
    assert.equal(whoami?.responseStatus?.code, 201);
  });

  for (const second of ['SIGTERM', 'SIGKILL'] as const) {
    it(`attack: SIGTERM while a watch is open, then ${second} during the drain, leaves no process of the control plane running`, async () => {
      const dir = join(runRoot, `test-${process.pid}`, `demo-${second}`);
      const p = spawnDemo(dir, []);
      const child = p.child;
      const exited = new Promise((r) => child.once('exit', r));
      await waitFor('the demo to be ready', () => existsSync(join(dir, 'ready')) || (child.exitCode !== null && assert.fail(p.log)), 90_000);
      const state = readState(join(dir, 'testbed'))!;
      // A client still connected keeps the gateway draining for limits.shutdownGraceSeconds.
      const watch = spawn('kubectl', ['--kubeconfig', join(dir, 'alice.kubeconfig'), 'get', 'configmaps', '-n', 'dev', '-w'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let seen = '';
      watch.stdout.setEncoding('utf8').on('data', (d: string) => (seen += d));
      try {
        await waitFor('the watch to print the list', () => seen.includes('app-config'));
        child.kill('SIGTERM');
        await waitFor('the demo to start draining', () => p.log.includes('demo: stopping'));
        child.kill(second);
        await exited;
        const pids = { apiserver: state.pids.apiserver, etcd: state.pids.etcd, kubelet: state.pids.kubelet, watchdog: state.pids.watchdog };
        await waitFor('every process of the control plane to be gone', () => Object.values(pids).every((p) => !isAlive(p)), 30_000).catch(() => {
          assert.deepEqual(
            Object.entries(pids)
              .filter(([, p]) => isAlive(p))
              .map(([n]) => n),
            [],
            'left running',
          );
        });
        await waitFor('the run folder to be removed', () => !existsSync(join(dir, 'testbed')), 10_000);
      } finally {
        watch.kill();
      }
    });
  }
});

describe('gatehouse demo --replicas 2 (as a process)', function () {
  this.timeout(180_000);

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`prints the replicas and how to kill one, serves through HAProxy, and ${signal} leaves no process behind${signal === 'SIGKILL' ? ' (its watchdog cleans up)' : ''}`, async () => {
      const dir = join(runRoot, `test-${process.pid}`, `demo-ha-${signal}`);
      const p = spawnDemo(dir, ['--replicas', '2']);
      const child = p.child;
      const exited = new Promise((r) => child.once('exit', r));
      let pids: number[] = [];
      let testbedPids: number[] = [];
      try {
        await waitFor('the HA demo to be ready', () => existsSync(join(dir, 'ready')) || child.exitCode !== null, 150_000);
        assert.ok(existsSync(join(dir, 'ready')), `not ready: ${p.out}${p.log}`);
        // `ready` is written before the message is printed, and the pipe may deliver it a moment later.
        await waitFor('the demo to print its replicas', () => p.out.includes('kill -9') || child.exitCode !== null);
        const replicas = JSON.parse(readFileSync(join(dir, 'replicas.json'), 'utf8')) as { name: string; pid: number; url: string }[];
        assert.equal(replicas.length, 2);
        for (const r of replicas) assert.match(p.out, new RegExp(`${r.name}\\s+pid ${r.pid}\\s+${r.url.replaceAll('.', '\\.')}`));
        assert.match(p.out, new RegExp(`kill -9 ${replicas[0]!.pid}`));
        const r = await kubectl(join(dir, 'alice.kubeconfig'), ['get', 'configmap', 'app-config', '-n', 'dev', '-o', 'name']);
        assert.equal(r.code, 0, r.stderr);
        pids = (JSON.parse(readFileSync(join(dir, 'owned.json'), 'utf8')) as { pids: number[] }).pids;
        assert.equal(pids.length, 4, 'two replicas, HAProxy and PostgreSQL');
        const state = readState(join(dir, 'testbed'))!;
        testbedPids = [state.pids.apiserver, state.pids.etcd, state.pids.kubelet];
      } finally {
        child.kill(signal);
        await exited;
      }
      await waitFor('every process of the demo to be gone', () => ![...pids, ...testbedPids].some(isAlive), 60_000);
      // After a SIGKILL the watchdog removes the files only once the processes it stopped are gone.
      const left = () => ['ready', 'replicas.json'].filter((f) => existsSync(join(dir, f)));
      await waitFor("the demo's ready and replicas.json to be removed", () => left().length === 0, 30_000).catch(() =>
        assert.deepEqual(left(), [], 'left behind'),
      );
    });
  }
});
