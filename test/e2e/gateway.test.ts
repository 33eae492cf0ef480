/**
 * The gateway end to end: kubectl 1.32 (the machine's) → Gatehouse → kube-apiserver
 * v1.35.4 + etcd v3.6.5 (the test bed), with tokens from the real oidc-provider of
 * the demo and the bundled policy compiled by OPA v1.22.2.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Agent, request } from 'undici';
import type { AuditEvent } from '../../src/audit/event.js';
import { createMemoryAuditWriter } from '../../src/audit/writer.js';
import { DEMO_USERS, startDemo, type RunningDemo } from '../../src/demo/demo.js';
import { mintToken, type IssuerFile } from '../../src/demo/issuer.js';
import { runRoot } from '../../src/paths.js';
import { connectionsTo } from '../../src/testbed/sockets.js';
import { loadUpstream } from '../../src/upstream/credentials.js';
import { createForwarder } from '../../src/upstream/forward.js';
import { canary } from '../../src/testbed/world.js';
import { kubectl, run } from '../support/run.js';
import { waitFor } from '../support/wait.js';
import { testbed } from './hooks.js';

describe('gateway (kubectl → Gatehouse → kube-apiserver v1.35.4)', function () {
  this.timeout(60_000);
  let demo: RunningDemo;
  const audit: AuditEvent[] = [];
  let issuerFile: IssuerFile;
  let tls: Agent;

  before(async function () {
    this.timeout(120_000);
    demo = await startDemo({
      dir: join(runRoot, `test-${process.pid}`, 'demo'),
      testbed: testbed(),
      audit: createMemoryAuditWriter((e) => e.kind === 'Event' && audit.push(e)),
      clockSkewSeconds: 0,
      approvals: { mode: { agents: 'refuse', people: 'refuse' } },
    });
    issuerFile = JSON.parse(readFileSync(join(demo.dir, 'issuer.json'), 'utf8'));
    tls = new Agent({ connect: { ca: demo.gateway.caPem! } });
  });
  after(async () => {
    await tls?.close();
    await demo?.stop();
  });

  const as = (who: keyof typeof DEMO_USERS, args: string[], input?: string) => kubectl(demo.kubeconfigs[who], args, input);
  const tokenFor = async (who: keyof typeof DEMO_USERS, ttlSeconds = 600) => {
    const u = DEMO_USERS[who] as { user: string; groups: readonly string[]; agent?: string; onBehalfOf?: string };
    return (await mintToken(issuerFile, { user: u.user, groups: u.groups, ttlSeconds, ...(u.agent ? { agent: u.agent, onBehalfOf: u.onBehalfOf! } : {}) }))
      .token;
  };
  const raw = async (path: string, headers: Record<string, string>, method = 'GET', body?: string) => {
    const res = await request(demo.gateway.url + path, { method: method as 'GET', headers, dispatcher: tls, ...(body ? { body } : {}) });
    return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as Record<string, unknown> };
  };
  const lastAudit = (pred: (e: AuditEvent) => boolean) => [...audit].reverse().find(pred);

  describe('alice (group dev)', () => {
    it('reads, creates, applies, patches and deletes in dev', async () => {
      let r = await as('alice', ['get', 'configmaps', '-n', 'dev', '-o', 'name']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /configmap\/app-config/);
      r = await as('alice', ['create', 'configmap', 'e2e-alice', '-n', 'dev', '--from-literal=a=1']);
      assert.equal(r.code, 0, r.stderr);
      const manifest = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'e2e-applied', namespace: 'dev' }, data: { b: '2' } });
      r = await as('alice', ['apply', '-f', '-'], manifest);
      assert.equal(r.code, 0, r.stderr);
      r = await as('alice', ['patch', 'configmap', 'e2e-alice', '-n', 'dev', '--type=merge', '-p', '{"data":{"a":"2"}}']);
      assert.equal(r.code, 0, r.stderr);
      r = await as('alice', ['get', 'configmap', 'e2e-alice', '-n', 'dev', '-o', 'jsonpath={.data.a}']);
      assert.equal(r.stdout, '2');
      r = await as('alice', ['delete', 'configmap', 'e2e-alice', 'e2e-applied', '-n', 'dev']);
      assert.equal(r.code, 0, r.stderr);
    });

    it('watches through the gateway and sees a change as it happens', async () => {
      const before = audit.length;
      const watch = spawn('kubectl', ['--kubeconfig', demo.kubeconfigs.alice, 'get', 'configmaps', '-n', 'dev', '--watch-only', '-o', 'name'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      watch.stdout.on('data', (d: Buffer) => (out += d.toString()));
      try {
        // --watch-only prints nothing until a change: the watch is established once the
        // API server answered it, which the gateway records as ResponseStarted.
        const started = await waitFor('the watch to be answered upstream', () =>
          audit.slice(before).find((e) => e.verb === 'watch' && e.stage === 'ResponseStarted' && e.objectRef?.resource === 'configmaps'),
        );
        assert.equal(started.user.username, 'alice@example.com');
        const r = await as('alice', ['create', 'configmap', 'e2e-watched', '-n', 'dev', '--from-literal=x=y']);
        assert.equal(r.code, 0, r.stderr);
        await waitFor('the change to arrive through the watch', () => out.includes('configmap/e2e-watched'));
      } finally {
        watch.kill();
        await as('alice', ['delete', 'configmap', 'e2e-watched', '-n', 'dev']);
      }
    });

    it('watches share HTTP/2 connections to the API server: twenty watches, one new connection, every watcher sees the change', async () => {
      // The gateway runs in this process: its connections to the API server are this process's.
      const port = Number(new URL(testbed().server).port);
      const before = connectionsTo(process.pid, port);
      const token = await tokenFor('alice');
      const watchers = new Agent({ connect: { ca: demo.gateway.caPem! }, connections: 32 });
      const aborts = new AbortController();
      setMaxListeners(32, aborts.signal);
      const seen = new Set<number>();
      try {
        const bodies = await Promise.all(
          Array.from({ length: 20 }, async () => {
            const res = await request(`${demo.gateway.url}/api/v1/namespaces/dev/configmaps?watch=1&fieldSelector=metadata.name%3De2e-h2`, {
              headers: { authorization: `Bearer ${token}` },
              dispatcher: watchers,
              signal: aborts.signal,
              bodyTimeout: 0,
            });
            assert.equal(res.statusCode, 200);
            return res.body;
          }),
        );
        bodies.forEach((b, i) => b.on('data', (c: Buffer) => c.toString().includes('e2e-h2') && seen.add(i)).on('error', () => {}));
        assert.ok(connectionsTo(process.pid, port) - before <= 1, `${connectionsTo(process.pid, port) - before} new connections for 20 watches`);
        const r = await as('alice', ['create', 'configmap', 'e2e-h2', '-n', 'dev', '--from-literal=x=y']);
        assert.equal(r.code, 0, r.stderr);
        await waitFor('every watcher to see the change', () => seen.size === 20);
      } finally {
        aborts.abort();
        await watchers.destroy();
        await as('alice', ['delete', 'configmap', 'e2e-h2', '-n', 'dev']);
      }
    });

    it("kube-apiserver answers the gateway's HTTP/2 PINGs: a watch pinged every 200 ms, with 1 s for each answer, stays up and sees a change", async () => {
      const target = loadUpstream({ kind: 'kubeconfig', file: testbed().kubeconfigs.admin });
      const f = createForwarder(target, {
        connectTimeoutMs: 5000,
        headersTimeoutMs: 10_000,
        bodyTimeoutMs: 10_000,
        http2: true,
        ping: { intervalMs: 200, timeoutMs: 1000 },
      });
      const aborts = new AbortController();
      try {
        const res = await f.forward({
          method: 'GET',
          pathAndQuery: '/api/v1/namespaces/dev/configmaps?watch=1&fieldSelector=metadata.name%3De2e-pinged',
          headers: target.authorization ? { authorization: target.authorization() } : {},
          body: undefined,
          longRunning: true,
          signal: aborts.signal,
        });
        assert.equal(res.statusCode, 200);
        let got = '';
        let failed: Error | undefined;
        res.body.on('data', (c: Buffer) => (got += c.toString())).on('error', (err: Error) => (failed = err));
        // Not a wait for something to happen: fifteen pings' time in which nothing may go wrong. An unanswered one cuts the watch after 1.2 s.
        await sleep(3000);
        assert.equal(failed, undefined);
        const r = await as('alice', ['create', 'configmap', 'e2e-pinged', '-n', 'dev', '--from-literal=x=y']);
        assert.equal(r.code, 0, r.stderr);
        await waitFor('the change to arrive on the pinged watch', () => got.includes('e2e-pinged'));
        assert.equal(failed, undefined);
      } finally {
        aborts.abort();
        await f.close();
        await as('alice', ['delete', 'configmap', 'e2e-pinged', '-n', 'dev']);
      }
    });

    it('a watcher that walks away: its watch ends at the gateway and upstream, and is recorded complete', async () => {
      const token = await tokenFor('alice');
      const watcher = new Agent({ connect: { ca: demo.gateway.caPem! } });
      const aborts = new AbortController();
      try {
        const res = await request(`${demo.gateway.url}/api/v1/namespaces/dev/configmaps?watch=1&fieldSelector=metadata.name%3De2e-walked-away`, {
          headers: { authorization: `Bearer ${token}` },
          dispatcher: watcher,
          signal: aborts.signal,
          bodyTimeout: 0,
        });
        assert.equal(res.statusCode, 200);
        res.body.on('error', () => {});
        const id = String(res.headers['audit-id']);
        await waitFor('the watch to be recorded as started', () => audit.some((e) => e.auditID === id && e.stage === 'ResponseStarted'));
        aborts.abort();
        // Recorded complete only once the gateway's side of the pipeline, the upstream stream included, has ended.
        await waitFor('the walked-away watch to be recorded complete', () => audit.some((e) => e.auditID === id && e.stage === 'ResponseComplete'));
        assert.equal(audit.find((e) => e.auditID === id && e.stage === 'ResponseComplete')?.responseStatus?.code, 200);
      } finally {
        await watcher.destroy();
      }
    });

    it('a watch the API server ends (timeoutSeconds) ends at the client and is recorded complete without error, masked or not', async () => {
      const token = await tokenFor('alice');
      const watcher = new Agent({ connect: { ca: demo.gateway.caPem! } });
      try {
        // configmaps pass unmasked (relayed); alice's secrets go through the masking stages.
        for (const resource of ['configmaps', 'secrets']) {
          const res = await request(`${demo.gateway.url}/api/v1/namespaces/dev/${resource}?watch=1&timeoutSeconds=1`, {
            headers: { authorization: `Bearer ${token}` },
            dispatcher: watcher,
          });
          assert.equal(res.statusCode, 200);
          const id = String(res.headers['audit-id']);
          await res.body.text();
          await waitFor(`the ${resource} watch to be recorded complete`, () => audit.some((e) => e.auditID === id && e.stage === 'ResponseComplete'));
          const e = audit.find((ev) => ev.auditID === id && ev.stage === 'ResponseComplete')!;
          assert.deepEqual([resource, e.responseStatus, e.gatehouse.error], [resource, { code: 200 }, undefined]);
        }
      } finally {
        await watcher.destroy();
      }
    });

    it("kubectl logs and logs -f stream through the gateway (from the test bed's stand-in kubelet)", async () => {
      const plain = await as('alice', ['logs', 'web-0', '-n', 'dev']);
      assert.equal(plain.code, 0, plain.stderr);
      assert.equal(plain.stdout, 'dev/web-0/web line 1\ndev/web-0/web line 2\ndev/web-0/web line 3\n');
      const follow = spawn('kubectl', ['--kubeconfig', demo.kubeconfigs.alice, 'logs', '-f', 'web-0', '-n', 'dev'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      follow.stdout.on('data', (d: Buffer) => (out += d.toString()));
      try {
        // The kubelet writes a line every 200 ms and never ends: lines arriving one by one is streaming.
        await waitFor('the fifth log line', () => out.includes('line 5'));
        assert.match(out, /^dev\/web-0\/web line 1\ndev\/web-0\/web line 2\n.*line 5/s);
      } finally {
        follow.kill();
      }
      const started = lastAudit((e) => e.objectRef?.subresource === 'log' && e.stage === 'ResponseStarted');
      assert.ok(started, 'logs -f is audited as a long-running request when it starts');
    });

    it('is denied writes in prod, and kubectl prints the policy reason', async () => {
      const r = await as('alice', ['delete', 'configmap', 'app-config', '-n', 'prod']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Error from server \(Forbidden\): Gatehouse denied this request: no rule allows this request/);
      const e = lastAudit((ev) => ev.verb === 'delete' && ev.objectRef?.namespace === 'prod');
      assert.equal(e?.responseStatus?.code, 403);
      assert.deepEqual(e?.gatehouse.decision, { effect: 'deny', reasons: ['no rule allows this request'], mask: [] });
    });

    it('sees Secrets with their values masked', async () => {
      const r = await as('alice', ['get', 'secrets', '-n', 'dev', '-o', 'json']);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /GATEHOUSE-CANARY|R0FURUhPVVNFLUNBTkFSWS/);
      assert.match(r.stdout, /GATEHOUSE\+REDACTED\+\+/);
    });

    it('reaches the API server as herself: kubectl auth whoami and the upstream audit log', async () => {
      const r = await as('alice', ['auth', 'whoami', '-o', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const info = JSON.parse(r.stdout).status.userInfo;
      assert.equal(info.username, 'alice@example.com');
      assert.deepEqual(info.groups, ['dev', 'system:authenticated']);
      await as('alice', ['get', 'configmap', 'app-config', '-n', 'dev']);
      // The API server's audit backend writes in batches: wait for the line, not for a time.
      const seen = await waitFor('the upstream audit line', () =>
        readFileSync(testbed().auditLog, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
          .reverse()
          .find((ev) => ev.objectRef?.name === 'app-config' && ev.impersonatedUser?.username === 'alice@example.com'),
      );
      assert.equal(seen?.user.username, 'gatehouse-gateway');
      assert.deepEqual(seen?.impersonatedUser.groups, ['dev', 'system:authenticated']);
    });
  });

  describe('the agent (deploy-bot, acting for alice)', () => {
    it('reads in prod, and the API server knows it is an agent acting for alice', async () => {
      let r = await as('agent', ['get', 'configmaps', '-n', 'prod', '-o', 'name']);
      assert.equal(r.code, 0, r.stderr);
      r = await as('agent', ['auth', 'whoami', '-o', 'json']);
      const info = JSON.parse(r.stdout).status.userInfo;
      assert.equal(info.username, 'agent:deploy-bot');
      assert.deepEqual(info.extra['gatehouse.dev/on-behalf-of'], ['alice@example.com']);
      assert.deepEqual(info.extra['gatehouse.dev/agent'], ['deploy-bot']);
    });

    it('needs approval to delete in prod (refused at once in this demo; approvals.test.ts covers holding)', async () => {
      const r = await as('agent', ['delete', 'deployment', 'web', '-n', 'prod']);
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        /Error from server \(Forbidden\): this request needs approval: approval ap-\w+ by a member of security is pending until \S+ \(agents need a person's approval for every write; deletes in namespace prod need approval from group security\)/,
      );
      const still = await kubectl(testbed().kubeconfigs.admin, ['get', 'deployment', 'web', '-n', 'prod', '-o', 'name']);
      assert.equal(still.stdout.trim(), 'deployment.apps/web');
    });
  });

  describe('admin (group admins)', () => {
    it('reads Secret values unmasked, as the policy allows', async () => {
      const r = await as('admin', ['get', 'secret', 'db-credentials', '-n', 'prod', '-o', 'jsonpath={.data.password}']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(Buffer.from(r.stdout, 'base64').toString(), canary('prod', 'db-password'));
    });
  });

  describe('smuggling never reaches the upstream', () => {
    it('attack: Impersonate-* headers are refused before any policy runs; the record shows no allow', async () => {
      const token = await tokenFor('alice');
      for (const headers of [
        { 'impersonate-user': 'bob@example.com' },
        { 'impersonate-group': 'system:masters', 'impersonate-user': 'alice@example.com' },
        { 'impersonate-uid': '1234' },
        { 'impersonate-extra-scopes': 'all' },
      ]) {
        const before = audit.length;
        const r = await raw('/api/v1/namespaces/dev/configmaps', { authorization: `Bearer ${token}`, ...headers });
        assert.equal(r.status, 403, JSON.stringify(headers));
        assert.equal(
          r.body['message'],
          'Gatehouse does not forward impersonation: drop --as/--as-group (Impersonate-* headers); requests run as the identity in your token',
        );
        const records = audit.slice(before);
        assert.deepEqual(
          records.map((e) => [e.stage, e.annotations['gatehouse.dev/effect'], e.gatehouse.decision, e.responseStatus?.code, e.gatehouse.error?.code]),
          [['ResponseComplete', 'none', undefined, 403, 'GATEHOUSE_DENIED']],
        );
      }
    });

    it('attack: an admin asking for impersonation (kubectl --as) is refused, not silently run with admin rights', async () => {
      const r = await as('admin', ['get', 'configmaps', '-n', 'dev', '--as', 'dave@example.com']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Error from server \(Forbidden\): Gatehouse does not forward impersonation/);
      assert.equal(
        lastAudit((e) => e.verb === 'list' && e.user.username === 'bob@example.com')?.annotations['gatehouse.dev/effect'],
        'none',
        'no allow next to the 403',
      );
    });

    it('a Connection header naming another header does not smuggle it past the gateway', async () => {
      const r = await raw(
        '/apis/authentication.k8s.io/v1/selfsubjectreviews',
        {
          authorization: `Bearer ${await tokenFor('alice')}`,
          connection: 'keep-alive, X-Forwarded-For',
          'content-type': 'application/json',
          'x-forwarded-for': '10.0.0.1',
        },
        'POST',
        JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }),
      );
      assert.equal(r.status, 201);
      assert.equal((r.body['status'] as { userInfo: { username: string } }).userInfo.username, 'alice@example.com');
    });

    it('a percent-encoded resource (%73ecrets) is decided, and masked, as secrets', async () => {
      const r = await raw('/api/v1/namespaces/dev/%73ecrets', { authorization: `Bearer ${await tokenFor('alice')}` });
      assert.equal(r.status, 200);
      assert.doesNotMatch(JSON.stringify(r.body), /GATEHOUSE-CANARY|R0FURUhPVVNFLUNBTkFSWS/);
      assert.equal(lastAudit((e) => e.requestURI === '/api/v1/namespaces/dev/secrets')?.objectRef?.resource, 'secrets');
    });

    it('an encoded slash is refused with 400 before any decision', async () => {
      const r = await raw('/api/v1/namespaces/dev%2F..%2Fprod/configmaps', { authorization: `Bearer ${await tokenFor('alice')}` });
      assert.equal(r.status, 400);
      assert.equal(r.body['kind'], 'Status');
      assert.match(String(r.body['message']), /encoded slash/);
    });
  });

  describe('tokens from the real OpenID provider', () => {
    it('a missing token is a 401 Status', async () => {
      const r = await raw('/api/v1/namespaces/dev/configmaps', {});
      assert.equal(r.status, 401);
      assert.deepEqual({ kind: r.body['kind'], reason: r.body['reason'], code: r.body['code'] }, { kind: 'Status', reason: 'Unauthorized', code: 401 });
      const e = lastAudit((ev) => ev.responseStatus?.code === 401);
      assert.equal(e?.user.username, 'system:anonymous');
    });

    it('an expired token is refused; kubectl shows it', async () => {
      const token = await tokenFor('alice', 1);
      await sleep(2100);
      const r = await raw('/api/v1/namespaces/dev/configmaps', { authorization: `Bearer ${token}` });
      assert.equal(r.status, 401);
      assert.equal(r.body['message'], 'the token has expired');
      const k = await run('kubectl', [
        '--server',
        demo.gateway.url,
        '--certificate-authority',
        join(demo.dir, 'tls', 'ca.crt'),
        '--token',
        token,
        'get',
        'configmaps',
        '-n',
        'dev',
      ]);
      assert.notEqual(k.code, 0);
      assert.match(k.stderr, /Unauthorized|You must be logged in/);
    });

    it('a token with a forged signature is refused and never logged', async () => {
      const token = await tokenFor('alice');
      const [h, p] = token.split('.');
      const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
      const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, groups: ['admins'] })).toString('base64url')}.${token.split('.')[2]}`;
      const r = await raw('/api/v1/namespaces/prod/secrets', { authorization: `Bearer ${forged}` });
      assert.equal(r.status, 401);
      assert.equal(r.body['message'], 'the token signature is invalid');
      assert.ok(!JSON.stringify(audit).includes(forged.split('.')[2]!), 'no signature in any audit record');
    });
  });

  describe('attack: a credential in the URL', () => {
    it('a bearer token sent as ?access_token= (or token, id_token) is refused and never written to any record or answer', async () => {
      const token = await tokenFor('alice');
      const signature = token.split('.')[2]!;
      const before = audit.length;
      for (const name of ['access_token', 'token', 'id_token', 'ACCESS_TOKEN']) {
        for (const headers of [{}, { authorization: `Bearer ${token}` }]) {
          const r = await raw(`/api/v1/namespaces/dev/configmaps?limit=1&${name}=${token}`, headers);
          assert.equal(r.status, 400, 'refused, with or without a token in the header');
          assert.equal(
            r.body['message'],
            `Gatehouse does not accept credentials in the URL (query parameter "${name}"): send the token in the Authorization header`,
          );
          assert.ok(!JSON.stringify(r.body).includes(signature));
        }
      }
      const records = audit.slice(before);
      assert.equal(records.length, 8, 'each refusal is audited');
      for (const e of records)
        assert.match(
          e.requestURI,
          /^\/api\/v1\/namespaces\/dev\/configmaps\?limit=1&(access_token|token|id_token|ACCESS_TOKEN)=GATEHOUSE\+CREDENTIAL\+REMOVED$/,
        );
      assert.ok(!JSON.stringify(records).includes(signature), 'no token in any record, its stored input included');
      // Nothing was forwarded, so the API server's audit log never saw it either.
      assert.ok(!readFileSync(testbed().auditLog, 'utf8').includes(signature));
    });

    it('a token inside an exec command or a path is written as a marker', async () => {
      const token = await tokenFor('alice');
      const before = audit.length;
      const r = await as('alice', ['get', 'configmap', token, '-n', 'dev']);
      assert.notEqual(r.code, 0);
      const e = await waitFor('the record of the get', () =>
        audit.slice(before).find((ev) => ev.verb === 'get' && ev.objectRef?.resource === 'configmaps' && ev.stage === 'ResponseComplete'),
      );
      assert.equal(e.requestURI, '/api/v1/namespaces/dev/configmaps/GATEHOUSE+CREDENTIAL+REMOVED');
      assert.ok(!JSON.stringify(audit.slice(before)).includes(token.split('.')[2]!));
    });
  });

  describe('HTTP/2 and HTTP/1.1 to clients (ALPN)', () => {
    const connections = async (protocol: string) => {
      const text = await (await fetch(demo.gateway.metricsUrl!)).text();
      return Number(new RegExp(`^gatehouse_client_connections_total\\{protocol="${protocol.replace('.', '\\.')}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    };
    const curl = async (args: string[]) => {
      const token = await tokenFor('alice');
      return run('curl', ['-sS', '--cacert', join(demo.dir, 'tls', 'ca.crt'), '-H', `Authorization: Bearer ${token}`, '-w', '\n%{http_version}', ...args]);
    };

    it('kubectl speaks HTTP/2 to the gateway; masking and policy work as over HTTP/1.1 (its watches: the tests above)', async () => {
      const before = await connections('h2');
      const r = await as('alice', ['get', 'secret', 'db-credentials', '-n', 'dev', '-o', 'jsonpath={.data.password}']);
      assert.equal(r.code, 0, r.stderr);
      assert.notEqual(Buffer.from(r.stdout, 'base64').toString(), canary('dev', 'db-password'), 'masked over HTTP/2 too');
      const denied = await as('alice', ['delete', 'configmap', 'app-config', '-n', 'prod']);
      assert.notEqual(denied.code, 0);
      assert.ok((await connections('h2')) >= before + 2, 'each kubectl run opened an h2 connection');
    });

    it('curl --http1.1 and curl --http2 get the same answers', async () => {
      const before = await connections('http/1.1');
      const url = `${demo.gateway.url}/api/v1/namespaces/dev/configmaps/app-config`;
      const h1 = await curl(['--http1.1', url]);
      const h2 = await curl(['--http2', url]);
      assert.equal(h1.code, 0, h1.stderr);
      assert.equal(h2.code, 0, h2.stderr);
      const [body1, version1] = [h1.stdout.slice(0, h1.stdout.lastIndexOf('\n')), h1.stdout.slice(h1.stdout.lastIndexOf('\n') + 1)];
      const [body2, version2] = [h2.stdout.slice(0, h2.stdout.lastIndexOf('\n')), h2.stdout.slice(h2.stdout.lastIndexOf('\n') + 1)];
      assert.equal(version1, '1.1');
      assert.equal(version2, '2');
      assert.equal((JSON.parse(body1) as { metadata: { name: string } }).metadata.name, 'app-config');
      assert.deepEqual(JSON.parse(body2), JSON.parse(body1));
      assert.ok((await connections('http/1.1')) >= before + 1);
      // A refusal is the same Status either way.
      const refused = await curl(['--http2', '-X', 'DELETE', `${demo.gateway.url}/api/v1/namespaces/prod/configmaps/app-config`]);
      const status = JSON.parse(refused.stdout.slice(0, refused.stdout.lastIndexOf('\n'))) as { kind: string; code: number };
      assert.equal(status.kind, 'Status');
      assert.equal(status.code, 403);
    });
  });

  describe('other real clients', () => {
    it('@kubernetes/client-node lists pods and configmaps through the gateway', async () => {
      const kc = new KubeConfig();
      kc.loadFromFile(demo.kubeconfigs.alice);
      const api = kc.makeApiClient(CoreV1Api);
      const pods = await api.listNamespacedPod({ namespace: 'dev' });
      assert.deepEqual(
        pods.items.map((p) => p.metadata?.name),
        ['web-0'],
      );
      const cms = await api.listNamespacedConfigMap({ namespace: 'dev' });
      assert.ok(cms.items.some((c) => c.metadata?.name === 'app-config'));
    });

    it("Python's kubernetes client (Debian python3-kubernetes) lists pods through the gateway", async () => {
      const script = `
import sys
from kubernetes import client, config
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
print("pods", ",".join(p.metadata.name for p in v1.list_namespaced_pod("dev").items))
print("configmaps", ",".join(sorted(c.metadata.name for c in v1.list_namespaced_config_map("dev").items)))
`;
      const r = await run('/usr/bin/python3', ['-c', script, demo.kubeconfigs.alice]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^pods web-0$/m);
      assert.match(r.stdout, /^configmaps .*app-config/m);
    });
  });

  describe('audit', () => {
    it('keeps one record per request, with decision, policy revision and input, and no credential', () => {
      const e = lastAudit((ev) => ev.verb === 'list' && ev.objectRef?.resource === 'configmaps' && ev.responseStatus?.code === 200);
      assert.ok(e);
      assert.equal(e.kind, 'Event');
      assert.equal(e.apiVersion, 'audit.k8s.io/v1');
      assert.equal(e.gatehouse.policyRevision, demo.gateway.policyRevision);
      assert.ok(e.gatehouse.input, 'the policy input is kept for replay');
      const all = JSON.stringify(audit);
      assert.doesNotMatch(all, /eyJ[A-Za-z0-9_-]{10,}\.eyJ/, 'no JWT');
      assert.doesNotMatch(all, /Bearer /);
      const gatewayToken = readFileSync(testbed().kubeconfigs.gateway, 'utf8').match(/token: (\S+)/)![1]!;
      assert.ok(!all.includes(gatewayToken), "the gateway's cluster token is not in any record");
    });
  });
});
