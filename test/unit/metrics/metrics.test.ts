import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent } from '../../../src/audit/event.js';
import { createMemoryAuditWriter, type AuditWriter } from '../../../src/audit/writer.js';
import { createMetrics, serveMetrics } from '../../../src/metrics.js';
import { projectRoot } from '../../../src/paths.js';

function event(over: Partial<AuditEvent> & { resource?: string; subresource?: string; effect?: string; code?: number; mask?: string[] }): AuditEvent {
  const { resource = 'configmaps', subresource, effect = 'allow', code = 200, mask = [], ...rest } = over;
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: 'a1',
    stage: 'ResponseComplete',
    requestURI: '/x',
    verb: 'get',
    user: { username: 'alice@example.com' },
    sourceIPs: ['127.0.0.1'],
    objectRef: { resource, apiVersion: 'v1', ...(subresource ? { subresource } : {}) },
    responseStatus: { code },
    requestReceivedTimestamp: '2026-12-02T00:00:00.000Z',
    stageTimestamp: '2026-12-02T00:00:00.004Z',
    annotations: { 'gatehouse.dev/effect': effect },
    gatehouse: { decision: { effect, reasons: [], mask }, durationMs: 4 },
    ...rest,
  };
}

const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('metrics: counted from the audit records, labels bounded', () => {
  it('counts requests by verb, resource, effect and code; times them; counts masked answers', async () => {
    const m = createMetrics();
    const audit = m.tap(createMemoryAuditWriter(() => {}));
    audit.write(event({ verb: 'get', code: 200, mask: ['redact $.data.*'] }));
    audit.write(event({ verb: 'get', code: 200 }));
    audit.write(event({ verb: 'delete', resource: 'deployments', effect: 'deny', code: 403 }));
    audit.write(event({ stage: 'RequestReceived' }));
    const text = await m.registry.metrics();
    assert.equal(value(text, 'gatehouse_requests_total{verb="get",resource="configmaps",effect="allow",code="200"}'), 2);
    assert.equal(value(text, 'gatehouse_requests_total{verb="delete",resource="deployments",effect="deny",code="403"}'), 1);
    assert.equal(value(text, 'gatehouse_request_duration_seconds_count{verb="get"}'), 2);
    assert.equal(value(text, 'gatehouse_request_duration_seconds_bucket{le="0.005",verb="get"}'), 2);
    assert.equal(value(text, 'gatehouse_masked_responses_total'), 1);
    assert.match(text, /process_resident_memory_bytes \d+/);
  });

  it('attack: a caller inventing resource names cannot grow the number of series', async () => {
    const m = createMetrics();
    const audit = m.tap(createMemoryAuditWriter(() => {}));
    for (let i = 0; i < 1000; i++) audit.write(event({ auditID: `a${i}`, resource: `made-up-${i}`, verb: `verb${i}`, effect: 'deny', code: 403 }));
    const text = await m.registry.metrics();
    const series = text.split('\n').filter((l) => l.startsWith('gatehouse_requests_total{'));
    assert.deepEqual(series, ['gatehouse_requests_total{verb="other",resource="other",effect="deny",code="403"} 1000']);
    assert.doesNotMatch(text, /alice|made-up/);
  });

  it('watches and sessions are in flight from their start to their end, and are not timed as requests', async () => {
    const m = createMetrics();
    let inflight = 3;
    m.setSources({
      inflightRequests: () => inflight,
      heldRequests: () => 2,
      pendingApprovals: async () => 5,
      tokenVerifications: () => ({ verified: 7, cached: 9, failed: 1 }),
    });
    const audit = m.tap(createMemoryAuditWriter(() => {}));
    audit.write(event({ auditID: 'w', verb: 'watch', stage: 'ResponseStarted' }));
    audit.write(event({ auditID: 's', resource: 'pods', subresource: 'exec', stage: 'ResponseStarted', code: 101 }));
    let text = await m.registry.metrics();
    assert.equal(value(text, 'gatehouse_inflight{kind="request"}'), 3);
    assert.equal(value(text, 'gatehouse_inflight{kind="watch"}'), 1);
    assert.equal(value(text, 'gatehouse_inflight{kind="session"}'), 1);
    assert.equal(value(text, 'gatehouse_held_requests'), 2);
    assert.equal(value(text, 'gatehouse_approvals_pending'), 5);
    assert.equal(value(text, 'gatehouse_token_verifications_total{result="failed"}'), 1);
    audit.write(event({ auditID: 'w', verb: 'watch' }));
    audit.write(event({ auditID: 's', resource: 'pods', subresource: 'exec', code: 101 }));
    inflight = 0;
    text = await m.registry.metrics();
    assert.equal(value(text, 'gatehouse_inflight{kind="watch"}'), 0);
    assert.equal(value(text, 'gatehouse_inflight{kind="session"}'), 0);
    assert.equal(value(text, 'gatehouse_request_duration_seconds_count{verb="watch"}'), undefined);
  });

  it('counts audit records that could not be written, and the policy revision and reloads', async () => {
    const m = createMetrics();
    const broken: AuditWriter = {
      write: () => {},
      commit: () => {
        throw new Error('ENOSPC');
      },
      flush: () => {},
    };
    assert.throws(() => m.tap(broken).commit(event({})), /ENOSPC/);
    m.policyLoaded('aaa', 'initial');
    m.policyLoaded('bbb', 'success');
    m.policyLoaded('bbb', 'failure');
    const text = await m.registry.metrics();
    assert.equal(value(text, 'gatehouse_audit_write_errors_total'), 1);
    assert.equal(value(text, 'gatehouse_policy_info{revision="bbb"}'), 1);
    assert.equal(value(text, 'gatehouse_policy_info{revision="aaa"}'), undefined);
    assert.equal(value(text, 'gatehouse_policy_reloads_total{result="success"}'), 1);
    assert.equal(value(text, 'gatehouse_policy_reloads_total{result="failure"}'), 1);
  });

  it('serves /metrics on its own listener, and nothing else', async () => {
    const m = createMetrics();
    const s = await serveMetrics(m, '127.0.0.1', 0);
    try {
      const ok = await fetch(s.url);
      assert.equal(ok.status, 200);
      assert.match(ok.headers.get('content-type') ?? '', /text\/plain/);
      assert.match(await ok.text(), /gatehouse_policy_reloads_total/);
      assert.equal((await fetch(s.url.replace('/metrics', '/api/v1/secrets'))).status, 404);
    } finally {
      await s.close();
    }
  });
});

describe('deploy/grafana/gatehouse.json', () => {
  it('queries only metrics the gateway exports', async () => {
    const dashboard = JSON.parse(readFileSync(join(projectRoot, 'deploy/grafana/gatehouse.json'), 'utf8')) as { panels: { targets: { expr: string }[] }[] };
    const exported = new Set((await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
    const used = new Set(
      dashboard.panels.flatMap((p) =>
        p.targets.flatMap((t) => [...t.expr.matchAll(/\b((?:gatehouse|process)_[a-z_]+?)(?:_bucket|_count|_sum)?\{/g)].map((m) => m[1]!)),
      ),
    );
    assert.ok(used.size >= 10, [...used].join(' '));
    for (const name of used) assert.ok(exported.has(name), `the dashboard queries ${name}, which the gateway does not export`);
  });
});
