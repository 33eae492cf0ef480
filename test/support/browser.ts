/**
 * A real headless Chromium (Debian's `chromium`) driven by playwright-core.
 * No browser download: the machine's binary, no sandbox (tests run as root in
 * CI containers), and no network beyond loopback.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { projectRoot } from '../../src/paths.js';

export const CHROMIUM = process.env['GATEHOUSE_CHROMIUM'] ?? '/usr/bin/chromium';

/** Screenshots and other artifacts a person may want to look at after a run (git-ignored). */
export function testOutput(name: string): string {
  const dir = process.env['GATEHOUSE_TEST_OUTPUT'] ?? join(projectRoot, 'test-output');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/system-deps.sh installs Debian's chromium (or set GATEHOUSE_CHROMIUM)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
  });
}

/** Opens a gateway page and logs in through the demo issuer's development form (any password), then its consent form. */
export async function logInThroughDemoIssuer(page: Page, url: string, who: string): Promise<void> {
  await page.goto(url);
  await page.fill('input[name=login]', who);
  await page.fill('input[name=password]', 'any');
  await page.click('button[type=submit]');
  await page.click('button:has-text("Continue")');
  await page.waitForURL(url);
}
