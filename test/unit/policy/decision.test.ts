import assert from 'node:assert/strict';
import { subjectOf, describe as describeSubject } from '../../../src/approval/approval.js';
import type { Identity } from '../../../src/identity/identity.js';
import { toDecision } from '../../../src/policy/decision.js';
import { parseTarget } from '../../../src/request/attributes.js';

const answer = (d: object) => toDecision([{ result: { reasons: ['r'], ...d } }]);
const approval = { approverGroups: ['security'], ttlSeconds: 900 };

describe('policy/decision: inspect and approval fields', () => {
  it('reads inspect ["object"] on allow and approve, and defaults both new members to empty', () => {
    assert.deepEqual(answer({ effect: 'allow', inspect: ['object'] }), {
      effect: 'allow',
      reasons: ['r'],
      mask: [],
      inspect: ['object'],
      audit: { level: 'Metadata' },
    });
    assert.deepEqual(answer({ effect: 'approve', approval }), {
      effect: 'approve',
      reasons: ['r'],
      mask: [],
      inspect: [],
      approval: { ...approval, singleUse: true, fields: [], maxGrantSeconds: 0, grantGroups: ['security'] },
      audit: { level: 'Metadata' },
    });
    const d = answer({ effect: 'approve', approval: { ...approval, fields: ['$.spec.hostPID', "$.spec.containers[0]['securityContext'].privileged"] } });
    assert.ok(d.effect === 'approve');
    assert.deepEqual(d.approval.fields, ['$.spec.hostPID', "$.spec.containers[0]['securityContext'].privileged"]);
    const g = answer({ effect: 'approve', approval: { ...approval, maxGrantSeconds: 3600, grantGroups: ['sre'] } });
    assert.ok(g.effect === 'approve');
    assert.equal(g.approval.maxGrantSeconds, 3600);
    assert.deepEqual(g.approval.grantGroups, ['sre']);
    const tooLong = answer({ effect: 'approve', approval: { ...approval, maxGrantSeconds: 86_401 } });
    assert.equal(tooLong.effect, 'deny');
    assert.match(tooLong.reasons.join(), /maxGrantSeconds must be a whole number of seconds between 0 and 86400/);
  });

  it('a wish the gateway cannot meet, or a field that is not a field path, is a deny that says so', () => {
    const cases: [object, RegExp][] = [
      [{ effect: 'allow', inspect: ['oldObject'] }, /inspect: unknown "oldObject"/],
      [{ effect: 'allow', inspect: 'object' }, /inspect must be a list/],
      [{ effect: 'approve', approval: { ...approval, fields: ['$..privileged'] } }, /approval.fields: "\$\.\.privileged" is not a field path/],
      [{ effect: 'approve', approval: { ...approval, fields: [1] } }, /approval.fields must be a list/],
    ];
    for (const [d, why] of cases) {
      const out = answer(d);
      assert.equal(out.effect, 'deny', JSON.stringify(d));
      assert.match(out.reasons[0]!, why);
    }
  });
});

describe('approval subjects name the object a create would make', () => {
  const alice: Identity = { username: 'alice@example.com', uid: '', groups: ['dev'], extra: {}, claims: {}, agent: null };
  const create = parseTarget('POST', '/api/v1/namespaces/dev/pods', '');

  it('from metadata.name, or metadata.generateName', () => {
    const named = subjectOf(alice, create, 'POST', null, [], Buffer.from('{}'), { parsedBody: { metadata: { name: 'web-1' } } });
    assert.equal(named.name, 'web-1');
    assert.equal(describeSubject(named), 'alice@example.com: create pods web-1 in dev');
    const generated = subjectOf(alice, create, 'POST', null, [], Buffer.from('{}'), { parsedBody: { metadata: { generateName: 'node-debugger-' } } });
    assert.equal(generated.name, '');
    assert.equal(describeSubject(generated), 'alice@example.com: create pods node-debugger-… (generateName) in dev');
    // No name to give (a body the policy could not read): the collection, as before.
    assert.equal(describeSubject(subjectOf(alice, create, 'POST', null, [], undefined)), 'alice@example.com: create pods in dev');
  });

  it('carries the fields the approval is about', () => {
    const s = subjectOf(alice, create, 'POST', null, [], undefined, { fields: ['$.spec.hostPID'] });
    assert.deepEqual(s.fields, ['$.spec.hostPID']);
  });
});
