/**
 * Attack (or plain bad luck): the gateway dies with SIGKILL under load, as the
 * OOM killer or a node failure would kill it. Records written after the
 * response, and buffered in the process, were lost for requests the API server
 * had already acted on. Audit before action: a RequestReceived record with the
 * decision reaches the kernel before a request is forwarded.
 *
 * `gatehouse serve` as a process, in front of kube-apiserver v1.35.4, whose own
 * audit log says which requests reached it: the Audit-ID the gateway sends is
 * the auditID the API server records.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { DEMO_AUDIENCE, mintToken, startDemoIssuer, type DemoIssuer, type IssuerFile } from '../../src/demo/issuer.js';
import { projectRoot, runRoot } from '../../src/paths.js';
import { freePort } from '../../src/testbed/ports.js';
import { kubectl, run } from '../support/run.js';
import { waitFor } from '../support/wait.js';
import { testbed } from './hooks.js';

describe('audit before action: SIGKILL under load (gatehouse serve → kube-apiserver v1.35.4)', function () {
  this.timeout(120_000);
  const dir = join(runRoot, `test-${process.pid}`, 'audit-crash');
  let issuer: DemoIssuer;
  let gateway: ChildProcess | undefined;

  before(async () => {
    mkdirSync(dir, { recursive: true });
    issuer = await startDemoIssuer(await freePort(), join(dir, 'issuer.json'));
  });
  after(async () => {
    gateway?.kill('SIGKILL');
    await issuer?.close();
  });

  it('every request that reached the API server has at least its decision record', async () => {
    const port = await freePort();
    const config = join(dir, 'gatehouse.yaml');
    writeFileSync(
      config,
      stringify({
        cluster: 'demo',
        listen: { address: `127.0.0.1:${port}`, tls: { selfSigned: { dir: 'tls' } } },
        upstream: { kubeconfig: testbed().kubeconfigs.gateway },
        identity: { issuers: [{ issuer: issuer.issuer, audiences: [DEMO_AUDIENCE], algorithms: ['RS256'] }] },
        policy: { dir: join(projectRoot, 'policies/gatehouse') },
        audit: { file: 'audit.log', checkpoint: { keyFile: 'checkpoint.key', everySeconds: 1 } },
      }),
    );
    writeFileSync(join(dir, 'checkpoint.key'), randomBytes(32), { mode: 0o600 });
    const serve = async () => {
      const p = spawn(process.execPath, [join(projectRoot, 'bin/gatehouse.js'), 'serve', '--config', config, '--write-ca', join(dir, 'ca.crt')], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      gateway = p;
      let log = '';
      p.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
      await waitFor('the gateway to serve', () => log.includes('gatehouse is serving') || (p.exitCode !== null && assert.fail(log)));
      return p;
    };
    const proc = await serve();

    const { token } = await mintToken(JSON.parse(readFileSync(join(dir, 'issuer.json'), 'utf8')) as IssuerFile, { user: 'alice@example.com', groups: ['dev'] });
    const dispatcher = new Agent({ connect: { ca: readFileSync(join(dir, 'ca.crt')) }, connections: 16 });
    let answered = 0;
    let stop = false;
    const worker = async () => {
      for (let i = 0; i < 500 && !stop; i++) {
        try {
          const res = await request(`https://127.0.0.1:${port}/api/v1/namespaces/dev/configmaps/app-config`, {
            headers: { authorization: `Bearer ${token}` },
            dispatcher,
          });
          await res.body.dump();
          if (res.statusCode === 200) answered++;
        } catch {
          return; // the gateway is gone
        }
      }
    };
    const load = Promise.all(Array.from({ length: 16 }, worker));
    await waitFor('100 answered requests', () => answered >= 100);
    proc.kill('SIGKILL');
    stop = true;
    await load;
    await dispatcher.close();
    assert.ok(answered >= 100);

    // The API server's audit log is written in batches: a marker request made after the kill,
    // once it is in the log, means everything before it is too.
    const marker = `audit-crash-marker-${process.pid}`;
    await kubectl(testbed().kubeconfigs.admin, ['get', 'configmap', marker, '-n', 'dev']);
    const upstream = await waitFor('the marker in the API server audit log', () => {
      const lines = readFileSync(testbed().auditLog, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { auditID: string; user: { username: string }; impersonatedUser?: { username: string }; objectRef?: { name?: string } });
      return lines.some((e) => e.objectRef?.name === marker) && lines;
    });
    const reached = new Set(
      upstream
        .filter((e) => e.user.username === 'gatehouse-gateway' && e.impersonatedUser?.username === 'alice@example.com' && e.objectRef?.name === 'app-config')
        .map((e) => e.auditID),
    );
    assert.ok(reached.size >= 100, `the API server saw ${reached.size} of the requests`);

    assert.ok(existsSync(join(dir, 'audit.log')));
    // SIGKILL can stop a write(2) of several pages part-way: only whole lines count.
    const recorded = new Set(
      readFileSync(join(dir, 'audit.log'), 'utf8')
        .split('\n')
        .filter((l) => l.endsWith('}'))
        .map((l) => (JSON.parse(l) as { auditID: string }).auditID),
    );
    const lost = [...reached].filter((id) => !recorded.has(id));
    assert.deepEqual(lost, [], `${lost.length} of ${reached.size} requests that reached the API server have no record`);

    // Restarted on the same file and stopped cleanly: the chain runs through the crash, and the keyed checkpoints hold.
    const again = await serve();
    const res = await request(`https://127.0.0.1:${port}/api/v1/namespaces/dev/configmaps/app-config`, {
      headers: { authorization: `Bearer ${token}` },
      dispatcher: new Agent({ connect: { ca: readFileSync(join(dir, 'ca.crt')) } }),
    });
    await res.body.dump();
    assert.equal(res.statusCode, 200);
    again.kill('SIGTERM');
    await new Promise((r) => again.once('exit', r));
    const verify = await run(process.execPath, [
      join(projectRoot, 'bin/gatehouse.js'),
      'audit',
      'verify',
      join(dir, 'audit.log'),
      '--key',
      join(dir, 'checkpoint.key'),
    ]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /the chain holds \(\d+ lines, \d+ checkpoint\(s\) verified\)/);
    assert.match(verify.stdout, /restarted without a shutdown checkpoint before it \(it crashed or was killed\)/);
  });
});
