/**
 * Attack: a recording removed while it is being read (by retention, or by
 * someone covering their tracks) crashed the gateway: the read stream was piped
 * with no error handler. And reads of recordings left no audit record, so who
 * replayed which session was not known. Both through the sessions API.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '../../../src/audit/event.js';
import { createMemoryAuditWriter } from '../../../src/audit/writer.js';
import type { Identity } from '../../../src/identity/identity.js';
import { createSessionsApi, SESSIONS_PREFIX } from '../../../src/recording/api.js';
import { createFileSessionStore, type SessionStore } from '../../../src/recording/sessions.js';
import { waitFor } from '../../support/wait.js';

const CAROL: Identity = { username: 'carol@example.com', uid: '', groups: ['security'], extra: {}, claims: {}, agent: null };

describe('recording/api: reading recordings', () => {
  let dir: string;
  let server: Server;
  let store: SessionStore;
  let served: SessionStore;
  const audit: AuditEvent[] = [];
  let id = '';
  const file = (session: string) => join(dir, `${session}.cast`);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-reads-'));
    store = createFileSessionStore({ dir, failOpen: false });
    served = store;
    const header = {
      version: 2 as const,
      width: 80,
      height: 24,
      timestamp: 1,
      title: 't',
      env: {},
      gatehouse: {
        session: 'se-reads1',
        user: 'alice',
        agent: null,
        onBehalfOf: null,
        namespace: 'dev',
        pod: 'web-0',
        container: 'web',
        command: ['sh'],
        tty: true,
        kind: 'exec' as const,
        auditID: 'a',
      },
    };
    const rec = await store.open(header, (err) => assert.fail(err));
    // Large enough that the answer takes many chunks: the file is removed after the first.
    for (let i = 0; i < 4000; i++) rec.output(Buffer.from(`line ${i} ${'x'.repeat(200)}\n`));
    rec.close({ exitCode: 0, reason: 'exited' });
    id = (await store.list())[0]!.id;
    await waitFor('the recording on disk', () => statSync(file(id)).size > 800_000);
    const api = createSessionsApi({
      // Which store answers is switched per test: a store whose file is gone between lookup and read.
      store: new Proxy(store, { get: (_t, k: keyof SessionStore): unknown => Reflect.get(served, k) }),
      engine: { revision: 'r1', evaluate: () => ({ effect: 'allow', reasons: ['security may replay'], mask: [], inspect: [], audit: { level: 'Metadata' } }) },
      cluster: 'test',
      authenticate: async () => CAROL,
      audit: createMemoryAuditWriter((e) => e.kind === 'Event' && audit.push(e)),
    });
    server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      void api(req, res, u.pathname, u.searchParams);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function get(path: string, onFirstChunk: () => void = () => {}): Promise<{ status: number; bytes: number }> {
    return new Promise((resolve, reject) => {
      request({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          if (bytes === 0) onFirstChunk();
          bytes += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
        res.on('error', reject);
      })
        .on('error', reject)
        .end();
    });
  }

  it('attack: a recording removed between the lookup and the read is a 404 Status, and the gateway lives on', async () => {
    served = { ...store, read: () => store.read('se-gone') };
    try {
      const r = await get(`${SESSIONS_PREFIX}/${id}/cast`);
      assert.equal(r.status, 404);
    } finally {
      served = store;
    }
    const e = await waitFor('the record of the read', () => audit.find((ev) => ev.responseStatus?.code === 404));
    assert.equal(e.gatehouse.error?.code, 'GATEHOUSE_NOT_FOUND');
  });

  it('attack: a recording removed while it is streamed is still answered whole from the open file; the read is audited', async () => {
    const size = statSync(file(id)).size;
    const before = audit.length;
    const r = await get(`${SESSIONS_PREFIX}/${id}/cast`, () => rmSync(file(id)));
    assert.equal(r.status, 200);
    assert.equal(r.bytes, size);
    const e = await waitFor('the record of the read', () => audit.slice(before)[0]);
    assert.deepEqual(
      {
        user: e.user.username,
        verb: e.verb,
        objectRef: e.objectRef,
        code: e.responseStatus?.code,
        decision: e.gatehouse.decision,
        revision: e.gatehouse.policyRevision,
      },
      {
        user: 'carol@example.com',
        verb: 'get',
        objectRef: { resource: 'sessions', apiGroup: 'gatehouse.dev', apiVersion: 'v1', name: id },
        code: 200,
        decision: { effect: 'allow', reasons: ['security may replay'], mask: [] },
        revision: 'r1',
      },
    );
  });

  it('a listing is audited too', async () => {
    const before = audit.length;
    const r = await get(SESSIONS_PREFIX);
    assert.equal(r.status, 200);
    const e = await waitFor('the record of the listing', () => audit.slice(before)[0]);
    assert.equal(e.verb, 'list');
    assert.equal(e.requestURI, SESSIONS_PREFIX);
  });
});
