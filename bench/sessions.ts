/**
 * Sessions and approvals (src/upgrade, src/recording, src/approval), in a
 * process of its own with its own test bed:
 *
 *  1. exec through kubectl 1.32: the time of `exec -- true` and the throughput of a
 *     command printing MBs, direct to kube-apiserver (admin token) and through
 *     Gatehouse (recorded), over WebSocket and over SPDY;
 *  2. the recording tap alone: WebSocket frames through the reader, the
 *     session tap and the asciicast writer, in MB/s;
 *  3. approval release: from an approver's decision to the held request going
 *     on, with SQLite in process and with PostgreSQL across two stores
 *     (LISTEN/NOTIFY), when a PostgreSQL server is installed.
 *
 * Prints markdown lines and one `@@json` line for bench/run.ts. Asserts no timing.
 *   node dist/bench/sessions.js [--quick]
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fingerprint, subjectOf } from '../src/approval/approval.js';
import { openPostgresStore } from '../src/approval/postgres-store.js';
import { createApprovalService } from '../src/approval/service.js';
import { openSqliteStore } from '../src/approval/sqlite-store.js';
import type { ApprovalStore } from '../src/approval/store.js';
import { createMemoryAuditWriter } from '../src/audit/writer.js';
import { startDemo } from '../src/demo/demo.js';
import { mintToken, type IssuerFile } from '../src/demo/issuer.js';
import type { Identity } from '../src/identity/identity.js';
import { renderKubeconfig } from '../src/kubeconfig.js';
import { runRoot } from '../src/paths.js';
import { createFileSessionStore } from '../src/recording/sessions.js';
import { openPostgres } from '../src/store/postgres.js';
import { SCHEMA } from '../src/approval/store.js';
import { parseTarget } from '../src/request/attributes.js';
import { openSession } from '../src/upgrade/open.js';
import { startPostgres } from '../src/demo/postgres.js';
import { machineCpuSeconds } from './proc.js';
import { percentiles } from './stats.js';
import { measureRelayFloor } from './tls-relay.js';

const quick = process.argv.includes('--quick');
/** The output of each throughput run of exec, and what the bare TLS relay passes. */
const execMB = quick ? 8 : 64;
const dir = join(runRoot, `bench-sessions-${process.pid}`);
const json: Record<string, unknown> = {};
const out = (s = '') => process.stdout.write(s + '\n');
const median = (xs: number[]) => percentiles(xs, [50])['p50']!;

function time(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

const run = promisify(execFile);

interface ExecRow {
  readonly transport: 'websocket' | 'spdy';
  readonly target: string;
  readonly execTrueMs: number;
  readonly throughputMBps: number;
  /** The whole machine's CPU per MB of output: kubectl, the API server, the stand-in kubelet and, through it, the gateway. */
  readonly machineMsPerMB: number;
  /** The share of the machine's two cores busy while the output ran. */
  readonly busy: number;
  /** This process's CPU per MB: the gateway's, which runs in it; null direct. */
  readonly gatewayMsPerMB: number | null;
}

async function execBench(): Promise<ExecRow[]> {
  const demo = await startDemo({ dir: join(dir, 'demo'), audit: createMemoryAuditWriter(() => {}) });
  try {
    const issuer = JSON.parse(readFileSync(join(demo.dir, 'issuer.json'), 'utf8')) as IssuerFile;
    // A static token: the demo's exec plugin would add a node start to every kubectl run.
    const { token } = await mintToken(issuer, { user: 'bob@example.com', groups: ['admins'], ttlSeconds: 3600 });
    const viaGateway = join(dir, 'bob.kubeconfig');
    writeFileSync(
      viaGateway,
      renderKubeconfig({ name: 'bench', server: demo.gateway.url, caPem: demo.gateway.caPem!, user: 'bob', auth: { kind: 'token', token } }),
    );
    const targets = { direct: join(demo.dir, 'testbed', 'admin.kubeconfig'), gatehouse: viaGateway };
    const mb = execMB;
    const runs = quick ? 3 : 7;
    out(
      `| transport | target | \`exec -- true\` p50 ms | throughput MB/s (${mb} MB of output) | machine CPU ms per MB | machine busy | gateway CPU ms per MB |`,
    );
    out('|---|---|---|---|---|---|---|');
    const rows: ExecRow[] = [];
    for (const [transport, env] of [
      ['websocket', {}],
      ['spdy', { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' }],
    ] as const) {
      for (const [name, kubeconfig] of Object.entries(targets)) {
        // Asynchronously: the gateway runs in this process.
        const kubectl = (args: string[]) =>
          run('kubectl', ['--kubeconfig', kubeconfig, ...args], { env: { ...process.env, ...env }, maxBuffer: 1 << 30, encoding: 'buffer' });
        await kubectl(['exec', 'web-0', '-n', 'dev', '--', 'true']);
        const smalls: number[] = [];
        for (let i = 0; i < runs; i++) smalls.push(await timeAsync(() => kubectl(['exec', 'web-0', '-n', 'dev', '--', 'true'])));
        // kubectl's output goes to wc in a process of its own: collected in this process, which runs the
        // gateway too, 64 MB of pipe reads would share the gateway's event loop (they do not, direct).
        const bytes = mb * 1024 * 1024;
        const bigs: number[] = [];
        const machine = machineCpuSeconds();
        const own = process.cpuUsage();
        for (let i = 0; i < Math.max(2, Math.floor(runs / 2)); i++)
          bigs.push(
            await timeAsync(async () => {
              const { stdout } = await run(
                'sh',
                ['-c', `kubectl --kubeconfig "$1" exec web-0 -n dev -- sh -c 'yes 0123456789abcdef | head -c ${bytes}' | wc -c`, 'sh', kubeconfig],
                { env: { ...process.env, ...env } },
              );
              if (Number(stdout.trim()) !== bytes) throw new Error(`exec through ${name} over ${transport} gave ${stdout.trim()} bytes, not ${bytes}`);
            }),
          );
        const after = machineCpuSeconds();
        const moved = mb * bigs.length;
        // The machine's CPU per MB (kubectl, the API server, the stand-in kubelet and, through it, the
        // gateway), how busy it was, and this process's (the gateway's, which runs in it).
        const machineMsPerMB = ((after.busy - machine.busy) * 1000) / moved;
        const busy = (after.busy - machine.busy) / (after.all - machine.all);
        const used = process.cpuUsage(own);
        const gatewayMsPerMB = name === 'gatehouse' ? (used.user + used.system) / 1000 / moved : null;
        const small = median(smalls);
        const big = median(bigs);
        const mbps = mb / (big / 1000);
        rows.push({ transport, target: name, execTrueMs: small, throughputMBps: mbps, machineMsPerMB, busy, gatewayMsPerMB });
        out(
          `| ${transport} | ${name} | ${small.toFixed(1)} | ${mbps.toFixed(1)} | ${machineMsPerMB.toFixed(1)} | ${(busy * 100).toFixed(0)} % | ${gatewayMsPerMB?.toFixed(1) ?? '–'} |`,
        );
      }
    }
    json['exec'] = rows;
    return rows;
  } finally {
    await demo.stop();
  }
}

async function tapBench(): Promise<number> {
  const store = createFileSessionStore({ dir: join(dir, 'recordings'), failOpen: false });
  const identity: Identity = { username: 'bench', uid: '', groups: [], extra: {}, claims: {}, agent: null };
  const session = await openSession({
    store,
    audit: createMemoryAuditWriter(() => {}),
    auditId: 'bench',
    identity,
    attributes: { verb: 'get', group: '', version: 'v1', resource: 'pods', subresource: 'exec', namespace: 'dev', name: 'web-0', trailingPath: '' },
    exec: { command: ['sh'], container: 'web', stdin: true, tty: true },
    kill: () => {},
    now: Date.now,
  });
  const taps = session.taps('websocket', 'v5.channel.k8s.io');
  // 32 KiB stdout frames, as the kubelet's 32 KiB copy buffers send them.
  const payload = Buffer.alloc(32 * 1024, 'terminal output line 0123456789\r\n');
  const frame = Buffer.concat([Buffer.from([0x82, 127, 0, 0, 0, 0, 0, 0, (payload.length + 1) >> 8, (payload.length + 1) & 255]), Buffer.from([1]), payload]);
  const n = quick ? 1000 : 8000;
  const ms = time(() => {
    for (let i = 0; i < n; i++) taps.fromServer(frame);
  });
  session.ended();
  const mbps = (n * payload.length) / 1024 / 1024 / (ms / 1000);
  json['tap'] = { frames: n, frameBytes: payload.length, MBps: mbps };
  out(`Recording tap (WebSocket reader → session tap → asciicast file), ${n} frames of 32 KiB: **${mbps.toFixed(0)} MB/s**.`);
  return mbps;
}

/**
 * What this machine allows an exec through any gateway built on node:tls that records. Through one,
 * the machine does a direct exec's work plus the gateway's, and the gateway's is at least a bare TLS
 * relay's plus the recording's (the tap above, synchronous, so its CPU per MB is 1000 ÷ its MB/s). So
 * even with the machine's two cores fully busy, gateway ÷ direct ≤ d ÷ ((d + g) × b), where d is
 * direct's machine CPU per MB and b how busy direct kept the machine.
 */
async function ceilingBench(rows: readonly ExecRow[], tapMBps: number, mb: number): Promise<void> {
  const relay = await measureRelayFloor(join(dir, 'tls'), mb);
  const recording = 1000 / tapMBps;
  out(
    `A bare TLS relay (node:tls: read one TLS stream, write it to another; no reader, no recording; \`bench/tls-relay.ts\`, ${mb} MB, median of 3): ` +
      `**${relay.cpuMsPerMB.toFixed(2)} ms of CPU per MB** (${relay.MBps.toFixed(0)} MB/s). The recording tap: ${recording.toFixed(2)} ms per MB.`,
  );
  out();
  out(
    '| transport | direct: machine CPU ms per MB, busy | through: gateway CPU ms per MB | highest gateway ÷ direct: relay only | relay + recording | measured |',
  );
  out('|---|---|---|---|---|---|');
  const ceilings = [];
  for (const direct of rows.filter((r) => r.target === 'direct')) {
    const through = rows.find((r) => r.transport === direct.transport && r.target !== 'direct');
    const bound = (g: number) => direct.machineMsPerMB / ((direct.machineMsPerMB + g) * direct.busy);
    const c = {
      transport: direct.transport,
      relayOnly: bound(relay.cpuMsPerMB),
      withRecording: bound(relay.cpuMsPerMB + recording),
      measured: through ? through.throughputMBps / direct.throughputMBps : null,
    };
    ceilings.push(c);
    out(
      `| ${c.transport} | ${direct.machineMsPerMB.toFixed(1)}, ${(direct.busy * 100).toFixed(0)} % | ${through?.gatewayMsPerMB?.toFixed(1) ?? '–'} | ` +
        `${c.relayOnly.toFixed(2)} | **${c.withRecording.toFixed(2)}** | ${c.measured?.toFixed(2) ?? '–'} |`,
    );
  }
  json['execCeiling'] = { relayCpuMsPerMB: relay.cpuMsPerMB, relayMBps: relay.MBps, recordingMsPerMB: recording, ceilings };
}

async function releaseBench(kind: 'sqlite' | 'postgres', holder: ApprovalStore, decider: ApprovalStore): Promise<number[]> {
  const audit = createMemoryAuditWriter(() => {});
  const settings = {
    mode: { agents: 'hold' as const, people: 'hold' as const },
    holdSeconds: 60,
    maxTtlSeconds: 3600,
    publicUrl: 'https://bench',
    sweepSeconds: 3600,
  };
  const a = createApprovalService({ store: holder, audit, settings });
  const b = createApprovalService({ store: decider, audit, settings });
  const target = parseTarget('DELETE', '/apis/apps/v1/namespaces/prod/deployments/web', '');
  const samples: number[] = [];
  const n = quick ? 10 : 50;
  try {
    for (let i = 0; i < n; i++) {
      const agent: Identity = {
        username: 'agent:bot',
        uid: '',
        groups: ['agents'],
        extra: {},
        claims: {},
        agent: { name: 'bot', onBehalfOf: `person-${i}@${kind}`, session: null },
      };
      const approver: Identity = { username: 'carol', uid: '', groups: ['security'], extra: {}, claims: {}, agent: null };
      const body = Buffer.from(`{"n":${i}}`);
      let decidedAt = 0;
      const held = a.gate({
        identity: agent,
        fingerprint: fingerprint(agent, 'delete', target.path, body),
        subject: subjectOf(agent, target, 'DELETE', null, [], body),
        policy: { approverGroups: ['security'], ttlSeconds: 600, singleUse: true, fields: [], maxGrantSeconds: 0, grantGroups: ['security'] },
        auditId: `b${i}`,
        signal: new AbortController().signal,
      });
      let id: string | undefined;
      while (!id) {
        await new Promise((r) => setTimeout(r, 2));
        id = (await decider.list({ state: 'pending', limit: 1 }))[0]?.id;
      }
      decidedAt = performance.now();
      await b.decide(id, approver, true, '');
      await held;
      samples.push(performance.now() - decidedAt);
    }
  } finally {
    await a.close();
    await b.close();
  }
  return samples;
}

async function approvalsBench(): Promise<void> {
  const rows: Record<string, unknown>[] = [];
  out('| store | decision → held request released p50 ms | p99 ms |');
  out('|---|---|---|');
  const sqlite = openSqliteStore(join(dir, 'approvals.db'));
  const s = percentiles(await releaseBench('sqlite', sqlite, sqlite), [50, 99]);
  await sqlite.close();
  rows.push({ store: 'sqlite (one process)', ...s });
  out(`| sqlite (one process) | ${s['p50']!.toFixed(2)} | ${s['p99']!.toFixed(2)} |`);
  let pg;
  try {
    pg = await startPostgres();
  } catch (err) {
    out(`| postgres | not measured: ${(err as Error).message.split('\n')[0]} | |`);
  }
  if (pg) {
    try {
      // Two databases (pools), as two replicas have.
      const dbs = [
        await openPostgres({ connectionString: pg.url, schema: SCHEMA, onError: () => {} }),
        await openPostgres({ connectionString: pg.url, schema: SCHEMA, onError: () => {} }),
      ];
      const holder = await openPostgresStore({ db: dbs[0]! });
      const decider = await openPostgresStore({ db: dbs[1]! });
      const p = percentiles(await releaseBench('postgres', holder, decider), [50, 99]);
      await holder.close();
      await decider.close();
      for (const db of dbs) await db.close();
      rows.push({ store: 'postgres (two stores, NOTIFY)', ...p });
      out(`| postgres (decided on another connection, LISTEN/NOTIFY) | ${p['p50']!.toFixed(2)} | ${p['p99']!.toFixed(2)} |`);
    } finally {
      await pg.stop();
    }
  }
  json['approvals'] = rows;
}

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  out('### exec through kubectl 1.32');
  out();
  out('Wall time of a whole kubectl run (process start included), medians; the gateway records every session.');
  out();
  const rows = await execBench();
  out();
  out('### Recording');
  out();
  const tap = await tapBench();
  out();
  out('### What this machine allows an exec through a recording gateway');
  out();
  await ceilingBench(rows, tap, execMB);
  out();
  out('### Approval release');
  out();
  await approvalsBench();
  out(`@@json ${JSON.stringify(json)}`);
  rmSync(dir, { recursive: true, force: true });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench/sessions: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    rmSync(dir, { recursive: true, force: true });
    process.exit(1);
  },
);
