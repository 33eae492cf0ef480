/**
 * The benchmark suite (DESIGN §7), in one run so ratios hold on a noisy machine:
 *
 *  1. small GET (a ConfigMap), a masked GET (a Secret) and a LIST (~1,000
 *     ConfigMaps) at concurrency 1 and 32, through
 *       (a) direct: kube-apiserver with the admin token (the physical limit)
 *       (b) plain:  an undici reverse proxy with no policy (bench/plain-proxy.ts)
 *       (c) gatehouse: the gateway with the bundled policy, embedded WASM
 *       (d) gatehouse+opa: the same gateway asking `opa run --server`
 *     rounds alternate the order of the targets; medians across rounds;
 *  2. policy evaluation in process: embedded WASM vs an HTTP call to OPA;
 *  3. redaction throughput and memory (bench/redact.ts);
 *  4. audit before action (bench/audit.ts);
 *  5. gateway RSS idle and under load;
 *  6. sessions and approvals (bench/sessions.ts): exec direct vs through the
 *     gateway over WebSocket and SPDY, the recording tap, approval release;
 *  7. 1,000 and 5,000 watches, clients and upstream over HTTP/1.1 and over
 *     HTTP/2 (bench/watches.ts): the gateway's RSS and CPU holding them,
 *     connections to the API server, latency of one change to every watcher.
 *
 * Prints a markdown report and writes it, with a JSON file, to bench/results/.
 * Asserts no timing: it fails only if something crashes or a result is malformed.
 *   node dist/bench/run.js [--quick]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { Agent, request } from 'undici';
import { parse, stringify } from 'yaml';
import { startDemo } from '../src/demo/demo.js';
import { DEMO_AUDIENCE, mintToken, startDemoIssuer, type IssuerFile } from '../src/demo/issuer.js';
import { createPolicyEngine } from '../src/policy/engine.js';
import { compiled, loadPolicySource } from '../src/policy/load.js';
import { createOpaServerEngine } from '../src/policy/opa-server.js';
import { projectRoot, runRoot, toolPath } from '../src/paths.js';
import { checkMaskPath } from '../src/redact/path.js';
import { down, up } from '../src/testbed/controlplane.js';
import { selfSignedTls } from '../src/tls.js';
import { freePort } from '../src/testbed/ports.js';
import { percentiles } from './stats.js';
import { rssMiB } from './proc.js';

const quick = process.argv.includes('--quick');
const N_GET = quick ? 200 : 1500;
const N_LIST = quick ? 20 : 120;
const ROUNDS = quick ? 2 : 4;
const CONFIGMAPS = quick ? 300 : 1000;

const dir = join(runRoot, `bench-${process.pid}`);
const children: ChildProcess[] = [];
const report: string[] = [];
const results: Record<string, unknown> = { quick, startedAt: new Date().toISOString() };
const out = (line = '') => {
  report.push(line);
  process.stdout.write(line + '\n');
};

function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, kube-apiserver v1.35.4, OPA v1.22.2`;
}

async function waitHttp(url: string, dispatcher?: Agent, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await request(url, dispatcher ? { dispatcher } : {});
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      // not yet
    }
    await sleep(100);
  }
  throw new Error(`${url} did not become ready`);
}

function launch(cmd: string, args: string[], log: string): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const logFile = join(dir, log);
  child.stdout.on('data', (d: Buffer) => writeFileSync(logFile, d, { flag: 'a' }));
  child.stderr.on('data', (d: Buffer) => writeFileSync(logFile, d, { flag: 'a' }));
  children.push(child);
  return child;
}

interface Target {
  readonly name: string;
  readonly base: string;
  readonly auth: string | undefined;
  readonly dispatcher: Agent;
}

interface RunStats {
  p50: number;
  p90: number;
  p99: number;
  rps: number;
}

async function load(t: Target, path: string, n: number, concurrency: number): Promise<RunStats> {
  const times: number[] = [];
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        const s = process.hrtime.bigint();
        const res = await request(t.base + path, {
          headers: { accept: 'application/json', ...(t.auth ? { authorization: t.auth } : {}) },
          dispatcher: t.dispatcher,
        });
        await res.body.dump({ limit: Infinity });
        if (res.statusCode !== 200) throw new Error(`${t.name} ${path}: HTTP ${res.statusCode}`);
        times.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const p = percentiles(times);
  return { p50: p['p50']!, p90: p['p90']!, p99: p['p99']!, rps: n / elapsed };
}

/** `n` merge patches of one object's labels, one at a time; ms per write. */
async function patches(t: Target, path: string, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint();
    const res = await request(t.base + path, {
      method: 'PATCH',
      headers: { accept: 'application/json', 'content-type': 'application/merge-patch+json', ...(t.auth ? { authorization: t.auth } : {}) },
      body: JSON.stringify({ metadata: { labels: { 'bench-write': `${t.name.replace(/\W/g, '-')}-${i}` } } }),
      dispatcher: t.dispatcher,
    });
    await res.body.dump({ limit: Infinity });
    if (res.statusCode !== 200) throw new Error(`${t.name} PATCH ${path}: HTTP ${res.statusCode}`);
    times.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  return times;
}

/**
 * The bundled policy inspects writes of workloads (a dry run as the caller, a
 * read of the object, a second evaluation) and not of ConfigMaps. The same
 * label patch of each, direct and through the gateway, rounds alternating: the
 * inspection's cost is what the gateway adds to the Deployment's patch beyond
 * what it adds to the ConfigMap's.
 */
async function inspectedWrites(targets: Target[], adminKubeconfig: string): Promise<Record<string, number>> {
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'bench-web', namespace: 'dev' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'bench-web' } },
      template: { metadata: { labels: { app: 'bench-web' } }, spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] } },
    },
  };
  execFileSync('kubectl', ['--kubeconfig', adminKubeconfig, 'apply', '-f', '-'], { input: JSON.stringify(deployment), stdio: ['pipe', 'ignore', 'inherit'] });
  const paths = { configmap: '/api/v1/namespaces/dev/configmaps/bench-0', deployment: '/apis/apps/v1/namespaces/dev/deployments/bench-web' };
  const n = quick ? 40 : 200;
  const per: Record<string, number[]> = {};
  for (const t of targets) for (const k of Object.keys(paths)) await patches(t, paths[k as keyof typeof paths], 10); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? [...targets].reverse() : targets;
    for (const t of order) for (const [k, path] of Object.entries(paths)) (per[`${t.name} ${k}`] ??= []).push(...(await patches(t, path, n)));
  }
  const p50 = Object.fromEntries(Object.entries(per).map(([k, xs]) => [k, percentiles(xs, [50])['p50']!]));
  const addedCm = p50['gatehouse configmap']! - p50['direct configmap']!;
  const addedDeploy = p50['gatehouse deployment']! - p50['direct deployment']!;
  out();
  out('## Inspected writes (label patch, concurrency 1)');
  out();
  out(`p50 over ${ROUNDS} × ${n} patches per target and object.`);
  out();
  out('| object | inspected by the bundled policy | direct p50 ms | gatehouse p50 ms | added p50 ms |');
  out('|---|---|---|---|---|');
  out(`| ConfigMap | no | ${p50['direct configmap']!.toFixed(2)} | ${p50['gatehouse configmap']!.toFixed(2)} | +${addedCm.toFixed(2)} |`);
  out(
    `| Deployment | yes (dry run + read + second evaluation) | ${p50['direct deployment']!.toFixed(2)} | ${p50['gatehouse deployment']!.toFixed(2)} | +${addedDeploy.toFixed(2)} |`,
  );
  out();
  out(`The inspection adds ${(addedDeploy - addedCm).toFixed(2)} ms at p50 over an ordinary write through the gateway.`);
  return { ...p50, addedOrdinary: addedCm, addedInspected: addedDeploy, inspectionCost: addedDeploy - addedCm };
}

/**
 * Small GETs at concurrency 1 through the gateway, alternating between quiet
 * rounds and rounds during which the watched policy folder changes every
 * 700 ms, past the watcher's 300 ms debounce (each change compiled by opa, loaded beside the old policy, swapped in).
 */
async function duringReloads(t: Target, policyDir: string): Promise<Record<string, number>> {
  const path = '/api/v1/namespaces/dev/configmaps/app-config';
  // Rounds of a few seconds each, so that several reloads land in each.
  const n = quick ? 800 : 2000;
  const quiet: RunStats[] = [];
  const busy: RunStats[] = [];
  const log = () =>
    readFileSync(join(dir, 'gatehouse.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"policy reloaded"')).length;
  const before = log();
  let marker = 0;
  for (let r = 0; r < ROUNDS; r++) {
    quiet.push(await load(t, path, n, 1));
    // A rule the decision reaches (an unreferenced package would be pruned, and the revision not change).
    const changer = setInterval(
      () =>
        writeFileSync(
          join(policyDir, 'access', 'bench_reload.rego'),
          `package gatehouse.access\n\ndeny contains "bench" if input.context.cluster == "never-${++marker}"\n`,
        ),
      700,
    );
    try {
      busy.push(await load(t, path, n, 1));
    } finally {
      clearInterval(changer);
    }
  }
  await sleep(1500);
  const reloads = log() - before;
  const m = (xs: RunStats[], f: (x: RunStats) => number) => median(xs.map(f));
  const r = { quietP50: m(quiet, (x) => x.p50), quietP99: m(quiet, (x) => x.p99), reloadP50: m(busy, (x) => x.p50), reloadP99: m(busy, (x) => x.p99), reloads };
  out();
  out('## Requests during policy reloads');
  out();
  out(
    `Small GETs through the gateway at concurrency 1, ${ROUNDS} rounds of ${n} each way; during a round the policy folder changes every 700 ms (${reloads} reloads swapped in).`,
  );
  out();
  out('| rounds | p50 ms | p99 ms |');
  out('|---|---|---|');
  out(`| no reload | ${r.quietP50.toFixed(3)} | ${r.quietP99.toFixed(3)} |`);
  out(`| during reloads | ${r.reloadP50.toFixed(3)} | ${r.reloadP99.toFixed(3)} |`);
  return r;
}

/** Wall time of whole kubectl processes, the same read through the demo and straight at the API server. */
async function kubectlRuns(tb: Awaited<ReturnType<typeof up>>): Promise<Record<string, number>> {
  const demo = await startDemo({ dir: join(dir, 'demo'), testbed: tb });
  try {
    const runs = quick ? 5 : 15;
    // Spawned, never execFileSync: the demo's gateway runs in this process and must keep answering.
    const timed = (command: string, args: string[], env?: NodeJS.ProcessEnv) =>
      new Promise<number>((resolve, reject) => {
        const s = process.hrtime.bigint();
        spawn(command, args, { stdio: 'ignore', ...(env ? { env } : {}) })
          .on('error', reject)
          .on('exit', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - s) / 1e6) : reject(new Error(`${command} exited ${code}`))));
      });
    const once = (kubeconfig: string) => timed('kubectl', ['--kubeconfig', kubeconfig, 'get', 'configmap', 'app-config', '-n', 'dev', '-o', 'name']);
    // The plugin as kubectl runs it (the shell fast path), and the Node command it hands over to.
    const exec = (
      parse(readFileSync(demo.kubeconfigs.alice, 'utf8')) as {
        users: { user: { exec: { command: string; args: string[]; env: { name: string; value: string }[] } } }[];
      }
    ).users[0]!.user.exec;
    const pluginEnv = { ...process.env, ...Object.fromEntries(exec.env.map((e) => [e.name, e.value])) };
    const plugin = () => timed(exec.command, exec.args, pluginEnv);
    const nodePlugin = () => timed(exec.args[1]!, [join(projectRoot, 'bin/gatehouse.js'), ...exec.args.slice(2)], pluginEnv);
    await once(demo.kubeconfigs.alice); // the first run mints the token and fills the cache
    const direct: number[] = [];
    const through: number[] = [];
    const plugins: number[] = [];
    const nodePlugins: number[] = [];
    for (let i = 0; i < runs; i++) {
      direct.push(await once(tb.kubeconfigs.admin));
      through.push(await once(demo.kubeconfigs.alice));
      plugins.push(await plugin());
      nodePlugins.push(await nodePlugin());
    }
    const r = { direct: median(direct), demo: median(through), plugin: median(plugins), nodePlugin: median(nodePlugins) };
    out();
    out('## kubectl through the demo (credential plugin from the cache) vs direct');
    out();
    out(`Median of ${runs} whole \`kubectl get configmap app-config -o name\` runs each, alternating.`);
    out();
    out('| path | ms |');
    out('|---|---|');
    out(`| direct (admin token in the kubeconfig) | ${r.direct.toFixed(0)} |`);
    out(`| through the demo (alice, exec plugin \`bin/gatehouse-token\`) | ${r.demo.toFixed(0)} |`);
    out(`| the plugin alone from the cache (\`bin/gatehouse-token\`, POSIX sh) | ${r.plugin.toFixed(0)} |`);
    out(`| the same answer from Node (\`gatehouse token --demo\`) | ${r.nodePlugin.toFixed(0)} |`);
    out(`| demo ÷ direct | ${(r.demo / r.direct).toFixed(2)}× |`);
    return { ...r, ratio: r.demo / r.direct };
  } finally {
    await demo.stop();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  out(`# Gatehouse benchmarks${quick ? ' (quick)' : ''}`);
  out();
  out(`Machine: ${machine()}. One run, ${new Date().toISOString()}.`);
  results['machine'] = machine();

  const tb = await up({ dir: join(dir, 'testbed'), ownerPid: process.pid });
  try {
    const admin = new KubeConfig();
    admin.loadFromFile(tb.kubeconfigs.admin);
    const adminToken = admin.getCurrentUser()!.token!;
    // ~1,000 small ConfigMaps for the LIST (in dev, which the demo identity may read).
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: Array.from({ length: CONFIGMAPS }, (_, i) => ({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `bench-${i}`, namespace: 'dev', labels: { bench: 'yes' } },
        data: { key: `value-${i}`, other: 'x'.repeat(64) },
      })),
    };
    execFileSync('kubectl', ['--kubeconfig', tb.kubeconfigs.admin, 'apply', '--server-side', '-f', '-'], {
      input: JSON.stringify(list),
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    execFileSync('kubectl', ['--kubeconfig', tb.kubeconfigs.admin, 'create', 'configmap', 'watched', '-n', 'dev', '--from-literal=v=0'], { stdio: 'ignore' });

    const issuer = await startDemoIssuer(await freePort(), join(dir, 'issuer.json'));
    const issuerFile = JSON.parse(readFileSync(join(dir, 'issuer.json'), 'utf8')) as IssuerFile;
    const { token: alice } = await mintToken(issuerFile, { user: 'alice@example.com', groups: ['dev'], ttlSeconds: 3600 });

    const opaPort = await freePort();
    launch(toolPath('opa'), ['run', '--server', '--addr', `127.0.0.1:${opaPort}`, '--log-level', 'error', join(projectRoot, 'policies/gatehouse')], 'opa.log');
    await waitHttp(`http://127.0.0.1:${opaPort}/health`);

    const gatewayConfig = (port: number, policy: object, audit: string) =>
      stringify({
        cluster: 'bench',
        listen: { address: `127.0.0.1:${port}`, tls: { selfSigned: { dir: join(dir, 'tls') } } },
        upstream: { kubeconfig: tb.kubeconfigs.gateway },
        identity: {
          issuers: [{ issuer: issuerFile.issuer, audiences: [DEMO_AUDIENCE], usernameClaim: 'email', groupsClaim: 'groups', algorithms: ['RS256'] }],
        },
        policy,
        audit: { file: join(dir, audit) },
      });
    const gwPort = await freePort();
    const gwOpaPort = await freePort();
    // A copy of the bundled policy: the reload benchmark changes it while requests run.
    const policyCopy = join(dir, 'policy');
    cpSync(join(projectRoot, 'policies/gatehouse'), policyCopy, { recursive: true });
    writeFileSync(join(dir, 'gatehouse.yaml'), gatewayConfig(gwPort, { dir: policyCopy }, 'audit.log'));
    writeFileSync(join(dir, 'gatehouse-opa.yaml'), gatewayConfig(gwOpaPort, { opaServer: `http://127.0.0.1:${opaPort}` }, 'audit-opa.log'));
    // One dev certificate for both gateways and the plain proxy, made before any starts (they reuse it).
    selfSignedTls(join(dir, 'tls'), ['127.0.0.1', 'localhost']);
    const gw = launch(process.execPath, [join(projectRoot, 'bin/gatehouse.js'), 'serve', '--config', join(dir, 'gatehouse.yaml')], 'gatehouse.log');
    const gatewayCa = () => readFileSync(join(dir, 'tls', 'ca.crt'));
    const tlsAgent = (ca: Buffer, connections = 64) => new Agent({ connect: { ca }, connections, keepAliveTimeout: 30_000, pipelining: 1 });
    await waitHttp(`https://127.0.0.1:${gwPort}/readyz`, tlsAgent(gatewayCa()));
    launch(process.execPath, [join(projectRoot, 'bin/gatehouse.js'), 'serve', '--config', join(dir, 'gatehouse-opa.yaml')], 'gatehouse-opa.log');
    await waitHttp(`https://127.0.0.1:${gwOpaPort}/readyz`, tlsAgent(gatewayCa()));
    const plainProxy = async (log: string, ...impersonate: string[]): Promise<number> => {
      const port = await freePort();
      const tls = [join(dir, 'tls', 'server.crt'), join(dir, 'tls', 'server.key')];
      launch(process.execPath, [join(projectRoot, 'dist/bench/plain-proxy.js'), String(port), tb.server, adminToken, tb.caFile, ...tls, ...impersonate], log);
      return port;
    };
    const plainPort = await plainProxy('plain.log');
    // The same, impersonating the gateway's caller: what the API server's authorizing of impersonation costs on its own.
    const impersonatingPort = await plainProxy('plain-impersonating.log', 'alice@example.com', 'dev');
    await sleep(500);

    const targets: Target[] = [
      { name: 'direct', base: tb.server, auth: `Bearer ${adminToken}`, dispatcher: tlsAgent(readFileSync(tb.caFile)) },
      { name: 'plain proxy', base: `https://127.0.0.1:${plainPort}`, auth: undefined, dispatcher: tlsAgent(gatewayCa()) },
      { name: 'plain proxy, impersonating', base: `https://127.0.0.1:${impersonatingPort}`, auth: undefined, dispatcher: tlsAgent(gatewayCa()) },
      { name: 'gatehouse', base: `https://127.0.0.1:${gwPort}`, auth: `Bearer ${alice}`, dispatcher: tlsAgent(gatewayCa()) },
      { name: 'gatehouse+opa', base: `https://127.0.0.1:${gwOpaPort}`, auth: `Bearer ${alice}`, dispatcher: tlsAgent(gatewayCa()) },
    ];
    const idleRss = rssMiB(gw.pid!);
    let loadRss = idleRss;
    const sampler = setInterval(() => (loadRss = Math.max(loadRss, rssMiB(gw.pid!))), 100);

    // 1. Latency and throughput.
    const scenarios = [
      { name: 'GET configmap', path: '/api/v1/namespaces/dev/configmaps/app-config', n: N_GET },
      { name: 'GET secret (masked through gatehouse)', path: '/api/v1/namespaces/dev/secrets/db-credentials', n: N_GET },
      { name: `LIST ${CONFIGMAPS} configmaps`, path: '/api/v1/namespaces/dev/configmaps?labelSelector=bench%3Dyes', n: N_LIST },
    ];
    out();
    out('## Latency and throughput');
    out();
    out(
      `Medians over ${ROUNDS} rounds (target order alternating); ms and requests/s. Ratios compare gatehouse with direct, with the plain proxy and with the plain proxy impersonating its caller (the API server then authorizes an impersonation per request, as for the gateway), per round, then take the median.`,
    );
    out();
    out('| request | concurrency | target | p50 ms | p90 ms | p99 ms | req/s |');
    out('|---|---|---|---|---|---|---|');
    const latency: Record<string, unknown>[] = [];
    const ratioRows: string[] = [];
    for (const s of scenarios) {
      for (const c of [1, 32]) {
        for (const t of targets) await load(t, s.path, Math.min(50, s.n), c); // warm-up
        const per: Record<string, RunStats[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
        for (let r = 0; r < ROUNDS; r++) {
          const order = r % 2 ? [...targets].reverse() : targets;
          for (const t of order) per[t.name]!.push(await load(t, s.path, s.n, c));
        }
        for (const t of targets) {
          const runs = per[t.name]!;
          const row = {
            request: s.name,
            concurrency: c,
            target: t.name,
            p50: median(runs.map((x) => x.p50)),
            p90: median(runs.map((x) => x.p90)),
            p99: median(runs.map((x) => x.p99)),
            rps: median(runs.map((x) => x.rps)),
          };
          latency.push(row);
          out(`| ${s.name} | ${c} | ${t.name} | ${row.p50.toFixed(3)} | ${row.p90.toFixed(3)} | ${row.p99.toFixed(3)} | ${row.rps.toFixed(0)} |`);
        }
        const ratio = (a: string, b: string, f: (x: RunStats) => number) => median(per[a]!.map((x, i) => f(x) / f(per[b]![i]!)));
        const addedP50 = median(per['gatehouse']!.map((x, i) => x.p50 - per['direct']![i]!.p50));
        const addedP99 = median(per['gatehouse']!.map((x, i) => x.p99 - per['direct']![i]!.p99));
        ratioRows.push(
          `| ${s.name} | ${c} | +${addedP50.toFixed(3)} | +${addedP99.toFixed(3)} | ${ratio('gatehouse', 'direct', (x) => x.rps).toFixed(2)} | ${ratio('gatehouse', 'plain proxy', (x) => x.rps).toFixed(2)} | ${ratio('plain proxy, impersonating', 'plain proxy', (x) => x.rps).toFixed(2)} | ${ratio('gatehouse', 'plain proxy, impersonating', (x) => x.rps).toFixed(2)} | ${ratio('gatehouse+opa', 'gatehouse', (x) => x.p50).toFixed(2)} |`,
        );
        latency.push({
          request: s.name,
          concurrency: c,
          addedP50,
          addedP99,
          throughputVsDirect: ratio('gatehouse', 'direct', (x) => x.rps),
          throughputVsPlain: ratio('gatehouse', 'plain proxy', (x) => x.rps),
          impersonatingVsPlain: ratio('plain proxy, impersonating', 'plain proxy', (x) => x.rps),
          throughputVsImpersonating: ratio('gatehouse', 'plain proxy, impersonating', (x) => x.rps),
        });
      }
    }
    clearInterval(sampler);
    results['latency'] = latency;
    out();
    out(
      '| request | concurrency | gatehouse added p50 ms | added p99 ms | throughput ÷ direct | throughput ÷ plain proxy | plain proxy impersonating ÷ plain proxy | gatehouse ÷ plain proxy impersonating | p50 with OPA server ÷ embedded |',
    );
    out('|---|---|---|---|---|---|---|---|---|');
    for (const r of ratioRows) out(r);

    // 1b. Inspected writes: what the policy's second look costs.
    results['inspectedWrites'] = await inspectedWrites(
      targets.filter((t) => t.name === 'direct' || t.name === 'gatehouse'),
      tb.kubeconfigs.admin,
    );

    // 1b'. Requests while the policy is reloaded, against requests without.
    results['reload'] = await duringReloads(
      targets.find((t) => t.name === 'gatehouse')!,
      policyCopy,
    );

    // 1c. A whole kubectl run through the demo (its credential plugin answering from the cache) vs direct.
    results['kubectl'] = await kubectlRuns(tb);

    // 2. Policy evaluation in process.
    const samples = (JSON.parse(readFileSync(join(projectRoot, 'policies/fixtures/samples.json'), 'utf8')) as { samples: { input: unknown }[] }).samples;
    const bundled = await loadPolicySource({ kind: 'rego', dir: join(projectRoot, 'policies/gatehouse'), opa: toolPath('opa') });
    // Without the footprint: the whole input to the WASM, nothing remembered (the engine before issue 17's cache).
    const whole = await createPolicyEngine(compiled(bundled.wasm, bundled.data), checkMaskPath);
    const wasm = await createPolicyEngine(bundled, checkMaskPath);
    const remote = createOpaServerEngine(`http://127.0.0.1:${opaPort}`, checkMaskPath);
    const evals = quick ? 2000 : 20000;
    const repeated = Array.from({ length: evals }, (_, i) => samples[i % samples.length]!.input);
    // Inputs never seen before: each in another namespace (or path), which the policy reads (it does not read the name).
    const unseen = repeated.map((input, i) => {
      const copy = structuredClone(input) as { resourceAttributes: { namespace: string } | null; nonResourceAttributes: { path: string } | null };
      if (copy.resourceAttributes) copy.resourceAttributes.namespace = `bench-${i}`;
      else if (copy.nonResourceAttributes) copy.nonResourceAttributes.path += `/bench-${i}`;
      return copy;
    });
    const timeEach = (evaluate: (input: unknown) => unknown, inputs: readonly unknown[]): number[] => {
      for (let i = 0; i < 500; i++) evaluate(samples[i % samples.length]!.input);
      return inputs.map((input) => {
        const s = process.hrtime.bigint();
        evaluate(input);
        return Number(process.hrtime.bigint() - s) / 1000;
      });
    };
    const pWhole = percentiles(
      timeEach((i) => whole.evaluate(i), repeated),
      [50, 99],
    );
    const pUnseen = percentiles(
      timeEach((i) => wasm.evaluate(i), unseen),
      [50, 99],
    );
    const pw = percentiles(
      timeEach((i) => wasm.evaluate(i), repeated),
      [50, 99],
    );
    const httpTimes: number[] = [];
    for (let i = 0; i < evals / 10; i++) {
      const s = process.hrtime.bigint();
      await remote.evaluate(samples[i % samples.length]!.input);
      httpTimes.push(Number(process.hrtime.bigint() - s) / 1000);
    }
    await remote.close();
    const ph = percentiles(httpTimes, [50, 99]);
    results['policy'] = { embedded: pw, embeddedUnseen: pUnseen, embeddedWholeInput: pWhole, opaServer: ph, speedupP50: ph['p50']! / pw['p50']! };
    out();
    out('## Policy evaluation (bundled policy, sample inputs, input serialization included)');
    out();
    out('| engine | p50 µs | p99 µs |');
    out('|---|---|---|');
    out(`| embedded WASM, an input seen before (decision cache) | ${pw['p50']!.toFixed(1)} | ${pw['p99']!.toFixed(1)} |`);
    out(
      `| embedded WASM, an input never seen (another namespace each; only what the policy reads goes in) | ${pUnseen['p50']!.toFixed(1)} | ${pUnseen['p99']!.toFixed(1)} |`,
    );
    out(`| embedded WASM, the whole input, no cache (a policy whose footprint is not known) | ${pWhole['p50']!.toFixed(1)} | ${pWhole['p99']!.toFixed(1)} |`);
    out(`| OPA server over HTTP | ${ph['p50']!.toFixed(1)} | ${ph['p99']!.toFixed(1)} |`);
    out(`| embedded speed-up (p50, seen before) | ${(ph['p50']! / pw['p50']!).toFixed(1)}× | |`);

    // 5. Memory.
    results['memory'] = { gatewayIdleRssMiB: idleRss, gatewayPeakRssUnderLoadMiB: loadRss };
    out();
    out('## Gateway memory (holding watches: section 7)');
    out();
    out('| idle RSS MiB | peak RSS during the latency runs MiB |');
    out('|---|---|');
    out(`| ${idleRss.toFixed(0)} | ${loadRss.toFixed(0)} |`);

    for (const t of targets) await t.dispatcher.close();
    await issuer.close();
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await down(tb.dir);
  }

  // 3. Redaction, in a process of its own (its memory measurement must not see ours).
  section('Redaction', 'redaction', ['--expose-gc', join(projectRoot, 'dist/bench/redact.js')]);
  // 4. What audit before action costs per request, in a process of its own.
  section('Audit before action', 'audit', [join(projectRoot, 'dist/bench/audit.js')]);
  // 6. Sessions and approvals, in a process (and test bed) of its own.
  section('Sessions and approvals', 'sessions', [join(projectRoot, 'dist/bench/sessions.js')]);
  // 7. Watches at scale, upstream over HTTP/1.1 and over HTTP/2, in a process (and test bed) of its own.
  section('Watches: upstream over HTTP/1.1 and HTTP/2, 1,000 and 5,000', 'watchesAtScale', [join(projectRoot, 'dist/bench/watches.js')]);

  validate(results);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = join(projectRoot, 'bench/results');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${stamp}${quick ? '-quick' : ''}.md`), report.join('\n') + '\n');
  writeFileSync(join(resultsDir, `${stamp}${quick ? '-quick' : ''}.json`), JSON.stringify(results, null, 2) + '\n');
  out();
  out(`Written to bench/results/${stamp}${quick ? '-quick' : ''}.{md,json}`);
  rmSync(dir, { recursive: true, force: true });
}

/** A result is malformed if a number in it is not finite or an expected part is missing. */
/** A benchmark run as a process of its own: its table goes into the report, its `@@json` line into the results. */
function section(title: string, key: string, args: string[]): void {
  out();
  out(`## ${title}`);
  out();
  const printed = execFileSync(process.execPath, [...args, ...(quick ? ['--quick'] : [])], { encoding: 'utf8' });
  for (const line of printed.trimEnd().split('\n')) {
    if (line.startsWith('@@json ')) results[key] = JSON.parse(line.slice(7));
    else out(line);
  }
}

function validate(r: Record<string, unknown>): void {
  for (const part of ['latency', 'inspectedWrites', 'reload', 'kubectl', 'policy', 'memory', 'redaction', 'audit', 'sessions', 'watchesAtScale'])
    if (!r[part]) throw new Error(`benchmark result has no ${part}`);
  const walk = (v: unknown, path: string): void => {
    if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`benchmark result ${path} is ${v}`);
    if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
  };
  walk(r, 'results');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    process.exit(1);
  },
);
