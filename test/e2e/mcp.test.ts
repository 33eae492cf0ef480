/**
 * MCP end to end: the TypeScript SDK's own client over Streamable HTTP, with a
 * real token from the demo's OpenID provider, against the gateway in front of
 * kube-apiserver v1.35.4. Every tool call is ordinary Kubernetes requests
 * through the gateway's pipeline: the same policy, masking, approvals, audit.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Agent, fetch as undiciFetch } from 'undici';
import type { McpToolCallEvent } from '../../src/audit/event.js';
import { DEMO_USERS, startDemo, type DemoUser, type RunningDemo } from '../../src/demo/demo.js';
import { mintDemoToken } from '../../src/demo/issuer.js';
import { projectRoot, runRoot } from '../../src/paths.js';
import { canary } from '../../src/testbed/world.js';
import { approvalsCli, pendingFor } from '../support/approvals.js';
import { connectMcp } from '../support/mcp.js';
import { kubectl, run } from '../support/run.js';
import { waitFor } from '../support/wait.js';
import { readAudit } from '../support/audit.js';
import { testbed } from './hooks.js';

describe('MCP endpoint /gatehouse/mcp (SDK client → Gatehouse → kube-apiserver v1.35.4)', function () {
  this.timeout(90_000);
  let demo: RunningDemo;
  let dispatcher: Agent;
  const admin = (args: string[]) => kubectl(testbed().kubeconfigs.admin, args);
  const records = () => readAudit(join(demo.dir, 'audit.log'));

  async function tokenFor(u: DemoUser): Promise<string> {
    return mintDemoToken(demo.dir, u);
  }

  const connect = (token: string) => connectMcp(`${demo.gateway.url}/gatehouse/mcp`, token, dispatcher);

  const textOf = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');

  before(async function () {
    this.timeout(120_000);
    demo = await startDemo({ dir: join(runRoot, `test-${process.pid}`, 'mcp'), testbed: testbed(), approvals: { holdSeconds: 60, sweepSeconds: 1 } });
    dispatcher = new Agent({ connect: { ca: demo.gateway.caPem! } });
  });
  after(async () => {
    await dispatcher?.close();
    await demo?.stop();
    await admin(['delete', 'deployment', 'mcp-held', 'mcp-cancelled', 'mcp-held-go', '-n', 'prod', '--ignore-not-found']);
  });

  it('lists the tools of containers/kubernetes-mcp-server (same names) and whoami, which names the agent and its person', async () => {
    const client = await connect(await tokenFor(DEMO_USERS.agent));
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    for (const t of [
      'namespaces_list',
      'events_list',
      'pods_list',
      'pods_list_in_namespace',
      'pods_get',
      'pods_delete',
      'pods_log',
      'resources_list',
      'resources_get',
      'resources_create_or_update',
      'resources_delete',
      'resources_scale',
      'whoami',
    ])
      assert.ok(names.includes(t), t);
    const who = textOf((await client.callTool({ name: 'whoami', arguments: {} })) as CallToolResult);
    assert.match(who, /username: agent:deploy-bot/);
    assert.match(who, /onBehalfOf: alice@example\.com/);
    await client.close();
  });

  it('reads pods and events through the gateway: the API server renders the table, each request is audited as the agent, with request.mcp', async () => {
    const client = await connect(await tokenFor(DEMO_USERS.alice));
    const pods = (await client.callTool({ name: 'pods_list_in_namespace', arguments: { namespace: 'dev' } })) as CallToolResult;
    assert.equal(pods.isError, undefined, textOf(pods));
    assert.match(textOf(pods), /^NAME\s+READY\s+STATUS/);
    assert.match(textOf(pods), /web-0/);
    const events = (await client.callTool({ name: 'events_list', arguments: { namespace: 'dev' } })) as CallToolResult;
    assert.equal(events.isError, undefined, textOf(events));
    await client.close();
    const call = await waitFor('the tool call record', () =>
      records().find(
        (e): e is McpToolCallEvent => e.kind === 'McpToolCall' && e.tool === 'pods_list_in_namespace' && e.user.username === DEMO_USERS.alice.user,
      ),
    );
    assert.equal(call.outcome, 'ok');
    assert.equal(call.requests.length, 1);
    const request = records().find((e) => e.kind === 'Event' && e.auditID === call.requests[0] && e.stage === 'ResponseComplete');
    assert.ok(request && request.kind === 'Event');
    assert.equal(request.requestURI, '/api/v1/namespaces/dev/pods');
    assert.equal(request.user.username, DEMO_USERS.alice.user);
    const input = request.gatehouse.input as { request: { mcp?: { tool: string; session: string }; sourceIP: string } };
    assert.deepEqual(input.request.mcp, { tool: 'pods_list_in_namespace', session: '' });
    assert.equal(input.request.sourceIP, call.sourceIP);
    assert.deepEqual(request.sourceIPs, [call.sourceIP], "the record names the agent's address, not the internal socket");
    assert.match(call.sourceIP, /^(::ffff:)?127\.0\.0\.1$/);
  });

  it("pods_exec runs a command through the gateway: its output and exit code, the session recorded like kubectl's", async () => {
    const client = await connect(await tokenFor(DEMO_USERS.alice));
    const ok = (await client.callTool({
      name: 'pods_exec',
      arguments: { namespace: 'dev', name: 'web-0', command: ['sh', '-c', 'echo from-mcp-exec; echo oops >&2'] },
    })) as CallToolResult;
    assert.equal(ok.isError, undefined, textOf(ok));
    assert.match(textOf(ok), /^from-mcp-exec\n\[stderr\]\noops/);
    const failed = (await client.callTool({
      name: 'pods_exec',
      arguments: { namespace: 'dev', name: 'web-0', command: ['sh', '-c', 'exit 3'] },
    })) as CallToolResult;
    assert.equal(failed.isError, true);
    assert.match(textOf(failed), /\[exit code 3\]/);
    // Refused before any upgrade: the policy's reason, as kubectl would print it.
    const denied = (await client.callTool({ name: 'pods_exec', arguments: { namespace: 'prod', name: 'web-0', command: ['id'] } })) as CallToolResult;
    assert.equal(denied.isError, true);
    assert.match(textOf(denied), /Gatehouse denied this request/);
    await client.close();
    const call = await waitFor('the exec tool call record', () =>
      records().find((e): e is McpToolCallEvent => e.kind === 'McpToolCall' && e.tool === 'pods_exec' && e.outcome === 'ok'),
    );
    const session = await waitFor('the recorded exec session', () =>
      records().find((e) => e.kind === 'Event' && e.auditID === call.requests[0] && e.stage === 'ResponseComplete' && e.gatehouse.session),
    );
    assert.ok(session.kind === 'Event');
    const recording = (session.gatehouse.session as { recording: string }).recording;
    assert.match(readFileSync(recording, 'utf8'), /from-mcp-exec/);
  });

  it('a Secret through resources_get shows no value', async () => {
    const client = await connect(await tokenFor(DEMO_USERS.alice));
    const r = (await client.callTool({
      name: 'resources_get',
      arguments: { apiVersion: 'v1', kind: 'Secret', namespace: 'dev', name: 'api-token' },
    })) as CallToolResult;
    await client.close();
    assert.equal(r.isError, undefined, textOf(r));
    assert.match(textOf(r), /kind: Secret/);
    assert.doesNotMatch(textOf(r), new RegExp(Buffer.from(canary('dev', 'api-token')).toString('base64')));
    assert.doesNotMatch(textOf(r), /GATEHOUSE-CANARY/);
  });

  it('a denied call is a tool error carrying the policy reason', async () => {
    const client = await connect(await tokenFor(DEMO_USERS.alice));
    const r = (await client.callTool({
      name: 'resources_delete',
      arguments: { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'prod', name: 'app-config' },
    })) as CallToolResult;
    await client.close();
    assert.equal(r.isError, true);
    assert.match(textOf(r), /Gatehouse denied this request/);
    assert.equal((await admin(['get', 'configmap', 'app-config', '-n', 'prod', '-o', 'name'])).code, 0, 'still there');
  });

  it("an agent's resources_delete of a Deployment in prod is held, approved with gatehouse approvals approve, and completes", async () => {
    assert.equal((await admin(['create', 'deployment', 'mcp-held', '--image=registry.invalid/app:1', '-n', 'prod'])).code, 0);
    const client = await connect(await tokenFor(DEMO_USERS.agent));
    const progress: string[] = [];
    const call = client.callTool(
      { name: 'resources_delete', arguments: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'prod', name: 'mcp-held' } },
      undefined,
      {
        onprogress: (p) => progress.push(p.message ?? ''),
        timeout: 80_000,
        resetTimeoutOnProgress: true,
      },
    );
    const pending = await pendingFor(demo.kubeconfigs.security, 'mcp-held');
    const ok = await approvalsCli(demo.kubeconfigs.security, ['approve', pending.id, '--reason', 'MCP test']);
    assert.equal(ok.code, 0, ok.stderr);
    const r = (await call) as CallToolResult;
    await client.close();
    assert.equal(r.isError, undefined, textOf(r));
    assert.equal(textOf(r), 'Deployment "mcp-held" deleted');
    assert.notEqual((await admin(['get', 'deployment', 'mcp-held', '-n', 'prod'])).code, 0, 'deleted');
  });

  it('a cancelled held call leaves nothing running: the approval stays pending and nothing is deleted', async () => {
    assert.equal((await admin(['create', 'deployment', 'mcp-cancelled', '--image=registry.invalid/app:1', '-n', 'prod'])).code, 0);
    const client = await connect(await tokenFor(DEMO_USERS.agent));
    const abort = new AbortController();
    const call = client
      .callTool({ name: 'resources_delete', arguments: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'prod', name: 'mcp-cancelled' } }, undefined, {
        signal: abort.signal,
      })
      .catch((err: unknown) => err);
    const pending = await pendingFor(demo.kubeconfigs.security, 'mcp-cancelled');
    abort.abort();
    assert.ok((await call) instanceof Error);
    const record = await waitFor('the cancelled call record', () =>
      records().find((e): e is McpToolCallEvent => e.kind === 'McpToolCall' && e.tool === 'resources_delete' && e.outcome === 'cancelled'),
    );
    assert.equal(record.user.username, 'agent:deploy-bot');
    // Approving now releases nothing: the request that waited is gone.
    assert.equal((await approvalsCli(demo.kubeconfigs.security, ['approve', pending.id])).code, 0);
    assert.equal((await admin(['get', 'deployment', 'mcp-cancelled', '-n', 'prod', '-o', 'name'])).code, 0, 'still there');
    await client.close();
  });

  describe('a second, independent client: the official Go SDK (github.com/modelcontextprotocol/go-sdk v1.8.0)', () => {
    const goClient = async (who: DemoUser, args: string[]) => {
      const tokenFile = join(demo.dir, `go-client-${who.user.replace(/[^a-z]/g, '')}.token`);
      writeFileSync(tokenFile, await tokenFor(who), { mode: 0o600 });
      const r = await run(
        join(projectRoot, '.tools/mcp-go-client'),
        ['-url', `${demo.gateway.url}/gatehouse/mcp`, '-token-file', tokenFile, '-ca', join(demo.dir, 'tls', 'ca.crt'), ...args],
        {
          timeoutMs: 80_000,
        },
      );
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { tools?: string[]; isError?: boolean; text?: string };
    };

    it('lists the tools, reads pods and events, and a Secret shows no value', async () => {
      const listed = await goClient(DEMO_USERS.agent, ['-list']);
      for (const t of ['pods_list_in_namespace', 'events_list', 'resources_get', 'resources_delete', 'pods_exec', 'whoami'])
        assert.ok(listed.tools?.includes(t), t);
      const pods = await goClient(DEMO_USERS.alice, ['-tool', 'pods_list_in_namespace', '-args', '{"namespace":"dev"}']);
      assert.equal(pods.isError, false);
      assert.match(pods.text ?? '', /web-0/);
      const events = await goClient(DEMO_USERS.alice, ['-tool', 'events_list', '-args', '{"namespace":"dev"}']);
      assert.equal(events.isError, false, events.text);
      const secret = await goClient(DEMO_USERS.alice, [
        '-tool',
        'resources_get',
        '-args',
        '{"apiVersion":"v1","kind":"Secret","namespace":"dev","name":"db-credentials"}',
      ]);
      assert.equal(secret.isError, false, secret.text);
      assert.match(secret.text ?? '', /name: db-credentials/);
      assert.doesNotMatch(secret.text ?? '', /GATEHOUSE-CANARY|R0FURUhPVVNFLUNBTkFSWS/);
    });

    it("a denied call carries the reason; an agent's held delete completes once approved", async () => {
      const denied = await goClient(DEMO_USERS.alice, [
        '-tool',
        'resources_delete',
        '-args',
        '{"apiVersion":"v1","kind":"ConfigMap","namespace":"prod","name":"app-config"}',
      ]);
      assert.equal(denied.isError, true);
      assert.match(denied.text ?? '', /Gatehouse denied this request/);
      assert.equal((await admin(['create', 'deployment', 'mcp-held-go', '--image=registry.invalid/app:1', '-n', 'prod'])).code, 0);
      const held = goClient(DEMO_USERS.agent, [
        '-tool',
        'resources_delete',
        '-args',
        '{"apiVersion":"apps/v1","kind":"Deployment","namespace":"prod","name":"mcp-held-go"}',
      ]);
      const pending = await pendingFor(demo.kubeconfigs.security, 'mcp-held-go');
      assert.equal((await approvalsCli(demo.kubeconfigs.security, ['approve', pending.id, '--reason', 'Go client'])).code, 0);
      const done = await held;
      assert.equal(done.isError, false, done.text);
      assert.equal(done.text, 'Deployment "mcp-held-go" deleted');
    });
  });

  it('a forged or missing token is a 401 whose WWW-Authenticate points at the protected resource metadata, which names the issuer', async () => {
    for (const authorization of [undefined, 'Bearer not.a.jwt']) {
      const res = await undiciFetch(`${demo.gateway.url}/gatehouse/mcp`, {
        dispatcher,
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(authorization ? { authorization } : {}) },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
        }),
      });
      assert.equal(res.status, 401);
      const challenge = res.headers.get('www-authenticate') ?? '';
      assert.match(challenge, new RegExp(`^Bearer .*resource_metadata="${demo.gateway.url}/.well-known/oauth-protected-resource/gatehouse/mcp"`));
      if (authorization) assert.match(challenge, /error="invalid_token"/);
      const meta = (await (await undiciFetch(/resource_metadata="([^"]+)"/.exec(challenge)![1]!, { dispatcher })).json()) as Record<string, unknown>;
      assert.deepEqual(meta['authorization_servers'], [demo.issuer.issuer]);
      assert.equal(meta['resource'], `${demo.gateway.url}/gatehouse/mcp`);
    }
  });

  it('attack: a kubectl caller cannot pass its request off as a tool call (the marker header is the gateway’s own)', async () => {
    const token = await tokenFor(DEMO_USERS.alice);
    const res = await undiciFetch(`${demo.gateway.url}/api/v1/namespaces/dev/configmaps`, {
      dispatcher,
      headers: { authorization: `Bearer ${token}`, 'x-gatehouse-mcp': 'eyJ0b29sIjoicG9kc19saXN0In0.AAAA' },
    });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { message: string }).message, /x-gatehouse-mcp header is the gateway's own/);
  });
});

describe('MCP approvals_wait: a call held past the hold is parked, and runs once approved (kube-apiserver v1.35.4)', function () {
  this.timeout(90_000);
  let demo: RunningDemo;
  let dispatcher: Agent;
  const admin = (args: string[]) => kubectl(testbed().kubeconfigs.admin, args);
  const textOf = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
  const call = async (who: DemoUser, name: string, args: Record<string, unknown>) => {
    const client = await connectMcp(`${demo.gateway.url}/gatehouse/mcp`, await mintDemoToken(demo.dir, who), dispatcher);
    try {
      return (await client.callTool({ name, arguments: args }, undefined, { timeout: 80_000 })) as CallToolResult;
    } finally {
      await client.close();
    }
  };
  const deleteDeployment = (name: string) => ({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'prod', name });
  const toolCalls = () => readAudit(join(demo.dir, 'audit.log')).filter((e): e is McpToolCallEvent => e.kind === 'McpToolCall');

  before(async function () {
    this.timeout(120_000);
    // A one-second hold: every held call outlives it.
    demo = await startDemo({ dir: join(runRoot, `test-${process.pid}`, 'mcp-wait'), testbed: testbed(), approvals: { holdSeconds: 1, sweepSeconds: 1 } });
    dispatcher = new Agent({ connect: { ca: demo.gateway.caPem! } });
  });
  after(async () => {
    await dispatcher?.close();
    await demo?.stop();
    await admin(['delete', 'deployment', 'mcp-parked', 'mcp-parked-denied', '-n', 'prod', '--ignore-not-found']);
  });

  it('returns the approval id; approvals_wait says pending, refuses anyone else, and once approved runs exactly that call, once', async () => {
    assert.equal((await admin(['create', 'deployment', 'mcp-parked', '--image=registry.invalid/app:1', '-n', 'prod'])).code, 0);
    const held = await call(DEMO_USERS.agent, 'resources_delete', deleteDeployment('mcp-parked'));
    assert.equal(held.isError, true);
    assert.match(textOf(held), /no decision while the request was held: approval \S+ by a member of/);
    const id = /call approvals_wait with \{"id": "([^"]+)"\}/.exec(textOf(held))?.[1];
    assert.ok(id, textOf(held));

    const stranger = await call(DEMO_USERS.alice, 'approvals_wait', { id });
    assert.equal(stranger.isError, true);
    assert.match(textOf(stranger), /was asked for by someone else/);
    const early = await call(DEMO_USERS.agent, 'approvals_wait', { id, timeout: 1 });
    assert.equal(early.isError, true);
    assert.match(textOf(early), /is still pending; call approvals_wait again/);
    assert.equal((await admin(['get', 'deployment', 'mcp-parked', '-n', 'prod', '-o', 'name'])).code, 0, 'nothing ran yet');

    // Approved while approvals_wait waits: it wakes and runs the parked call.
    const waiting = call(DEMO_USERS.agent, 'approvals_wait', { id });
    const heldNow = async () => {
      const text = await (await undiciFetch(demo.gateway.metricsUrl!)).text();
      return Number(/^gatehouse_held_requests (\d+)$/m.exec(text)?.[1] ?? 0);
    };
    await waitFor('approvals_wait to be waiting', async () => (await heldNow()) === 1);
    assert.equal((await approvalsCli(demo.kubeconfigs.security, ['approve', id, '--reason', 'approvals_wait test'])).code, 0);
    const done = await waiting;
    assert.equal(done.isError, undefined, textOf(done));
    assert.match(textOf(done), new RegExp(`^approval ${id} given by carol@example\\.com; resources_delete ran:\\nDeployment "mcp-parked" deleted$`));
    assert.notEqual((await admin(['get', 'deployment', 'mcp-parked', '-n', 'prod'])).code, 0, 'deleted');

    const again = await call(DEMO_USERS.agent, 'approvals_wait', { id });
    assert.equal(again.isError, true);
    assert.match(textOf(again), /is used, and no tool call of yours waits on it/);

    const records = toolCalls();
    const parked = records.find((e) => e.tool === 'resources_delete' && e.parkedOn === id);
    assert.ok(parked, 'the held call names the approval it is parked on');
    const resumed = records.find((e) => e.tool === 'approvals_wait' && e.outcome === 'ok');
    assert.deepEqual(resumed?.resumed, { tool: 'resources_delete', argumentsDigest: parked.argumentsDigest });
    assert.equal(resumed.requests.length, 1, 'the DELETE (discovery was cached)');
  });

  it('a denied approval: approvals_wait gives the reason and nothing runs', async () => {
    assert.equal((await admin(['create', 'deployment', 'mcp-parked-denied', '--image=registry.invalid/app:1', '-n', 'prod'])).code, 0);
    const held = await call(DEMO_USERS.agent, 'resources_delete', deleteDeployment('mcp-parked-denied'));
    const id = /call approvals_wait with \{"id": "([^"]+)"\}/.exec(textOf(held))?.[1];
    assert.ok(id, textOf(held));
    assert.equal((await approvalsCli(demo.kubeconfigs.security, ['deny', id, '--reason', 'not during the freeze'])).code, 0);
    const r = await call(DEMO_USERS.agent, 'approvals_wait', { id });
    assert.equal(r.isError, true);
    assert.match(textOf(r), new RegExp(`approval ${id} was denied by carol@example\\.com: not during the freeze; nothing ran`));
    assert.equal((await admin(['get', 'deployment', 'mcp-parked-denied', '-n', 'prod', '-o', 'name'])).code, 0, 'still there');
  });
});
