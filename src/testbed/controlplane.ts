import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { renderKubeconfig } from '../kubeconfig.js';
import { projectRoot, runRoot, toolPath } from '../paths.js';
import { freePort } from './ports.js';
import { seedWorld } from './seed.js';
import { IDENTITIES, type TestIdentity } from './world.js';

/** What a running test bed offers its users; persisted as state.json in its folder. */
export interface Testbed {
  readonly dir: string;
  readonly server: string;
  readonly caFile: string;
  readonly kubeconfigs: { readonly admin: string; readonly gateway: string };
  readonly pids: { readonly etcd: number; readonly apiserver: number; readonly kubelet: number; readonly watchdog: number };
  readonly ports: { readonly etcd: number; readonly etcdPeer: number; readonly apiserver: number; readonly kubelet: number };
  readonly auditLog: string;
  readonly startedAt: string;
}

export interface UpOptions {
  readonly dir?: string;
  /** The test bed is torn down when this process dies (a test run); omit for `gatehouse testbed up`. */
  readonly ownerPid?: number;
  readonly readyTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

export const defaultDir = join(runRoot, 'testbed');

export class TestbedError extends Error {
  readonly code = 'GATEHOUSE_TESTBED';
}

/**
 * Starts etcd and kube-apiserver on free loopback ports, waits for /readyz,
 * writes kubeconfigs and seeds the test world. Flags follow controller-runtime's
 * envtest, plus an audit log so tests can see what the API server was asked as whom.
 */
export async function up(options: UpOptions = {}): Promise<Testbed> {
  const dir = options.dir ?? defaultDir;
  const log = options.log ?? (() => {});
  const running = readState(dir);
  if (running && isAlive(running.pids.apiserver)) {
    throw new TestbedError(`a test bed is already running in ${dir} (kube-apiserver pid ${running.pids.apiserver}): run \`gatehouse testbed down\` first`);
  }
  const etcdBin = toolPath('etcd');
  const apiserverBin = toolPath('kube-apiserver');
  const kubeletBin = toolPath('kubelet');

  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'etcd-data'), { recursive: true, mode: 0o700 });
  mkdirSync(join(dir, 'certs'), { recursive: true, mode: 0o700 });

  const tokens = Object.fromEntries(IDENTITIES.map((id) => [id.name, randomBytes(32).toString('base64url')])) as Record<TestIdentity['name'], string>;
  // Static token file: token,user,uid,"group1,group2" (kube-apiserver --token-auth-file).
  writeFileSync(
    join(dir, 'tokens.csv'),
    IDENTITIES.map((id) => `${tokens[id.name]},${id.user},${id.name},"${id.groups.join(',')}"`).join('\n') + '\n',
    { mode: 0o600 },
  );
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(join(dir, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(
    join(dir, 'audit-policy.yaml'),
    'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: Metadata\n',
  );

  const ports = { etcd: await freePort(), etcdPeer: await freePort(), apiserver: await freePort(), kubelet: await freePort() };
  const started: ChildProcess[] = [];
  try {
    const etcdUrl = `http://127.0.0.1:${ports.etcd}`;
    const peerUrl = `http://127.0.0.1:${ports.etcdPeer}`;
    const etcd = launch(etcdBin, join(dir, 'etcd.log'), [
      '--name=testbed',
      `--data-dir=${join(dir, 'etcd-data')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=testbed=${peerUrl}`,
      // A throwaway store: fsync buys durability the test bed does not need.
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ]);
    started.push(etcd);
    const auditLog = join(dir, 'audit.log');
    const apiserver = launch(apiserverBin, join(dir, 'kube-apiserver.log'), [
      `--etcd-servers=${etcdUrl}`,
      `--cert-dir=${join(dir, 'certs')}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${ports.apiserver}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      '--authorization-mode=RBAC',
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      // No controller-manager runs, so nothing would ever mint the tokens this plugin waits for.
      '--disable-admission-plugins=ServiceAccount',
      `--audit-policy-file=${join(dir, 'audit-policy.yaml')}`,
      `--audit-log-path=${auditLog}`,
      '--audit-log-mode=batch',
      '--audit-log-batch-max-wait=100ms',
      '--v=0',
    ]);
    started.push(apiserver);
    // Serves what the API server proxies `kubectl logs`, exec, attach and port-forward to (testbed/kubelet);
    // commands of pod NS/NAME start in pods/NS/NAME.
    const kubelet = launch(kubeletBin, join(dir, 'kubelet.log'), [`127.0.0.1:${ports.kubelet}`, join(dir, 'pods')]);
    started.push(kubelet);
    const watchdog = spawn(process.execPath, [join(projectRoot, 'dist/src/testbed/watchdog.js'), String(options.ownerPid ?? 0), dir, String(etcd.pid), String(apiserver.pid), String(kubelet.pid)], {
      detached: true,
      stdio: 'ignore',
    });
    watchdog.unref();
    started.push(watchdog);

    const server = `https://127.0.0.1:${ports.apiserver}`;
    const caFile = join(dir, 'certs', 'apiserver.crt');
    log(`waiting for ${server}/readyz`);
    await waitReady(server, caFile, tokens.admin, [etcd, apiserver], dir, options.readyTimeoutMs ?? 90_000);
    const caPem = readFileSync(caFile, 'utf8');

    const kubeconfigs = { admin: join(dir, 'admin.kubeconfig'), gateway: join(dir, 'gateway.kubeconfig') };
    for (const id of ['admin', 'gateway'] as const) {
      const identity = IDENTITIES.find((i) => i.name === id)!;
      writeFileSync(kubeconfigs[id], renderKubeconfig({ name: 'testbed', server, caPem, user: identity.user, auth: { kind: 'token', token: tokens[id] } }), {
        mode: 0o600,
      });
    }
    log('seeding namespaces, workloads, secrets and RBAC');
    await seedWorld(kubeconfigs.admin, ports.kubelet);

    const testbed: Testbed = {
      dir,
      server,
      caFile,
      kubeconfigs,
      pids: { etcd: etcd.pid!, apiserver: apiserver.pid!, kubelet: kubelet.pid!, watchdog: watchdog.pid! },
      ports,
      auditLog,
      startedAt: new Date().toISOString(),
    };
    writeFileSync(join(dir, 'state.json'), JSON.stringify(testbed, null, 2) + '\n');
    return testbed;
  } catch (err) {
    await stopProcesses(started.map((p) => p.pid).filter((pid): pid is number => pid !== undefined));
    throw err;
  }
}

/** Stops every process of the test bed in `dir` and removes its folder. Safe to call twice. */
export async function down(dir: string = defaultDir): Promise<boolean> {
  const state = readState(dir);
  if (!state) return false;
  // In order: the API server while its etcd still answers (it shuts down cleanly then), etcd, and
  // the watchdog last. If whoever runs this dies half-way (a second signal, SIGKILL), the watchdog
  // is still there, sees its owner gone and finishes the job: nothing is left running.
  await stopProcesses([state.pids.apiserver, state.pids.kubelet]);
  await stopProcesses([state.pids.etcd]);
  rmSync(dir, { recursive: true, force: true });
  await stopProcesses([state.pids.watchdog]);
  return true;
}

export type Status = { readonly running: false; readonly dir: string } | { readonly running: true; readonly ready: boolean; readonly testbed: Testbed };

export async function status(dir: string = defaultDir): Promise<Status> {
  const state = readState(dir);
  if (!state || !isAlive(state.pids.apiserver)) return { running: false, dir };
  const admin = readFileSync(join(dir, 'tokens.csv'), 'utf8').split('\n')[0]!.split(',')[0]!;
  return { running: true, ready: await isReady(state.server, state.caFile, admin), testbed: state };
}

export function readState(dir: string): Testbed | undefined {
  const file = join(dir, 'state.json');
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as Testbed;
}

function launch(bin: string, logFile: string, args: string[]): ChildProcess {
  const fd = openSync(logFile, 'a', 0o600);
  // Detached: each server leads its own process group, so `down` can signal the
  // group and the servers outlive a short-lived `gatehouse testbed up`.
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  return child;
}

async function waitReady(server: string, caFile: string, token: string, children: ChildProcess[], dir: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const exited = children.find((c) => c.exitCode !== null || c.signalCode !== null);
    if (exited) {
      const which = exited.spawnfile.endsWith('etcd') ? 'etcd' : 'kube-apiserver';
      throw new TestbedError(`${which} exited during start-up (code ${exited.exitCode ?? exited.signalCode}); last lines of ${join(dir, which + '.log')}:\n${tail(join(dir, which + '.log'))}`);
    }
    if (existsSync(caFile) && (await isReady(server, caFile, token))) return;
    await sleep(200);
  }
  throw new TestbedError(`kube-apiserver was not ready within ${timeoutMs} ms; last lines of its log:\n${tail(join(dir, 'kube-apiserver.log'))}`);
}

async function isReady(server: string, caFile: string, token: string): Promise<boolean> {
  const dispatcher = new Agent({ connect: { ca: readFileSync(caFile) } });
  try {
    const res = await request(`${server}/readyz`, { headers: { authorization: `Bearer ${token}` }, dispatcher, headersTimeout: 2000, bodyTimeout: 2000 });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  } finally {
    await dispatcher.close();
  }
}

function tail(file: string, lines = 20): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(pid, 0) until its new parent reaps it, but it
  // holds no port and no file: count it as gone.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** SIGTERM to each process group, then SIGKILL to whatever is left after 5 s. */
export async function stopProcesses(pids: readonly number[]): Promise<void> {
  const signal = (pid: number, sig: NodeJS.Signals) => {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, sig);
      } catch {
        // already gone
      }
    }
  };
  for (const pid of pids) signal(pid, 'SIGTERM');
  const deadline = Date.now() + 5000;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(50);
  for (const pid of pids.filter(isAlive)) signal(pid, 'SIGKILL');
}
