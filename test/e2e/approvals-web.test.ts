/**
 * The approvals web page in a real headless Chromium (Debian chromium via
 * playwright-core): log in through the demo issuer (oidc-provider, authorization
 * code + PKCE), find the agent's held `kubectl delete` with its preview diff,
 * approve it, and the held kubectl 1.32 command completes against
 * kube-apiserver v1.35.4. The page is saved as a screenshot in test-output/.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { createMemoryAuditWriter } from '../../src/audit/writer.js';
import { startDemo, type RunningDemo } from '../../src/demo/demo.js';
import { runRoot } from '../../src/paths.js';
import { launchChromium, logInThroughDemoIssuer, testOutput } from '../support/browser.js';
import { kubectl } from '../support/run.js';
import { approvalsCli, kubectlInBackground, pendingFor } from '../support/approvals.js';
import { testbed } from './hooks.js';

describe('approvals web page (headless Chromium → Gatehouse, login via the demo OpenID provider)', function () {
  this.timeout(90_000);
  let demo: RunningDemo;
  let browser: Browser;
  const admin = (args: string[]) => kubectl(testbed().kubeconfigs.admin, args);

  before(async function () {
    this.timeout(120_000);
    demo = await startDemo({ dir: join(runRoot, `test-${process.pid}`, 'approvals-web'), testbed: testbed(), audit: createMemoryAuditWriter(() => {}) });
    browser = await launchChromium();
    await admin(['delete', 'deployment', 'web-approved-1', '-n', 'prod', '--ignore-not-found']);
  });
  after(async () => {
    await browser?.close();
    await demo?.stop();
    await admin(['delete', 'deployment', 'web-approved-1', '-n', 'prod', '--ignore-not-found']);
  });

  const logIn = (page: Page, who: string) => logInThroughDemoIssuer(page, `${demo.gateway.url}/gatehouse/approvals`, who);

  it('security logs in, sees the pending request with its diff, approves it, and the held kubectl completes', async () => {
    assert.equal((await admin(['create', 'deployment', 'web-approved-1', '--image=registry.invalid/app:1', '-n', 'prod'])).code, 0);
    const held = kubectlInBackground(demo.kubeconfigs.agent, ['delete', 'deployment', 'web-approved-1', '-n', 'prod']);
    const pending = await pendingFor(demo.kubeconfigs.security, 'web-approved-1');

    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await logIn(page, 'carol');
    assert.match((await page.textContent('header')) ?? '', /carol@example\.com/);
    const row = page.locator('#pending tr', { hasText: pending.id });
    assert.match((await row.textContent()) ?? '', /agent deploy-bot for alice@example\.com.*delete deployments web-approved-1 in prod/);
    await row.locator('a').click();
    await page.waitForURL(`${demo.gateway.url}/gatehouse/approvals/${pending.id}`);
    // The preview is made right after the request arrives; reload until it is there.
    for (let i = 0; i < 20 && (await page.locator('pre.diff').count()) === 0; i++) {
      await page.waitForTimeout(250);
      await page.reload();
    }
    const diff = await page.textContent('pre.diff');
    assert.match(diff ?? '', /--- current\n\+\+\+ \(deleted\)/);
    assert.match(diff ?? '', /-kind: Deployment/);
    assert.equal(await page.locator('span.del').first().isVisible(), true);
    await page.screenshot({ path: testOutput('approval-page.png'), fullPage: true });

    await page.fill('#reason', 'approved in the browser');
    await Promise.all([page.waitForURL(/\/gatehouse\/approvals\/ap-/, { waitUntil: 'load' }), page.click('button.approve')]);
    assert.equal(page.url(), `${demo.gateway.url}/gatehouse/approvals/${pending.id}`, await page.content());
    assert.match((await page.textContent('h1')) ?? '', /approved|used/, 'approved, or already used by the released request');
    assert.match((await page.textContent('dl')) ?? '', /approved by carol@example\.com .*: approved in the browser/);
    await page.screenshot({ path: testOutput('approval-approved.png'), fullPage: true });

    const r = await held.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deployment.apps "web-approved-1" deleted/);
    await context.close();
  });

  it("security approves with a grant from the page: the agent's next write of that kind goes through without asking", async () => {
    for (const n of ['web-grant-1', 'web-grant-2']) assert.equal((await admin(['create', 'configmap', n, '-n', 'dev', '--from-literal=a=1'])).code, 0);
    const label = (n: string) => ['label', 'configmap', n, '-n', 'dev', 'rollout=web', '--overwrite'];
    const held = kubectlInBackground(demo.kubeconfigs.agent, label('web-grant-1'));
    const pending = await pendingFor(demo.kubeconfigs.security, 'web-grant-1');
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await logIn(page, 'carol');
    await page.goto(`${demo.gateway.url}/gatehouse/approvals/${pending.id}`);
    assert.match((await page.textContent('fieldset.grant legend')) ?? '', /Also let agent:deploy-bot patch configmaps in dev without asking again/);
    assert.deepEqual(await page.locator('#grant option').allTextContents(), ['no grant: this request only', '15 min', '30 min', '1 h']);
    await page.selectOption('#grant', '900');
    await Promise.all([page.waitForURL(/\/gatehouse\/approvals\/ap-/, { waitUntil: 'load' }), page.click('button.approve')]);
    assert.equal((await held.done).code, 0);
    const next = await kubectl(demo.kubeconfigs.agent, [...label('web-grant-2'), '--request-timeout=20s']);
    assert.equal(next.code, 0, next.stderr);
    await context.close();
    await admin(['delete', 'configmap', 'web-grant-1', 'web-grant-2', '-n', 'dev']);
  });

  it('the requester behind the agent sees the request but gets no buttons; a forged form post is refused', async () => {
    assert.equal((await admin(['create', 'deployment', 'web-approved-1', '--image=registry.invalid/app:1', '-n', 'prod'])).code, 0);
    const held = kubectlInBackground(demo.kubeconfigs.agent, ['delete', 'deployment', 'web-approved-1', '-n', 'prod']);
    const pending = await pendingFor(demo.kubeconfigs.security, 'web-approved-1');
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await logIn(page, 'alice');
    await page.goto(`${demo.gateway.url}/gatehouse/approvals/${pending.id}`);
    assert.equal(await page.locator('button.approve').count(), 0);
    assert.match((await page.textContent('main')) ?? '', /you cannot approve a request made by an agent acting on your behalf/);
    // A post without the session's CSRF token, as another site would send it.
    const forged = await page.request.post(`${demo.gateway.url}/gatehouse/approvals/${pending.id}/decision`, { form: { action: 'approve', csrf: 'guess' } });
    assert.equal(forged.status(), 403);
    assert.equal(held.exited(), false);
    // Unauthenticated: the page sends the browser to log in, the API answers 401.
    const anonymous = await browser.newContext({ ignoreHTTPSErrors: true });
    const api = await anonymous.request.get(`${demo.gateway.url}/gatehouse/v1/approvals`);
    assert.equal(api.status(), 401);
    await anonymous.close();
    await context.close();
    // Leave nothing held.
    assert.equal((await approvalsCli(demo.kubeconfigs.security, ['deny', pending.id])).code, 0);
    assert.equal((await held.done).code, 1);
  });

  it('the preview of a privileged pod highlights the field that needs approval', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-risky-1', namespace: 'dev' },
      spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1', securityContext: { privileged: true } }] },
    };
    const refused = await kubectl(demo.kubeconfigs.alice, ['create', '-f', '-'], JSON.stringify(pod));
    const id = /approval (ap-[a-z0-9]+)/.exec(refused.stderr)?.[1];
    assert.ok(id, refused.stderr);
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await logIn(page, 'carol');
    await page.goto(`${demo.gateway.url}/gatehouse/approvals/${id}`);
    for (let i = 0; i < 20 && (await page.locator('pre.diff').count()) === 0; i++) {
      await page.waitForTimeout(250);
      await page.reload();
    }
    assert.match((await page.textContent('dl')) ?? '', /create pods web-risky-1 in dev/);
    assert.match((await page.textContent('#reasons')) ?? '', /container "app" sets securityContext\.privileged: true/);
    assert.match((await page.textContent('#fields')) ?? '', /\$\.spec\.containers\[0\]\.securityContext\.privileged/);
    const marked = page.locator('pre.diff mark.risky');
    assert.equal(await marked.count(), 1);
    assert.match((await marked.textContent()) ?? '', /^\+ +privileged: true$/);
    assert.equal(await marked.isVisible(), true);
    await page.screenshot({ path: testOutput('approval-risky.png'), fullPage: true });
    await context.close();
    assert.equal((await approvalsCli(demo.kubeconfigs.security, ['deny', id])).code, 0);
  });
});
