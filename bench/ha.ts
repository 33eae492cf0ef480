/**
 * Scale-out, measured: requests/s of a small GET through HAProxy to one and to
 * three gateway replicas (`gatehouse demo --replicas N`, sharing PostgreSQL), a
 * replica direct without the balancer for its cost, and the requests that fail
 * when one of three replicas is SIGKILLed under load. Clients keep their
 * connections (as kubectl does), so a kill cuts the connections to that
 * replica: what was in flight on them fails, nothing else should.
 * Asserts no timing.   node dist/bench/ha.js [--quick]
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { DEMO_USERS } from '../src/demo/demo.js';
import { startHaDemo, type RunningHaDemo } from '../src/demo/ha.js';
import { mintDemoToken } from '../src/demo/issuer.js';
import { projectRoot, runRoot } from '../src/paths.js';
import { down, up } from '../src/testbed/controlplane.js';
import { isAlive } from '../src/testbed/controlplane.js';
import { percentiles } from './stats.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { renderKubeconfig } from '../src/kubeconfig.js';
import { cpuSeconds } from './proc.js';

const run = promisify(execFile);

const quick = process.argv.includes('--quick');
const SECONDS = quick ? 2 : 5;
const ROUNDS = quick ? 1 : 3;
const CONCURRENCY = 24;
const PATH = '/api/v1/namespaces/dev/configmaps/app-config';
const dir = join(runRoot, `bench-ha-${process.pid}`);
const report: string[] = [];
const json: Record<string, unknown> = {};
const out = (l = '') => {
  report.push(l);
  process.stdout.write(l + '\n');
};

interface Outcome {
  /** CPU the gateway replicas used per answered request, in ms (all replicas together). */
  cpuMsPerRequest?: number;
  readonly ok: number;
  readonly failed: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
}

/** CONCURRENCY clients on their own kept-alive connections, for `seconds`; `during` runs alongside. */
async function drive(base: string, token: string, ca: string, seconds: number, during?: () => Promise<void>): Promise<Outcome> {
  const dispatcher = new Agent({ connect: { ca }, connections: CONCURRENCY, pipelining: 1 });
  const times: number[] = [];
  let failed = 0;
  const end = Date.now() + seconds * 1000;
  const started = process.hrtime.bigint();
  await Promise.all([
    ...Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < end) {
        const s = process.hrtime.bigint();
        try {
          const res = await request(base + PATH, { dispatcher, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
          await res.body.dump();
          if (res.statusCode === 200) times.push(Number(process.hrtime.bigint() - s) / 1e6);
          else failed++;
        } catch {
          failed++;
        }
      }
    }),
    during?.(),
  ]);
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  await dispatcher.close();
  const p = percentiles(times, [50, 99]);
  return { ok: times.length, failed, rps: times.length / elapsed, p50: p['p50'] ?? NaN, p99: p['p99'] ?? NaN };
}

/** kubectl exec throughput: straight to kube-apiserver, and through a replica that records into PostgreSQL. */
async function execBench(d: RunningHaDemo, token: string, adminKubeconfig: string): Promise<void> {
  const mb = quick ? 8 : 64;
  const viaReplica = join(dir, 'bob.kubeconfig');
  writeFileSync(viaReplica, renderKubeconfig({ name: 'bench', server: d.replicas()[0]!.url, caPem: d.caPem, user: 'bob', auth: { kind: 'token', token } }));
  out(`| kubectl exec (WebSocket), ${mb} MB of output | MB/s | recorded |`);
  out('|---|---|---|');
  const rows: Record<string, unknown> = {};
  for (const [name, kubeconfig] of [
    ['direct to kube-apiserver', adminKubeconfig],
    ['through a replica, recorded into PostgreSQL', viaReplica],
  ] as const) {
    const times: number[] = [];
    for (let i = 0; i < (quick ? 1 : 3); i++) {
      const t = process.hrtime.bigint();
      await run('kubectl', ['--kubeconfig', kubeconfig, 'exec', 'web-0', '-n', 'dev', '--', 'sh', '-c', `yes 0123456789abcdef | head -c ${mb * 1024 * 1024}`], {
        maxBuffer: 1 << 30,
        encoding: 'buffer',
      });
      times.push(Number(process.hrtime.bigint() - t) / 1e9);
    }
    const mbps = mb / [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
    rows[name] = mbps;
    // The recording's size as PostgreSQL holds it: every byte of output, as asciicast JSON.
    const stored =
      kubeconfig === viaReplica
        ? await (async () => {
            const c = new pg.Client({ connectionString: d.postgres.url });
            await c.connect();
            const r = await c.query<{ bytes: string | null }>('SELECT sum(octet_length(data))::text AS bytes FROM gatehouse_session_chunks');
            await c.end();
            return r.rows[0]?.bytes ?? undefined;
          })()
        : undefined;
    out(`| ${name} | ${mbps.toFixed(1)} | ${stored ? `${(Number(stored) / 2 ** 20).toFixed(0)} MiB of asciicast in PostgreSQL (all runs)` : '–'} |`);
  }
  json['exec'] = rows;
}

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  out(`## Scale-out (bench/ha.ts${quick ? ', --quick' : ''})`);
  out(`${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; everything on this one machine`);
  out(`(kube-apiserver, etcd, PostgreSQL, HAProxy and every replica share its CPUs). GET of one ConfigMap, ${CONCURRENCY} kept-alive clients.`);
  out();
  out('| target | requests/s | p50 ms | p99 ms | failed | gateway CPU ms per request |');
  out('|---|---|---|---|---|---|');
  const testbed = await up({ dir: join(dir, 'testbed'), ownerPid: process.pid });
  let demo: RunningHaDemo | undefined;
  try {
    demo = await startHaDemo({ replicas: 3, dir: join(dir, 'demo'), testbed, restartAfterMs: null });
    const d = demo;
    const token = await mintDemoToken(d.dir, { ...DEMO_USERS.alice, ttlSeconds: 3600 });
    const names = d.replicas().map((r) => r.name);
    const only = async (n: number) => {
      for (const [i, name] of names.entries()) await d.setInBalancer(name, i < n);
    };
    // Warm-up: every replica compiles its hot paths and fetches the JWKS.
    await drive(d.url, token, d.caPem, 2);
    // The same three processes throughout; HAProxy sends to one or to all, alternately, so the
    // machine's drift falls on both alike. Medians across rounds.
    const cpu = () => d.replicas().reduce((sum, r) => sum + (r.pid ? cpuSeconds(r.pid) : 0), 0);
    const measured = async (run: () => Promise<Outcome>) => {
      const before = cpu();
      const o = await run();
      o.cpuMsPerRequest = ((cpu() - before) * 1000) / o.ok;
      return o;
    };
    const runs: Record<string, Outcome[]> = { '1 replica, direct (no balancer)': [], '1 replica through HAProxy': [], '3 replicas through HAProxy': [] };
    for (let round = 0; round < ROUNDS; round++) {
      runs['1 replica, direct (no balancer)']!.push(await measured(() => drive(d.replicas()[0]!.url, token, d.caPem, SECONDS)));
      await only(1);
      runs['1 replica through HAProxy']!.push(await measured(() => drive(d.url, token, d.caPem, SECONDS)));
      await only(3);
      runs['3 replicas through HAProxy']!.push(await measured(() => drive(d.url, token, d.caPem, SECONDS)));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const row = (name: string, o: Outcome) => {
      json[name] = o;
      out(`| ${name} | ${o.rps.toFixed(0)} | ${o.p50.toFixed(2)} | ${o.p99.toFixed(2)} | ${o.failed} | ${o.cpuMsPerRequest?.toFixed(2) ?? '–'} |`);
    };
    for (const [name, os] of Object.entries(runs))
      row(name, {
        ok: median(os.map((o) => o.ok)),
        failed: os.reduce((a, o) => a + o.failed, 0),
        rps: median(os.map((o) => o.rps)),
        p50: median(os.map((o) => o.p50)),
        p99: median(os.map((o) => o.p99)),
        cpuMsPerRequest: median(os.map((o) => o.cpuMsPerRequest ?? NaN)),
      });
    const victim = d.replicas()[1]!;
    const killed = await drive(d.url, token, d.caPem, SECONDS, async () => {
      await new Promise((r) => setTimeout(r, (SECONDS * 1000) / 3));
      process.kill(victim.pid, 'SIGKILL');
      while (isAlive(victim.pid)) await new Promise((r) => setTimeout(r, 10));
    });
    row(`3 replicas, one SIGKILLed a third of the way in (${killed.ok + killed.failed} requests)`, killed);
    row('the 2 left, right after', await drive(d.url, token, d.caPem, SECONDS));
    out();
    out(`${ROUNDS} rounds of ${SECONDS} s, alternating; medians (failed: summed). A kill fails the requests in flight on the connections to that replica;`);
    out('the clients reconnect, and HAProxy sends new connections to the replicas left.');
    out();
    await execBench(d, token, testbed.kubeconfigs.admin);
  } finally {
    await demo?.stop();
    await down(testbed.dir);
  }
  const results = join(projectRoot, 'bench/results');
  mkdirSync(results, { recursive: true });
  writeFileSync(join(results, `ha${quick ? '-quick' : ''}.md`), report.join('\n') + '\n');
  writeFileSync(join(results, `ha${quick ? '-quick' : ''}.json`), JSON.stringify(json, null, 2) + '\n');
  rmSync(dir, { recursive: true, force: true });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench/ha: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
