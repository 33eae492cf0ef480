/**
 * Added latency of a small GET (one ConfigMap): direct to the test bed's
 * kube-apiserver with the admin token vs through Gatehouse (OIDC verification,
 * policy decision, impersonated forwarding, audit), sequential requests,
 * alternating between the two in rounds so both see the same machine load.
 * Prints numbers; asserts nothing.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { Agent, request } from 'undici';
import { createMemoryAuditWriter } from '../src/audit/writer.js';
import { startDemo } from '../src/demo/demo.js';
import { mintToken } from '../src/demo/issuer.js';
import { runRoot } from '../src/paths.js';
import { down, up } from '../src/testbed/controlplane.js';
import { percentiles } from './stats.js';

const quick = process.argv.includes('--quick');
const dir = join(runRoot, `bench-${process.pid}`);
const testbed = await up({ dir: join(dir, 'testbed'), ownerPid: process.pid });
let auditRecords = 0;
const demo = await startDemo({ dir: join(dir, 'demo'), testbed, audit: createMemoryAuditWriter(() => auditRecords++) });
try {
  const kc = new KubeConfig();
  kc.loadFromFile(testbed.kubeconfigs.admin);
  const direct = { url: `${testbed.server}/api/v1/namespaces/dev/configmaps/app-config`, auth: `Bearer ${kc.getCurrentUser()!.token}`, agent: new Agent({ connect: { ca: readFileSync(testbed.caFile) } }) };
  const issuer = JSON.parse(readFileSync(join(demo.dir, 'issuer.json'), 'utf8'));
  const { token } = await mintToken(issuer, { user: 'alice@example.com', groups: ['dev'], ttlSeconds: 3600 });
  const gateway = { url: `${demo.gateway.url}/api/v1/namespaces/dev/configmaps/app-config`, auth: `Bearer ${token}`, agent: new Agent({ connect: { ca: demo.gateway.caPem! } }) };

  async function once(t: typeof direct): Promise<number> {
    const start = process.hrtime.bigint();
    const res = await request(t.url, { headers: { authorization: t.auth, accept: 'application/json' }, dispatcher: t.agent });
    await res.body.text();
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode} from ${t.url}`);
    return Number(process.hrtime.bigint() - start) / 1e6;
  }
  const perRound = quick ? 200 : 1000;
  const roundsCount = quick ? 2 : 6;
  for (let i = 0; i < 300; i++) await once(i % 2 ? direct : gateway);
  const results = { direct: [] as number[], gateway: [] as number[] };
  for (let r = 0; r < roundsCount; r++) {
    const order = r % 2 ? (['gateway', 'direct'] as const) : (['direct', 'gateway'] as const);
    for (const which of order) for (let i = 0; i < perRound; i++) results[which].push(await once(which === 'direct' ? direct : gateway));
  }
  const d = percentiles(results.direct);
  const g = percentiles(results.gateway);
  console.log(`small GET (ConfigMap dev/app-config), concurrency 1, ${roundsCount} alternating rounds × ${perRound} requests each`);
  console.log('| path | p50 ms | p90 ms | p99 ms |\n|---|---|---|---|');
  console.log(`| direct (kube-apiserver) | ${d['p50']!.toFixed(3)} | ${d['p90']!.toFixed(3)} | ${d['p99']!.toFixed(3)} |`);
  console.log(`| through Gatehouse | ${g['p50']!.toFixed(3)} | ${g['p90']!.toFixed(3)} | ${g['p99']!.toFixed(3)} |`);
  console.log(`| added | ${(g['p50']! - d['p50']!).toFixed(3)} | ${(g['p90']! - d['p90']!).toFixed(3)} | ${(g['p99']! - d['p99']!).toFixed(3)} |`);
  console.log(`(audit records written: ${auditRecords})`);
  await direct.agent.close();
  await gateway.agent.close();
} finally {
  await demo.stop();
  await down(testbed.dir);
  rmSync(dir, { recursive: true, force: true });
}
