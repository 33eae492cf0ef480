/**
 * Inspected writes (a policy's `inspect: ["object"]`) through the HTTP door,
 * against a small scripted upstream: the dry run as the requester, the second
 * evaluation on its object, and every way the inspection fails closed. The
 * end-to-end suite runs the bundled policy's rules against kube-apiserver.
 */
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuditEvent } from '../../../src/audit/event.js';
import type { Identity } from '../../../src/identity/identity.js';
import type { Decision } from '../../../src/policy/decision.js';
import type { PolicyInput } from '../../../src/policy/input.js';
import { startTestPipeline, startTestUpstream } from '../../support/pipeline.js';

const ALICE: Identity = { username: 'alice@example.com', uid: '', groups: ['dev', 'system:authenticated'], extra: {}, claims: {}, agent: null };
const PATH = '/apis/apps/v1/namespaces/dev/deployments/web';
const META = { level: 'Metadata' } as const;

const deployment = (privileged: boolean) => ({
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'dev' },
  spec: { template: { spec: { containers: [{ name: 'app', image: 'nginx', ...(privileged ? { securityContext: { privileged: true } } : {}) }] } } },
});

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

type Reply = { status: number; body: unknown } | 'hang-up';

describe('admission: a write the policy asks to inspect is decided on the object the API server would store', () => {
  let upstream: Server;
  let gateway: Server;
  let seen: Seen[] = [];
  let inputs: PolicyInput[] = [];
  let policy: (input: PolicyInput) => Decision;
  let dryRunReply: Reply;
  let currentReply: Reply;
  const audit: AuditEvent[] = [];

  before(async () => {
    let upstreamUrl: string;
    ({ server: upstream, url: upstreamUrl } = await startTestUpstream((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        const reply: Reply =
          req.method === 'GET' ? currentReply : req.url!.includes('dryRun=All') ? dryRunReply : { status: 200, body: { ...deployment(false), written: true } };
        if (reply === 'hang-up') {
          req.socket.destroy();
          return;
        }
        res.writeHead(reply.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(reply.body));
      });
    }));
    ({ server: gateway } = await startTestPipeline({
      upstreamUrl,
      identity: () => ALICE,
      decision: (input) => {
        inputs.push(input);
        return policy(input);
      },
      audit,
      maxBodyBytes: 64 * 1024,
      policyBodyBytes: 4096,
    }));
  });
  after(() => {
    upstream.close();
    gateway.close();
  });
  beforeEach(() => {
    seen = [];
    inputs = [];
    audit.length = 0;
    currentReply = { status: 200, body: deployment(false) };
    dryRunReply = { status: 200, body: deployment(true) };
    // Allow, but look at the result first; deny what runs privileged.
    policy = (input) => {
      const object = input.request.object as ReturnType<typeof deployment> | undefined;
      if (!object) return { effect: 'allow', reasons: ['dev may write'], mask: [], inspect: ['object'], audit: META };
      const privileged = object.spec.template.spec.containers.some((c) => 'securityContext' in c && c.securityContext.privileged);
      return privileged
        ? { effect: 'deny', reasons: ['container "app" sets securityContext.privileged: true'], audit: META }
        : { effect: 'allow', reasons: ['dev may write'], mask: [], inspect: ['object'], audit: META };
    };
  });

  function send(method: string, path: string, body?: string, contentType = 'application/strategic-merge-patch+json') {
    return new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: (gateway.address() as AddressInfo).port,
          method,
          path,
          headers: { authorization: 'Bearer t', ...(body ? { 'content-type': contentType } : {}) },
        },
        (res) => {
          let data = '';
          res.on('data', (d: Buffer) => (data += d.toString())).on('end', () => resolve({ status: res.statusCode!, body: data }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  const PATCH = JSON.stringify({ spec: { template: { spec: { containers: [{ name: 'app', securityContext: { privileged: true } }] } } } });

  it('runs the same write as a dry run, as the requester, and asks the policy again with object and oldObject; the second answer decides', async () => {
    const r = await send('PATCH', `${PATH}?fieldManager=kubectl-patch`, PATCH);
    assert.equal(r.status, 403, r.body);
    assert.match(JSON.parse(r.body).message, /container "app" sets securityContext\.privileged: true/);
    assert.equal(inputs.length, 2);
    assert.equal(inputs[0]!.request.object, undefined);
    assert.deepEqual(inputs[1]!.request.object, deployment(true));
    assert.deepEqual(inputs[1]!.request.oldObject, deployment(false));
    // The dry run and the read of the object as it is; the write itself never went out.
    assert.deepEqual(seen.map((s) => `${s.method} ${s.url}`).sort(), [`GET ${PATH}`, `PATCH ${PATH}?fieldManager=kubectl-patch&dryRun=All`]);
    const dry = seen.find((s) => s.method === 'PATCH')!;
    assert.equal(dry.body, PATCH);
    assert.equal(dry.headers['content-type'], 'application/strategic-merge-patch+json');
    assert.equal(dry.headers['impersonate-user'], 'alice@example.com');
    const record = audit.at(-1)!;
    assert.equal(record.gatehouse.decision?.effect, 'deny');
    // At Metadata level the record keeps neither object: a Secret's would be its data.
    const stored = record.gatehouse.input as { request: { object: unknown; oldObject: unknown } };
    assert.equal(stored.request.object, null);
    assert.equal(stored.request.oldObject, null);
  });

  it('forwards the write once the second answer allows it', async () => {
    dryRunReply = { status: 200, body: deployment(false) };
    const r = await send('PATCH', PATH, '{"metadata":{"labels":{"a":"b"}}}');
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).written, true);
    assert.deepEqual(seen.map((s) => `${s.method} ${s.url}`).sort(), [`GET ${PATH}`, `PATCH ${PATH}`, `PATCH ${PATH}?dryRun=All`]);
  });

  it('a create has no old object, whatever its name holds now', async () => {
    dryRunReply = { status: 201, body: deployment(false) };
    currentReply = { status: 404, body: { kind: 'Status', code: 404, reason: 'NotFound' } };
    const r = await send('POST', '/apis/apps/v1/namespaces/dev/deployments', JSON.stringify(deployment(false)), 'application/json');
    assert.equal(r.status, 200, r.body);
    assert.equal(inputs[1]!.request.oldObject, null);
  });

  it('a write the policy does not ask about pays no extra round trip', async () => {
    policy = () => ({ effect: 'allow', reasons: ['ok'], mask: [], inspect: [], audit: META });
    const r = await send('PATCH', PATH, '{"metadata":{"labels":{"a":"b"}}}');
    assert.equal(r.status, 200);
    assert.deepEqual(
      seen.map((s) => `${s.method} ${s.url}`),
      [`PATCH ${PATH}`],
    );
    assert.equal(inputs.length, 1);
  });

  it("a dry run the API server refuses refuses the request with the API server's own Status, and writes nothing", async () => {
    const invalid = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value',
      reason: 'Invalid',
      details: { name: 'web', group: 'apps', kind: 'Deployment', causes: [{ reason: 'FieldValueRequired', field: 'spec.template.spec.containers[0].image' }] },
      code: 422,
    };
    dryRunReply = { status: 422, body: invalid };
    const r = await send('PATCH', PATH, PATCH);
    assert.equal(r.status, 422);
    const status = JSON.parse(r.body);
    assert.equal(status.reason, 'Invalid');
    assert.equal(status.message, invalid.message);
    assert.deepEqual(status.details, invalid.details);
    assert.equal(inputs.length, 1);
    assert.ok(!seen.some((s) => s.method === 'PATCH' && !s.url.includes('dryRun=All')), 'the write went out');
    assert.equal(audit.at(-1)!.responseStatus?.code, 422);
  });

  it("the API server's 401 is about the gateway's credentials: answered 502, not relayed (kubectl would renew a good token)", async () => {
    dryRunReply = { status: 401, body: { kind: 'Status', code: 401, reason: 'Unauthorized', message: 'Unauthorized' } };
    const r = await send('PATCH', PATH, PATCH);
    assert.equal(r.status, 502);
    assert.match(JSON.parse(r.body).message, /answered its dry run with 401/);
  });

  it('a dry run that cannot be made fails closed (502), and writes nothing', async () => {
    dryRunReply = 'hang-up';
    const r = await send('PATCH', PATH, PATCH);
    assert.equal(r.status, 502, r.body);
    assert.match(JSON.parse(r.body).message, /the dry run that shows it failed/);
    assert.ok(!seen.some((s) => s.method === 'PATCH' && !s.url.includes('dryRun=All')));
  });

  it('an object larger than limits.policyBodyBytes is refused (413): the policy cannot judge what it cannot read', async () => {
    const big = deployment(false);
    dryRunReply = { status: 200, body: { ...big, metadata: { ...big.metadata, annotations: { pad: 'x'.repeat(5000) } } } };
    const r = await send('PATCH', PATH, '{"metadata":{"labels":{"a":"b"}}}');
    assert.equal(r.status, 413, r.body);
    assert.match(JSON.parse(r.body).message, /limits\.policyBodyBytes/);
  });

  it('asking to inspect a read is a policy error: denied, nothing forwarded', async () => {
    policy = () => ({ effect: 'allow', reasons: ['ok'], mask: [], inspect: ['object'], audit: META });
    const r = await send('GET', PATH);
    assert.equal(r.status, 403);
    assert.match(JSON.parse(r.body).message, /only create, update and patch can be inspected/);
    assert.deepEqual(seen, []);
  });

  it('a deny is final: no dry run is made for it', async () => {
    policy = () => ({ effect: 'deny', reasons: ['no'], audit: META });
    const r = await send('PATCH', PATH, PATCH);
    assert.equal(r.status, 403);
    assert.deepEqual(seen, []);
  });
});
