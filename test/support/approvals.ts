/** Helpers of the approvals tests: the real CLI, kubectl left waiting in the background. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Approval } from '../../src/approval/approval.js';
import { projectRoot } from '../../src/paths.js';
import { run, type Ran } from './run.js';

const CLI = join(projectRoot, 'bin/gatehouse.js');

export function approvalsCli(kubeconfig: string, args: string[]): Promise<Ran> {
  return run(process.execPath, [CLI, 'approvals', ...args, '--kubeconfig', kubeconfig]);
}

/** kubectl in the background: the command an agent runs and waits on. */
export function kubectlInBackground(kubeconfig: string, args: string[]): { done: Promise<Ran>; exited: () => boolean } {
  let finished = false;
  const done = new Promise<Ran>((resolve, reject) => {
    const child = spawn('kubectl', ['--kubeconfig', kubeconfig, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      finished = true;
      resolve({ code, stdout, stderr });
    });
  });
  return { done, exited: () => finished };
}

/** The pending approval for this object, once the held request has opened it. */
export async function pendingFor(kubeconfig: string, name: string, timeoutMs = 20_000): Promise<Approval> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await approvalsCli(kubeconfig, ['list', '--state', 'pending', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const found = (JSON.parse(r.stdout) as { items: Approval[] }).items.find((a) => a.subject.name === name);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no pending approval for ${name}`);
    await sleep(200);
  }
}
