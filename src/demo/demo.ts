/**
 * `gatehouse demo`: the embedded default. A test bed control plane, the demo
 * OpenID provider and the gateway with the bundled policy, plus kubeconfigs for
 * each demo identity in .gatehouse/demo/. Runs until interrupted, then cleans up.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../config.js';
import { renderKubeconfig } from '../kubeconfig.js';
import { projectRoot } from '../paths.js';
import { startGateway, type Gateway } from '../server.js';
import { down, up, type Testbed } from '../testbed/controlplane.js';
import type { AuditWriter } from '../audit/writer.js';
import { freePort } from '../testbed/ports.js';
import { PEOPLE } from '../testbed/world.js';
import { DEMO_AUDIENCE, DEMO_CLI_CLIENT, startDemoIssuer, type DemoIssuer } from './issuer.js';
import { demoKey } from '../token/cache.js';

import { demoDir } from './issuer-file.js';

export { demoDir };

/** The demo's kubeconfigs: who each one is, as the demo issuer will say. */
export const DEMO_USERS = {
  admin: { user: PEOPLE.bob.user, groups: PEOPLE.bob.groups },
  alice: { user: PEOPLE.alice.user, groups: PEOPLE.alice.groups },
  agent: { user: 'deploy-bot', groups: PEOPLE.agent.groups, agent: 'deploy-bot', onBehalfOf: PEOPLE.alice.user },
  security: { user: PEOPLE.carol.user, groups: PEOPLE.carol.groups },
} as const;

export interface RunningDemo {
  readonly gateway: Gateway;
  readonly issuer: DemoIssuer;
  readonly dir: string;
  readonly kubeconfigs: Record<keyof typeof DEMO_USERS, string>;
  /** Writes a kubeconfig for any identity the demo issuer will mint (tests: people and agents beyond the four). */
  kubeconfigFor(name: string, u: DemoUser): string;
  stop(): Promise<void>;
  /** Stops the control plane now, without draining the gateway (a second Ctrl-C). */
  kill(): Promise<void>;
}

export interface DemoUser {
  readonly user: string;
  readonly groups: readonly string[];
  readonly agent?: string;
  readonly onBehalfOf?: string;
}

/** The demo kubeconfigs' credential plugin: `gatehouse token --demo`, answered from a cache in the demo's folder. */
export function tokenArgs(u: DemoUser): string[] {
  return ['token', '--demo', '--user', u.user, '--groups', u.groups.join(','), ...(u.agent ? ['--agent', u.agent, '--on-behalf-of', u.onBehalfOf ?? ''] : [])];
}

/**
 * A kubeconfig for a demo identity: the shell plugin answers from the cache
 * without starting Node; `gatehouse token --demo` fills it from the issuer's key.
 */
export function writeDemoKubeconfig(at: { dir: string; server: string; caPem: string; issuer: string }, name: string, u: DemoUser): string {
  const file = join(at.dir, `${name}.kubeconfig`);
  writeFileSync(
    file,
    renderKubeconfig({
      name: 'gatehouse-demo',
      server: at.server,
      caPem: at.caPem,
      user: name,
      namespace: 'dev',
      auth: {
        kind: 'exec',
        command: join(projectRoot, 'bin/gatehouse-token'),
        args: [demoKey(at.issuer, u.user, u.groups.join(','), u.agent, u.onBehalfOf), process.execPath, ...tokenArgs(u)],
        env: { GATEHOUSE_DEMO_DIR: at.dir, GATEHOUSE_CACHE_DIR: join(at.dir, 'cache') },
      },
    }),
    { mode: 0o600 },
  );
  return file;
}

export function demoKubeconfigs(write: (name: string, u: DemoUser) => string): Record<keyof typeof DEMO_USERS, string> {
  const out = {} as Record<keyof typeof DEMO_USERS, string>;
  for (const [name, u] of Object.entries(DEMO_USERS) as [keyof typeof DEMO_USERS, DemoUser][]) out[name] = write(name, u);
  return out;
}

/** The gateway's identity.issuers entry for the demo issuer: its claims, and agents as it mints them. */
export function demoIssuerConfig(issuer: string, clockSkewSeconds?: number): Record<string, unknown> {
  return {
    issuer,
    audiences: [DEMO_AUDIENCE, DEMO_CLI_CLIENT],
    usernameClaim: 'email',
    groupsClaim: 'groups',
    algorithms: ['RS256'],
    ...(clockSkewSeconds !== undefined ? { clockSkewSeconds } : {}),
    agent: { claim: 'agent', onBehalfOfClaim: 'on_behalf_of', sessionClaim: 'sid', usernamePrefix: 'agent:' },
  };
}

/** The masking hash key, the web-cookie key and the audit checkpoint key, made once and kept: masked hashes, logins and the audit chain survive a restart. */
export function writeDemoKeys(dir: string): void {
  for (const key of ['hash.key', 'web-cookie.key', 'audit-checkpoint.key'])
    if (!existsSync(join(dir, key))) writeFileSync(join(dir, key), randomBytes(32), { mode: 0o600 });
}

export interface DemoOptions {
  readonly dir?: string;
  readonly log?: (l: string) => void;
  /** Use this running control plane instead of starting one (the end-to-end suite's). */
  readonly testbed?: Testbed;
  readonly audit?: AuditWriter;
  readonly clockSkewSeconds?: number;
  /** Merged over the demo's approvals settings (tests: mode, holdSeconds, webhook, sweepSeconds). */
  readonly approvals?: Record<string, unknown>;
  /** Merged over the demo's recording settings (tests: a folder that cannot be written). */
  readonly recording?: Record<string, unknown>;
  /** The Rego folder (tests: a copy they change, to see it reloaded); the bundled policy by default. */
  readonly policyDir?: string;
  /** Merged over the demo's policy settings (tests: shadow). */
  readonly policy?: Record<string, unknown>;
  /** Replaces the demo's upstream settings (tests: `{inCluster: {serviceAccountDir}}`). */
  readonly upstream?: Record<string, unknown>;
  /** The gateway's limits (tests: a low `maxLongRunningPerUser`); the defaults without it. */
  readonly limits?: Record<string, unknown>;
}

export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  const dir = options.dir ?? demoDir;
  const log = options.log ?? (() => {});
  rmSync(join(dir, 'ready'), { force: true });
  // Tokens cached by a previous demo are signed by its issuer's key, which is gone.
  rmSync(join(dir, 'cache'), { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ownTestbed = options.testbed === undefined;
  if (ownTestbed) log('starting the control plane (kube-apiserver + etcd)');
  const testbed = options.testbed ?? (await up({ dir: join(dir, 'testbed'), ownerPid: process.pid }));
  const stopTestbed = () => (ownTestbed ? down(testbed.dir) : Promise.resolve(false));
  let issuer: DemoIssuer | undefined;
  try {
    const gatewayPort = await freePort();
    const metricsPort = await freePort();
    issuer = await startDemoIssuer(await freePort(), join(dir, 'issuer.json'), [`https://127.0.0.1:${gatewayPort}/gatehouse/callback`]);
    log(`demo OpenID provider at ${issuer.issuer}`);
    const configFile = join(dir, 'gatehouse.yaml');
    writeDemoKeys(dir);
    writeFileSync(
      configFile,
      stringify({
        cluster: 'demo',
        listen: { address: `127.0.0.1:${gatewayPort}`, tls: { selfSigned: { dir: 'tls' } } },
        upstream: options.upstream ?? { kubeconfig: testbed.kubeconfigs.gateway },
        identity: { issuers: [demoIssuerConfig(issuer.issuer, options.clockSkewSeconds)] },
        policy: { dir: options.policyDir ?? join(projectRoot, 'policies/gatehouse'), ...options.policy },
        audit: { file: 'audit.log', checkpoint: { keyFile: 'audit-checkpoint.key' } },
        metrics: { address: `127.0.0.1:${metricsPort}` },
        ...(options.limits ? { limits: options.limits } : {}),
        masking: { hashKeyFile: 'hash.key' },
        recording: { dir: 'recordings', ...options.recording },
        approvals: {
          store: { sqlite: 'approvals.db' },
          mode: { agents: 'hold', people: 'refuse' },
          holdSeconds: 600,
          web: { clientId: DEMO_AUDIENCE, cookieKeyFile: 'web-cookie.key' },
          ...options.approvals,
        },
      }),
    );
    const gateway = await startGateway(loadConfig(configFile), options.audit ? { audit: options.audit } : {});
    const issuerUrl = issuer.issuer;
    const kubeconfigFor = (name: string, u: DemoUser) => writeDemoKubeconfig({ dir, server: gateway.url, caPem: gateway.caPem!, issuer: issuerUrl }, name, u);
    const kubeconfigs = demoKubeconfigs(kubeconfigFor);
    writeFileSync(join(dir, 'metrics.url'), `${gateway.metricsUrl!}\n`);
    // An MCP client's configuration for the demo agent (mcp.json style): the URL, and the bearer
    // token `gatehouse demo token` mints for it, in GATEHOUSE_TOKEN.
    writeFileSync(
      join(dir, 'mcp.json'),
      JSON.stringify(
        { mcpServers: { gatehouse: { type: 'http', url: `${gateway.url}/gatehouse/mcp`, headers: { Authorization: 'Bearer ${GATEHOUSE_TOKEN}' } } } },
        null,
        2,
      ) + '\n',
    );
    writeFileSync(join(dir, 'ready'), gateway.url + '\n');
    const running = issuer;
    return {
      gateway,
      issuer: running,
      dir,
      kubeconfigs,
      kubeconfigFor,
      async stop() {
        rmSync(join(dir, 'ready'), { force: true });
        await gateway.close();
        await running.close();
        await stopTestbed();
      },
      async kill() {
        rmSync(join(dir, 'ready'), { force: true });
        await stopTestbed();
      },
    };
  } catch (err) {
    await issuer?.close();
    await stopTestbed();
    throw err;
  }
}
