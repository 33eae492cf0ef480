import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { execCredential } from '../token/cache.js';
import { startDemo } from './demo.js';
import { startHaDemo } from './ha.js';
import { readIssuerFile } from './issuer-file.js';
import { mintToken } from './issuer.js';

/** `gatehouse demo` and `gatehouse demo token --user U --groups G [--agent A --on-behalf-of P] [--exec-credential]`. */
export async function runDemoCommand(argv: string[]): Promise<number> {
  if (argv[0] === 'token') return token(argv.slice(1));
  const { values } = parseArgs({ args: argv, options: { replicas: { type: 'string' } } });
  if (values.replicas !== undefined) return haDemo(Number(values.replicas));
  const dir = process.env['GATEHOUSE_DEMO_DIR'];
  const demo = await startDemo({ ...(dir ? { dir } : {}), log: (l) => process.stderr.write(`demo: ${l}\n`) });
  const rel = (f: string) => relative(process.cwd(), f) || f;
  process.stdout.write(`
Gatehouse is serving at ${demo.gateway.url} (policy ${demo.gateway.policyRevision}); kubeconfigs are in ${rel(demo.dir)}/.
Try:
  kubectl --kubeconfig ${rel(demo.kubeconfigs.alice)} get configmaps -n dev            # alice (group dev): allowed
  kubectl --kubeconfig ${rel(demo.kubeconfigs.alice)} delete configmap app-config -n prod   # denied by policy, with the reason
  kubectl --kubeconfig ${rel(demo.kubeconfigs.agent)} delete deployment web -n prod     # an agent's delete: held until security approves
then, in another terminal, as carol (group security):
  npx gatehouse approvals list --kubeconfig ${rel(demo.kubeconfigs.security)}
  npx gatehouse approvals approve ap-… --kubeconfig ${rel(demo.kubeconfigs.security)}
  or open ${demo.gateway.url}/gatehouse/approvals and log in as carol (any password)
  kubectl --kubeconfig ${rel(demo.kubeconfigs.alice)} exec -it web-0 -n dev -- sh      # a recorded shell; then, as carol:
  npx gatehouse sessions list --kubeconfig ${rel(demo.kubeconfigs.security)}   (play ID, export ID, or ${demo.gateway.url}/gatehouse/sessions)
Agents over MCP (Streamable HTTP, same policy): ${rel(join(demo.dir, 'mcp.json'))} is a client configuration for ${demo.gateway.url}/gatehouse/mcp; its token:
  export GATEHOUSE_TOKEN=$(npx gatehouse demo token --user deploy-bot --groups agents --agent deploy-bot --on-behalf-of alice@example.com)
  export NODE_EXTRA_CA_CERTS=${rel(join(demo.dir, 'tls', 'ca.crt'))}   # the demo's CA, for Node-based MCP clients
  a tools/call of resources_delete {"apiVersion":"apps/v1","kind":"Deployment","namespace":"prod","name":"web"} is held like the kubectl delete above;
  held past approvals.holdSeconds, it returns the approval id, and approvals_wait {"id":"ap-…"} runs it once approved.
Audit records: ${rel(join(demo.dir, 'audit.log'))}, hash-chained (npx gatehouse audit verify ${rel(join(demo.dir, 'audit.log'))} --key ${rel(join(demo.dir, 'audit-checkpoint.key'))} --live). Metrics: ${demo.gateway.metricsUrl ?? 'off'} (also in ${rel(join(demo.dir, 'metrics.url'))}). Stop with Ctrl-C.
`);
  // SIGHUP loads the policy again, as for `gatehouse serve` (the folder is also watched).
  process.on('SIGHUP', () => void demo.gateway.reloadPolicy());
  await untilSignalled(() => demo.kill());
  process.stderr.write('demo: stopping (again to stop at once)\n');
  await demo.stop();
  return 0;
}

/**
 * Until the first SIGINT/SIGTERM, which drains (watches and shells get
 * limits.shutdownGraceSeconds); a second one runs `atOnce` and exits. Either
 * way the control plane goes down with the demo: the handlers stay installed,
 * so no later signal can kill this process half-way through its clean-up.
 */
function untilSignalled(atOnce: () => Promise<unknown>): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = () => {
      if (!stopping) {
        stopping = true;
        resolve();
        return;
      }
      process.stderr.write('demo: stopping at once\n');
      void atOnce().finally(() => process.exit(130));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

async function haDemo(replicas: number): Promise<number> {
  const dir = process.env['GATEHOUSE_DEMO_DIR'];
  const demo = await startHaDemo({ replicas, ...(dir ? { dir } : {}), log: (l) => process.stderr.write(`demo: ${l}\n`) });
  const rel = (f: string) => relative(process.cwd(), f) || f;
  const list = demo.replicas();
  process.stdout.write(`
Gatehouse runs as ${list.length} replicas behind HAProxy at ${demo.url}, sharing PostgreSQL (${demo.postgres.url.replace(/:[^:@/]+@/, ':***@')}).
Kubeconfigs (pointing at the balancer) are in ${rel(demo.dir)}/; replicas are listed in ${rel(join(demo.dir, 'replicas.json'))}:
${list.map((r) => `  ${r.name}  pid ${r.pid}  ${r.url}  metrics ${r.metricsUrl}  log ${rel(join(demo.dir, r.name, 'gatehouse.log'))}`).join('\n')}
Try:
  kubectl --kubeconfig ${rel(demo.kubeconfigs.alice)} get configmaps -n dev                 # answered by whichever replica HAProxy picks
  kubectl --kubeconfig ${rel(demo.kubeconfigs.agent)} delete deployment web -n prod          # held on one replica...
  npx gatehouse approvals approve ap-… --kubeconfig ${rel(demo.kubeconfigs.security)}       # ...approved through another
  kill -9 ${list[0]?.pid ?? 'PID'}     # kill ${list[0]?.name ?? 'a replica'}: HAProxy skips it, requests keep working, the demo starts it again after 5 s
Stop with Ctrl-C.
`);
  // At once: what is left is the watchdog's to stop (its owner is gone).
  await untilSignalled(async () => {});
  process.stderr.write('demo: stopping (again to stop at once)\n');
  await demo.stop();
  return 0;
}

async function token(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      user: { type: 'string' },
      groups: { type: 'string', default: '' },
      agent: { type: 'string' },
      'on-behalf-of': { type: 'string' },
      ttl: { type: 'string', default: '600' },
      'exec-credential': { type: 'boolean', default: false },
    },
  });
  if (!values.user) {
    process.stderr.write('usage: gatehouse demo token --user NAME [--groups a,b] [--agent NAME --on-behalf-of PERSON] [--ttl SECONDS] [--exec-credential]\n');
    return 2;
  }
  const file = readIssuerFile();
  if ('missing' in file) {
    process.stderr.write(`gatehouse: ${file.missing}\n`);
    return 1;
  }
  const { token, expiresAt } = await mintToken(file, {
    user: values.user,
    groups: values.groups.split(',').filter(Boolean),
    ttlSeconds: Number(values.ttl),
    ...(values.agent ? { agent: values.agent } : {}),
    ...(values['on-behalf-of'] ? { onBehalfOf: values['on-behalf-of'] } : {}),
  });
  process.stdout.write(
    values['exec-credential'] ? execCredential({ token, expiresAt: expiresAt.getTime(), issuer: file.issuer, clientId: file.clientId }) : token + '\n',
  );
  return 0;
}
