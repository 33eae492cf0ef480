import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { worldManifests } from './world.js';

const run = promisify(execFile);

/** Applies the test world with the real kubectl, the same client the tests use. */
export async function seedWorld(adminKubeconfig: string): Promise<void> {
  const list = { apiVersion: 'v1', kind: 'List', items: worldManifests() };
  const child = run('kubectl', ['--kubeconfig', adminKubeconfig, 'apply', '--server-side', '-f', '-'], { maxBuffer: 1 << 20 });
  child.child.stdin!.end(JSON.stringify(list));
  await child;
}
