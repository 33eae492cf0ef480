/**
 * The approval stage on the real SQLite store (in memory) with a hand-driven
 * clock: fingerprints, who may decide, hold and refuse, expiry, single use
 * under concurrency, and shutdown. The end-to-end suite runs the same code
 * behind kubectl and PostgreSQL.
 */
import assert from 'node:assert/strict';
import type { ApprovalEvent, AuditRecord } from '../../../src/audit/event.js';
import { createMemoryAuditWriter } from '../../../src/audit/writer.js';
import { fingerprint, subjectOf, whyNotApprover, type Approval } from '../../../src/approval/approval.js';
import { createApprovalService, type ApprovalService, type GateRequest } from '../../../src/approval/service.js';
import { openSqliteStore } from '../../../src/approval/sqlite-store.js';
import type { ApprovalStore } from '../../../src/approval/store.js';
import { GatehouseError, toStatus } from '../../../src/errors.js';
import { createCallSeal } from '../../../src/mcp/parked.js';
import type { Identity } from '../../../src/identity/identity.js';
import { parseTarget } from '../../../src/request/attributes.js';

function person(username: string, groups: string[] = []): Identity {
  return { username, uid: '', groups: [...groups, 'system:authenticated'], extra: {}, claims: {}, agent: null };
}
function agent(onBehalfOf: string | null, session = 's1'): Identity {
  return { username: 'agent:bot', uid: '', groups: ['agents', 'system:authenticated'], extra: {}, claims: {}, agent: { name: 'bot', onBehalfOf, session } };
}

const target = parseTarget('DELETE', '/apis/apps/v1/namespaces/prod/deployments/web', '');
const body = Buffer.from('{"propagationPolicy":"Background"}');

describe('approval fingerprints', () => {
  const base = fingerprint(agent('alice'), 'delete', '/apis/apps/v1/namespaces/prod/deployments/web', body);
  it('match for the same caller, verb, path and body, whatever the token session', () => {
    assert.equal(fingerprint(agent('alice', 'another-session'), 'delete', '/apis/apps/v1/namespaces/prod/deployments/web', Buffer.from(body)), base);
  });
  const cases: [string, string][] = [
    ['another human behind the agent', fingerprint(agent('bob'), 'delete', '/apis/apps/v1/namespaces/prod/deployments/web', body)],
    ['the person instead of the agent', fingerprint(person('agent:bot'), 'delete', '/apis/apps/v1/namespaces/prod/deployments/web', body)],
    ['another object', fingerprint(agent('alice'), 'delete', '/apis/apps/v1/namespaces/prod/deployments/web2', body)],
    ['a query', fingerprint(agent('alice'), 'delete', '/apis/apps/v1/namespaces/prod/deployments/web?gracePeriodSeconds=0', body)],
    ['another body', fingerprint(agent('alice'), 'delete', '/apis/apps/v1/namespaces/prod/deployments/web', Buffer.from('{"propagationPolicy":"Orphan"}'))],
    ['no body', fingerprint(agent('alice'), 'delete', '/apis/apps/v1/namespaces/prod/deployments/web', undefined)],
    ['another verb', fingerprint(agent('alice'), 'deletecollection', '/apis/apps/v1/namespaces/prod/deployments/web', body)],
  ];
  for (const [what, fp] of cases) it(`differ for ${what}`, () => assert.notEqual(fp, base));
});

describe('approval service (SQLite in memory, manual clock)', () => {
  let store: ApprovalStore;
  let service: ApprovalService;
  let clock: number;
  let audit: AuditRecord[];
  let announced: Approval[];

  function setUp(mode: { agents: 'hold' | 'refuse'; people: 'hold' | 'refuse' } = { agents: 'hold', people: 'refuse' }) {
    store = openSqliteStore(':memory:');
    clock = Date.parse('2026-11-25T12:00:00Z');
    audit = [];
    announced = [];
    service = createApprovalService({
      store,
      audit: createMemoryAuditWriter((e) => audit.push(e)),
      settings: { mode, holdSeconds: 60, maxTtlSeconds: 3600, publicUrl: 'https://gw.example', sweepSeconds: 3600 },
      now: () => clock,
      announce: (a) => announced.push(a),
    });
  }
  afterEach(async () => {
    await service.close();
    await store.close();
  });

  function request(identity: Identity, signal = new AbortController().signal, ttlSeconds = 900): GateRequest {
    return {
      identity,
      fingerprint: fingerprint(identity, 'delete', target.path, body),
      subject: subjectOf(identity, target, 'DELETE', null, ['prod deletes need approval'], body),
      policy: { approverGroups: ['security'], ttlSeconds, singleUse: true, fields: [], maxGrantSeconds: 0, grantGroups: ['security'] },
      auditId: 'audit-1',
      signal,
    };
  }

  /** The id of the approval a held request opened, once it has. */
  async function pendingId(): Promise<string> {
    for (;;) {
      const [a] = await store.list({ state: 'pending', limit: 1 });
      if (a) return a.id;
      await new Promise((r) => setImmediate(r));
    }
  }

  const actions = () => audit.filter((e): e is ApprovalEvent => e.kind === 'ApprovalEvent').map((e) => e.action);

  async function refused(p: Promise<unknown>): Promise<GatehouseError> {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof GatehouseError);
      return err;
    }
    assert.fail('expected a refusal');
  }

  it('refuses a person at once, with the id, the command and the URL, and reuses the pending approval', async () => {
    setUp();
    const err = await refused(service.gate(request(person('erin', ['admins']))));
    assert.equal(err.status, 403);
    const id = /approval (ap-[a-z0-9]+)/.exec(err.message)![1]!;
    assert.equal(
      err.message,
      `this request needs approval: approval ${id} by a member of security is pending until 2026-11-25T12:15:00.000Z (prod deletes need approval). An approver runs \`gatehouse approvals approve ${id}\` or opens https://gw.example/gatehouse/approvals/${id}; then run the same command again.`,
    );
    assert.deepEqual(
      toStatus(err).details,
      { group: 'gatehouse.dev', kind: 'approvals', name: id },
      'the Status names the approval for clients that read details',
    );
    const again = await refused(service.gate(request(person('erin', ['admins']))));
    assert.match(again.message, new RegExp(id));
    assert.deepEqual(actions(), ['create']);
    assert.equal(announced.length, 1, 'announced once');
    assert.equal(await store.countPending(), 1, 'one pending approval, reused');
  });

  it('holds an agent until approved, then lets exactly that request through once', async () => {
    setUp();
    const held = service.gate(request(agent('alice')));
    const id = await pendingId();
    const approved = await service.decide(id, person('carol', ['security']), true, 'ok');
    assert.equal(approved.state, 'approved');
    assert.equal(approved.expiresAt, clock + 900_000, 'valid for ttl from the approval');
    assert.deepEqual(await held, { id, approvedBy: 'carol' });
    assert.deepEqual(actions(), ['create', 'approve', 'use']);
    assert.equal(await store.countPending(), 0);
    assert.equal((await store.get(id))!.state, 'used');
  });

  it('attack on the audit trail (an approval that seems used before it was given): a decision is stamped with the moment it was made, though storing it takes long enough for another replica to use it first', async () => {
    setUp();
    const held = service.gate(request(agent('alice')));
    const id = await pendingId();
    const decidedAt = clock;
    const stored = store.decide.bind(store);
    // Storing takes 50 ms (a PostgreSQL commit and its NOTIFY), during which the holder may act on it.
    (store as { decide: ApprovalStore['decide'] }).decide = async (...args) => {
      const r = await stored(...args);
      clock += 50;
      return r;
    };
    await service.decide(id, person('carol', ['security']), true, 'ok');
    await held;
    const events = audit.filter((e): e is ApprovalEvent => e.kind === 'ApprovalEvent');
    const at = (action: string) => events.find((e) => e.action === action)!.timestamp;
    assert.equal(at('approve'), new Date(decidedAt).toISOString());
    assert.ok(at('approve') < at('use'), 'the approval is recorded before its use');
  });

  it('lets one of two concurrent requests use a single-use approval', async () => {
    setUp({ agents: 'refuse', people: 'refuse' });
    const err = await refused(service.gate(request(agent('alice'))));
    const id = /approval (ap-[a-z0-9]+)/.exec(err.message)![1]!;
    await service.decide(id, person('carol', ['security']), true, '');
    const results = await Promise.allSettled([service.gate(request(agent('alice'))), service.gate(request(agent('alice')))]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    assert.equal(actions().filter((a) => a === 'use').length, 1);
  });

  it('tells a held agent the reason of a denial', async () => {
    setUp();
    const held = service.gate(request(agent('alice')));
    const id = await pendingId();
    await service.decide(id, person('carol', ['security']), false, 'not during the freeze');
    const err = await refused(held);
    assert.equal(err.message, `approval ${id} was denied by carol: not during the freeze`);
  });

  it('expires what nobody decided on, records it, and refuses a late approval', async () => {
    setUp({ agents: 'refuse', people: 'refuse' });
    const err = await refused(service.gate(request(agent('alice'))));
    const id = /approval (ap-[a-z0-9]+)/.exec(err.message)![1]!;
    clock += 901_000;
    await service.sweep();
    assert.equal((await store.get(id))!.state, 'expired');
    const late = await refused(service.decide(id, person('carol', ['security']), true, ''));
    assert.equal(late.status, 409);
    assert.deepEqual(actions(), ['create', 'expire']);
    // Asking again opens a new approval.
    const next = await refused(service.gate(request(agent('alice'))));
    assert.doesNotMatch(next.message, new RegExp(id));
  });

  it("a held request whose approval expires is told it expired, even when the hold's timer fires before the clock reaches the expiry", async () => {
    // A clock running at 0.99 of the timers' pace: the hold's timer, set for the approval's 1 s, always fires when the
    // clock says 990 ms, as a real timer may fire a moment early by Date.now(). The request was once told "no decision".
    store = openSqliteStore(':memory:');
    audit = [];
    const start = Date.now();
    service = createApprovalService({
      store,
      audit: createMemoryAuditWriter((e) => audit.push(e)),
      settings: { mode: { agents: 'hold', people: 'hold' }, holdSeconds: 60, maxTtlSeconds: 3600, publicUrl: 'https://gw.example', sweepSeconds: 3600 },
      now: () => start + (Date.now() - start) * 0.99,
    });
    const err = await refused(service.gate(request(agent('alice'), undefined, 1)));
    assert.match(err.message, /approval ap-[a-z0-9]+ expired before anyone approved it/);
    assert.deepEqual(actions(), ['create', 'expire']);
  });

  it('keeps an MCP call parked under an approval for its user only, and forgets it once the approval is spent', async () => {
    setUp();
    await refused(service.gate(request(person('erin', ['admins']))));
    const id = await pendingId();
    const seal = createCallSeal(Buffer.alloc(32, 7));
    const call = { tool: 'resources_create_or_update', args: { resource: 'kind: Secret\nstringData: {password: hunter2}' } };
    await store.parkCall(id, 'erin', seal.seal(id, 'erin', call), clock);
    const kept = await store.parkedCall(id, 'erin');
    assert.ok(kept);
    assert.doesNotMatch(Buffer.from(kept, 'base64').toString('latin1'), /hunter2/, 'sealed: no argument in the clear');
    assert.deepEqual(seal.open(id, 'erin', kept), call);
    assert.equal(await store.parkedCall(id, 'mallory'), undefined, "another user's lookup finds nothing");
    assert.throws(() => seal.open('ap-other', 'erin', kept), /does not open/, 'bound to its approval');
    assert.throws(() => seal.open(id, 'mallory', kept), /does not open/, 'bound to its user');
    assert.throws(() => createCallSeal(Buffer.alloc(32, 8)).open(id, 'erin', kept), /masking.hashKeyFile must be the same/);
    const denied = await service.decide(id, person('carol', ['security']), false, 'no');
    await service.sweep();
    assert.ok(await store.parkedCall(id, 'erin'), 'kept a while, so approvals_wait can say it was denied');
    clock = denied.expiresAt + 3600_000 + 1;
    await service.sweep();
    assert.equal(await store.parkedCall(id, 'erin'), undefined, 'a denied approval takes its parked call with it, an hour past its time');
  });

  it('waitFor wakes on a decision and answers at once for one already decided', async () => {
    setUp();
    await refused(service.gate(request(person('erin', ['admins']))));
    const id = await pendingId();
    const waiting = service.waitFor(id, clock + 60_000, new AbortController().signal);
    while (service.held() === 0) await new Promise((r) => setImmediate(r));
    await service.decide(id, person('carol', ['security']), true, 'ok');
    assert.equal((await waiting)?.state, 'approved');
    assert.equal((await service.waitFor(id, clock, new AbortController().signal))?.state, 'approved');
    assert.equal(await service.waitFor('ap-none', clock, new AbortController().signal), undefined);
  });

  describe('time-bound grants', () => {
    /** A delete by `who` in `ns` of `name`, under a policy that allows grants of up to an hour by security. */
    const grantable = (who: Identity, ns: string, name: string, verb: 'DELETE' | 'PATCH' = 'DELETE'): GateRequest => {
      const t = parseTarget(verb, `/apis/apps/v1/namespaces/${ns}/deployments/${name}`, '');
      return {
        identity: who,
        fingerprint: fingerprint(who, t.attributes.verb, t.path, undefined),
        subject: subjectOf(who, t, verb, null, ['r'], undefined, { grant: { maxSeconds: 3600, groups: ['security'] } }),
        policy: { approverGroups: ['security'], ttlSeconds: 900, singleUse: true, fields: [], maxGrantSeconds: 3600, grantGroups: ['security'] },
        auditId: `a-${ns}-${name}`,
        signal: new AbortController().signal,
      };
    };
    const erin = () => person('erin', ['admins']);
    const carol = () => person('carol', ['security']);

    it('lets the same requester do the same verb on the same kind in the same namespace until it expires; nothing else', async () => {
      setUp();
      const first = await refused(service.gate(grantable(erin(), 'prod', 'web')));
      const id = /approval (ap-[a-z0-9]+)/.exec(first.message)![1]!;
      const decided = await service.decide(id, carol(), true, 'rollout', { seconds: 1800 });
      assert.match(decided.grant!.id, /^gr-/);
      assert.equal(decided.grant!.expiresAt, clock + 1_800_000);
      // Another object of the same kind: through on the grant, no approval opened.
      const other = await service.gate(grantable(erin(), 'prod', 'api'));
      assert.deepEqual(other, { id: decided.grant!.id, approvedBy: 'carol' });
      assert.equal(await store.countPending(), 0);
      // Another namespace, verb or requester: a new approval, as before.
      for (const r of [grantable(erin(), 'dev', 'web'), grantable(erin(), 'prod', 'web', 'PATCH'), grantable(person('frank', ['admins']), 'prod', 'web')])
        assert.equal((await refused(service.gate(r))).status, 403);
      clock += 1_800_001;
      assert.equal((await refused(service.gate(grantable(erin(), 'prod', 'db')))).status, 403, 'expired');
      assert.deepEqual(
        audit.filter((e): e is ApprovalEvent => e.kind === 'ApprovalEvent' && e.action === 'grant').map((e) => e.grant?.scope),
        ['erin may delete deployments.apps in prod'],
      );
    });

    it('attack: a grant for ordinary writes does not cover one the policy lets no grant cover (a privileged pod spec)', async () => {
      setUp();
      const id = /approval (ap-[a-z0-9]+)/.exec((await refused(service.gate(grantable(erin(), 'prod', 'web')))).message)![1]!;
      const { grant } = await service.decide(id, carol(), true, '', { seconds: 1800 });
      assert.equal((await service.gate(grantable(erin(), 'prod', 'api'))).id, grant!.id);
      // The same verb on the same kind, but this write's approval allows no grant (or a shorter one, or other givers).
      for (const policy of [
        { maxGrantSeconds: 0, grantGroups: ['security'] },
        { maxGrantSeconds: 600, grantGroups: ['security'] },
        { maxGrantSeconds: 3600, grantGroups: ['sre'] },
      ]) {
        const risky = grantable(erin(), 'prod', 'api');
        assert.equal((await refused(service.gate({ ...risky, policy: { ...risky.policy, ...policy } }))).status, 403, JSON.stringify(policy));
      }
    });

    it('is revoked at once, and may be narrowed to named objects', async () => {
      setUp();
      const id = /approval (ap-[a-z0-9]+)/.exec((await refused(service.gate(grantable(erin(), 'prod', 'web')))).message)![1]!;
      const { grant } = await service.decide(id, carol(), true, '', { seconds: 600, names: ['web', 'api'] });
      assert.equal((await service.gate(grantable(erin(), 'prod', 'api'))).id, grant!.id);
      assert.equal((await refused(service.gate(grantable(erin(), 'prod', 'db')))).status, 403, 'not named');
      assert.deepEqual(
        (await service.grants(erin())).map((g) => g.id),
        [grant!.id],
        'the requester sees it',
      );
      assert.deepEqual(await service.grants(person('frank', ['admins'])), [], 'others do not');
      await assert.rejects(service.revoke(grant!.id, person('frank', ['admins'])), /does not exist or is not yours/);
      const revoked = await service.revoke(grant!.id, carol());
      assert.equal(revoked.revokedBy, 'carol');
      assert.equal((await refused(service.gate(grantable(erin(), 'prod', 'api')))).status, 403, 'revoked: asks again');
      await assert.rejects(service.revoke(grant!.id, carol()), /already revoked/);
    });

    it('is given only as long and by whom the policy says, and never with a denial', async () => {
      setUp();
      const id = /approval (ap-[a-z0-9]+)/.exec((await refused(service.gate(grantable(erin(), 'prod', 'web')))).message)![1]!;
      await assert.rejects(service.decide(id, carol(), true, '', { seconds: 3601 }), /at most 3600 s/);
      await assert.rejects(service.decide(id, carol(), false, '', { seconds: 60 }), /comes with an approval, not a denial/);
      const id2 = /approval (ap-[a-z0-9]+)/.exec((await refused(service.gate(request(person('erin', ['admins']))))).message)![1]!;
      await assert.rejects(service.decide(id2, carol(), true, '', { seconds: 60 }), /allows no grant/);
      assert.equal((await store.get(id))!.state, 'pending', 'a refused grant decides nothing');
    });
  });

  it('caps the policy ttl with approvals.maxTtlSeconds', async () => {
    setUp({ agents: 'refuse', people: 'refuse' });
    await refused(service.gate(request(agent('alice'), undefined, 999_999)));
    const [a] = await store.list({ limit: 1 });
    assert.equal(a!.ttlSeconds, 3600);
  });

  it('answers a held request with 503 when the gateway shuts down, and keeps the approval pending', async () => {
    setUp();
    const held = service.gate(request(agent('alice')));
    await pendingId();
    await service.close();
    const err = await refused(held);
    assert.equal(err.status, 503);
    assert.equal((await store.list({ limit: 1 }))[0]!.state, 'pending');
  });

  it('stops holding when the client goes away, and keeps the approval pending', async () => {
    setUp();
    const gone = new AbortController();
    const held = service.gate(request(agent('alice'), gone.signal));
    await pendingId();
    gone.abort();
    assert.match((await refused(held)).message, /the client went away while waiting/);
  });
});

describe('who may decide on an approval', () => {
  const store = openSqliteStore(':memory:');
  after(() => store.close());
  const rows: [string, Identity, Identity, string | undefined][] = [
    ['a member of the approver group', agent('alice'), person('carol', ['security']), undefined],
    ['the requester', person('erin', ['security']), person('erin', ['security']), 'you cannot approve your own request'],
    ['the human behind the agent', agent('carol'), person('carol', ['security']), 'you cannot approve a request made by an agent acting on your behalf (bot)'],
    ['someone outside the approver groups', agent('alice'), person('bob', ['admins']), 'only members of security may decide on this approval'],
    ['an agent, even in the group', agent('alice'), { ...agent('dave'), groups: ['security'] }, 'an agent cannot approve requests; a person in security must'],
  ];
  for (const [what, requester, approver, expected] of rows) {
    it(`${expected ? 'refuses' : 'accepts'} ${what}`, async () => {
      const { approval } = await store.open(
        {
          id: `ap-${what.length}${Math.random().toString(36).slice(2, 8)}`,
          fingerprint: what,
          subject: subjectOf(requester, target, 'DELETE', null, [], body),
          approverGroups: ['security'],
          singleUse: true,
          ttlSeconds: 60,
        },
        Date.now(),
      );
      assert.equal(whyNotApprover(approval, approver), expected);
    });
  }
});
