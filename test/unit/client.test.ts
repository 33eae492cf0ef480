import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError, connect } from '../../src/client.js';

describe('client: the CLI reads the kubeconfig the person uses for kubectl', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-client-'));
  const leaky = join(dir, 'leaky.yaml');
  writeFileSync(leaky, 'apiVersion: v1\nusers:\n- name: u\n  user:\n    token: SECRET-TOKEN-123\n   bad: [\n');

  it('attack: a kubeconfig that does not parse does not put its lines (a token beside the fault) on the terminal', async () => {
    const refused = (err: unknown) =>
      err instanceof CliError &&
      /^cannot read the kubeconfig.*: bad indentation.*\(line 6, column \d+\)$/.test(err.message) &&
      !err.message.includes('SECRET-TOKEN-123');
    await assert.rejects(connect(leaky, undefined), refused);
    // The same through KUBECONFIG, as kubectl finds it.
    const before = process.env['KUBECONFIG'];
    process.env['KUBECONFIG'] = leaky;
    try {
      await assert.rejects(connect(undefined, undefined), refused);
    } finally {
      if (before === undefined) delete process.env['KUBECONFIG'];
      else process.env['KUBECONFIG'] = before;
    }
  });

  it('a kubeconfig with no current cluster says which kubeconfig to pass', async () => {
    const empty = join(dir, 'empty.yaml');
    writeFileSync(empty, 'apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n');
    await assert.rejects(connect(empty, undefined), /has no current cluster: pass --kubeconfig/);
  });
});
