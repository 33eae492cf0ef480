/**
 * The credential plugin's fast path (bin/gatehouse-token, a POSIX shell
 * script): a fresh cached answer is printed without starting Node; a stale,
 * missing or malformed one hands over to `gatehouse token`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../../src/paths.js';
import { cacheDir, execCredential, isFresh, loginKey, readCached, writeCached } from '../../../src/token/cache.js';
import { run } from '../../support/run.js';

const PLUGIN = join(projectRoot, 'bin/gatehouse-token');

describe('token cache and bin/gatehouse-token', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const key = loginKey('https://issuer.example.com', 'gatehouse-cli');
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-cache-'));
    env = { ...process.env, GATEHOUSE_CACHE_DIR: dir };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const token = (expiresAt: number) => ({ token: 'eyJ.a.b', expiresAt, issuer: 'https://issuer.example.com', clientId: 'gatehouse-cli' });
  // /bin/echo stands in for Node: what it prints is what would have run.
  const plugin = (k = key) => run(PLUGIN, [k, '/bin/echo', 'token', '--issuer', 'https://issuer.example.com'], { env });

  it('prints a fresh cached ExecCredential without starting Node', async () => {
    process.env['GATEHOUSE_CACHE_DIR'] = dir;
    try {
      const t = token(Date.now() + 600_000);
      writeCached(key, t);
      assert.equal(cacheDir(), dir);
      assert.deepEqual(readCached(key), t);
      const r = await plugin();
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, execCredential(t));
    } finally {
      delete process.env['GATEHOUSE_CACHE_DIR'];
    }
  });

  it('hands a token with less than a minute left, a missing one, or a garbled expiry to gatehouse token', async () => {
    process.env['GATEHOUSE_CACHE_DIR'] = dir;
    try {
      writeCached(key, token(Date.now() + 30_000));
      assert.equal(isFresh(readCached(key)!), false);
      assert.match((await plugin()).stdout, /bin\/gatehouse\.js token --issuer https:\/\/issuer\.example\.com/);
      writeCached(key, token(Date.now() + 600_000));
      writeFileSync(join(dir, 'tokens', `${key}.exp`), '$(touch /tmp/pwned)');
      assert.match((await plugin()).stdout, /bin\/gatehouse\.js token/);
      assert.match((await plugin('0'.repeat(32))).stdout, /bin\/gatehouse\.js token/);
    } finally {
      delete process.env['GATEHOUSE_CACHE_DIR'];
    }
  });

  it('attack: a cache key that walks out of the cache folder is refused', async () => {
    const r = await plugin('../../etc/passwd');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad cache key/);
  });
});
