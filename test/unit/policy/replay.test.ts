/**
 * `gatehouse policy replay`: recorded requests (the fixtures' inputs, as the
 * gateway records them) decided again by a candidate policy compiled with the
 * real OPA; each changed decision is reported, and the exit code gates CI.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decisionFacts } from '../../../src/admission/record.js';
import { requestEvent } from '../../../src/audit/record.js';
import { createAuditWriter } from '../../../src/audit/writer.js';
import { createPolicyEngine } from '../../../src/policy/engine.js';
import { readSamples } from '../../../src/policy/fixtures.js';
import { loadPolicySource } from '../../../src/policy/load.js';
import { parseDuration } from '../../../src/cli-args.js';
import { createReplayer, splitInput, type Change } from '../../../src/policy/replay.js';
import { checkMaskPath } from '../../../src/redact/path.js';
import { projectRoot, toolPath } from '../../../src/paths.js';
import { writeCandidate } from '../../support/policy.js';

const samples = readSamples(join(projectRoot, 'policies/fixtures/samples.json'));
const CLI = join(projectRoot, 'bin/gatehouse.js');

describe('gatehouse policy replay', function () {
  this.timeout(60_000);
  let dir: string;
  let audit: string;
  let candidate: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-replay-'));
    // The recorded decisions: the bundled policy's, as the gateway wrote them (RequestReceived, then ResponseComplete).
    const live = await createPolicyEngine(
      await loadPolicySource({ kind: 'rego', dir: join(projectRoot, 'policies/gatehouse'), opa: toolPath('opa') }),
      checkMaskPath,
    );
    audit = join(dir, 'audit.log');
    const w = createAuditWriter(audit);
    samples.forEach((s, i) => {
      const d = live.evaluate(s.input);
      const i0 = s.input as { resourceAttributes: { verb: string; resource: string; namespace: string; name: string } | null; request: { path: string } };
      const ra = i0.resourceAttributes;
      const facts = {
        auditId: `a${i}`,
        received: new Date(Date.now() - (i === 0 ? 3 * 86_400_000 : 60_000)),
        at: new Date(),
        uri: i0.request.path,
        verb: ra?.verb ?? 'get',
        sourceIP: '127.0.0.1',
        userAgent: 'kubectl',
        user: { username: (s.input as { user: { username: string } }).user.username, groups: [] },
        impersonated: null,
        objectRef: ra ? { resource: ra.resource, apiVersion: 'v1', namespace: ra.namespace, name: ra.name } : null,
        decision: decisionFacts(d),
        policyRevision: live.revision,
        approval: null,
        error: null,
        input: s.input,
        session: null,
        bytesOut: null,
      };
      w.commit(requestEvent({ ...facts, stage: 'RequestReceived', code: 0 }));
      // The last request's gateway died before it answered: only its RequestReceived record is there.
      if (i < samples.length - 1) w.write(requestEvent({ ...facts, stage: 'ResponseComplete', code: 200 }));
    });
    w.flush();
    // The candidate: admins lose their blanket allow, and Secrets are no longer masked for anyone.
    candidate = writeCandidate(join(dir, 'candidate'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reports each decision that would change: who, what, old → new effect, reasons and masks; every request once', async () => {
    const engine = await createPolicyEngine(await loadPolicySource({ kind: 'rego', dir: candidate, opa: toolPath('opa') }), checkMaskPath);
    const changes: Change[] = [];
    const r = createReplayer(engine, (c) => changes.push(c));
    for (const line of readFileSync(audit, 'utf8').split('\n')) r.line(line);
    const summary = r.end();
    assert.equal(summary.replayed, samples.length, 'one decision per request, the crashed one from its RequestReceived record');
    const admin = changes.find((c) => c.auditID === 'a0');
    assert.equal(admin?.kind, 'effect');
    assert.equal(admin.old.effect, 'allow');
    assert.equal(admin.new.effect, 'deny');
    assert.deepEqual(admin.old.reasons, ['group admins may do anything']);
    const masked = changes.find((c) => c.auditID === 'a1');
    assert.equal(masked?.kind, 'mask');
    assert.deepEqual(masked.maskRemoved, ['redact $.data.*']);
    assert.deepEqual(masked.maskAdded, ['redact $.dataX.*']);
    assert.equal(summary.changed, changes.length);
    assert.equal(summary.byKind['allow → deny'], changes.filter((c) => c.kind === 'effect' && c.new.effect === 'deny' && c.old.effect === 'allow').length);
    // Unchanged requests are not reported.
    assert.ok(!changes.some((c) => c.auditID === 'a3'), 'dev may not write in prod: denied before and after');
  });

  it('the CLI: exit 1 with a table when something changes, 0 against the live policy itself, 2 on a usage or load error', () => {
    const changed = spawnSync(process.execPath, [CLI, 'policy', 'replay', '--policy', candidate, '--audit', audit], { encoding: 'utf8' });
    assert.equal(changed.status, 1, changed.stderr);
    assert.match(changed.stdout, /^TIME +WHO +VERB +RESOURCE +NAMESPACE\/NAME +CHANGE +REASONS \(old → new\)$/m);
    assert.match(changed.stdout, /bob@example\.com +get +secrets +prod\/db-credentials +allow → deny +group admins may do anything → /);
    assert.match(changed.stdout, /\d+ requests replayed in [\d.]+ s; 5 would change: 4 mask, 1 allow → deny/);
    const json = spawnSync(process.execPath, [CLI, 'policy', 'replay', '--policy', candidate, '--audit', audit, '-o', 'json', '--since', '24h'], {
      encoding: 'utf8',
    });
    const out = JSON.parse(json.stdout) as { summary: { replayed: number }; changes: Change[] };
    assert.equal(out.summary.replayed, samples.length - 1, '--since 24h leaves out the request of three days ago');
    const same = spawnSync(process.execPath, [CLI, 'policy', 'replay', '--policy', join(projectRoot, 'policies/gatehouse'), '--audit', audit], {
      encoding: 'utf8',
    });
    assert.equal(same.status, 0, same.stdout + same.stderr);
    assert.match(same.stdout, /no decision would change/);
    assert.equal(spawnSync(process.execPath, [CLI, 'policy', 'replay', '--audit', audit], { encoding: 'utf8' }).status, 2);
    writeFileSync(join(candidate, 'broken.rego'), 'package gatehouse.broken\nthis is not rego\n');
    const broken = spawnSync(process.execPath, [CLI, 'policy', 'replay', '--policy', candidate, '--audit', audit], { encoding: 'utf8' });
    assert.equal(broken.status, 2);
    assert.match(broken.stderr, /does not compile/);
    rmSync(join(candidate, 'broken.rego'));
  });

  it("takes a record's input as the text it was written as, whatever its strings hold", () => {
    const tricky = ['"', '\\', '\\"', '{"input":1}', '}],{[', '\\\\"', 'gatehouse":{', '\u2028', 'é'];
    for (const t of tricky) {
      const input = { user: { username: t, extra: { input: [t] } }, request: { body: { input: { t }, s: `${t}"${t}` } } };
      const line = JSON.stringify({
        kind: 'Event',
        auditID: 'x',
        userAgent: `${t}"requestReceivedTimestamp":"1999`,
        requestReceivedTimestamp: '2026-12-02T00:00:00.000Z',
        annotations: { a: t },
        gatehouse: { decision: { effect: 'allow', reasons: [t, '"input":{}'], mask: [] }, policyRevision: t, input, durationMs: 1 },
      });
      const split = splitInput(line);
      assert.ok(split, t);
      assert.deepEqual(JSON.parse(split.input), input, t);
      assert.deepEqual(split.decision.reasons, [t, '"input":{}']);
      assert.equal(split.receivedAt, '2026-12-02T00:00:00.000Z');
    }
    assert.equal(splitInput('{"kind":"Event","gatehouse":{"decision":null}}'), undefined);
  });

  it('reads durations', () => {
    assert.equal(parseDuration('90m'), 5_400_000);
    assert.equal(parseDuration('7d'), 604_800_000);
    assert.throws(() => parseDuration('yesterday'), /^Error: --since "yesterday" is not a duration/);
    assert.throws(() => parseDuration('soon', '--for'), /^Error: --for "soon" is not a duration/);
  });
});
