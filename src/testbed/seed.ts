import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { NAMESPACES, NODE_NAME, nodeStatus, podStatus, worldManifests } from './world.js';

const run = promisify(execFile);

/** Applies the test world with the real kubectl, the same client the tests use. */
export async function seedWorld(adminKubeconfig: string, kubeletPort: number): Promise<void> {
  const apply = async (items: object[]) => {
    const child = run('kubectl', ['--kubeconfig', adminKubeconfig, 'apply', '--server-side', '-f', '-'], { maxBuffer: 1 << 20 });
    child.child.stdin!.end(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
    await child;
  };
  await apply(worldManifests());
  // The node's address and kubelet port live in its status, which a create does not set.
  await run('kubectl', ['--kubeconfig', adminKubeconfig, 'patch', 'node', NODE_NAME, '--subresource=status', '--type=merge', '-p', JSON.stringify(nodeStatus(kubeletPort))]);
  for (const ns of NAMESPACES) await run('kubectl', ['--kubeconfig', adminKubeconfig, 'patch', 'pod', 'web-0', '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify(podStatus())]);
}
