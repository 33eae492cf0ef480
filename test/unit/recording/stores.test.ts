/**
 * The two places recordings are kept — files (one gateway) and PostgreSQL
 * (replicas) — behave alike: what one replica records, another lists and reads
 * back byte for byte, streamed; and a PostgreSQL that fails or falls behind
 * mid-session fails the recording, so the session ends (fail closed).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { CastHeader, Recorder } from '../../../src/recording/asciicast.js';
import { createPostgresSessionStore, SESSION_SCHEMA } from '../../../src/recording/postgres-sessions.js';
import { createFileSessionStore, newSessionId, type SessionStore } from '../../../src/recording/sessions.js';
import { DatabaseError, openPostgres, type Postgres } from '../../../src/store/postgres.js';
import { startPostgres, type RunningPostgres } from '../../support/postgres.js';
import { waitFor } from '../../support/wait.js';

function headerOf(id: string, command: string[] = ['sh']): CastHeader {
  return {
    version: 2,
    width: 80,
    height: 24,
    timestamp: Math.floor(Date.now() / 1000),
    title: `exec dev/web-0: ${command.join(' ')}`,
    gatehouse: {
      session: id,
      user: 'mallory',
      agent: null,
      onBehalfOf: null,
      namespace: 'dev',
      pod: 'web-0',
      container: 'web',
      command,
      tty: false,
      kind: 'exec',
      auditID: 'a',
    },
  };
}

async function readAll(store: SessionStore, id: string): Promise<{ text: string; pieces: number }> {
  const cast = await store.read(id);
  assert.ok(cast, `${id} can be read`);
  let text = '';
  let pieces = 0;
  for await (const chunk of cast) {
    text += String(chunk);
    pieces++;
  }
  return { text, pieces };
}

describe('recording stores: files and PostgreSQL keep the same recordings', () => {
  let postgres: RunningPostgres;
  let dbs: Postgres[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-stores-'));
  const limits = { chunkBytes: 16 * 1024, highWaterBytes: 64 * 1024, flushMs: 20, maxBacklogBytes: 256 * 1024, readBatch: 4 };

  before(async function () {
    this.timeout(60_000);
    postgres = await startPostgres();
    // Two pools on one database, as two replicas have.
    for (let i = 0; i < 2; i++) dbs.push(await openPostgres({ connectionString: postgres.url, schema: SESSION_SCHEMA, onError: () => {} }));
  });
  after(async () => {
    for (const db of dbs) await db.close();
    dbs = [];
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const kinds = {
    files: () => {
      const s = createFileSessionStore({ dir, failOpen: false });
      return { writer: s, reader: s };
    },
    postgres: () => ({
      writer: createPostgresSessionStore({ db: dbs[0]!, failOpen: false, limits }),
      reader: createPostgresSessionStore({ db: dbs[1]!, failOpen: false, limits }),
    }),
  };

  for (const [kind, make] of Object.entries(kinds)) {
    it(`${kind}: what one store records, another lists, shows and reads back whole, in many pieces`, async () => {
      const { writer, reader } = make();
      const id = newSessionId();
      const rec = await writer.open(headerOf(id), (err) => assert.fail(err));
      rec.resize(120, 40);
      for (let i = 0; i < 2000; i++) rec.output(Buffer.from(`line ${i} ${'x'.repeat(100)}\r\n`));
      // A character split across two frames is written once, whole.
      rec.output(Buffer.from([0xe2, 0x82]));
      rec.output(Buffer.from([0xac, 0x0a]));
      rec.close({ exitCode: 3, reason: 'exited' });
      await writer.close();

      const listed = (await reader.list()).find((s) => s.id === id);
      assert.ok(listed, 'listed by the other store');
      assert.deepEqual(listed.end, { exitCode: 3, reason: 'exited' });
      assert.equal(listed.header.width, 120);
      assert.deepEqual(await reader.get(id), listed);

      const { text, pieces } = await readAll(reader, id);
      const lines = text.trimEnd().split('\n');
      assert.equal((JSON.parse(lines[0]!) as CastHeader).gatehouse.session, id);
      assert.equal(lines.length, 1 + 2000 + 1 + 1, 'header, 2000 outputs, the euro sign, the end marker');
      assert.deepEqual((JSON.parse(lines[2001]!) as unknown[]).slice(1), ['o', '€\n']);
      assert.match(lines[lines.length - 1]!, /"m","exit \{\\"exitCode\\":3/);
      assert.ok(pieces > 1, `streamed in pieces, not read whole (${pieces})`);
      if (kind === 'files') assert.equal(text, readFileSync(join(dir, `${id}.cast`), 'utf8'));
    });

    it(`${kind}: lists a session whose command is a long script (a long header must not hide it)`, async () => {
      const { writer, reader } = make();
      const id = newSessionId();
      const script = 'echo hidden; '.repeat(2000);
      const rec = await writer.open(headerOf(id, ['sh', '-c', script]), (err) => assert.fail(err));
      rec.output(Buffer.from('hidden\n'));
      rec.close({ exitCode: 0, reason: 'exited' });
      await writer.close();
      const listed = (await reader.list()).find((s) => s.id === id);
      assert.ok(listed, 'the session is listed');
      assert.equal(listed.header.gatehouse.command[2], script);
      assert.deepEqual(listed.end, { exitCode: 0, reason: 'exited' });
    });

    it(`${kind}: a recording of a session that never started is removed; an unknown one reads as undefined`, async () => {
      const { writer, reader } = make();
      const id = newSessionId();
      const rec = await writer.open(headerOf(id), (err) => assert.fail(err));
      rec.close({ exitCode: null, reason: 'not upgraded' });
      await writer.remove(id);
      assert.equal(await reader.get(id), undefined);
      assert.equal(await reader.read(id), undefined);
      assert.equal(await reader.read('se-nosuchsession'), undefined);
      assert.equal(await reader.read('../../etc/passwd'), undefined);
    });
  }

  it("files: a recording's last flush to the disk happens off the event loop; its lines are all there at once, and closing the store waits for the flush", async () => {
    const store = createFileSessionStore({ dir, failOpen: false });
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    const id = newSessionId();
    const rec = await store.open(headerOf(id), (err) => assert.fail(err));
    for (let i = 0; i < 1000; i++) rec.output(Buffer.from(`line ${i}\n`));
    rec.close({ exitCode: 0, reason: 'exited' });
    const lines = readFileSync(join(dir, `${id}.cast`), 'utf8')
      .trimEnd()
      .split('\n');
    assert.equal(lines.length, 1 + 1000 + 1, 'header, outputs, end marker: written before close() returned');
    await store.close();
    assert.equal(fds(), before, "the recording's file is closed once the store has closed");
  });

  it('postgres: a live session is listed while it runs, with its duration so far and no end', async () => {
    const { writer, reader } = kinds.postgres();
    const id = newSessionId();
    const rec = await writer.open(headerOf(id), (err) => assert.fail(err));
    rec.output(Buffer.from('still running\n'));
    const live = await waitFor('the first chunk', async () => {
      const s = await reader.get(id);
      return s && (await readAll(reader, id)).text.includes('still running') ? s : undefined;
    });
    assert.equal(live.end, null);
    rec.close({ exitCode: 0, reason: 'exited' });
    await writer.close();
  });

  /**
   * A recording whose database another connection (`admin`) interferes with
   * after it opened; `write` feeds it; what the recording failed with.
   */
  async function sabotaged(
    sabotage: (admin: pg.Client) => Promise<unknown>,
    write: (rec: Recorder, failure: () => Error | undefined, admin: pg.Client) => Promise<unknown>,
    undo: (admin: pg.Client) => Promise<unknown>,
  ): Promise<Error | undefined> {
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    const { writer } = kinds.postgres();
    let failure: Error | undefined;
    const rec = await writer.open(headerOf(newSessionId()), (err) => (failure = err));
    try {
      await sabotage(admin);
      await write(rec, () => failure, admin);
    } finally {
      await undo(admin);
      await admin.end();
      rec.close({ exitCode: null, reason: 'recording failed' });
      await writer.close();
    }
    return failure;
  }

  it('attack: a chunk the database refuses mid-session fails the recording (the session must end)', async () => {
    const failure = await sabotaged(
      async (admin) => {
        await admin.query(
          `CREATE OR REPLACE FUNCTION gatehouse_test_refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full (test)'; END $$ LANGUAGE plpgsql`,
        );
        await admin.query(`CREATE TRIGGER refuse BEFORE INSERT ON gatehouse_session_chunks FOR EACH ROW EXECUTE FUNCTION gatehouse_test_refuse()`);
      },
      async (rec, failed) => {
        rec.output(Buffer.from('rm -rf /data\n'));
        await waitFor('the recording to fail', failed);
      },
      (admin) => admin.query('DROP TRIGGER IF EXISTS refuse ON gatehouse_session_chunks'),
    );
    assert.match(failure?.message ?? '', /disk full \(test\)/);
  });

  it('attack: a database that falls behind a flood of output fails the recording instead of buffering without bound', async () => {
    const failure = await sabotaged(
      // Holds the chunk table: every INSERT waits, as on a database that cannot keep up.
      async (admin) => {
        await admin.query('BEGIN');
        await admin.query('LOCK TABLE gatehouse_session_chunks IN EXCLUSIVE MODE');
      },
      async (rec, failed) => {
        const frame = Buffer.alloc(32 * 1024, 'y');
        for (let i = 0; i < 64 && !failed(); i++) rec.output(frame);
      },
      (admin) => admin.query('ROLLBACK'),
    );
    assert.match(failure?.message ?? '', /fell more than 262144 bytes behind/);
  });

  it('a session that pauses when asked gets 4 MiB through a database stalled for a while: nothing lost, never over the backlog limit', async () => {
    let writer: SessionStore;
    let id = '';
    const frame = Buffer.alloc(32 * 1024, 'z');
    const failure = await sabotaged(
      async (admin) => {
        await admin.query('BEGIN');
        await admin.query('LOCK TABLE gatehouse_session_chunks IN EXCLUSIVE MODE');
      },
      async (_rec, failed, admin) => {
        ({ writer } = kinds.postgres());
        id = newSessionId();
        const paced = await writer.open(headerOf(id), (err) => assert.fail(err));
        let pauses = 0;
        for (let i = 0; i < 128 && !failed(); i++) {
          paced.output(frame);
          // What the relay does: stop reading while the recording is full.
          if (paced.pressure?.full()) {
            pauses++;
            // The database comes back a while later.
            if (pauses === 1) setTimeout(() => void admin.query('ROLLBACK'), 300);
            await new Promise<void>((resume) => paced.pressure!.whenDrained(resume));
          }
        }
        assert.ok(pauses > 0, 'the stalled database paused the session');
        paced.close({ exitCode: 0, reason: 'exited' });
        await writer.close();
      },
      (admin) => admin.query('ROLLBACK'),
    );
    assert.equal(failure, undefined);
    const { text } = await readAll(kinds.postgres().reader, id);
    assert.equal(text.split('\n').filter((l) => l.includes('"o","zzz')).length, 128);
  });

  it('a PostgreSQL that is not there, or refuses the login, stops start-up with a message that names it and no password', async () => {
    const down = await openPostgres({ connectionString: 'postgres://gatehouse:s3cret@127.0.0.1:1/gatehouse', schema: [], onError: () => {} }).catch(
      (e: unknown) => e,
    );
    assert.ok(down instanceof DatabaseError);
    assert.equal(down.message, 'PostgreSQL at 127.0.0.1:1/gatehouse: nothing listens there (connection refused)');
    const wrong = postgres.url.replace(/:[^:@/]+@/, ':not-the-password@');
    const refused = await openPostgres({ connectionString: wrong, schema: [], onError: () => {} }).catch((e: unknown) => e);
    assert.ok(refused instanceof DatabaseError);
    assert.match(refused.message, /^PostgreSQL at 127\.0\.0\.1:\d+\/postgres: the server refused the login \(wrong user or password\)$/);
    assert.doesNotMatch(refused.message, /not-the-password/);
  });

  it('six replicas starting at once on an empty database create the schema once, under the advisory lock', async () => {
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query('CREATE DATABASE race');
    await admin.end();
    const url = postgres.url.replace(/\/postgres$/, '/race');
    const many = await Promise.all(
      Array.from({ length: 6 }, () => openPostgres({ connectionString: url, schema: SESSION_SCHEMA, onError: () => {}, maxConnections: 1 })),
    );
    const tables = await many[0]!.pool.query<{ n: string }>(`SELECT count(*) AS n FROM pg_tables WHERE tablename LIKE 'gatehouse_session%'`);
    assert.equal(tables.rows[0]?.n, '2');
    for (const db of many) await db.close();
  });
});
