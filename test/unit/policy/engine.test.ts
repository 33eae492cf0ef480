/**
 * The bundled policy through the real toolchain: compiled by the pinned OPA CLI
 * (.tools/opa) to WASM and evaluated by @open-policy-agent/opa-wasm, on the same
 * sample inputs `opa test` checks.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicy } from '@open-policy-agent/opa-wasm';
import { toDecision } from '../../../src/policy/decision.js';
import { createPolicyEngine, type EmbeddedPolicyEngine as PolicyEngine } from '../../../src/policy/engine.js';
import { expectedDecision, readSamples } from '../../../src/policy/fixtures.js';
import { loadPolicySource, PolicyLoadError } from '../../../src/policy/load.js';
import { checkMaskPath } from '../../../src/redact/path.js';
import { projectRoot, toolPath } from '../../../src/paths.js';

const samples = readSamples(join(projectRoot, 'policies/fixtures/samples.json'));

async function engineFor(rego: string): Promise<PolicyEngine> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-rego-'));
  writeFileSync(join(dir, 'p.rego'), rego);
  return createPolicyEngine(await loadPolicySource({ kind: 'rego', dir, opa: toolPath('opa') }));
}

describe('policy/engine: the bundled policy in WASM', function () {
  this.timeout(60_000);
  let engine: PolicyEngine;
  before(async () => {
    engine = await createPolicyEngine(await loadPolicySource({ kind: 'rego', dir: join(projectRoot, 'policies/gatehouse'), opa: toolPath('opa') }));
  });

  for (const sample of samples) {
    it(sample.name, () => {
      // The gateway's Decision spells out the defaults the policy may leave out.
      assert.deepEqual(engine.evaluate(sample.input), expectedDecision(sample.decision));
    });
  }

  it("answers as opa-wasm's own evaluate: every sample, many times over, and an input larger than the instance's memory", async () => {
    const compiledPolicy = await loadPolicySource({ kind: 'rego', dir: join(projectRoot, 'policies/gatehouse'), opa: toolPath('opa') });
    const reference = await loadPolicy(compiledPolicy.wasm);
    const direct = await createPolicyEngine(compiledPolicy);
    // In a member the policy reads (request.object): what it does not read never reaches the WASM.
    const big = structuredClone(samples[0]!.input) as { request: { object: unknown } };
    big.request.object = { data: 'x'.repeat(8 * 1024 * 1024), 'é\u2028': ['"\\'] };
    for (let round = 0; round < 50; round++) {
      for (const input of [...samples.map((x) => x.input), big]) {
        assert.deepEqual(direct.evaluate(input), toDecision(reference.evaluate(input, 'gatehouse/decision')));
      }
    }
  });

  it('loads the same policy from a prebuilt bundle and from a bare policy.wasm', async () => {
    const { execFileSync } = await import('node:child_process');
    const { readBundle } = await import('../../../src/policy/bundle.js');
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bundle-'));
    const regoDir = join(projectRoot, 'policies/gatehouse');
    const files = ['decision.rego', 'access/access.rego', 'masking/masking.rego', 'workloads/workloads.rego'].map((f) => join(regoDir, f));
    execFileSync(toolPath('opa'), ['build', '-t', 'wasm', '-e', 'gatehouse/decision', '-o', join(dir, 'bundle.tar.gz'), ...files]);
    writeFileSync(join(dir, 'policy.wasm'), readBundle(readFileSync(join(dir, 'bundle.tar.gz'))).get('policy.wasm')!);
    for (const source of [
      { kind: 'bundle' as const, file: join(dir, 'bundle.tar.gz') },
      { kind: 'wasm' as const, file: join(dir, 'policy.wasm') },
    ]) {
      const e = await createPolicyEngine(await loadPolicySource(source));
      // The revision hashes the module, which embeds source paths: same rules, other bytes, other revision.
      assert.match(e.revision, /^[0-9a-f]{12}$/);
      for (const sample of samples) assert.deepEqual(e.evaluate(sample.input), engine.evaluate(sample.input), `${source.kind}: ${sample.name}`);
    }
  });

  it('has a stable revision for the same policy', async () => {
    const again = await loadPolicySource({ kind: 'rego', dir: join(projectRoot, 'policies/gatehouse'), opa: toolPath('opa') });
    assert.equal(again.revision, engine.revision);
    assert.match(engine.revision, /^[0-9a-f]{12}$/);
  });
});

describe('policy/engine: anything but a well-formed decision is a deny', function () {
  this.timeout(60_000);
  const CASES: [string, string, string][] = [
    ['an undefined result', 'package gatehouse\ndecision := 1 if input.never\n', 'policy error: the policy returned no decision (undefined result)'],
    ['an unknown effect', 'package gatehouse\ndecision := {"effect": "permit"}\n', 'policy error: unknown effect "permit"'],
    ['a non-object decision', 'package gatehouse\ndecision := "allow"\n', 'policy error: the decision must be an object'],
    [
      'an unknown mask action',
      'package gatehouse\ndecision := {"effect": "allow", "mask": [{"path": "$.a", "action": "blur"}]}\n',
      'policy error: mask[0].action must be redact, hash or remove, not "blur"',
    ],
    [
      'a mask path that does not compile',
      'package gatehouse\ndecision := {"effect": "allow", "mask": [{"path": "data.*", "action": "redact"}]}\n',
      'policy error: mask[0].path "data.*" does not compile: a JSONPath must start with "$"',
    ],
    [
      'approve without approvers',
      'package gatehouse\ndecision := {"effect": "approve", "approval": {"approverGroups": [], "ttlSeconds": 60}}\n',
      'policy error: approval.approverGroups must name at least one group',
    ],
    [
      'reasons that are not strings',
      'package gatehouse\ndecision := {"effect": "allow", "reasons": [1]}\n',
      'policy error: reasons must be a list of at most 32 strings',
    ],
  ];
  for (const [what, rego, reason] of CASES) {
    it(what, async () => {
      const engine = await engineFor(rego);
      assert.deepEqual(engine.evaluate({}), { effect: 'deny', reasons: [reason], audit: { level: 'Metadata' } });
    });
  }

  it("a mask's when the redactor cannot compile is a deny; one that compiles is kept on the directive", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-rego-'));
    writeFileSync(
      join(dir, 'p.rego'),
      'package gatehouse\ndecision := {"effect": "allow", "mask": [{"path": "$.data.*", "action": "redact", "when": input.when}]}\n',
    );
    const engine = await createPolicyEngine(await loadPolicySource({ kind: 'rego', dir, opa: toolPath('opa') }), checkMaskPath);
    assert.deepEqual(engine.evaluate({ when: "@.type != 'helm.sh/release.v1'" }), {
      effect: 'allow',
      reasons: [],
      mask: [{ path: '$.data.*', action: 'redact', when: "@.type != 'helm.sh/release.v1'" }],
      inspect: [],
      audit: { level: 'Metadata' },
    });
    assert.deepEqual(engine.evaluate({ when: '@.type = 1' }), {
      effect: 'deny',
      reasons: ['policy error: mask[0].path "$.data.*" when "@.type = 1" does not compile: unexpected "=" at offset 7 in "@.type = 1"'],
      audit: { level: 'Metadata' },
    });
    assert.match(engine.evaluate({ when: 7 }).reasons[0]!, /mask\[0\]\.when must be a string/);
  });

  it("a mask path the redactor cannot compile (checked by the gateway's real check)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-rego-'));
    writeFileSync(join(dir, 'p.rego'), 'package gatehouse\ndecision := {"effect": "allow", "mask": [{"path": "$.items[-1].data", "action": "redact"}]}\n');
    const engine = await createPolicyEngine(await loadPolicySource({ kind: 'rego', dir, opa: toolPath('opa') }), checkMaskPath);
    assert.deepEqual(engine.evaluate({}), {
      effect: 'deny',
      reasons: [
        'policy error: mask[0].path "$.items[-1].data" does not compile: negative indices are not supported (the length of a streamed array is not known) in "$.items[-1].data"',
      ],
      audit: { level: 'Metadata' },
    });
  });

  it('a runtime error in the policy (conflicting complete rules)', async () => {
    const engine = await engineFor('package gatehouse\ndecision := {"effect": "allow"} if input.a\ndecision := {"effect": "deny"} if input.b\n');
    const d = engine.evaluate({ a: true, b: true });
    assert.equal(d.effect, 'deny');
    assert.match(d.reasons[0]!, /^policy error: evaluation failed: .*conflict/);
    assert.equal(engine.evaluate({ a: true }).effect, 'allow', 'the instance keeps working after an error');
  });

  it('a builtin error makes the rule undefined, which is a deny', async () => {
    const engine = await engineFor('package gatehouse\ndecision := {"effect": "allow", "reasons": [x]} if x := sprintf("%d", [to_number(input.v)])\n');
    assert.deepEqual(engine.evaluate({ v: 'nan' }), {
      effect: 'deny',
      reasons: ['policy error: the policy returned no decision (undefined result)'],
      audit: { level: 'Metadata' },
    });
  });

  it("a policy that does not compile stops start-up with OPA's message", async () => {
    await assert.rejects(
      engineFor('package gatehouse\ndecision := {"effect": \n'),
      (e: PolicyLoadError) => e.code === 'GATEHOUSE_POLICY_LOAD' && /does not compile:\n.*p\.rego:\d+/s.test(e.message),
    );
  });

  it('a policy without the entrypoint stops start-up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-rego-'));
    writeFileSync(join(dir, 'p.rego'), 'package other\nx := 1\n');
    await assert.rejects(loadPolicySource({ kind: 'rego', dir, opa: toolPath('opa') }), /does not compile/);
  });
});
