/**
 * `gatehouse login` against the demo's OpenID provider: authorization code +
 * PKCE to a loopback listener, its login form filled in a real headless
 * Chromium; then kubectl 1.32 with a `gatehouse kubeconfig --login` kubeconfig,
 * whose credential plugin answers from the cache and refreshes when due.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { startDemo, type RunningDemo } from '../../src/demo/demo.js';
import { DEMO_CLI_CLIENT } from '../../src/demo/issuer.js';
import { projectRoot, runRoot } from '../../src/paths.js';
import type { CachedToken } from '../../src/token/cache.js';
import { launchChromium, testOutput } from '../support/browser.js';
import { run } from '../support/run.js';
import { waitFor } from '../support/wait.js';
import { testbed } from './hooks.js';

const CLI = join(projectRoot, 'bin/gatehouse.js');

describe('gatehouse login (demo OpenID provider, headless Chromium) and the cached credential plugin', function () {
  this.timeout(120_000);
  let demo: RunningDemo;
  let browser: Browser;
  const dir = join(runRoot, `test-${process.pid}`, 'login');
  const cache = join(dir, 'login-cache');
  const env = { ...process.env, GATEHOUSE_CACHE_DIR: cache };

  before(async function () {
    this.timeout(120_000);
    demo = await startDemo({ dir, testbed: testbed() });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await demo?.stop();
  });

  it('logs alice in through the browser; kubectl then works, and a second call does not ask the issuer; an expired token is refreshed', async () => {
    const issuer = demo.issuer.issuer;
    const login = spawn(process.execPath, [CLI, 'login', '--issuer', issuer, '--client-id', DEMO_CLI_CLIENT, '--no-browser'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    login.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((r) => login.once('exit', r));
    const url = await waitFor('the login URL', async () => /Open this URL to log in:\s+(\S+)/.exec(err)?.[1], 20_000);
    assert.match(url, /code_challenge_method=S256/);

    const page = await (await browser.newContext()).newPage();
    await page.goto(url);
    await page.fill('input[name=login]', 'alice');
    await page.fill('input[name=password]', 'any');
    await page.click('button[type=submit]');
    await page.click('button:has-text("Continue")');
    await page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback\?/);
    assert.match((await page.textContent('body')) ?? '', /Logged in to Gatehouse/);
    await page.screenshot({ path: testOutput('login-done.png') });
    assert.equal(await exited, 0, err);
    assert.match(err, new RegExp(`Logged in to ${issuer} as alice@example\\.com; .* refreshed after that`));

    const kc = await run(process.execPath, [
      CLI,
      'kubeconfig',
      '--server',
      demo.gateway.url,
      '--ca',
      join(dir, 'tls', 'ca.crt'),
      '--namespace',
      'dev',
      '--login',
      '--issuer',
      issuer,
      '--client-id',
      DEMO_CLI_CLIENT,
    ]);
    assert.equal(kc.code, 0, kc.stderr);
    const kubeconfig = join(dir, 'alice-login.kubeconfig');
    writeFileSync(kubeconfig, kc.stdout, { mode: 0o600 });
    const kubectl = (args: string[]) => run('kubectl', ['--kubeconfig', kubeconfig, ...args], { env });

    const asked = demo.issuer.tokenRequests();
    const whoami = await kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    assert.equal(whoami.stdout, 'alice@example.com', whoami.stderr);
    const listed = await kubectl(['get', 'configmap', 'app-config', '-o', 'name']);
    assert.equal(listed.stdout.trim(), 'configmap/app-config', listed.stderr);
    assert.equal(demo.issuer.tokenRequests(), asked, 'a cached credential asked the issuer');

    // Past its expiry (as the cache says), the plugin refreshes with the refresh token: one request.
    const file = readdirSync(join(cache, 'tokens')).find((f) => f.endsWith('.json'));
    const path = join(cache, 'tokens', file!);
    const cached = JSON.parse(readFileSync(path, 'utf8')) as CachedToken;
    assert.ok(cached.refreshToken, 'the login kept a refresh token');
    // As time would: the cached token and the shell plugin's expiry file both say it has run out.
    writeFileSync(path, JSON.stringify({ ...cached, expiresAt: Date.now() - 1000 }), { mode: 0o600 });
    writeFileSync(path.replace(/\.json$/, '.exp'), String(Math.floor(Date.now() / 1000) - 1), { mode: 0o600 });
    const again = await kubectl(['get', 'configmap', 'app-config', '-o', 'name']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(demo.issuer.tokenRequests(), asked + 1);
    const refreshed = JSON.parse(readFileSync(path, 'utf8')) as CachedToken;
    assert.ok(refreshed.expiresAt > Date.now() + 60_000);
    assert.notEqual(refreshed.token, cached.token);
  });

  it('--device: the code is entered in a browser elsewhere; the terminal gets the token', async () => {
    const issuer = demo.issuer.issuer;
    const deviceCache = join(dir, 'device-cache');
    const login = spawn(process.execPath, [CLI, 'login', '--issuer', issuer, '--client-id', DEMO_CLI_CLIENT, '--device'], {
      env: { ...env, GATEHOUSE_CACHE_DIR: deviceCache },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    login.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((r) => login.once('exit', r));
    const [, uri, code] = await waitFor('the device code', async () => /Open (\S+) and enter the code (\S+)/.exec(err) ?? undefined, 20_000);
    const page = await (await browser.newContext()).newPage();
    await page.goto(uri!);
    // The complete URI carries the code (a confirmation page); the plain one asks for it.
    if (await page.locator('input[name=user_code]:visible').count()) await page.fill('input[name=user_code]', code!);
    await page.click('button:has-text("Continue")');
    await page.fill('input[name=login]', 'carol');
    await page.fill('input[name=password]', 'any');
    await page.click('button[type=submit]');
    await page.click('button:has-text("Continue")');
    // The confirmation navigates to the issuer's success page: a screenshot taken mid-navigation fails.
    await page.getByText('Sign-in Success').waitFor();
    await page.screenshot({ path: testOutput('login-device.png') });
    assert.equal(await exited, 0, err);
    assert.match(err, /as carol@example\.com/);
    const cached = readdirSync(join(deviceCache, 'tokens')).filter((f) => f.endsWith('.json'));
    assert.equal(cached.length, 1);
  });

  it('without a login, the plugin says how to log in, and kubectl prints it', async () => {
    const r = await run(process.execPath, [CLI, 'token', '--issuer', 'http://127.0.0.1:1', '--client-id', 'nobody'], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no login for http:\/\/127\.0\.0\.1:1 \(client nobody\): run gatehouse login --issuer/);
  });
});
