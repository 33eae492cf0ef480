/**
 * Hot reload: Rego folders compiled by the real OPA CLI, bundles served over
 * HTTP with ETags. A new revision is swapped in whole; a request pinned to the
 * old one keeps it; one that fails to compile or verify never replaces it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Decision } from '../../../src/policy/decision.js';
import { createPolicyEngine } from '../../../src/policy/engine.js';
import { startPolicy, type ReloadResult } from '../../../src/policy/reload.js';
import { verificationKey } from '../../../src/policy/signature.js';
import { toolPath } from '../../../src/paths.js';
import { waitFor } from '../../support/wait.js';

const rego = (reason: string) => `package gatehouse\n\ndecision := {"effect": "allow", "reasons": ["${reason}"]}\n`;
const reasonOf = async (d: Decision | Promise<Decision>) => (await d).reasons[0];

describe('policy/reload: swapped, never mutated', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'gatehouse-reload-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a Rego folder: reload swaps in the new revision; a pinned request keeps its own; a broken policy keeps the old one serving', async () => {
    const src = join(dir, 'rego');
    mkdirSync(src);
    writeFileSync(join(src, 'p.rego'), rego('v1'));
    const outcomes: [ReloadResult, string, string | undefined][] = [];
    const policy = await startPolicy(
      { kind: 'rego', dir: src, opa: toolPath('opa') },
      { build: (c) => createPolicyEngine(c), onReload: (r, rev, _t, err) => outcomes.push([r, rev, err?.message]), debounceMs: 50 },
    );
    try {
      const pinned = policy.engine.pin!();
      const v1 = policy.engine.revision;
      assert.equal(await policy.reload('test'), 'unchanged');
      writeFileSync(join(src, 'p.rego'), rego('v2'));
      assert.equal(await policy.reload('test'), 'swapped');
      assert.equal(await reasonOf(policy.engine.evaluate({})), 'v2');
      assert.notEqual(policy.engine.revision, v1);
      assert.equal(await reasonOf(pinned.evaluate({})), 'v1', 'a request pinned before the swap keeps its revision');
      assert.equal(pinned.revision, v1);

      writeFileSync(join(src, 'p.rego'), 'package gatehouse\n\ndecision := {\n');
      assert.equal(await policy.reload('test'), 'failed');
      assert.match(outcomes.at(-1)![2] ?? '', /does not compile/);
      assert.equal(await reasonOf(policy.engine.evaluate({})), 'v2', 'the old policy keeps serving');

      // The folder is watched: a fixed file is picked up without a signal.
      writeFileSync(join(src, 'p.rego'), rego('v3'));
      await waitFor('the watched folder reloads', async () => (await reasonOf(policy.engine.evaluate({}))) === 'v3', 20_000);
    } finally {
      policy.close();
    }
  });

  describe('a bundle over HTTP, polled with If-None-Match, signed', () => {
    let server: Server;
    let url: string;
    let body: Buffer = Buffer.alloc(0);
    let etag = '"r1"';
    const requests: { ifNoneMatch: string | undefined; status: number }[] = [];
    const keys = { priv: '', pub: '' };
    const bundle = (reason: string, sign = true) => {
      const src = join(dir, `b-${reason}`);
      mkdirSync(src, { recursive: true });
      writeFileSync(join(src, 'p.rego'), rego(reason));
      const out = join(dir, `${reason}.tar.gz`);
      execFileSync(toolPath('opa'), ['build', '-b', '-t', 'wasm', '-e', 'gatehouse/decision', '-o', out, ...(sign ? ['--signing-key', keys.priv] : []), '.'], {
        cwd: src,
        stdio: 'pipe',
      });
      return readFileSync(out);
    };

    before(async () => {
      keys.priv = join(dir, 'k.pem');
      keys.pub = join(dir, 'k.pub.pem');
      execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', keys.priv], { stdio: 'ignore' });
      execFileSync('openssl', ['pkey', '-in', keys.priv, '-pubout', '-out', keys.pub], { stdio: 'ignore' });
      server = createServer((req, res) => {
        const status = req.headers['if-none-match'] === etag ? 304 : 200;
        requests.push({ ifNoneMatch: req.headers['if-none-match'], status });
        res.writeHead(status, { etag, 'content-type': 'application/gzip' });
        res.end(status === 200 ? body : undefined);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bundles/gatehouse.tar.gz`;
    });
    after(() => server.close());

    it('an unchanged bundle costs a 304; a new one is verified and swapped in; an unsigned or broken one is refused and the old one serves', async () => {
      body = bundle('b1');
      const outcomes: [ReloadResult, string | undefined][] = [];
      const policy = await startPolicy(
        { kind: 'bundle', file: url },
        {
          build: (c) => createPolicyEngine(c),
          verification: verificationKey(readFileSync(keys.pub), 'k.pub.pem'),
          onReload: (r, _rev, _t, err) => outcomes.push([r, err?.message]),
        },
      );
      try {
        assert.equal(await reasonOf(policy.engine.evaluate({})), 'b1');
        assert.equal(await policy.reload('poll'), 'unchanged');
        assert.deepEqual(requests.at(-1), { ifNoneMatch: '"r1"', status: 304 });

        body = bundle('b2');
        etag = '"r2"';
        assert.equal(await policy.reload('poll'), 'swapped');
        assert.equal(await reasonOf(policy.engine.evaluate({})), 'b2');

        body = bundle('b3', false);
        etag = '"r3"';
        assert.equal(await policy.reload('poll'), 'failed');
        assert.match(outcomes.at(-1)![1] ?? '', /gatehouse\.tar\.gz is refused: it is not signed/);
        assert.equal(await reasonOf(policy.engine.evaluate({})), 'b2');

        body = Buffer.from('not a bundle');
        etag = '"r4"';
        assert.equal(await policy.reload('poll'), 'failed');
        assert.equal(await reasonOf(policy.engine.evaluate({})), 'b2');
      } finally {
        policy.close();
      }
    });

    it('a bundle file with pollSeconds is re-read on its own, and swapped in when its content changes', async () => {
      const file = join(dir, 'local.tar.gz');
      writeFileSync(file, bundle('f1'));
      const policy = await startPolicy(
        { kind: 'bundle', file, pollSeconds: 1 },
        { build: (c) => createPolicyEngine(c), verification: verificationKey(readFileSync(keys.pub), 'k.pub.pem') },
      );
      try {
        assert.equal(await reasonOf(policy.engine.evaluate({})), 'f1');
        writeFileSync(file, bundle('f2'));
        await waitFor('the polled file reloads', async () => (await reasonOf(policy.engine.evaluate({}))) === 'f2', 10_000);
      } finally {
        policy.close();
      }
    });

    it('refuses to start on a bundle signed with another key, naming the bundle', async () => {
      const other = join(dir, 'other.pub.pem');
      execFileSync('sh', ['-c', `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 | openssl pkey -pubout -out ${other}`], { stdio: 'ignore' });
      body = bundle('b5');
      etag = '"r5"';
      await assert.rejects(
        startPolicy(
          { kind: 'bundle', file: url },
          { build: (c) => createPolicyEngine(c), verification: verificationKey(readFileSync(other), 'other.pub.pem') },
        ),
        /the policy bundle http:\/\/127\.0\.0\.1:\d+\/bundles\/gatehouse\.tar\.gz is refused: its signature does not verify with other\.pub\.pem/,
      );
    });
  });
});
