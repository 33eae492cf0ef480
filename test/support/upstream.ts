import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { Agent, request } from 'undici';

/** A raw HTTP client for a kubeconfig's server and token: for headers kubectl cannot send. */
export function rawClient(kubeconfig: string) {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const cluster = kc.getCurrentCluster()!;
  const token = kc.getCurrentUser()!.token!;
  const ca = cluster.caData ? Buffer.from(cluster.caData, 'base64') : readFileSync(cluster.caFile!);
  const dispatcher = new Agent({ connect: { ca } });
  return {
    async get(path: string, headers: Record<string, string> = {}) {
      const res = await request(cluster.server + path, { headers: { authorization: `Bearer ${token}`, ...headers }, dispatcher });
      return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
    },
    close: () => dispatcher.close(),
  };
}
