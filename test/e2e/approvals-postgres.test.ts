/**
 * Approvals across replicas: two `gatehouse serve` processes sharing one
 * PostgreSQL (Debian's server, started here on a loopback port), in front of
 * kube-apiserver v1.35.4. kubectl 1.32 is held on replica A and released by an
 * approval given on replica B (LISTEN/NOTIFY); replica A is restarted while a
 * request waits, and nothing is lost: the approval, its audit trail, the retry.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { ApprovalEvent, AuditRecord } from '../../src/audit/event.js';
import { DEMO_USERS, tokenArgs, type DemoUser } from '../../src/demo/demo.js';
import { DEMO_AUDIENCE, startDemoIssuer, type DemoIssuer } from '../../src/demo/issuer.js';
import { renderKubeconfig } from '../../src/kubeconfig.js';
import { projectRoot, runRoot } from '../../src/paths.js';
import { freePort } from '../../src/testbed/ports.js';
import { approvalsCli, kubectlInBackground, pendingFor } from '../support/approvals.js';
import { startPostgres, type RunningPostgres } from '../support/postgres.js';
import { kubectl } from '../support/run.js';
import { testbed } from './hooks.js';

/** The order of an approval's life, for events stamped in the same millisecond. */
const LIFE: readonly ApprovalEvent['action'][] = ['create', 'approve', 'deny', 'grant', 'use', 'expire', 'revoke'];

interface Replica {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  proc?: ChildProcess;
}

describe('approvals with PostgreSQL across two gateway processes (kube-apiserver v1.35.4, kubectl 1.32)', function () {
  this.timeout(120_000);
  const dir = join(runRoot, `test-${process.pid}`, 'approvals-pg');
  let postgres: RunningPostgres;
  let issuer: DemoIssuer;
  const replicas: Record<'a' | 'b', Replica> = {} as Record<'a' | 'b', Replica>;
  const admin = (args: string[]) => kubectl(testbed().kubeconfigs.admin, args);

  function configFor(r: Replica): string {
    const file = join(dir, `gatehouse-${r.name}.yaml`);
    writeFileSync(
      file,
      stringify({
        cluster: 'demo',
        listen: { address: `127.0.0.1:${r.port}`, tls: { selfSigned: { dir: 'tls' } } },
        upstream: { kubeconfig: testbed().kubeconfigs.gateway },
        identity: {
          issuers: [
            {
              issuer: issuer.issuer,
              audiences: [DEMO_AUDIENCE],
              algorithms: ['RS256'],
              agent: { claim: 'agent', onBehalfOfClaim: 'on_behalf_of', sessionClaim: 'sid', usernamePrefix: 'agent:' },
            },
          ],
        },
        policy: { dir: join(projectRoot, 'policies/gatehouse') },
        audit: { file: `audit-${r.name}.log` },
        masking: { hashKeyFile: 'hash.key' },
        approvals: { store: { postgres: { urlFile: 'postgres.url' } }, mode: { agents: 'hold', people: 'refuse' }, holdSeconds: 120, sweepSeconds: 1 },
      }),
    );
    return file;
  }

  async function startReplica(r: Replica): Promise<void> {
    const proc = spawn(process.execPath, [join(projectRoot, 'bin/gatehouse.js'), 'serve', '--config', configFor(r), '--write-ca', join(dir, 'ca.crt')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    r.proc = proc;
    let log = '';
    await new Promise<void>((resolve, reject) => {
      proc.stderr.setEncoding('utf8').on('data', (d: string) => {
        log += d;
        if (log.includes('gatehouse is serving')) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`replica ${r.name} exited with ${code}: ${log}`)));
    });
  }

  async function stopReplica(r: Replica): Promise<void> {
    const proc = r.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  }

  function kubeconfig(r: Replica, name: string, u: DemoUser): string {
    const file = join(dir, `${name}-${r.name}.kubeconfig`);
    writeFileSync(
      file,
      renderKubeconfig({
        name: 'gatehouse-ha',
        server: r.url,
        caPem: readFileSync(join(dir, 'ca.crt'), 'utf8'),
        user: name,
        namespace: 'prod',
        auth: { kind: 'exec', command: process.execPath, args: [join(projectRoot, 'bin/gatehouse.js'), ...tokenArgs(u)], env: { GATEHOUSE_DEMO_DIR: dir } },
      }),
      { mode: 0o600 },
    );
    return file;
  }

  function approvalEvents(id: string): ApprovalEvent[] {
    const lines = ['a', 'b'].flatMap((n) => {
      const f = join(dir, `audit-${n}.log`);
      return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
    });
    return (
      lines
        .map((l) => JSON.parse(l) as AuditRecord)
        .filter((e): e is ApprovalEvent => e.kind === 'ApprovalEvent' && e.approvalID === id)
        // Two processes stamp in milliseconds: events of the same millisecond go in the order of an approval's life.
        .sort((x, y) => x.timestamp.localeCompare(y.timestamp) || LIFE.indexOf(x.action) - LIFE.indexOf(y.action))
    );
  }

  before(async function () {
    this.timeout(120_000);
    mkdirSync(dir, { recursive: true });
    postgres = await startPostgres();
    writeFileSync(join(dir, 'postgres.url'), postgres.url + '\n', { mode: 0o600 });
    writeFileSync(join(dir, 'hash.key'), 'ha-test-hash-key-0123456789abcdef');
    issuer = await startDemoIssuer(await freePort(), join(dir, 'issuer.json'));
    for (const name of ['a', 'b'] as const) {
      const port = await freePort();
      replicas[name] = { name, port, url: `https://127.0.0.1:${port}` };
    }
    // A first: it makes the development CA both share.
    await startReplica(replicas.a);
    await startReplica(replicas.b);
  });

  after(async () => {
    for (const r of Object.values(replicas)) await stopReplica(r);
    await issuer?.close();
    await postgres?.stop();
    await admin(['delete', 'deployment', 'ha-1', 'ha-2', '-n', 'prod', '--ignore-not-found']);
  });

  it('a request held on replica A proceeds when security approves on replica B', async () => {
    assert.equal((await admin(['create', 'deployment', 'ha-1', '--image=registry.invalid/app:1', '-n', 'prod'])).code, 0);
    const agentA = kubeconfig(replicas.a, 'agent', DEMO_USERS.agent);
    const securityB = kubeconfig(replicas.b, 'security', DEMO_USERS.security);
    const held = kubectlInBackground(agentA, ['delete', 'deployment', 'ha-1', '-n', 'prod']);
    const pending = await pendingFor(securityB, 'ha-1');
    assert.equal((await approvalsCli(securityB, ['approve', pending.id, '--reason', 'from replica B'])).code, 0);
    const r = await held.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deployment.apps "ha-1" deleted/);
    assert.deepEqual(
      approvalEvents(pending.id).map((e) => e.action),
      ['create', 'approve', 'use'],
    );
  });

  it('replica A restarts while a request waits: the client gets a clean error, the approval survives, the retry succeeds', async () => {
    assert.equal((await admin(['create', 'deployment', 'ha-2', '--image=registry.invalid/app:1', '-n', 'prod'])).code, 0);
    const agentA = kubeconfig(replicas.a, 'agent', DEMO_USERS.agent);
    const securityB = kubeconfig(replicas.b, 'security', DEMO_USERS.security);
    const held = kubectlInBackground(agentA, ['delete', 'deployment', 'ha-2', '-n', 'prod']);
    const pending = await pendingFor(securityB, 'ha-2');
    await stopReplica(replicas.a);
    const cut = await held.done;
    assert.equal(cut.code, 1);
    assert.match(
      cut.stderr,
      new RegExp(`Error from server \\(ServiceUnavailable\\): the gateway is shutting down while this request waited for approval ${pending.id}`),
    );

    assert.equal((await approvalsCli(securityB, ['approve', pending.id])).code, 0, 'approved while replica A is down');
    await startReplica(replicas.a);
    const retry = await kubectl(agentA, ['delete', 'deployment', 'ha-2', '-n', 'prod']);
    assert.equal(retry.code, 0, retry.stderr);
    assert.match(retry.stdout, /deployment.apps "ha-2" deleted/);
    assert.deepEqual(
      approvalEvents(pending.id).map((e) => e.action),
      ['create', 'approve', 'use'],
    );
    const list = await approvalsCli(kubeconfig(replicas.a, 'security', DEMO_USERS.security), ['show', pending.id]);
    assert.match(list.stdout, /State: +used by carol@example\.com/);
  });
});
