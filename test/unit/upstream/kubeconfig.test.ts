import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadUpstream } from '../../../src/upstream/credentials.js';

describe('upstream: credentials from a kubeconfig (read by client-node in a child process)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-kc-'));
    writeFileSync(join(dir, 'ca.crt'), 'CA');
    writeFileSync(join(dir, 'client.crt'), 'CERT');
    writeFileSync(join(dir, 'client.key'), 'KEY');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const kubeconfig = (name: string, users: Record<string, unknown>[], current = 'token') => {
    const file = join(dir, name);
    writeFileSync(
      file,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: 'https://10.0.0.1:6443/', 'certificate-authority': 'ca.crt', 'tls-server-name': 'kubernetes' } }],
        users,
        contexts: users.map((u) => ({ name: String(u['name']), context: { cluster: 'c', user: String(u['name']) } })),
        'current-context': current,
      }),
    );
    return file;
  };

  it('reads the server, the CA and the token of the current context, files relative to the kubeconfig', () => {
    const file = kubeconfig('token.yaml', [
      { name: 'token', user: { token: 'secret-token' } },
      { name: 'cert', user: { 'client-certificate': 'client.crt', 'client-key': 'client.key' } },
    ]);
    const t = loadUpstream({ kind: 'kubeconfig', file });
    assert.equal(t.server, 'https://10.0.0.1:6443');
    assert.equal(t.tls.ca?.toString(), 'CA');
    assert.equal(t.tls.servername, 'kubernetes');
    assert.equal(t.tls.rejectUnauthorized, true);
    assert.equal(t.authorization?.(), 'Bearer secret-token');
    const c = loadUpstream({ kind: 'kubeconfig', file, context: 'cert' });
    assert.equal(c.tls.cert?.toString(), 'CERT');
    assert.equal(c.tls.key?.toString(), 'KEY');
    assert.equal(c.authorization, undefined);
  });

  it('refuses what a gateway cannot use, naming the option, and never prints a credential', () => {
    const file = kubeconfig('refused.yaml', [
      { name: 'token', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'get-token' } } },
      { name: 'basic', user: { username: 'u', password: 'hunter2' } },
    ]);
    assert.throws(() => loadUpstream({ kind: 'kubeconfig', file }), /upstream\.kubeconfig.*exec credential plugin/);
    assert.throws(
      () => loadUpstream({ kind: 'kubeconfig', file, context: 'basic' }, { as: 'audit.webhook.kubeconfig' }),
      (err: Error) => /audit\.webhook\.kubeconfig.*basic auth/.test(err.message) && !err.message.includes('hunter2'),
    );
    assert.throws(() => loadUpstream({ kind: 'kubeconfig', file, context: 'nope' }), /upstream\.kubeconfig.*names no cluster or no user/);
    assert.throws(() => loadUpstream({ kind: 'kubeconfig', file: join(dir, 'missing.yaml') }), /upstream\.kubeconfig.*cannot load it/);
    writeFileSync(join(dir, 'broken.yaml'), 'clusters: [');
    assert.throws(() => loadUpstream({ kind: 'kubeconfig', file: join(dir, 'broken.yaml') }), /upstream\.kubeconfig.*cannot load it/);
  });

  it('attack: a kubeconfig that does not parse does not put its lines (a token beside the fault) into the start-up error', () => {
    const file = join(dir, 'leaky.yaml');
    writeFileSync(file, 'apiVersion: v1\nusers:\n- name: u\n  user:\n    token: SECRET-TOKEN-123\n   bad: [\n');
    assert.throws(
      () => loadUpstream({ kind: 'kubeconfig', file }),
      (err: Error) => /upstream\.kubeconfig: cannot load it: bad indentation.*line 6/.test(err.message) && !err.message.includes('SECRET-TOKEN-123'),
    );
  });
});
