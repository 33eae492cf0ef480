import assert from 'node:assert/strict';
import { unifiedDiff } from '../../../src/approval/diff.js';
import { dryRunBody, previewWrite, type AsRequester } from '../../../src/approval/preview.js';

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
