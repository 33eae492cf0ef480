/**
 * Streaming redaction throughput and memory (DESIGN §7): this redactor vs raw
 * JSON.parse of the same bytes vs the naive parse + jsonpath-plus + stringify,
 * on generated Kubernetes-like fixtures; then RSS growth while a 200 MB list
 * streams through. Prints a table; asserts nothing.
 *
 *   node dist/bench/redact.js [--quick]
 */
import { randomBytes } from 'node:crypto';
import { JSONPath } from 'jsonpath-plus';
import type { MaskDirective } from '../src/policy/decision.js';
import { Program, type Shape } from '../src/redact/program.js';
import { REDACTED, StreamRedactor } from '../src/redact/stream.js';

const quick = process.argv.includes('--quick');
const MB = 1024 * 1024;
const target = (quick ? 5 : 50) * MB;
const options = { hashKey: randomBytes(32), maxHoldBytes: 4 * MB };
const CHUNK = 64 * 1024;

const b64 = (n: number) => randomBytes(n).toString('base64');
const meta = (i: number, ns: string) => ({
  name: `obj-${i}`,
  namespace: ns,
  uid: `0b5c${i.toString(16).padStart(8, '0')}-7d1e-4f7a-9a55-3b0c1d2e3f40`,
  resourceVersion: String(100000 + i),
  creationTimestamp: '2026-11-25T12:00:00Z',
  labels: { app: 'web', tier: 'backend', team: `t${i % 7}` },
  managedFields: [
    {
      manager: 'kubectl',
      operation: 'Update',
      apiVersion: 'v1',
      time: '2026-11-25T12:00:00Z',
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:data': { '.': {}, 'f:password': {}, 'f:username': {} } },
    },
  ],
});
const secret = (i: number) => ({
  kind: 'Secret',
  apiVersion: 'v1',
  metadata: meta(i, `ns-${i % 20}`),
  type: 'Opaque',
  data: { username: b64(12), password: b64(48), 'tls.crt': b64(900), 'tls.key': b64(300) },
});
/** As the API server writes a Secret: `type` after `data` (Go field order), so a `when` on it must hold the data. */
const servedSecret = (i: number) => {
  const { type, ...rest } = secret(i);
  return { ...rest, type };
};
const configMap = (i: number) => ({
  kind: 'ConfigMap',
  apiVersion: 'v1',
  metadata: meta(i, `ns-${i % 20}`),
  data: { 'app.properties': 'x'.repeat(3000) + String(i), 'feature-flags': 'search,checkout,'.repeat(40), password: b64(24) },
});
const pod = (i: number) => ({
  kind: 'Pod',
  apiVersion: 'v1',
  metadata: meta(i, `ns-${i % 20}`),
  spec: {
    containers: [0, 1].map((c) => ({
      name: `c${c}`,
      image: 'registry.example/web:1.0',
      env: [
        { name: 'LOG_LEVEL', value: 'info' },
        { name: 'DB_PASSWORD', value: b64(24) },
        { name: 'REGION', value: 'eu-1' },
        { name: 'API_TOKEN', value: b64(32) },
        { name: 'CACHE_PASSWORD', valueFrom: { secretKeyRef: { name: 'cache', key: 'password' } } },
      ],
      resources: { requests: { cpu: '100m', memory: '128Mi' } },
    })),
  },
  status: { phase: 'Running', podIP: `10.0.${i % 250}.${i % 200}` },
});

// Memory: a 200 MB SecretList generated and streamed chunk by chunk, never held whole.
const total = (quick ? 50 : 200) * MB;
global.gc?.();
const before = process.memoryUsage().rss;
let peak = before;
const memProgram = new Program([{ path: '$.data.*', action: 'redact' }], 'list');
const r = new StreamRedactor(memProgram, options);
const sample = JSON.stringify(secret(1));
let fed = 0;
let emitted = 0;
const feed = (s: string) => {
  const buf = Buffer.from(s);
  fed += buf.length;
  for (const p of r.write(buf)) emitted += p.length;
};
feed('{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"9"},"items":[');
let pending = '';
for (let i = 0; fed < total; i++) {
  pending += (i ? ',' : '') + sample;
  if (pending.length >= CHUNK) {
    feed(pending);
    pending = '';
    if (i % 64 === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
}
feed(pending + ']}');
for (const p of r.end()) emitted += p.length;
peak = Math.max(peak, process.memoryUsage().rss);
const memoryLine = `memory: streamed a ${(fed / MB).toFixed(0)} MB SecretList (${(emitted / MB).toFixed(0)} MB out): RSS ${(before / MB).toFixed(0)} MB before, peak ${(peak / MB).toFixed(0)} MB, growth ${((peak - before) / MB).toFixed(1)} MB (goal < 64 MB), measured first, in a fresh heap`;

function listOf(make: (i: number) => object, kind: string): Buffer {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < target; i++) {
    const s = JSON.stringify(make(i));
    parts.push(s);
    size += s.length + 1;
  }
  return Buffer.from(
    `{"kind":"${kind}","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"},"items":[${parts.join(',')}]}`,
  );
}

function watchOf(make: (i: number) => object): Buffer {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < target; i++) {
    const s = JSON.stringify({ type: i % 3 ? 'MODIFIED' : 'ADDED', object: make(i) }) + '\n';
    parts.push(s);
    size += s.length;
  }
  return Buffer.from(parts.join(''));
}

function tableOf(make: (i: number) => object): Buffer {
  const rows: string[] = [];
  let size = 0;
  for (let i = 0; size < target; i++) {
    const s = JSON.stringify({ cells: [`obj-${i}`, 'Opaque', 4, '5m'], object: make(i) });
    rows.push(s);
    size += s.length + 1;
  }
  return Buffer.from(
    `{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"9"},"columnDefinitions":[{"name":"Name","type":"string"},{"name":"Type","type":"string"},{"name":"Data","type":"integer"},{"name":"Age","type":"string"}],"rows":[${rows.join(',')}]}`,
  );
}

interface Fixture {
  readonly name: string;
  readonly bytes: Buffer;
  readonly mask: MaskDirective[];
  readonly shape: Shape;
  /** The same directives as jsonpath-plus paths over the parsed document, for the naive way. */
  readonly naivePaths: string[];
  readonly plainPath: boolean;
}

const secretMask: MaskDirective[] = [{ path: '$.data.*', action: 'redact' }];
/** The bundled policy's `when` for group deployers (README, "Helm releases"). */
const HELM_EXEMPT = "@.type != 'helm.sh/release.v1'";
const fixtures: Fixture[] = [
  { name: 'SecretList, $.data.*', bytes: listOf(secret, 'SecretList'), mask: secretMask, shape: 'list', naivePaths: ['$.items[*].data.*'], plainPath: true },
  {
    name: 'SecretList, $.data.* when @.type != helm',
    bytes: listOf(secret, 'SecretList'),
    mask: [{ ...secretMask[0]!, when: HELM_EXEMPT }],
    shape: 'list',
    naivePaths: [`$.items[?(${HELM_EXEMPT})].data.*`],
    plainPath: false,
  },
  {
    name: 'SecretList as served (type last), $.data.*',
    bytes: listOf(servedSecret, 'SecretList'),
    mask: secretMask,
    shape: 'list',
    naivePaths: ['$.items[*].data.*'],
    plainPath: true,
  },
  {
    name: 'SecretList as served (type last), $.data.* when @.type != helm',
    bytes: listOf(servedSecret, 'SecretList'),
    mask: [{ ...secretMask[0]!, when: HELM_EXEMPT }],
    shape: 'list',
    naivePaths: [`$.items[?(${HELM_EXEMPT})].data.*`],
    plainPath: false,
  },
  {
    name: 'ConfigMapList (long strings), $.data.password',
    bytes: listOf(configMap, 'ConfigMapList'),
    mask: [{ path: '$.data.password', action: 'redact' }],
    shape: 'list',
    naivePaths: ['$.items[*].data.password'],
    plainPath: true,
  },
  {
    name: 'PodList, $..env[?(@.name =~ /PASSWORD/)].value hash',
    bytes: listOf(pod, 'PodList'),
    mask: [{ path: '$..env[?(@.name =~ /PASSWORD/)].value', action: 'hash' }],
    shape: 'list',
    naivePaths: ['$.items[*]..env[?(@.name.match(/PASSWORD/))].value'],
    plainPath: false,
  },
  { name: 'Secret watch stream, $.data.*', bytes: watchOf(secret), mask: secretMask, shape: 'watch', naivePaths: ['$.object.data.*'], plainPath: true },
  {
    name: 'Table of Secrets (includeObject), $.data.*',
    bytes: tableOf(secret),
    mask: secretMask,
    shape: 'list',
    naivePaths: ['$.rows[*].object.data.*'],
    plainPath: true,
  },
];

function time(fn: () => void, rounds: number): number {
  fn(); // warm-up
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;
}

function runRedactor(f: Fixture): number {
  const program = new Program(f.mask, f.shape);
  let out = 0;
  const r = new StreamRedactor(program, options);
  for (let i = 0; i < f.bytes.length; i += CHUNK) for (const p of r.write(f.bytes.subarray(i, i + CHUNK))) out += p.length;
  for (const p of r.end()) out += p.length;
  return out;
}

function docsOf(f: Fixture): string[] {
  return f.shape === 'watch' ? f.bytes.toString('utf8').split('\n').filter(Boolean) : [f.bytes.toString('utf8')];
}

function runParse(f: Fixture): void {
  for (const d of docsOf(f)) JSON.parse(d);
}

function runNaive(f: Fixture): void {
  for (const d of docsOf(f)) {
    const doc = JSON.parse(d);
    for (const path of f.naivePaths) {
      JSONPath({
        path,
        json: doc,
        resultType: 'all',
        callback: (m: { parent: Record<string, unknown>; parentProperty: string }) => (m.parent[m.parentProperty] = REDACTED),
      });
    }
    JSON.stringify(doc);
  }
}

const rounds = quick ? 3 : 5;
console.log(`redaction throughput (median of ${rounds} rounds, ${CHUNK / 1024} KiB chunks; JSON.parse includes utf8 decoding of the bytes)`);
console.log('| fixture | MB | redactor MB/s | JSON.parse MB/s | naive MB/s | redactor ÷ JSON.parse |');
console.log('|---|---|---|---|---|---|');
const results: Record<string, unknown>[] = [];
for (const f of fixtures) {
  const mb = f.bytes.length / MB;
  const red = mb / time(() => runRedactor(f), rounds);
  const parse = mb / time(() => runParse(f), rounds);
  const naive = mb / time(() => runNaive(f), Math.max(1, Math.floor(rounds / 2)));
  results.push({ fixture: f.name, mb, red, parse, naive });
  console.log(
    `| ${f.name} | ${mb.toFixed(1)} | ${red.toFixed(0)} | ${parse.toFixed(0)} | ${naive.toFixed(0)} | ${(red / parse).toFixed(2)}× ${f.plainPath ? '(plain path)' : '(filter)'} |`,
  );
}

console.log(`\n${memoryLine}`);
console.log(
  '@@json ' +
    JSON.stringify({ fixtures: results, memory: { streamedMiB: fed / MB, rssBeforeMiB: before / MB, rssPeakMiB: peak / MB, growthMiB: (peak - before) / MB } }),
);
