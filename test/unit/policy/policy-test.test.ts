/**
 * `gatehouse policy test`: the policy author's one command, with the pinned OPA
 * and the real WASM engine — green on the bundled policy, and naming each
 * failing step on a broken copy.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../../src/paths.js';
import { breakAdminRule } from '../../support/policy.js';

const CLI = join(projectRoot, 'bin/gatehouse.js');

describe('gatehouse policy test', function () {
  this.timeout(60_000);

  it('passes on the bundled policy: fmt, check against the schema, opa test, the fixtures through WASM', () => {
    const r = spawnSync(process.execPath, [CLI, 'policy', 'test', join(projectRoot, 'policies')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /✔ opa fmt +every file formatted/);
    assert.match(r.stdout, /✔ opa check +--strict, against .*policies\/schema\/input\.json/);
    assert.match(r.stdout, /✔ opa test +PASS: \d+\/\d+/);
    assert.match(r.stdout, /✔ fixtures \(WASM\) +\d+\/\d+ samples decided as expected/);
    assert.match(r.stdout, /all 4 checks passed\n$/);
  });

  it('fails, naming each step, on a copy with a badly formatted file and a rule that changes a fixture', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-test-'));
    try {
      cpSync(join(projectRoot, 'policies'), dir, { recursive: true });
      breakAdminRule(join(dir, 'gatehouse'));
      const r = spawnSync(process.execPath, [CLI, 'policy', 'test', dir], { encoding: 'utf8' });
      assert.equal(r.status, 1);
      assert.match(r.stdout, /✗ opa fmt +files need `opa fmt -w` \([\d.]+ s\)\n +.*access\.rego/);
      assert.match(r.stdout, /✗ opa test +FAIL: 1\/\d+/);
      assert.match(
        r.stdout,
        /✗ fixtures \(WASM\) +\d+ of \d+ samples decided otherwise \([\d.]+ s\)\n +admin reads a secret unmasked\n +expected \{"effect":"allow"/,
      );
      assert.match(r.stdout, /3 of 4 checks failed\n$/);
      assert.equal(spawnSync(process.execPath, [CLI, 'policy', 'test', join(dir, 'nowhere')], { encoding: 'utf8' }).status, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
