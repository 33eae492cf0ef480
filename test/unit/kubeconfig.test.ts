import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { renderKubeconfig } from '../../src/kubeconfig.js';

const caPem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('renderKubeconfig', () => {
  it('writes a token kubeconfig that @kubernetes/client-node loads', () => {
    const kc = new KubeConfig();
    kc.loadFromString(
      renderKubeconfig({ name: 'gh', server: 'https://127.0.0.1:6443', caPem, user: 'alice', auth: { kind: 'token', token: 't0k' }, namespace: 'dev' }),
    );
    assert.equal(kc.getCurrentCluster()?.server, 'https://127.0.0.1:6443');
    assert.equal(Buffer.from(kc.getCurrentCluster()!.caData!, 'base64').toString(), caPem);
    assert.equal(kc.getCurrentUser()?.token, 't0k');
    assert.equal(kc.getContextObject(kc.getCurrentContext())?.namespace, 'dev');
  });

  it('writes an exec credential plugin user', () => {
    const kc = new KubeConfig();
    kc.loadFromString(
      renderKubeconfig({
        name: 'gh',
        server: 'https://gw',
        caPem,
        user: 'alice',
        auth: { kind: 'exec', command: 'gatehouse', args: ['token'], env: { A: 'b' } },
      }),
    );
    const exec = kc.getCurrentUser()?.exec as { command: string; args: string[]; env: { name: string; value: string }[]; apiVersion: string };
    assert.equal(exec.apiVersion, 'client.authentication.k8s.io/v1');
    assert.equal(exec.command, 'gatehouse');
    assert.deepEqual(exec.args, ['token']);
    assert.deepEqual(exec.env, [{ name: 'A', value: 'b' }]);
  });
});
