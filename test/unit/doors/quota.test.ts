/**
 * Long-running requests per user (src/doors/quota.ts): watches and follows a user holds open through
 * the HTTP door are counted, and one past limits.maxLongRunningPerUser is refused with a 429 Status
 * that client-go backs off on; other users, ordinary requests and the places given back are not held
 * against anyone.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request, type IncomingMessage, type Server } from 'node:http';
import type { AuditEvent } from '../../../src/audit/event.js';
import { createStreamQuota } from '../../../src/doors/quota.js';
import type { Identity } from '../../../src/identity/identity.js';
import type { Decision } from '../../../src/policy/decision.js';
import { closeServers, completedRecord, startTestPipeline, startTestUpstream } from '../../support/pipeline.js';
import { waitFor } from '../../support/wait.js';

const person = (username: string): Identity => ({ username, uid: '', groups: ['dev', 'system:authenticated'], extra: {}, claims: {}, agent: null });
const ALLOW: Decision = { effect: 'allow', reasons: ['test'], mask: [], inspect: [], audit: { level: 'Metadata' } };

describe('doors/quota: long-running requests per user', () => {
  let upstream: Server;
  let gateway: Server;
  let port: number;
  let who = person('alice');
  const audit: AuditEvent[] = [];

  before(async () => {
    const up = await startTestUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // A watch stays open; anything else is answered at once.
      if (req.url?.includes('watch=1')) res.write('{"type":"ADDED","object":{}}\n');
      else res.end('{"kind":"ConfigMapList","items":[]}');
    });
    upstream = up.server;
    ({ server: gateway, port } = await startTestPipeline({
      upstreamUrl: up.url,
      identity: () => who,
      decision: ALLOW,
      audit,
      quota: createStreamQuota(2),
    }));
  });
  after(() => closeServers(gateway, upstream));

  async function get(path: string): Promise<{ res: IncomingMessage; body: () => Promise<string> }> {
    const req = request({ host: '127.0.0.1', port, path, headers: { authorization: 'Bearer t', accept: 'application/json' } });
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    return {
      res,
      body: async () => {
        let text = '';
        for await (const c of res) text += String(c);
        return text;
      },
    };
  }
  const watch = () => get('/api/v1/namespaces/dev/configmaps?watch=1');

  it('attack: one user opening watches without end: a third watch of a user allowed two is refused with 429 TooManyRequests, Retry-After and a record; other users and plain GETs go on', async () => {
    who = person('alice');
    const open = [await watch(), await watch()];
    assert.deepEqual(
      open.map((w) => w.res.statusCode),
      [200, 200],
    );
    const before = audit.length;
    const third = await watch();
    assert.equal(third.res.statusCode, 429);
    assert.equal(third.res.headers['retry-after'], '1');
    const status = JSON.parse(await third.body()) as { reason: string; code: number; message: string; details?: { retryAfterSeconds?: number } };
    assert.deepEqual([status.reason, status.code, status.details?.retryAfterSeconds], ['TooManyRequests', 429, 1]);
    assert.match(status.message, /alice already has 2 watches, follows and sessions open through this gateway \(limits\.maxLongRunningPerUser\)/);
    const e = await completedRecord(audit, before);
    assert.deepEqual([e.responseStatus?.code, e.gatehouse.error?.code], [429, 'GATEHOUSE_TOO_MANY_REQUESTS']);

    assert.equal((await get('/api/v1/namespaces/dev/configmaps')).res.statusCode, 200, 'a plain GET is not a long-running request');
    who = person('bob');
    const bobs = await watch();
    assert.equal(bobs.res.statusCode, 200, 'the count is per user');
    bobs.res.destroy();

    // A watch its client closes gives its place back.
    who = person('alice');
    open[0]!.res.destroy();
    await waitFor('a place for alice again', async () => {
      const w = await watch();
      if (w.res.statusCode === 200) return w;
      w.res.resume();
      return undefined;
    });
  });
});
