/** The OPA-server engine against the real `opa run --server` (OPA v1.22.2): same decisions as the embedded WASM. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPolicyEngine } from '../../../src/policy/engine.js';
import { loadPolicySource } from '../../../src/policy/load.js';
import { createOpaServerEngine } from '../../../src/policy/opa-server.js';
import { projectRoot, toolPath } from '../../../src/paths.js';
import { checkMaskPath } from '../../../src/redact/path.js';
import { freePort } from '../../../src/testbed/ports.js';

describe('policy/opa-server: decisions from opa run --server', function () {
  this.timeout(60_000);
  let opa: ChildProcess;
  let url: string;

  before(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    opa = spawn(toolPath('opa'), ['run', '--server', '--addr', `127.0.0.1:${port}`, '--log-level', 'error', join(projectRoot, 'policies/gatehouse')], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      try {
        if ((await fetch(`${url}/health`)).ok) return;
      } catch {
        // not up yet
      }
      await sleep(100);
    }
    throw new Error('opa run --server did not start');
  });
  after(() => opa?.kill());

  it('gives the same decision as the embedded WASM for every sample', async () => {
    const samples = JSON.parse(readFileSync(join(projectRoot, 'policies/fixtures/samples.json'), 'utf8')).samples as { name: string; input: unknown }[];
    const wasm = await createPolicyEngine(
      await loadPolicySource({ kind: 'rego', dir: join(projectRoot, 'policies/gatehouse'), opa: toolPath('opa') }),
      checkMaskPath,
    );
    const remote = createOpaServerEngine(url, checkMaskPath);
    try {
      for (const s of samples) assert.deepEqual(await remote.evaluate(s.input), wasm.evaluate(s.input), s.name);
    } finally {
      await remote.close();
    }
  });

  it('denies when the server is unreachable', async () => {
    const remote = createOpaServerEngine(`http://127.0.0.1:${await freePort()}`);
    const d = await remote.evaluate({});
    await remote.close();
    assert.equal(d.effect, 'deny');
    assert.match(d.reasons[0]!, /^policy error: the OPA server is unreachable/);
  });
});
