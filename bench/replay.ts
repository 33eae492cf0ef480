/**
 * `gatehouse policy replay` throughput (issue 16: ≥ 50,000 records per second
 * on this machine). An audit file the way the gateway writes it — a
 * RequestReceived and a ResponseComplete record per request, hash-chained, with
 * the policy input kept — made from the policy's fixture inputs, then decided
 * again by the bundled policy on one worker and on one per core.
 *
 *   node dist/bench/replay.js [--quick]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { decisionFacts } from '../src/admission/record.js';
import { requestEvent } from '../src/audit/record.js';
import { createAuditWriter } from '../src/audit/writer.js';
import { projectRoot, toolPath } from '../src/paths.js';
import { createPolicyEngine } from '../src/policy/engine.js';
import { readSamples } from '../src/policy/fixtures.js';
import { loadPolicySource } from '../src/policy/load.js';
import { replayFiles } from '../src/policy/replay.js';
import { checkMaskPath } from '../src/redact/path.js';

const quick = process.argv.includes('--quick');
const REQUESTS = quick ? 20_000 : 100_000;

const compiled = await loadPolicySource({ kind: 'rego', dir: join(projectRoot, 'policies/gatehouse'), opa: toolPath('opa') });
const live = await createPolicyEngine(compiled, checkMaskPath);
const samples = readSamples(join(projectRoot, 'policies/fixtures/samples.json'));
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-replay-'));
const file = join(dir, 'audit.log');
const w = createAuditWriter(file);
const decisions = samples.map((s) => decisionFacts(live.evaluate(s.input)));
const t0 = Date.now();
for (let i = 0; i < REQUESTS; i++) {
  const k = i % samples.length;
  const input = samples[k]!.input as { user: { username: string; groups: string[] }; request: { path: string } };
  const facts = {
    auditId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    received: new Date(t0 + i),
    at: new Date(t0 + i),
    uri: input.request.path,
    verb: 'get',
    sourceIP: '10.0.0.7',
    userAgent: 'kubectl/v1.32.4 (linux/amd64) kubernetes/abcdef0',
    user: { username: input.user.username, groups: input.user.groups },
    impersonated: { username: input.user.username, groups: input.user.groups },
    objectRef: null,
    decision: decisions[k]!,
    policyRevision: live.revision,
    approval: null,
    error: null,
    input,
    session: null,
    bytesOut: null,
  };
  w.commit(requestEvent({ ...facts, stage: 'RequestReceived', code: 0 }));
  w.write(requestEvent({ ...facts, stage: 'ResponseComplete', code: 200, bytesOut: 1834 }));
  if (i % 1000 === 999) w.flush();
}
w.flush();
const mb = statSync(file).size / 1e6;

process.stdout.write(`## Policy replay (bench/replay.ts${quick ? ', --quick' : ''})\n\n`);
process.stdout.write(
  `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, Node ${process.version}. An audit file of ${REQUESTS} requests (${2 * REQUESTS} records, ${mb.toFixed(0)} MB, the bundled policy's inputs), decided again by the bundled policy.\n\n`,
);
process.stdout.write('| workers | seconds | requests/s | records read/s | MB/s |\n|---|---|---|---|---|\n');
const rows: Record<string, number>[] = [];
for (const jobs of [...new Set([1, availableParallelism()])]) {
  const started = process.hrtime.bigint();
  const { summary } = await replayFiles(compiled, [file], { jobs });
  const s = Number(process.hrtime.bigint() - started) / 1e9;
  if (summary.replayed !== REQUESTS || summary.changed !== 0) throw new Error(`replayed ${summary.replayed}, changed ${summary.changed}`);
  rows.push({ jobs, seconds: s, requestsPerSecond: REQUESTS / s });
  process.stdout.write(`| ${jobs} | ${s.toFixed(2)} | ${Math.round(REQUESTS / s)} | ${Math.round((2 * REQUESTS) / s)} | ${(mb / s).toFixed(0)} |\n`);
}
process.stdout.write(`@@json ${JSON.stringify({ requests: REQUESTS, mb, rows })}\n`);
if (!process.env['GATEHOUSE_BENCH_KEEP']) rmSync(dir, { recursive: true, force: true });
