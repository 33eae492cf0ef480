/**
 * What of the input a policy reads (`opa deps`, OPA v1.22.2 from .tools/opa),
 * the input cut down to it, and the decisions remembered by it: a policy must
 * decide exactly as it does on the whole input, every time.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDecisionCache } from '../../../src/policy/decision-cache.js';
import type { Decision } from '../../../src/policy/decision.js';
import { createPolicyEngine } from '../../../src/policy/engine.js';
import { readSamples } from '../../../src/policy/fixtures.js';
import { footprintFromDeps, project, reads, type Footprint } from '../../../src/policy/footprint.js';
import { compiled, loadPolicySource } from '../../../src/policy/load.js';
import { projectRoot, toolPath } from '../../../src/paths.js';
import { checkMaskPath } from '../../../src/redact/path.js';

const RULE = 'data.gatehouse.decision';
const v = (value: string) => ({ type: 'var', value });
const s = (value: string) => ({ type: 'string', value });
const ruleRef = [v('data'), s('gatehouse'), s('decision')];

async function loaded(rego: string) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-rego-'));
  writeFileSync(join(dir, 'p.rego'), rego);
  const policy = await loadPolicySource({ kind: 'rego', dir, opa: toolPath('opa') });
  return { policy, engine: await createPolicyEngine(policy, checkMaskPath) };
}

describe('policy/footprint: what opa deps says the policy reads', () => {
  const CASES: [string, unknown, Footprint | undefined][] = [
    [
      'paths, merged into one tree',
      {
        base: [
          [v('input'), s('user'), s('groups')],
          [v('input'), s('request'), s('exec'), s('tty')],
          [v('input'), s('user'), s('agent')],
        ],
        virtual: [ruleRef],
      },
      { user: { groups: true, agent: true }, request: { exec: { tty: true } } },
    ],
    [
      'a shorter path swallows a longer one, in either order',
      {
        base: [
          [v('input'), s('a'), s('b')],
          [v('input'), s('a')],
          [v('input'), s('a'), s('c')],
        ],
        virtual: [ruleRef],
      },
      { a: true },
    ],
    [
      'a step that is not a member name keeps all below it',
      { base: [[v('input'), s('list'), { type: 'number', value: 0 }, s('name')]], virtual: [ruleRef] },
      { list: true },
    ],
    ['input itself: the whole input', { base: [[v('input'), s('a')], [v('input')]], virtual: [ruleRef] }, true],
    ['base documents under data are not input', { base: [[v('data'), s('config')]], virtual: [ruleRef] }, {}],
    ['the rule not among the virtual documents (opa deps did not find it): unknown', { base: [ruleRef] }, undefined],
    ['output of another shape: unknown', { base: 'x', virtual: [ruleRef] }, undefined],
    ['no input at all (opa deps leaves out an empty base)', { virtual: [ruleRef] }, {}],
  ];
  for (const [what, deps, want] of CASES) it(what, () => assert.deepEqual(footprintFromDeps(deps, RULE), want));

  it('cuts the input down to the footprint, keeping what is not an object where the footprint goes deeper', () => {
    const fp: Footprint = { user: { groups: true }, request: { exec: { tty: true }, object: true } };
    const input = {
      user: { username: 'a', groups: ['g'] },
      request: { id: 'r', exec: 'not an object', object: { big: [1, 2] }, body: 'x' },
      context: { now_ns: 1 },
    };
    assert.deepEqual(project(input, fp), { user: { groups: ['g'] }, request: { exec: 'not an object', object: { big: [1, 2] } } });
    assert.deepEqual(project({ user: null, request: [1] }, fp), { user: null, request: [1] });
    assert.equal(project(input, true), input);
    assert.deepEqual(
      [reads(fp, ['request', 'id']), reads(fp, ['request', 'object', 'spec']), reads(fp, ['user']), reads(true, ['context', 'now_ns'])],
      [false, true, true, true],
    );
  });

  it('attack: a body member named __proto__ that the policy reads reaches the policy (the cut-down input once made it the prototype, which JSON leaves out)', () => {
    const fp = JSON.parse('{"meta": {"__proto__": true}}') as Footprint;
    const input = JSON.parse('{"meta": {"__proto__": {"polluted": true}, "other": 1}}') as unknown;
    assert.equal(JSON.stringify(project(input, fp)), '{"meta":{"__proto__":{"polluted":true}}}');
  });
});

describe('policy/footprint: the engine with a footprint and a decision cache (real opa deps and WASM)', function () {
  this.timeout(60_000);

  it('the bundled policy reads the identity, five attributes (not the name) and a few request members: the cache is on', async () => {
    const policy = await loadPolicySource({ kind: 'rego', dir: join(projectRoot, 'policies/gatehouse'), opa: toolPath('opa') });
    assert.deepEqual(policy.footprint, {
      nonResourceAttributes: { path: true, verb: true },
      request: { exec: { tty: true }, impersonate: true, object: true, oldObject: true, query: { dryRun: true } },
      // Read field by field: a GET of another object by name is the same input to this policy.
      resourceAttributes: { group: true, namespace: true, resource: true, subresource: true, verb: true },
      user: { agent: { name: true, onBehalfOf: true }, groups: true },
    });
    assert.deepEqual((await createPolicyEngine(policy)).cache, { on: true });
  });

  it('the bundled policy: a GET of another object of the same kind in the same namespace is decided once', async () => {
    const policy = await loadPolicySource({ kind: 'rego', dir: join(projectRoot, 'policies/gatehouse'), opa: toolPath('opa') });
    const lookups: boolean[] = [];
    const engine = await createPolicyEngine(policy, checkMaskPath, { onCacheLookup: (hit) => lookups.push(hit) });
    const sample = readSamples(join(projectRoot, 'policies/fixtures/samples.json')).find(
      (x) => (x.input as { resourceAttributes: unknown }).resourceAttributes,
    );
    const named = (name: string, namespace?: string) => {
      const input = structuredClone(sample!.input) as { resourceAttributes: { name: string; namespace: string }; request: { id: string } };
      input.resourceAttributes.name = name;
      if (namespace) input.resourceAttributes.namespace = namespace;
      input.request.id = name;
      return input;
    };
    const first = engine.evaluate(named('a'));
    assert.equal(engine.evaluate(named('b')), first);
    engine.evaluate(named('a', 'elsewhere'));
    assert.deepEqual(lookups, [false, true, false]);
  });

  const OFF: [string, string, RegExp][] = [
    [
      'a policy that reads input.request.id',
      'package gatehouse\ndecision := {"effect": "allow", "reasons": [input.request.id]}\n',
      /reads input\.request\.id, which differs on every request/,
    ],
    [
      'a policy that reads the whole input',
      'package gatehouse\ndecision := {"effect": "allow"} if count(object.keys(input)) > 0\n',
      /reads input\.request\.id/,
    ],
    [
      'a policy that reads input.context.now_ns',
      'package gatehouse\ndecision := {"effect": "allow"} if input.context.now_ns > 0\n',
      /reads input\.context\.now_ns/,
    ],
    [
      'a policy that asks the host for the time',
      'package gatehouse\ndecision := {"effect": "allow"} if time.now_ns() > input.t\n',
      /calls time\.now_ns, which may answer differently each time/,
    ],
  ];
  for (const [what, rego, why] of OFF) {
    it(`no cache for ${what}`, async () => {
      const { engine } = await loaded(rego);
      assert.equal(engine.cache.on, false);
      assert.match((engine.cache as { why: string }).why, why);
    });
  }

  it('inputs the policy answers alike share one frozen decision, with or without the input cache', async () => {
    const { engine: cached } = await loaded('package gatehouse\ndecision := {"effect": "deny", "reasons": ["no"]} if input.user.name != "x"\n');
    const { engine: uncached } = await loaded(
      'package gatehouse\ndecision := {"effect": "allow", "reasons": ["yes"], "mask": [{"path": "$.data.*", "action": "redact"}]} if input.request.id != ""\n',
    );
    assert.equal(cached.cache.on, true);
    assert.equal(uncached.cache.on, false);
    for (const engine of [cached, uncached]) {
      const a = engine.evaluate({ user: { name: 'a', groups: [] }, request: { id: '1' } });
      const b = engine.evaluate({ user: { name: 'b', groups: [] }, request: { id: '2' } });
      assert.equal(a, b, 'the same result text, the same decision');
      assert.ok(Object.isFrozen(a) && Object.isFrozen(a.reasons) && ('mask' in a ? Object.isFrozen(a.mask) : true), 'no request may change it for the others');
    }
    assert.equal(uncached.evaluate({ user: { name: 'c', groups: [] }, request: { id: '' } }).effect, 'deny', 'another answer is decided anew');
  });

  it('a prebuilt policy (no Rego to analyse) gets its whole input and no cache', async () => {
    const { policy } = await loaded('package gatehouse\ndecision := {"effect": "allow"}\n');
    const engine = await createPolicyEngine(compiled(policy.wasm, policy.data));
    assert.match((engine.cache as { why: string }).why, /not known/);
    assert.equal(engine.evaluate({}).effect, 'allow');
  });

  it('references opa deps cannot follow keep the whole subtree: a dynamic member, an import alias, a function argument', async () => {
    const { policy, engine } = await loaded(
      [
        'package gatehouse',
        'import input.user as u',
        'pick(x) := x.deep',
        'decision := {"effect": "allow", "reasons": [input.request[input.which], u.name, pick(input.arg)]}',
        '',
      ].join('\n'),
    );
    assert.deepEqual(policy.footprint, { arg: true, request: true, user: { name: true }, which: true });
    const input = { which: 'verb', request: { verb: 'get', other: 1 }, user: { name: 'n', groups: [] }, arg: { deep: 'd' }, unused: 'x' };
    assert.deepEqual(engine.evaluate(input).reasons, ['get', 'n', 'd']);
  });

  it('decides as on the whole input, first time and from the cache: the bundled policy on 1,500 varied inputs, each twice', async () => {
    const policy = await loadPolicySource({ kind: 'rego', dir: join(projectRoot, 'policies/gatehouse'), opa: toolPath('opa') });
    const engine = await createPolicyEngine(policy, checkMaskPath);
    const samples = readSamples(join(projectRoot, 'policies/fixtures/samples.json')).map((x) => x.input as Record<string, unknown>);
    // A small deterministic generator: the same inputs every run, so a failure can be replayed.
    let seed = 7;
    const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const pick = <T>(xs: readonly T[]): T => xs[next(xs.length)]!;
    const GROUPS = ['dev', 'admins', 'security', 'deployers', 'system:authenticated'];
    const inputs = Array.from({ length: 1500 }, (_, i) => {
      const input = structuredClone(pick(samples)) as {
        user: Record<string, unknown>;
        resourceAttributes: Record<string, unknown> | null;
        request: Record<string, unknown>;
      };
      input.user['groups'] = GROUPS.filter(() => next(3) === 0);
      if (next(4) === 0) input.user['agent'] = { name: 'bot', onBehalfOf: pick(['alice', '', null]) };
      if (input.resourceAttributes) {
        input.resourceAttributes['verb'] = pick(['get', 'list', 'watch', 'create', 'patch', 'delete', 'deletecollection']);
        input.resourceAttributes['namespace'] = pick(['dev', 'prod', 'kube-system', '']);
        input.resourceAttributes['resource'] = pick(['pods', 'secrets', 'deployments', 'nodes', 'serviceaccounts']);
        input.resourceAttributes['subresource'] = pick(['', 'exec', 'attach', 'proxy', 'token', 'ephemeralcontainers']);
      }
      if (next(5) === 0) input.request['impersonate'] = { user: 'x', uid: null, groups: [], extra: {} };
      input.request['id'] = `request-${i}`;
      return input;
    });
    for (const round of ['first time', 'from the cache']) {
      for (const input of inputs) {
        assert.deepEqual(engine.evaluate(input), engine.evaluateJson(JSON.stringify(input)), `${round}: ${JSON.stringify(input)}`);
      }
    }
  });

  it('a remembered decision cannot be changed by the request it is handed to', async () => {
    const { engine } = await loaded('package gatehouse\ndecision := {"effect": "allow", "reasons": ["r"], "mask": [{"path": "$.a", "action": "redact"}]}\n');
    const first = engine.evaluate({ a: 1 });
    const again = engine.evaluate({ a: 1 }) as Extract<Decision, { effect: 'allow' }>;
    assert.equal(again, first);
    assert.throws(() => (again.reasons as string[]).push('added'), TypeError);
    assert.throws(() => ((again.mask[0] as { path: string }).path = '$.b'), TypeError);
  });

  it('a failed evaluation is not remembered', async () => {
    const { engine } = await loaded('package gatehouse\ndecision := {"effect": "allow"} if input.a\ndecision := {"effect": "deny"} if input.b\n');
    const input = { a: true, b: true };
    assert.match(engine.evaluate(input).reasons[0]!, /evaluation failed/);
    assert.match(engine.evaluate(input).reasons[0]!, /evaluation failed/);
  });
});

describe('policy/decision-cache: bounded by the text it keeps', () => {
  const d = (r: string): Decision => ({ effect: 'deny', reasons: [r], audit: { level: 'Metadata' } });

  it('drops what was not used since the last turnover, and keeps no key past the limit', () => {
    // Keys of 10 characters, a budget of 100: a turnover every sixth key.
    const cache = createDecisionCache(100);
    const key = (k: string) => k.repeat(10);
    for (const k of 'abcdef') cache.set(key(k), d(k));
    assert.equal(cache.get(key('a'))?.reasons[0], 'a', 'a is used after the first turnover');
    for (const k of 'ghijk') cache.set(key(k), d(k));
    assert.equal(cache.size, 6, 'the second turnover dropped b to f, never used since the first');
    assert.deepEqual(
      ['a', 'b', 'f', 'g', 'k'].map((k) => cache.get(key(k))?.reasons[0]),
      ['a', undefined, undefined, 'g', 'k'],
    );
    const big = createDecisionCache();
    big.set('x'.repeat(5000), d('x'));
    assert.equal(big.size, 0);
  });

  it('never holds more text than its budget and one key, however many keys go through it', () => {
    const cache = createDecisionCache(1000);
    for (let i = 0; i < 5000; i++) {
      const key = `${i}:`.padEnd(10, 'k');
      cache.set(key, d(String(i)));
      assert.equal(cache.get(key)?.reasons[0], String(i), 'what was just stored is there');
      // Keys of 10 characters: 1,000 and one key's worth is 101 of them.
      assert.ok(cache.size <= 101, `${cache.size} keys after ${i + 1}`);
    }
  });

  it('hands out frozen decisions, nested members included', () => {
    const cache = createDecisionCache();
    cache.set('k', { effect: 'allow', reasons: ['r'], mask: [{ path: '$.data.*', action: 'redact' }], inspect: [], audit: { level: 'Metadata' } });
    const got = cache.get('k')!;
    assert.equal(got.effect, 'allow');
    if (got.effect !== 'allow') return;
    for (const part of [got, got.reasons, got.mask, got.mask[0], got.inspect, got.audit]) assert.ok(Object.isFrozen(part));
  });
});
