/**
 * The one PostgreSQL of a set of replicas (`store.postgres`): a connection pool
 * that approvals and session recordings share. Replicas that start together
 * create the schema one at a time, under an advisory lock held for the
 * transaction. A database that cannot be reached, or refuses the login, stops
 * start-up with a message that says which and where, never the password.
 */
import pg from 'pg';

export class DatabaseError extends Error {
  readonly code = 'GATEHOUSE_DATABASE';
}

export interface Postgres {
  readonly pool: pg.Pool;
  /** For connections of their own (LISTEN needs one that is never returned to the pool). */
  readonly connectionString: string;
  close(): Promise<void>;
}

/** host:port/database of a URL, for messages: never its user or password. */
export function describeUrl(connectionString: string): string {
  try {
    const u = new URL(connectionString);
    const host = u.hostname || u.searchParams.get('host') || 'localhost';
    return `${host}:${u.port || '5432'}${u.pathname.length > 1 ? u.pathname : ''}`;
  } catch {
    return '(an unparsable URL)';
  }
}

/** What went wrong, in the operator's words: SQLSTATE and errno codes mapped to their meaning. */
export function explainFailure(err: unknown, connectionString: string): DatabaseError {
  const where = describeUrl(connectionString);
  const e = err as { code?: string; message?: string };
  const why = (() => {
    switch (e.code) {
      case 'ECONNREFUSED':
        return 'nothing listens there (connection refused)';
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return 'the host name does not resolve';
      case 'ETIMEDOUT':
        return 'the connection timed out';
      case '28P01':
      case '28000':
        return 'the server refused the login (wrong user or password)';
      case '3D000':
        return 'the database does not exist';
      case '42501':
        return 'the user may not create the tables (grant CREATE on the schema, or create them once as an owner)';
      default:
        return e.message?.replace(/postgres(ql)?:\/\/\S*/gi, '(url)') ?? String(err);
    }
  })();
  return new DatabaseError(`PostgreSQL at ${where}: ${why}`, { cause: err });
}

export async function openPostgres(options: {
  readonly connectionString: string;
  /** Every module's DDL, idempotent (IF NOT EXISTS), run under one lock. */
  readonly schema: readonly string[];
  readonly onError: (message: string) => void;
  readonly maxConnections?: number;
}): Promise<Postgres> {
  const pool = new pg.Pool({ connectionString: options.connectionString, max: options.maxConnections ?? 10, connectionTimeoutMillis: 5000 });
  // An idle client's error (the server restarted) must not crash the gateway; the next query reconnects.
  pool.on('error', (err) => options.onError(`postgres pool: ${err.message}`));
  let setup: pg.PoolClient;
  try {
    setup = await pool.connect();
  } catch (err) {
    await pool.end().catch(() => {});
    throw explainFailure(err, options.connectionString);
  }
  try {
    await setup.query('BEGIN');
    await setup.query(`SELECT pg_advisory_xact_lock(hashtext('gatehouse_schema'))`);
    for (const ddl of options.schema) await setup.query(ddl);
    await setup.query('COMMIT');
  } catch (err) {
    await setup.query('ROLLBACK').catch(() => {});
    setup.release();
    await pool.end().catch(() => {});
    throw explainFailure(err, options.connectionString);
  }
  setup.release();
  let ended = false;
  return {
    pool,
    connectionString: options.connectionString,
    async close() {
      if (ended) return;
      ended = true;
      await pool.end();
    },
  };
}
