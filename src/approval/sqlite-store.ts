/**
 * The embedded store: one SQLite file (better-sqlite3, synchronous, in WAL
 * mode). Changes are announced in-process; replicas that need to see each
 * other's decisions use PostgreSQL.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { createSqlStore, NAMED_PARAMETER, SCHEMA, type ApprovalStore, type Row, type SqlConnection } from './store.js';

export function openSqliteStore(file: string): ApprovalStore {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  for (const ddl of SCHEMA) db.exec(ddl);
  const statements = new Map<string, { stmt: Database.Statement; names: string[] }>();
  const events = new EventEmitter();
  const connection: SqlConnection = {
    kind: 'sqlite',
    async all(sql, params) {
      let s = statements.get(sql);
      if (!s) {
        s = { stmt: db.prepare(sql), names: [...new Set([...sql.matchAll(NAMED_PARAMETER)].map((m) => m[1]!))] };
        statements.set(sql, s);
      }
      // better-sqlite3 wants exactly the statement's parameters.
      const bound: Record<string, unknown> = {};
      for (const n of s.names) bound[n] = params[n];
      // A statement that returns no rows (a DELETE without RETURNING) must be run, not read.
      if (!s.stmt.reader) {
        s.stmt.run(bound);
        return [];
      }
      return s.stmt.all(bound) as Row[];
    },
    async announce(ids) {
      for (const id of ids) events.emit('change', id);
    },
    onAnnounce(listener) {
      events.on('change', listener);
    },
    async close() {
      db.close();
    },
  };
  return createSqlStore(connection);
}
