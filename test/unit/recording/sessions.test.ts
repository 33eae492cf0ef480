import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSessionStore, newSessionId } from '../../../src/recording/sessions.js';

describe('recording/sessions: listing recordings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-sessions-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('lists a session whose command is a long script (a long header must not hide it)', () => {
    const store = createSessionStore({ dir, failOpen: false });
    const id = newSessionId();
    const script = 'echo hidden; '.repeat(2000);
    const rec = store.open(
      {
        version: 2,
        width: 80,
        height: 24,
        timestamp: 1,
        title: `exec dev/web-0: sh -c ${script}`,
        gatehouse: {
          session: id,
          user: 'mallory',
          agent: null,
          onBehalfOf: null,
          namespace: 'dev',
          pod: 'web-0',
          container: 'web',
          command: ['sh', '-c', script],
          tty: false,
          kind: 'exec',
          auditID: 'a',
        },
      },
      (err) => assert.fail(err),
    );
    rec.output(Buffer.from('hidden\n'));
    rec.close({ exitCode: 0, reason: 'exited' });
    const listed = store.list().find((s) => s.id === id);
    assert.ok(listed, 'the session is listed');
    assert.equal(listed.header.gatehouse.user, 'mallory');
    assert.deepEqual(listed.end, { exitCode: 0, reason: 'exited' });
  });
});
