/**
 * What a tool call adds: `pods_get` over MCP (the SDK's client, Streamable
 * HTTP, one POST per call) against the same GET a kubectl-like client sends
 * through the gateway, one at a time, alternating, same token. Asserts no
 * timing.   node dist/bench/mcp.js [--quick]
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { DEMO_USERS, startDemo } from '../src/demo/demo.js';
import { mintDemoToken } from '../src/demo/issuer.js';
import { projectRoot, runRoot } from '../src/paths.js';
import { percentiles } from './stats.js';
import { connectMcp } from '../test/support/mcp.js';

const quick = process.argv.includes('--quick');
const N = quick ? 50 : 400;
const dir = join(runRoot, `bench-mcp-${process.pid}`);

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const demo = await startDemo({ dir: join(dir, 'demo') });
  try {
    const token = await mintDemoToken(demo.dir, { ...DEMO_USERS.alice, ttlSeconds: 3600 });
    const dispatcher = new Agent({ connect: { ca: demo.gateway.caPem! } });
    const client = await connectMcp(`${demo.gateway.url}/gatehouse/mcp`, token, dispatcher, 'bench');
    const direct = async () => {
      const res = await request(`${demo.gateway.url}/api/v1/namespaces/dev/pods/web-0`, {
        dispatcher,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`GET: ${res.statusCode}`);
    };
    const tool = async () => {
      const r = await client.callTool({ name: 'pods_get', arguments: { namespace: 'dev', name: 'web-0' } });
      if (r.isError) throw new Error('pods_get failed');
    };
    const times = { direct: [] as number[], tool: [] as number[] };
    for (let i = 0; i < 20; i++) {
      await direct();
      await tool();
    }
    for (let i = 0; i < N; i++) {
      for (const [name, fn] of [
        ['direct', direct],
        ['tool', tool],
      ] as const) {
        const t = process.hrtime.bigint();
        await fn();
        times[name].push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }
    await client.close();
    await dispatcher.close();
    const d = percentiles(times.direct, [50, 99]);
    const m = percentiles(times.tool, [50, 99]);
    const lines = [
      `## A tool call against the request it makes (bench/mcp.ts${quick ? ', --quick' : ''})`,
      '',
      `${N} of each, alternating, one at a time; alice's token; the demo gateway in front of kube-apiserver v1.35.4.`,
      '',
      '| | p50 ms | p99 ms |',
      '|---|---|---|',
      `| GET /api/v1/namespaces/dev/pods/web-0 through the gateway (what kubectl sends) | ${d['p50']!.toFixed(2)} | ${d['p99']!.toFixed(2)} |`,
      `| MCP tools/call pods_get (the same GET, as YAML) | ${m['p50']!.toFixed(2)} | ${m['p99']!.toFixed(2)} |`,
      `| added by the tool call | ${(m['p50']! - d['p50']!).toFixed(2)} | ${(m['p99']! - d['p99']!).toFixed(2)} |`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    mkdirSync(join(projectRoot, 'bench/results'), { recursive: true });
    writeFileSync(join(projectRoot, 'bench/results', `mcp${quick ? '-quick' : ''}.md`), lines.join('\n') + '\n');
  } finally {
    await demo.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench/mcp: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
