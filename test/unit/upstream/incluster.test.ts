import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../../src/config.js';
import { inClusterTarget, rotatingToken } from '../../../src/upstream/credentials.js';

describe('upstream: in-cluster credentials', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-sa-'));
    writeFileSync(join(dir, 'ca.crt'), 'CA');
    writeFileSync(join(dir, 'token'), 't1\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads host, port, CA and token from what a pod has', () => {
    const t = inClusterTarget(dir, { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' });
    assert.equal(t.server, 'https://[fd00::1]:443');
    assert.equal(t.tls.ca?.toString(), 'CA');
    assert.equal(t.authorization?.(), 'Bearer t1');
  });

  it('says what is missing when it is not a pod', () => {
    assert.throws(() => inClusterTarget(dir, {}), /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set/);
    assert.throws(
      () => inClusterTarget(join(dir, 'nope'), { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' }),
      /the service account is not mounted at .*nope \(ENOENT\)/,
    );
  });

  it('re-reads the token when the kubelet swaps the file, checking at most once a second', () => {
    let now = 0;
    const header = rotatingToken(join(dir, 'token'), () => now);
    assert.equal(header(), 'Bearer t1');
    writeFileSync(join(dir, 'next'), 't2');
    renameSync(join(dir, 'next'), join(dir, 'token'));
    now = 500;
    assert.equal(header(), 'Bearer t1', 'checked again within a second');
    now = 1000;
    assert.equal(header(), 'Bearer t2');
  });

  it('config: inCluster: true, or with the folder elsewhere', () => {
    const base = {
      listen: { tls: { cert: 'c', key: 'k' } },
      identity: { issuers: [{ issuer: 'https://login.example.com', audiences: ['gatehouse'] }] },
      policy: { wasm: 'p.wasm' },
      audit: { file: 'a.log' },
    };
    assert.equal(parseConfig({ ...base, upstream: { inCluster: true } }, '/etc/g').upstream.kind, 'inCluster');
    const u = parseConfig({ ...base, upstream: { inCluster: { serviceAccountDir: 'sa' } } }, '/etc/g').upstream;
    assert.deepEqual(u.kind === 'inCluster' && u.serviceAccountDir, '/etc/g/sa');
  });
});
