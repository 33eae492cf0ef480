/**
 * `gatehouse demo --replicas N`: the embedded default in its HA shape. One test
 * bed control plane, the demo OpenID provider, a PostgreSQL of its own (Debian's
 * server on a loopback port), N `gatehouse serve` processes sharing it, and
 * HAProxy in front: round-robin over TCP (TLS passes through, so exec, attach
 * and watches work as they do against one gateway), health checks on /readyz,
 * and a connection refused by a dead replica retried on another. Kubeconfigs
 * point at the balancer; replicas.json says where each replica is. A replica
 * that dies is started again after `restartAfterMs`, as a Deployment would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { messageOf } from '../errors.js';
import { projectRoot, runRoot } from '../paths.js';
import { down, up, type Testbed } from '../testbed/controlplane.js';
import { freePort } from '../testbed/ports.js';
import { selfSignedTls } from '../tls.js';
import { demoIssuerConfig, demoKubeconfigs, writeDemoKeys, writeDemoKubeconfig, DEMO_USERS, type DemoUser } from './demo.js';
import { DEMO_AUDIENCE, startDemoIssuer, type DemoIssuer } from './issuer.js';
import { startPostgres, type RunningPostgres } from './postgres.js';

export const haDemoDir = join(runRoot, 'demo-ha');

export interface ReplicaInfo {
  readonly name: string;
  readonly pid: number;
  readonly url: string;
  readonly metricsUrl: string;
}

export interface HaDemoOptions {
  readonly replicas: number;
  readonly dir?: string;
  readonly log?: (line: string) => void;
  /** Use this running control plane instead of starting one (the end-to-end suite's). */
  readonly testbed?: Testbed;
  /** How long a dead replica stays dead before the demo starts it again; null: until restart() (tests). */
  readonly restartAfterMs?: number | null;
  /** Merged over the demo's approvals settings (tests: holdSeconds, sweepSeconds). */
  readonly approvals?: Record<string, unknown>;
}

export interface RunningHaDemo {
  readonly dir: string;
  /** The balancer's URL: what the kubeconfigs name. */
  readonly url: string;
  readonly caPem: string;
  readonly issuer: DemoIssuer;
  readonly postgres: RunningPostgres;
  readonly kubeconfigs: Record<keyof typeof DEMO_USERS, string>;
  /** A kubeconfig for any identity the issuer mints; through the balancer unless `server` names a replica. */
  kubeconfigFor(name: string, u: DemoUser, server?: string): string;
  replicas(): readonly ReplicaInfo[];
  /** Starts replica i again if it is not running, and waits until it is ready. */
  restart(i: number): Promise<void>;
  /** HAProxy's view of each replica ("UP", "DOWN", …), from its admin socket. */
  balancerStatus(): Promise<Record<string, string>>;
  /** Takes a replica out of the balancer (maintenance) or puts it back, its process untouched (benchmarks). */
  setInBalancer(name: string, on: boolean): Promise<void>;
  stop(): Promise<void>;
}

/** HAProxy from Debian; scripts/system-deps.sh installs it. */
function haproxyBinary(): string {
  for (const f of ['/usr/sbin/haproxy', '/usr/bin/haproxy', '/usr/local/sbin/haproxy']) if (existsSync(f)) return f;
  throw new Error("HAProxy is not installed: run scripts/system-deps.sh (Debian's haproxy) and try again");
}

function haproxyConfig(a: { port: number; dir: string; replicas: readonly { name: string; port: number }[] }): string {
  return `# Written by gatehouse demo --replicas; TLS passes through to the replicas, which share one certificate.
global
  maxconn 4096
  log stdout format raw local0 info
  stats socket ${join(a.dir, 'haproxy.sock')} mode 600 level admin

defaults
  mode tcp
  log global
  option tcplog
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
  # A connection a dead replica refuses is tried again, on another replica each time.
  retries 3
  option redispatch 1

frontend gatehouse
  bind 127.0.0.1:${a.port}
  default_backend replicas

backend replicas
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  # Passive checks too: the first connection a replica refuses marks it down, so no retry is
  # redispatched to it again while the active checks (every second) have not noticed yet.
  default-server check check-ssl ca-file ${join(a.dir, 'tls', 'ca.crt')} verify required inter 1s fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down
${a.replicas.map((r) => `  server ${r.name} 127.0.0.1:${r.port}`).join('\n')}
`;
}

/** GET /readyz of one replica until it answers 200. */
async function waitReady(url: string, caPem: string, proc: ChildProcess, logFile: string, timeoutMs = 60_000): Promise<void> {
  const agent = new Agent({ ca: caPem, keepAlive: false });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const status = await new Promise<number>((resolve) => {
        request(`${url}/readyz`, { agent, timeout: 2000 }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', () => resolve(0))
          .end();
      });
      if (status === 200) return;
      if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > deadline) {
        const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '';
        throw new Error(`replica at ${url} did not become ready (${proc.exitCode ?? proc.signalCode ?? 'timeout'}):\n${tail}`);
      }
      await sleep(100);
    }
  } finally {
    agent.destroy();
  }
}

const running = (p: ChildProcess | undefined): p is ChildProcess => p !== undefined && p.exitCode === null && p.signalCode === null;

/** One line of HAProxy's admin socket protocol. */
async function haproxyCommand(socket: string, command: string): Promise<string> {
  const { createConnection } = await import('node:net');
  return new Promise((resolve, reject) => {
    let out = '';
    const c = createConnection(socket, () => c.end(command + '\n'));
    c.setEncoding('utf8').on('data', (d: string) => (out += d));
    c.on('end', () => resolve(out));
    c.on('error', reject);
  });
}

export async function startHaDemo(options: HaDemoOptions): Promise<RunningHaDemo> {
  if (!Number.isInteger(options.replicas) || options.replicas < 1 || options.replicas > 16) throw new Error('--replicas must be a whole number from 1 to 16');
  const dir = options.dir ?? haDemoDir;
  const log = options.log ?? (() => {});
  const haproxy = haproxyBinary();
  for (const f of ['ready', 'replicas.json']) rmSync(join(dir, f), { force: true });
  rmSync(join(dir, 'cache'), { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  // Everything started here, for the watchdog: if this process is killed, it stops them.
  const ownedFile = join(dir, 'owned.json');
  const owned = { pids: new Set<number>(), paths: new Set<string>([join(dir, 'ready'), join(dir, 'replicas.json')]) };
  const saveOwned = () => {
    writeFileSync(ownedFile + '.tmp', JSON.stringify({ pids: [...owned.pids], paths: [...owned.paths] }));
    renameSync(ownedFile + '.tmp', ownedFile);
  };
  saveOwned();
  spawn(process.execPath, [join(projectRoot, 'dist/src/demo/ha-watchdog.js'), String(process.pid), ownedFile], { detached: true, stdio: 'ignore' }).unref();

  const ownTestbed = options.testbed === undefined;
  let testbed: Testbed | undefined = options.testbed;
  let issuer: DemoIssuer | undefined;
  let postgres: RunningPostgres | undefined;
  let balancer: ChildProcess | undefined;
  const procs: (ChildProcess | undefined)[] = [];
  let stopping = false;
  const restartTimers = new Set<NodeJS.Timeout>();

  const cleanUp = async () => {
    stopping = true;
    for (const t of restartTimers) clearTimeout(t);
    rmSync(join(dir, 'ready'), { force: true });
    const stop = async (p: ChildProcess | undefined, signal: NodeJS.Signals) => {
      if (!running(p)) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill(signal);
      await exited;
    };
    await stop(balancer, 'SIGTERM');
    // Replicas drain (limits.shutdownGraceSeconds), all at once.
    await Promise.all(procs.map((p) => stop(p, 'SIGTERM')));
    await issuer?.close();
    await postgres?.stop();
    if (ownTestbed && testbed) await down(testbed.dir);
    for (const f of ['replicas.json', 'haproxy.sock']) rmSync(join(dir, f), { force: true });
    rmSync(ownedFile, { force: true });
  };

  try {
    if (ownTestbed) log('starting the control plane (kube-apiserver + etcd)');
    testbed ??= await up({ dir: join(dir, 'testbed'), ownerPid: process.pid });
    log('starting PostgreSQL');
    postgres = await startPostgres();
    owned.pids.add(postgres.pid);
    owned.paths.add(postgres.dir);
    saveOwned();
    writeFileSync(join(dir, 'postgres.url'), postgres.url + '\n', { mode: 0o600 });

    const lbPort = await freePort();
    const url = `https://127.0.0.1:${lbPort}`;
    const slots = await Promise.all(
      Array.from({ length: options.replicas }, async (_, i) => ({ name: `replica-${i + 1}`, port: await freePort(), metricsPort: await freePort() })),
    );
    const callbacks = [url, ...slots.map((s) => `https://127.0.0.1:${s.port}`)].map((u) => `${u}/gatehouse/callback`);
    issuer = await startDemoIssuer(await freePort(), join(dir, 'issuer.json'), callbacks);
    log(`demo OpenID provider at ${issuer.issuer}`);
    // One certificate for all: a client trusts the same CA whichever replica answers.
    const tls = selfSignedTls(join(dir, 'tls'), ['127.0.0.1', 'localhost']);
    writeDemoKeys(dir);

    const configOf = (s: (typeof slots)[number]) => {
      const folder = join(dir, s.name);
      mkdirSync(folder, { recursive: true, mode: 0o700 });
      const file = join(folder, 'gatehouse.yaml');
      writeFileSync(
        file,
        stringify({
          cluster: 'demo',
          listen: { address: `127.0.0.1:${s.port}`, tls: { cert: '../tls/server.crt', key: '../tls/server.key' } },
          upstream: { kubeconfig: testbed!.kubeconfigs.gateway },
          identity: { issuers: [demoIssuerConfig(issuer!.issuer)] },
          policy: { dir: join(projectRoot, 'policies/gatehouse') },
          audit: { file: 'audit.log', checkpoint: { keyFile: '../audit-checkpoint.key' } },
          metrics: { address: `127.0.0.1:${s.metricsPort}` },
          masking: { hashKeyFile: '../hash.key' },
          store: { postgres: { urlFile: '../postgres.url' } },
          limits: { shutdownGraceSeconds: 10 },
          approvals: {
            mode: { agents: 'hold', people: 'refuse' },
            holdSeconds: 600,
            publicUrl: url,
            web: { clientId: DEMO_AUDIENCE, cookieKeyFile: '../web-cookie.key' },
            ...options.approvals,
          },
        }),
      );
      return file;
    };

    const writeReplicas = () => {
      const list = replicas();
      writeFileSync(join(dir, 'replicas.json.tmp'), JSON.stringify(list, null, 2) + '\n');
      renameSync(join(dir, 'replicas.json.tmp'), join(dir, 'replicas.json'));
    };
    const replicas = (): ReplicaInfo[] =>
      slots.map((s, i) => ({
        name: s.name,
        pid: running(procs[i]) ? procs[i].pid! : 0,
        url: `https://127.0.0.1:${s.port}`,
        metricsUrl: `http://127.0.0.1:${s.metricsPort}/metrics`,
      }));

    const startReplica = async (i: number): Promise<void> => {
      const s = slots[i]!;
      if (running(procs[i])) return;
      const logFile = join(dir, s.name, 'gatehouse.log');
      const config = configOf(s);
      const fd = openSync(logFile, 'a');
      const proc = spawn(process.execPath, [join(projectRoot, 'bin/gatehouse.js'), 'serve', '--config', config], { stdio: ['ignore', fd, fd] });
      closeSync(fd);
      procs[i] = proc;
      owned.pids.add(proc.pid!);
      saveOwned();
      proc.once('exit', (code, signal) => {
        owned.pids.delete(proc.pid!);
        if (stopping) return;
        saveOwned();
        writeReplicas();
        log(`${s.name} (pid ${proc.pid}) exited (${signal ?? code})`);
        const after = options.restartAfterMs === undefined ? 5000 : options.restartAfterMs;
        if (after === null) return;
        const t = setTimeout(() => {
          restartTimers.delete(t);
          if (stopping) return;
          log(`starting ${s.name} again`);
          startReplica(i).catch((err: unknown) => log(`${s.name} did not start again: ${messageOf(err)}`));
        }, after);
        restartTimers.add(t);
      });
      await waitReady(`https://127.0.0.1:${s.port}`, tls.caPem, proc, logFile);
      writeReplicas();
    };

    log(`starting ${slots.length} gateway replicas`);
    // The first alone: it creates the schema; the others would wait on its lock anyway.
    await startReplica(0);
    await Promise.all(slots.slice(1).map((_, i) => startReplica(i + 1)));

    writeFileSync(join(dir, 'haproxy.cfg'), haproxyConfig({ port: lbPort, dir, replicas: slots }));
    const lbLog = openSync(join(dir, 'haproxy.log'), 'a');
    balancer = spawn(haproxy, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', lbLog, lbLog] });
    closeSync(lbLog);
    owned.pids.add(balancer.pid!);
    saveOwned();
    const lb = balancer;
    await waitReady(url, tls.caPem, lb, join(dir, 'haproxy.log'));
    log(`HAProxy at ${url}`);

    const issuerUrl = issuer.issuer;
    const kubeconfigFor = (name: string, u: DemoUser, server = url) => writeDemoKubeconfig({ dir, server, caPem: tls.caPem, issuer: issuerUrl }, name, u);
    const kubeconfigs = demoKubeconfigs(kubeconfigFor);
    writeFileSync(join(dir, 'ready'), url + '\n');
    const parts = { issuer, postgres };
    return {
      dir,
      url,
      caPem: tls.caPem,
      ...parts,
      kubeconfigs,
      kubeconfigFor,
      replicas,
      restart: (i) => startReplica(i),
      async balancerStatus() {
        // "show servers state": one line per server; field 4 is its name, 6 its operational state (0 down, 2 up).
        const text = await haproxyCommand(join(dir, 'haproxy.sock'), 'show servers state replicas');
        const out: Record<string, string> = {};
        for (const line of text.split('\n')) {
          const f = line.split(' ');
          if (f.length > 6 && /^\d+$/.test(f[0]!) && f[1] === 'replicas') out[f[3]!] = f[5] === '2' ? 'UP' : f[5] === '0' ? 'DOWN' : `state ${f[5]}`;
        }
        return out;
      },
      async setInBalancer(name, on) {
        await haproxyCommand(join(dir, 'haproxy.sock'), `set server replicas/${name} state ${on ? 'ready' : 'maint'}`);
      },
      stop: cleanUp,
    };
  } catch (err) {
    await cleanUp();
    throw err;
  }
}
