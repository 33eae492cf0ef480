/**
 * What audit before action costs (issue 11, finding 10): every admitted request
 * now writes a RequestReceived record synchronously (write(2) before the request
 * is forwarded) besides its ResponseComplete record, which is queued and written
 * once per turn of the event loop. Measured on a realistic record (decision,
 * policy input) against a file on this machine's disk.
 *
 *   node dist/bench/audit.js [--quick]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { createChain } from '../src/audit/chain.js';
import { requestEvent, type RequestFacts } from '../src/audit/record.js';
import { createAuditWriter } from '../src/audit/writer.js';
import { percentiles } from './stats.js';

const quick = process.argv.includes('--quick');
const N = quick ? 2000 : 20000;

const facts: RequestFacts = {
  auditId: '3f0c1f8e-6a55-4d53-9d3c-2b8a0d1e7f10',
  received: new Date(),
  at: new Date(),
  stage: 'RequestReceived',
  uri: '/api/v1/namespaces/dev/configmaps/app-config',
  verb: 'get',
  sourceIP: '127.0.0.1',
  userAgent: 'kubectl/v1.32.4 (linux/amd64) kubernetes/abcdef0',
  user: { username: 'alice@example.com', groups: ['dev', 'system:authenticated'] },
  impersonated: { username: 'alice@example.com', groups: ['dev', 'system:authenticated'] },
  objectRef: { resource: 'configmaps', apiVersion: 'v1', namespace: 'dev', name: 'app-config' },
  decision: { effect: 'allow', reasons: ['group dev may read and write in dev'], mask: [], level: 'Metadata' },
  policyRevision: 'a1c51386b4f2',
  approval: null,
  code: 0,
  error: null,
  input: {
    user: {
      username: 'alice@example.com',
      uid: '',
      groups: ['dev', 'system:authenticated'],
      extra: {},
      claims: { iss: 'http://127.0.0.1:9000', sub: 'alice', email: 'alice@example.com' },
      agent: null,
    },
    resourceAttributes: {
      verb: 'get',
      group: '',
      version: 'v1',
      resource: 'configmaps',
      subresource: '',
      namespace: 'dev',
      name: 'app-config',
      trailingPath: '',
    },
    request: { id: '3f0c1f8e', method: 'GET', path: '/api/v1/namespaces/dev/configmaps/app-config', query: {}, body: null },
  },
  session: null,
  bytesOut: null,
};
const received = requestEvent(facts);
const complete = requestEvent({ ...facts, stage: 'ResponseComplete', code: 200, bytesOut: 1834 });

async function measure(mode: 'before' | 'after'): Promise<{ perRequestUs: Record<string, number>; requestsPerSecond: number; bytesPerRequest: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-audit-'));
  const file = join(dir, 'audit.log');
  const audit = createAuditWriter(file);
  const samples: number[] = [];
  const started = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    // before: one record per request, queued. after: the decision handed to the kernel first.
    if (mode === 'after') audit.commit(received);
    audit.write(complete);
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
    // A request spans turns of the event loop; queued records are written at the end of one.
    if (i % 16 === 15) await tick();
  }
  audit.flush();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const bytes = statSync(file).size;
  rmSync(dir, { recursive: true, force: true });
  return { perRequestUs: percentiles(samples, [50, 99]), requestsPerSecond: Math.round(N / seconds), bytesPerRequest: Math.round(bytes / N) };
}

const before = await measure('before');
const after = await measure('after');
const round = (x: number) => Math.round(x * 10) / 10;
process.stdout.write(
  `Audit records per request, ${N} requests; "before": ResponseComplete only, queued; "after": RequestReceived written synchronously first.\n\n`,
);
process.stdout.write('| audit | per request p50 µs | p99 µs | records/s (one process, audit only) | bytes per request |\n|---|---|---|---|---|\n');
for (const [name, r] of [
  ['before (queued)', before],
  ['after (audit before action)', after],
] as const) {
  process.stdout.write(`| ${name} | ${round(r.perRequestUs['p50']!)} | ${round(r.perRequestUs['p99']!)} | ${r.requestsPerSecond} | ${r.bytesPerRequest} |\n`);
}
// The hash chain's share (chain.ts): one SHA-256 of the line and the link appended, per record.
const chain = createChain({ seq: 0, prev: '' });
const json = JSON.stringify(complete);
const linkSamples: number[] = [];
for (let i = 0; i < N; i++) {
  const t0 = process.hrtime.bigint();
  chain.link(json);
  linkSamples.push(Number(process.hrtime.bigint() - t0) / 1000);
}
const link = percentiles(linkSamples, [50, 99]);
process.stdout.write(
  `\nBoth rows write a hash-chained file (every line carries the SHA-256 of the one before it); the link alone costs ${round(link['p50']!)} µs p50, ${round(link['p99']!)} µs p99 per ${json.length}-byte record.\n`,
);
process.stdout.write(`@@json ${JSON.stringify({ requests: N, before, after, chainLinkUs: link })}\n`);
