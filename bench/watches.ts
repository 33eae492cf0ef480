/**
 * Watches at scale: N concurrent watches through one gateway process (its own
 * test bed), with the upstream over HTTP/1.1 (a TLS connection per watch) and
 * over HTTP/2 (streams multiplexed on a few connections), and the watchers on
 * a connection each (separate kubectl processes) or 100 to an HTTP/2
 * connection (one client-go process). For each: the gateway's RSS and CPU
 * holding them, its connections to the API server, and the latency and the
 * gateway CPU of one change from the API server to every watcher. Asserts no
 * timing.
 *   node dist/bench/watches.js [--quick]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { Agent, Client, request } from 'undici';
import { stringify } from 'yaml';
import { DEMO_AUDIENCE, mintToken, startDemoIssuer, type IssuerFile } from '../src/demo/issuer.js';
import { projectRoot, runRoot } from '../src/paths.js';
import { down, up, type Testbed } from '../src/testbed/controlplane.js';
import { freePort } from '../src/testbed/ports.js';
import { connectionsTo } from '../src/testbed/sockets.js';
import { selfSignedTls } from '../src/tls.js';
import { cpuSeconds, rssMiB } from './proc.js';
import { percentiles } from './stats.js';
import { readUntilAborted } from './watch-reader.js';

const quick = process.argv.includes('--quick');
const COUNTS = quick ? [200] : [1000, 5000];
const OPENING = 200;
const dir = join(runRoot, `bench-watches-${process.pid}`);
const out = (s = '') => process.stdout.write(s + '\n');

async function waitReady(url: string, dispatcher: Agent): Promise<void> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(100)) {
    try {
      const res = await request(url, { dispatcher });
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      // not yet
    }
  }
  throw new Error(`${url} did not become ready`);
}

interface Row {
  readonly upstream: string;
  readonly clients: string;
  readonly watches: number;
  readonly opened: number;
  readonly received: number;
  /** RSS just after the watches opened (and a 5 s idle window). */
  readonly rssMiB: number;
  /** RSS after a minute left alone: V8's memory reducer shrinks the heap a burst grew some 15-30 s later. Null in --quick. */
  readonly settledRssMiB: number | null;
  readonly retried429: number;
  readonly upstreamConnections: number;
  /** Cores the gateway used holding the watches with nothing happening. */
  readonly idleCpuCores: number;
  /** CPU seconds the gateway spent sending one change to every watcher. */
  readonly fanoutCpuSeconds: number;
  /** CPU seconds the gateway spent closing every watch, once all went at once. */
  readonly closeCpuSeconds: number;
  readonly p50: number;
  readonly p99: number;
}

/**
 * The RSS of a gateway left alone with its watches for a minute (longer while it still falls,
 * 90 s at most), sampled every 2 s. After the burst of opening them, V8 keeps the young generation
 * it grew until its memory reducer runs, some 15-30 s later here (bench/README.md, twelfth session).
 */
async function settledRssMiB(pid: number): Promise<number> {
  let last = rssMiB(pid);
  for (const start = Date.now(); ;) {
    await sleep(2000);
    const now = rssMiB(pid);
    const falling = now < last - 1;
    last = now;
    if (Date.now() - start >= 90_000 || (Date.now() - start >= 60_000 && !falling)) return now;
  }
}

/** Watches a client-go process would share on one HTTP/2 connection: 100 a connection here, each connection one undici Client. */
const WATCHES_PER_CLIENT_CONNECTION = 100;

async function measure(tb: Testbed, issuerFile: IssuerFile, http2: boolean, clientsHttp2: boolean, watches: number): Promise<Row> {
  const port = await freePort();
  const name = `${http2 ? 'h2' : 'h1'}-${clientsHttp2 ? 'h2' : 'h1'}-${watches}`;
  const config = join(dir, `gatehouse-${name}.yaml`);
  writeFileSync(
    config,
    stringify({
      cluster: 'bench',
      listen: { address: `127.0.0.1:${port}`, tls: { selfSigned: { dir: join(dir, 'tls') } } },
      upstream: { kubeconfig: tb.kubeconfigs.gateway, http2 },
      identity: {
        issuers: [{ issuer: issuerFile.issuer, audiences: [DEMO_AUDIENCE], usernameClaim: 'email', groupsClaim: 'groups', algorithms: ['RS256'] }],
      },
      policy: { dir: join(projectRoot, 'policies/gatehouse') },
      audit: { file: join(dir, `audit-${name}.log`) },
      // The watches stand for many clients (a thousand kubectl processes, or controllers), all with one token here.
      limits: { maxLongRunningPerUser: 1_000_000 },
    }),
  );
  const gw: ChildProcess = spawn(process.execPath, [join(projectRoot, 'bin/gatehouse.js'), 'serve', '--config', config], { stdio: 'ignore' });
  const ca = readFileSync(join(dir, 'tls', 'ca.crt'));
  const agent = new Agent({ connect: { ca, timeout: 60_000 }, connections: watches + 8, pipelining: 1 });
  const clients = clientsHttp2
    ? Array.from(
        { length: Math.ceil(watches / WATCHES_PER_CLIENT_CONNECTION) },
        () => new Client(`https://127.0.0.1:${port}`, { connect: { ca, timeout: 60_000 }, allowH2: true, pipelining: WATCHES_PER_CLIENT_CONNECTION }),
      )
    : [];
  try {
    await waitReady(`https://127.0.0.1:${port}/readyz`, agent);
    const { token } = await mintToken(issuerFile, { user: 'alice@example.com', groups: ['dev'], ttlSeconds: 3600 });
    const admin = new KubeConfig();
    admin.loadFromFile(tb.kubeconfigs.admin);
    const adminToken = admin.getCurrentUser()!.token!;
    const adminAgent = new Agent({ connect: { ca: readFileSync(tb.caFile) } });
    const listed = await request(`${tb.server}/api/v1/namespaces/dev/configmaps?fieldSelector=metadata.name%3Dwatched`, {
      headers: { authorization: `Bearer ${adminToken}` },
      dispatcher: adminAgent,
    });
    const rv = ((await listed.body.json()) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    const arrivals: number[] = [];
    let marker = '';
    let opened = 0;
    const aborts = new AbortController();
    setMaxListeners(watches + 10, aborts.signal);
    const errors: string[] = [];
    let retried = 0;
    let opening = 0;
    const watchers = Array.from({ length: watches }, async (_, i) => {
      const open = () =>
        request(`https://127.0.0.1:${port}/api/v1/namespaces/dev/configmaps?watch=1&fieldSelector=metadata.name%3Dwatched&resourceVersion=${rv}`, {
          headers: { authorization: `Bearer ${token}` },
          dispatcher: clientsHttp2 ? clients[Math.floor(i / WATCHES_PER_CLIENT_CONNECTION)]! : agent,
          signal: aborts.signal,
          bodyTimeout: 0,
        });
      // At most OPENING handshakes at a time: thousands of TLS handshakes at once overflow the listen backlog.
      while (opening >= OPENING) await sleep(5);
      opening++;
      let res = await open().finally(() => opening--);
      // The API server's priority and fairness turns a burst away with 429 and Retry-After; client-go waits and retries.
      while (res.statusCode === 429) {
        retried++;
        await res.body.dump();
        await sleep(Number(res.headers['retry-after'] ?? 1) * 1000 * (0.5 + Math.random()));
        res = await open();
      }
      if (res.statusCode !== 200) throw new Error(`watch: HTTP ${res.statusCode}`);
      opened++;
      await readUntilAborted(
        res.body,
        () => marker,
        () => arrivals.push(Date.now()),
      );
    }).map((p) => p.catch((err: unknown) => void errors.push(err instanceof Error ? err.message : String(err))));
    for (const deadline = Date.now() + 120_000; opened + errors.length < watches && Date.now() < deadline;) await sleep(50);
    if (errors.length) throw new Error(`${errors.length} watches failed to open, e.g. ${errors[0]}`);
    await sleep(2000);
    const idleWindow = quick ? 2 : 5;
    const cpu0 = cpuSeconds(gw.pid!);
    await sleep(idleWindow * 1000);
    const cpu1 = cpuSeconds(gw.pid!);
    const rss = rssMiB(gw.pid!);
    const settledRss = quick ? null : await settledRssMiB(gw.pid!);
    const cpuSettled = cpuSeconds(gw.pid!);
    const upstreamConnections = connectionsTo(gw.pid!, Number(new URL(tb.server).port));
    marker = `m-${Date.now()}`;
    const changedAt = Date.now();
    const patched = await request(`${tb.server}/api/v1/namespaces/dev/configmaps/watched`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ data: { v: marker } }),
      dispatcher: adminAgent,
    });
    await patched.body.dump();
    for (const deadline = Date.now() + 60_000; arrivals.length < opened && Date.now() < deadline;) await sleep(20);
    const fanoutCpuSeconds = cpuSeconds(gw.pid!) - cpuSettled;
    // Then every watcher goes at once: what closing them costs the gateway (each watch's last audit
    // record, its upstream stream reset), until it is idle again.
    const cpu2 = cpuSeconds(gw.pid!);
    aborts.abort();
    await Promise.allSettled(watchers);
    await sleep(2000);
    const closeCpuSeconds = cpuSeconds(gw.pid!) - cpu2;
    await adminAgent.close();
    const lat = percentiles(
      arrivals.map((t) => t - changedAt),
      [50, 99],
    );
    return {
      upstream: http2 ? 'HTTP/2' : 'HTTP/1.1',
      clients: clientsHttp2 ? 'HTTP/2' : 'HTTP/1.1',
      watches,
      opened,
      received: arrivals.length,
      rssMiB: rss,
      settledRssMiB: settledRss,
      retried429: retried,
      upstreamConnections,
      idleCpuCores: (cpu1 - cpu0) / idleWindow,
      fanoutCpuSeconds,
      closeCpuSeconds,
      p50: lat['p50'] ?? NaN,
      p99: lat['p99'] ?? NaN,
    };
  } finally {
    await agent.destroy();
    await Promise.all(clients.map((c) => c.destroy()));
    const exited = new Promise((r) => gw.once('exit', r));
    gw.kill('SIGKILL');
    await exited;
  }
}

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tb = await up({ dir: join(dir, 'testbed'), ownerPid: process.pid });
  const issuer = await startDemoIssuer(await freePort(), join(dir, 'issuer.json'));
  try {
    const issuerFile = JSON.parse(readFileSync(join(dir, 'issuer.json'), 'utf8')) as IssuerFile;
    selfSignedTls(join(dir, 'tls'), ['127.0.0.1', 'localhost']);
    const admin = new KubeConfig();
    admin.loadFromFile(tb.kubeconfigs.admin);
    const created = await request(`${tb.server}/api/v1/namespaces/dev/configmaps`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin.getCurrentUser()!.token!}`, 'content-type': 'application/json' },
      body: JSON.stringify({ metadata: { name: 'watched' }, data: { v: '0' } }),
      dispatcher: new Agent({ connect: { ca: readFileSync(tb.caFile) } }),
    });
    await created.body.dump();
    out(`${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}. ${new Date().toISOString()}.`);
    out('Watchers over HTTP/1.1 keep a connection each to the gateway (separate kubectl processes); over HTTP/2, 100 share one');
    out('(the watches of one client-go process). A change is PATCHed straight to the API server.');
    out();
    out(
      '| clients | upstream | watches | opened | received the change | gateway RSS MiB, just opened | settled | gateway CPU idle (cores) | CPU s for the change | CPU s to close them all | connections to the API server | change → watcher p50 ms | p99 ms | 429s retried |',
    );
    out('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    const rows: Row[] = [];
    for (const n of COUNTS)
      for (const [clientsHttp2, http2] of [
        [false, false],
        [false, true],
        [true, true],
      ] as const) {
        const r = await measure(tb, issuerFile, http2, clientsHttp2, n);
        rows.push(r);
        out(
          `| ${r.clients} | ${r.upstream} | ${r.watches} | ${r.opened} | ${r.received} | ${r.rssMiB.toFixed(0)} | ${r.settledRssMiB === null ? '–' : r.settledRssMiB.toFixed(0)} | ${r.idleCpuCores.toFixed(3)} | ${r.fanoutCpuSeconds.toFixed(2)} | ${r.closeCpuSeconds.toFixed(2)} | ${r.upstreamConnections} | ${r.p50} | ${r.p99} | ${r.retried429} |`,
        );
      }
    out();
    out('@@json ' + JSON.stringify(rows));
    const short = rows.find((r) => r.opened !== r.watches || r.received !== r.opened);
    if (short) throw new Error(`${short.upstream}: ${short.opened} of ${short.watches} watches opened, ${short.received} received the change`);
  } finally {
    await issuer.close();
    await down(tb.dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
