/**
 * Masking end to end: kubectl 1.32 → Gatehouse → kube-apiserver v1.35.4, with the
 * bundled policy masking Secret values for group dev and security, and env
 * secrets (hashed) for agents. Every output is checked for the canary values
 * the test bed seeded, in plain, base64 and JSON-escaped form.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { createMemoryAuditWriter } from '../../src/audit/writer.js';
import { startDemo, type RunningDemo } from '../../src/demo/demo.js';
import { mintToken } from '../../src/demo/issuer.js';
import { runRoot } from '../../src/paths.js';
import { REDACTED } from '../../src/redact/stream.js';
import { canary } from '../../src/testbed/world.js';
import { kubectl, run } from '../support/run.js';
import { waitFor } from '../support/wait.js';
import { testbed } from './hooks.js';

/** No canary leaks in any form: plain, base64 (as in Secret data) or JSON-escaped inside a string. */
function assertNoLeak(
  text: string,
  values: string[] = ['dev', 'prod'].flatMap((ns) => [canary(ns, 'db-password'), canary(ns, 'api-token'), canary(ns, 'env-password')]),
) {
  for (const v of values) {
    for (const form of [v, Buffer.from(v).toString('base64'), Buffer.from(v).toString('base64').slice(0, 16), JSON.stringify(v).slice(1, -1)]) {
      assert.ok(!text.includes(form), `leaked ${v} as ${form}`);
    }
  }
}

describe('masking (kubectl → Gatehouse → kube-apiserver v1.35.4)', function () {
  this.timeout(60_000);
  let demo: RunningDemo;

  before(async function () {
    this.timeout(120_000);
    demo = await startDemo({ dir: join(runRoot, `test-${process.pid}`, 'masking'), testbed: testbed(), audit: createMemoryAuditWriter(() => {}) });
  });
  after(async () => demo?.stop());

  const as = (who: 'alice' | 'agent' | 'security' | 'admin', args: string[], input?: string) => kubectl(demo.kubeconfigs[who], args, input);
  const admin = (args: string[], input?: string) => kubectl(testbed().kubeconfigs.admin, args, input);

  it('get secret -o json and -o yaml: values masked, still valid base64', async () => {
    const json = await as('alice', ['get', 'secret', 'db-credentials', '-n', 'dev', '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    assertNoLeak(json.stdout);
    const obj = JSON.parse(json.stdout);
    assert.deepEqual(obj.data, { password: REDACTED, username: REDACTED });
    assert.equal(obj.metadata.name, 'db-credentials');
    const yaml = await as('alice', ['get', 'secret', 'db-credentials', '-n', 'dev', '-o', 'yaml']);
    assert.equal(yaml.code, 0, yaml.stderr);
    assertNoLeak(yaml.stdout);
    assert.match(yaml.stdout, /password: GATEHOUSE\+REDACTED\+\+/);
  });

  it('get secret -o jsonpath: the masked value decodes as base64', async () => {
    const r = await as('alice', ['get', 'secret', 'api-token', '-n', 'prod', '-o', 'jsonpath={.data.token}']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, REDACTED);
    assert.equal(Buffer.from(r.stdout, 'base64').toString('base64'), REDACTED);
  });

  it('get secrets -A -o json (group security): every item masked, list paging passes', async () => {
    const r = await as('security', ['get', 'secrets', '-A', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assertNoLeak(r.stdout);
    const list = JSON.parse(r.stdout);
    const ours = list.items.filter((i: { metadata: { namespace: string } }) => ['dev', 'prod'].includes(i.metadata.namespace));
    assert.ok(ours.length >= 4);
    for (const item of ours) for (const v of Object.values(item.data)) assert.equal(v, REDACTED);
    const page = await as('security', ['get', 'secrets', '-A', '-o', 'json', '--chunk-size=1']);
    assert.equal(page.code, 0, page.stderr);
    assert.equal(JSON.parse(page.stdout).items.length, list.items.length, 'limit/continue paging works through the redactor');
  });

  it('get secrets (a Table): kubectl prints it, and rows[].object is masked', async () => {
    const r = await as('alice', ['get', 'secrets', '-n', 'dev']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^NAME\s+TYPE\s+DATA\s+AGE/m);
    assert.match(r.stdout, /^db-credentials\s+Opaque\s+2\s/m);
    const issuer = JSON.parse(readFileSync(join(demo.dir, 'issuer.json'), 'utf8'));
    const { token } = await mintToken(issuer, { user: 'alice@example.com', groups: ['dev'] });
    const dispatcher = new Agent({ connect: { ca: demo.gateway.caPem! } });
    const res = await request(`${demo.gateway.url}/api/v1/namespaces/dev/secrets?includeObject=Object`, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' },
      dispatcher,
    });
    const text = await res.body.text();
    await dispatcher.close();
    assert.equal(res.statusCode, 200);
    const table = JSON.parse(text);
    assert.equal(table.kind, 'Table');
    assertNoLeak(text);
    assert.ok(table.rows.every((row: { object: { data: Record<string, string> } }) => Object.values(row.object.data).every((v) => v === REDACTED)));
  });

  it('get secrets -w -o json: a change made meanwhile arrives masked', async () => {
    const fresh = 'GATEHOUSE-CANARY-watch-rotated';
    const watch = spawn('kubectl', ['--kubeconfig', demo.kubeconfigs.alice, 'get', 'secrets', '-n', 'dev', '-w', '--output-watch-events', '-o', 'json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    watch.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      // kubectl lists, prints the items as ADDED events, then watches from the list's
      // resourceVersion: once api-token was printed, a later change must arrive as MODIFIED.
      await waitFor('the initial ADDED event of api-token', () => /"type":\s*"ADDED"[^\n]*"name":\s*"api-token"/.test(out));
      const r = await admin(['patch', 'secret', 'api-token', '-n', 'dev', '--type=merge', '-p', JSON.stringify({ stringData: { token: fresh } })]);
      assert.equal(r.code, 0, r.stderr);
      await waitFor('the MODIFIED event', () => /"type":\s*"MODIFIED"/.test(out));
    } finally {
      watch.kill();
      await admin(['patch', 'secret', 'api-token', '-n', 'dev', '--type=merge', '-p', JSON.stringify({ stringData: { token: canary('dev', 'api-token') } })]);
    }
    assertNoLeak(out, [fresh, canary('dev', 'api-token'), canary('dev', 'db-password')]);
    assert.match(out, /GATEHOUSE\+REDACTED\+\+/);
  });

  it('apply, then get: the copy in last-applied-configuration is masked too', async () => {
    const value = 'GATEHOUSE-CANARY-applied-secret';
    const manifest = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'applied', namespace: 'dev' }, stringData: { key: value } });
    const applied = await as('alice', ['apply', '-f', '-', '-o', 'json'], manifest);
    assert.equal(applied.code, 0, applied.stderr);
    assertNoLeak(applied.stdout, [value]);
    const stored = await admin([
      'get',
      'secret',
      'applied',
      '-n',
      'dev',
      '-o',
      'jsonpath={.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}',
    ]);
    assert.match(stored.stdout, new RegExp(value), 'the API server really holds the copy');
    const r = await as('alice', ['get', 'secret', 'applied', '-n', 'dev', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assertNoLeak(r.stdout, [value]);
    const inner = JSON.parse(JSON.parse(r.stdout).metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']);
    assert.equal(inner.stringData.key, REDACTED);
    await admin(['delete', 'secret', 'applied', '-n', 'dev']);
  });

  it('the objects echoed by create and patch are masked too', async () => {
    const value = 'GATEHOUSE-CANARY-created-secret';
    const created = await as('alice', ['create', 'secret', 'generic', 'echoed', '-n', 'dev', `--from-literal=k=${value}`, '-o', 'json']);
    assert.equal(created.code, 0, created.stderr);
    assertNoLeak(created.stdout, [value]);
    assert.equal(JSON.parse(created.stdout).data.k, REDACTED);
    const patched = await as('alice', [
      'patch',
      'secret',
      'echoed',
      '-n',
      'dev',
      '--type=merge',
      '-p',
      JSON.stringify({ stringData: { k2: value } }),
      '-o',
      'json',
    ]);
    assert.equal(patched.code, 0, patched.stderr);
    assertNoLeak(patched.stdout, [value]);
    // kubectl delete prints only names; --raw shows the body the API server echoes.
    const deleted = await as('alice', ['delete', '--raw', '/api/v1/namespaces/dev/secrets/echoed']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assertNoLeak(deleted.stdout + deleted.stderr, [value]);
    // Without finalizers the API server answers a delete with a Status; with them, the object (masked by the same path).
    const body = JSON.parse(deleted.stdout);
    if (body.kind === 'Secret') assert.equal(body.data.k, REDACTED);
    else assert.equal(body.kind, 'Status');
  });

  it('a TokenRequest answer (kubectl create token) is masked: the token is a credential', async () => {
    const r = await as('alice', ['create', 'token', 'ci', '-n', 'dev']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), REDACTED);
    const real = await admin(['create', 'token', 'ci', '-n', 'dev']);
    assert.match(real.stdout, /^eyJ/, 'the API server does issue a real token (to an admin, unmasked)');
  });

  it('replace with the masked object is refused; the real value is untouched', async () => {
    const got = await as('alice', ['get', 'secret', 'db-credentials', '-n', 'dev', '-o', 'json']);
    const r = await as('alice', ['replace', '-f', '-'], got.stdout);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Error from server \(BadRequest\): error when replacing "STDIN": this write carries back a value Gatehouse masked/);
    const real = await admin(['get', 'secret', 'db-credentials', '-n', 'dev', '-o', 'jsonpath={.data.password}']);
    assert.equal(Buffer.from(real.stdout, 'base64').toString(), canary('dev', 'db-password'));
  });

  it('kubectl edit of a masked Secret changes only what was edited', async () => {
    const editor = join(demo.dir, 'editor.sh');
    writeFileSync(editor, '#!/bin/sh\nsed -i "s/^  name: db-credentials$/  name: db-credentials\\n  labels:\\n    edited: \\"yes\\"/" "$1"\n');
    chmodSync(editor, 0o755);
    const r = await run('kubectl', ['--kubeconfig', demo.kubeconfigs.alice, 'edit', 'secret', 'db-credentials', '-n', 'dev'], {
      env: { ...process.env, KUBE_EDITOR: editor, EDITOR: editor },
    });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const real = await admin(['get', 'secret', 'db-credentials', '-n', 'dev', '-o', 'json']);
    const obj = JSON.parse(real.stdout);
    assert.equal(obj.metadata.labels?.edited, 'yes');
    assert.equal(Buffer.from(obj.data.password, 'base64').toString(), canary('dev', 'db-password'), 'the real value survived the edit');
  });

  it('an agent sees env secrets of a Deployment as keyed hashes, other env values as they are', async () => {
    const r = await as('agent', ['get', 'deployment', 'web', '-n', 'prod', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assertNoLeak(r.stdout);
    const env = JSON.parse(r.stdout).spec.template.spec.containers[0].env as { name: string; value: string }[];
    assert.equal(env.find((e) => e.name === 'LOG_LEVEL')!.value, 'info');
    assert.match(env.find((e) => e.name === 'DB_PASSWORD')!.value, /^GATEHOUSE\+HMAC\+\+[A-Za-z0-9+/]{24}$/);
    const again = await as('agent', ['get', 'deployments', '-n', 'prod', '-o', 'json']);
    const listed = JSON.parse(again.stdout)
      .items.find((i: { metadata: { name: string } }) => i.metadata.name === 'web')
      .spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === 'DB_PASSWORD').value;
    assert.equal(listed, env.find((e) => e.name === 'DB_PASSWORD')!.value, 'the same value hashes the same in get and list');
  });
});
