/**
 * The store for several replicas: PostgreSQL. Each change is announced with
 * NOTIFY on one channel; every replica LISTENs on a connection of its own, so
 * a request held on replica A proceeds the moment replica B records the
 * approval. When that connection drops, listeners are told changes may have
 * been missed (null) and the connection is made again.
 */
import { messageOf } from '../errors.js';
import pg from 'pg';
import type { Postgres } from '../store/postgres.js';
import { createSqlStore, NAMED_PARAMETER, type ApprovalStore, type Row, type SqlConnection } from './store.js';

const CHANNEL = 'gatehouse_approvals';

/** `:name` → `$n`, once per statement. */
function positional(sql: string): { text: string; names: string[] } {
  const names: string[] = [];
  const text = sql.replace(NAMED_PARAMETER, (_, name: string) => {
    let i = names.indexOf(name);
    if (i < 0) i = names.push(name) - 1;
    return `$${i + 1}`;
  });
  return { text, names };
}

export interface PostgresStoreOptions {
  /** The replicas' shared database, its schema (SCHEMA of store.ts) already in place. */
  readonly db: Postgres;
  readonly onError?: (message: string) => void;
}

export async function openPostgresStore(options: PostgresStoreOptions): Promise<ApprovalStore> {
  const { pool, connectionString } = options.db;
  const listeners: ((id: string | null) => void)[] = [];
  const emit = (id: string | null) => listeners.forEach((l) => l(id));
  let closed = false;
  let listener: pg.Client | undefined;
  const listen = async (): Promise<void> => {
    const client = new pg.Client({ connectionString });
    client.on('notification', (n) => n.payload && emit(n.payload));
    client.on('error', (err) => {
      options.onError?.(`postgres listener: ${err.message}`);
      void client.end().catch(() => {});
    });
    client.on('end', () => {
      if (closed) return;
      emit(null);
      setTimeout(() => void listen().catch((err: unknown) => options.onError?.(`postgres listener: ${messageOf(err)}`)), 1000).unref();
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    listener = client;
    // Whatever changed while we were not listening.
    emit(null);
  };
  await listen();

  const statements = new Map<string, { text: string; names: string[] }>();
  const connection: SqlConnection = {
    kind: 'postgres',
    async all(sql, params) {
      let s = statements.get(sql);
      if (!s) statements.set(sql, (s = positional(sql)));
      const res = await pool.query(
        s.text,
        s.names.map((n) => params[n]),
      );
      return res.rows as Row[];
    },
    async announce(ids) {
      await pool.query(`SELECT pg_notify('${CHANNEL}', id) FROM unnest($1::text[]) AS id`, [ids]);
    },
    onAnnounce(l) {
      listeners.push(l);
    },
    async close() {
      closed = true;
      // The pool is the database's, closed by whoever opened it.
      await listener?.end().catch(() => {});
    },
  };
  return createSqlStore(connection);
}
