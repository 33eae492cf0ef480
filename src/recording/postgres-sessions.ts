/**
 * Session recordings in PostgreSQL, so any replica lists, plays and exports a
 * session recorded through any other. A recording is a row (header, how long,
 * how it ended) and its asciicast lines in numbered chunks, written as the
 * session runs: a chunk leaves when it reaches CHUNK_BYTES or has waited
 * FLUSH_MS, one write at a time, in order. Memory is bounded: past the high
 * water mark the session is paused until the database catches up (the relay
 * reads no more from either side), and a writer that does not pause and falls
 * more than MAX_BACKLOG_BYTES behind is a recording that failed: the session
 * ends (fail closed) unless `recording.failOpen`. Reading streams the chunks
 * back a few at a time.
 */
import { Readable } from 'node:stream';
import type { Postgres } from '../store/postgres.js';
import { castEncoder, type CastHeader, type SessionEnd } from './asciicast.js';
import { SESSION_ID, type SessionStore, type SessionSummary } from './sessions.js';

const SESSIONS = 'gatehouse_sessions';
const CHUNKS = 'gatehouse_session_chunks';

export const SESSION_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS ${SESSIONS} (
    id TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    header TEXT NOT NULL,
    duration_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    ending TEXT
  )`,
  `CREATE INDEX IF NOT EXISTS ${SESSIONS}_by_time ON ${SESSIONS} (started_at)`,
  `CREATE TABLE IF NOT EXISTS ${CHUNKS} (
    session TEXT NOT NULL REFERENCES ${SESSIONS} (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (session, seq)
  )`,
];

export interface PostgresSessionLimits {
  readonly chunkBytes: number;
  /** Not yet written beyond this, the session is asked to pause (Recorder.pressure); it resumes under half. */
  readonly highWaterBytes: number;
  readonly flushMs: number;
  readonly maxBacklogBytes: number;
  /** Chunks fetched per query when a recording is read. */
  readonly readBatch: number;
}

export const DEFAULT_LIMITS: PostgresSessionLimits = {
  chunkBytes: 256 * 1024,
  highWaterBytes: 1024 * 1024,
  flushMs: 250,
  maxBacklogBytes: 8 * 1024 * 1024,
  readBatch: 16,
};

interface Row {
  id: string;
  header: string;
  duration_seconds: number;
  ending: string | null;
}

function summaryOf(r: Row): SessionSummary {
  return {
    id: r.id,
    header: JSON.parse(r.header) as CastHeader,
    end: r.ending ? (JSON.parse(r.ending) as SessionEnd) : null,
    durationSeconds: r.duration_seconds,
  };
}

export function createPostgresSessionStore(options: {
  readonly db: Postgres;
  readonly failOpen: boolean;
  readonly limits?: PostgresSessionLimits;
  readonly now?: () => number;
}): SessionStore {
  const { pool } = options.db;
  const limits = options.limits ?? DEFAULT_LIMITS;
  const now = options.now ?? Date.now;
  /** Recordings still writing: shutdown waits for their last chunk. */
  const writing = new Map<string, Promise<unknown>>();

  return {
    failOpen: options.failOpen,
    async open(header, onError) {
      const id = header.gatehouse.session;
      // The row first: a database that cannot take it refuses the session before it starts.
      await pool.query(`INSERT INTO ${SESSIONS} (id, started_at, header) VALUES ($1, $2, $3)`, [id, now(), JSON.stringify(header)]);
      const started = now();
      let pending: string[] = [];
      let pendingBytes = 0;
      let seq = 0;
      let failed = false;
      let timer: NodeJS.Timeout | undefined;
      let tail: Promise<void> = Promise.resolve();
      let inFlight = 0;
      let waiting: (() => void)[] = [];
      const behind = () => pendingBytes + inFlight;
      /** Lets a paused session read again: once under half the high water mark, or when there is no point waiting. */
      const drained = (force = false) => {
        if (!waiting.length || (!force && behind() > limits.highWaterBytes / 2)) return;
        const resume = waiting;
        waiting = [];
        for (const r of resume) r();
      };
      const fail = (err: Error) => {
        if (failed) return;
        failed = true;
        pending = [];
        onError(err);
        drained(true);
      };
      /** Queues what is pending as the next chunk; `final` also says how the session ended. */
      const flush = (final?: { header: CastHeader; end: SessionEnd }) => {
        clearTimeout(timer);
        timer = undefined;
        if (failed) return;
        const data = pending.join('');
        const bytes = pendingBytes;
        pending = [];
        pendingBytes = 0;
        const n = data ? ++seq : seq;
        const duration = (now() - started) / 1000;
        inFlight += bytes;
        tail = tail.then(async () => {
          if (failed) return;
          try {
            if (data)
              // One round trip: the chunk, and the row's duration (a live session's summary).
              await pool.query(
                `WITH c AS (INSERT INTO ${CHUNKS} (session, seq, data) VALUES ($1, $2, $3))
                 UPDATE ${SESSIONS} SET duration_seconds = $4 WHERE id = $1`,
                [id, n, data, duration],
              );
            if (final)
              await pool.query(`UPDATE ${SESSIONS} SET header = $2, ending = $3, duration_seconds = $4 WHERE id = $1`, [
                id,
                JSON.stringify(final.header),
                JSON.stringify(final.end),
                duration,
              ]);
          } catch (err) {
            fail(err as Error);
          } finally {
            inFlight -= bytes;
            drained(final !== undefined);
          }
        });
      };
      const recorder = castEncoder(
        header,
        {
          line(text) {
            if (failed) return;
            pending.push(text + '\n');
            pendingBytes += Buffer.byteLength(text) + 1;
            if (behind() > limits.maxBacklogBytes) {
              fail(new Error(`the database fell more than ${limits.maxBacklogBytes} bytes behind the session`));
              return;
            }
            if (pendingBytes >= limits.chunkBytes) flush();
            else timer ??= setTimeout(() => flush(), limits.flushMs);
          },
          end(finalHeader, end) {
            flush({ header: finalHeader, end });
            writing.set(
              id,
              tail.then(() => writing.delete(id)),
            );
          },
        },
        `postgres:${id}`,
        now,
        {
          full: () => !failed && behind() >= limits.highWaterBytes,
          whenDrained(resume) {
            waiting.push(resume);
            // A chunk still waiting for its timer would keep a paused session paused until it fires.
            if (pendingBytes > 0) flush();
            drained();
          },
        },
      );
      return recorder;
    },
    async list() {
      const res = await pool.query<Row>(`SELECT id, header, duration_seconds, ending FROM ${SESSIONS} ORDER BY started_at DESC`);
      return res.rows.map(summaryOf);
    },
    async get(id) {
      if (!SESSION_ID.test(id)) return undefined;
      const res = await pool.query<Row>(`SELECT id, header, duration_seconds, ending FROM ${SESSIONS} WHERE id = $1`, [id]);
      return res.rows[0] && summaryOf(res.rows[0]);
    },
    async read(id) {
      if (!(await this.get(id))) return undefined;
      let after = 0;
      const next = async (stream: Readable) => {
        const res = await pool.query<{ seq: number; data: string }>(`SELECT seq, data FROM ${CHUNKS} WHERE session = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [
          id,
          after,
          limits.readBatch,
        ]);
        for (const r of res.rows) {
          after = r.seq;
          stream.push(r.data);
        }
        if (res.rows.length < limits.readBatch) stream.push(null);
      };
      return new Readable({
        read() {
          next(this).catch((err: unknown) => this.destroy(err as Error));
        },
      });
    },
    async remove(id) {
      // Once its last chunk is in; the chunks go with the row (ON DELETE CASCADE).
      await writing.get(id);
      await pool.query(`DELETE FROM ${SESSIONS} WHERE id = $1`, [id]);
    },
    async close() {
      await Promise.all(writing.values());
    },
  };
}
