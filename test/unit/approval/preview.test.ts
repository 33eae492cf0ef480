import assert from 'node:assert/strict';
import { unifiedDiff } from '../../../src/approval/diff.js';
import { dryRunBody, previewOf, previewWrite, type AsRequester } from '../../../src/approval/preview.js';
import { parseFieldPath } from '../../../src/policy/field-path.js';

describe('approval preview', () => {
  const del = { verb: 'delete', method: 'DELETE', path: '/api/v1/namespaces/prod/configmaps/c', search: '', contentType: 'application/json' };

  it("puts the dry run in a DELETE's options body, where the API server reads it over the query", () => {
    const out = dryRunBody({ ...del, body: Buffer.from('{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background","dryRun":[]}') });
    assert.deepEqual(JSON.parse((out as Buffer).toString()), { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background', dryRun: ['All'] });
    assert.equal(dryRunBody({ ...del, body: undefined }), undefined);
    assert.ok(dryRunBody({ ...del, body: Buffer.from('not json') }) instanceof Error);
  });

  it('never sends a delete it cannot make a dry run of', async () => {
    const calls: string[] = [];
    const asRequester: AsRequester = async (r) => {
      calls.push(`${r.method} ${r.pathAndQuery}`);
      return { status: 200, body: Buffer.from('{}') };
    };
    const p = await previewWrite({ ...del, body: Buffer.from('[1]') }, asRequester, async (b) => b);
    assert.equal(p.status, 'unavailable');
    assert.deepEqual(calls, []);
  });

  it('diffs the current object against the dry run, masked, without managedFields noise', async () => {
    const current = { kind: 'ConfigMap', metadata: { name: 'c', resourceVersion: '1', managedFields: [{ manager: 'x' }] }, data: { a: '1', secret: 's3cr3t' } };
    const after = { kind: 'ConfigMap', metadata: { name: 'c', resourceVersion: '2' }, data: { a: '2', secret: 's3cr3t' } };
    const calls: string[] = [];
    const asRequester: AsRequester = async (r) => {
      calls.push(`${r.method} ${r.pathAndQuery}`);
      return { status: 200, body: Buffer.from(JSON.stringify(r.method === 'GET' ? current : after)) };
    };
    const mask = async (b: Buffer) => Buffer.from(b.toString().replace(/s3cr3t/g, 'MASKED'));
    const p = await previewWrite(
      {
        verb: 'patch',
        method: 'PATCH',
        path: del.path,
        search: '?fieldManager=kubectl',
        body: Buffer.from('{"data":{"a":"2"}}'),
        contentType: 'application/merge-patch+json',
      },
      asRequester,
      mask,
    );
    assert.deepEqual(calls, [`GET ${del.path}`, `PATCH ${del.path}?fieldManager=kubectl&dryRun=All`]);
    assert.equal(p.status, 'ok');
    assert.ok(p.status === 'ok');
    assert.equal(p.diff, `--- current\n+++ after (dry run)\n@@ -2,5 +2,5 @@\n metadata:\n   name: c\n data:\n-  a: "1"\n+  a: "2"\n   secret: MASKED\n`);
  });
});

describe('unified diff', () => {
  it('is empty for equal texts and shows hunks with context', () => {
    assert.equal(unifiedDiff('a\nb\n', 'a\nb\n', { before: 'x', after: 'y' }), '');
    const before = Array.from({ length: 20 }, (_, i) => `l${i}`).join('\n');
    const after = before.replace('l2\n', 'L2\n').replace('l17', 'L17');
    assert.equal(
      unifiedDiff(before, after, { before: 'x', after: 'y' }),
      '--- x\n+++ y\n@@ -1,6 +1,6 @@\n l0\n l1\n-l2\n+L2\n l3\n l4\n l5\n@@ -15,6 +15,6 @@\n l14\n l15\n l16\n-l17\n+L17\n l18\n l19\n',
    );
    assert.equal(unifiedDiff('', 'a\n', { before: 'x', after: 'y' }), '--- x\n+++ y\n@@ -0,0 +1,1 @@\n+a\n');
  });
});

describe('approval preview: the fields an approval is about are highlighted', () => {
  const pod = (privileged: boolean, image = 'nginx') => ({
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: {
      replicas: 1,
      template: {
        spec: {
          hostNetwork: privileged,
          containers: [{ name: 'app', image, ...(privileged ? { securityContext: { privileged: true, capabilities: { add: ['SYS_ADMIN'] } } } : {}) }],
          volumes: privileged ? [{ name: 'root', hostPath: { path: '/', type: 'Directory' } }] : [],
        },
      },
    },
  });
  const answers = (before: object | null, after: object) => ({
    current: before ? { status: 200, body: Buffer.from(JSON.stringify(before)) } : null,
    dryRun: { status: 200, body: Buffer.from(JSON.stringify(after)) },
  });
  const req = { verb: 'patch', method: 'PATCH', path: '/apis/apps/v1/namespaces/dev/deployments/web', search: '', body: undefined, contentType: undefined };
  const marked = (p: Awaited<ReturnType<typeof previewOf>>) => {
    assert.ok(p.status === 'ok');
    const lines = p.diff.split('\n');
    return (p.highlight ?? []).map((i) => lines[i]);
  };

  it('marks the lines of each field, key and value, scalar or block', async () => {
    const p = await previewOf(req, answers(pod(false), pod(true)), async (b) => b, [
      '$.spec.template.spec.hostNetwork',
      '$.spec.template.spec.containers[0].securityContext.privileged',
      '$.spec.template.spec.containers[0].securityContext.capabilities.add[0]',
      '$.spec.template.spec.volumes[0].hostPath',
    ]);
    assert.deepEqual(marked(p), [
      '+      hostNetwork: true',
      '+            privileged: true',
      '+                - SYS_ADMIN',
      '+          hostPath:',
      '+            path: /',
      '+            type: Directory',
    ]);
  });

  it('marks an unchanged field shown as context, and skips fields outside the diff or not in the object', async () => {
    const p = await previewOf(req, answers(pod(true), pod(true, 'nginx:2')), async (b) => b, [
      '$.spec.template.spec.containers[0].securityContext.privileged',
      '$.spec.template.spec.volumes[0].hostPath',
      '$.spec.nothing.here',
    ]);
    assert.deepEqual(marked(p), ['             privileged: true']);
  });

  it('a create diffs against nothing; an unchanged object has nothing to mark', async () => {
    const created = await previewOf({ ...req, verb: 'create' }, answers(null, pod(true)), async (b) => b, ['$.spec.template.spec.hostNetwork']);
    assert.deepEqual(marked(created), ['+      hostNetwork: true']);
    const same = await previewOf(req, answers(pod(true), pod(true)), async (b) => b, ['$.spec.template.spec.hostNetwork']);
    assert.deepEqual(same, { status: 'ok', diff: '(no change)\n', dryRunCode: 200 });
  });
});

describe('field paths', () => {
  it("parses $, .name, ['name'] and [n] steps, and nothing else", () => {
    assert.deepEqual(parseFieldPath('$'), []);
    assert.deepEqual(parseFieldPath("$.spec.containers[10]['security.Context'].x-y"), ['spec', 'containers', 10, 'security.Context', 'x-y']);
    for (const bad of ['spec', '$..a', '$.a[*]', '$.a[?(@.x)]', '$.a[-1]', "$['a]", '$.', '$.a b']) assert.equal(parseFieldPath(bad), undefined, bad);
  });
});
