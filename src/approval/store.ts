/**
 * Where approvals live. One set of statements for both stores (SQLite, the
 * embedded default, and PostgreSQL for several replicas); each store is only a
 * connection that runs them and tells every replica what changed. Every state
 * change is one conditional UPDATE, so two replicas racing to approve, use or
 * expire the same approval cannot both win.
 */
import { storedSubject, type Approval, type ApprovalState, type Grant, type NewApproval, type Preview } from './approval.js';

export type Row = Record<string, unknown>;

/** The connection a store runs on; statements use :named parameters. */
export interface SqlConnection {
  readonly kind: 'sqlite' | 'postgres';
  all(sql: string, params: Record<string, unknown>): Promise<Row[]>;
  /** Tells every replica (this one included) that these approvals changed. */
  announce(ids: readonly string[]): Promise<void>;
  onAnnounce(listener: (id: string | null) => void): void;
  close(): Promise<void>;
}

export interface ApprovalStore {
  readonly kind: SqlConnection['kind'];
  /** The pending approval for this fingerprint, created if there is none; expired ones it found on the way. */
  open(draft: NewApproval, now: number): Promise<{ approval: Approval; created: boolean; expired: Approval[] }>;
  /** Takes an approved, unexpired approval for the fingerprint: used up if single-use. */
  redeem(fingerprint: string, now: number): Promise<Approval | undefined>;
  /** Approves or denies a pending, unexpired approval; undefined when it was not (any more). */
  decide(id: string, outcome: { state: 'approved' | 'denied'; by: string; reason: string; validUntil: number }, now: number): Promise<Approval | undefined>;
  /** Moves what is past its time to expired, and returns what it moved. */
  expireDue(now: number): Promise<Approval[]>;
  setPreview(id: string, preview: Preview): Promise<void>;
  /**
   * An MCP tool call left waiting on this approval, sealed (its arguments may hold a manifest's Secret data), so
   * approvals_wait on any replica can run it once approved. A call already parked under the id is replaced.
   */
  parkCall(approvalId: string, username: string, sealed: string, now: number): Promise<void>;
  /** The sealed call parked under the approval by this user, if any. */
  parkedCall(approvalId: string, username: string): Promise<string | undefined>;
  forgetCall(approvalId: string): Promise<void>;
  addGrant(grant: Grant): Promise<void>;
  /** An unexpired, unrevoked grant covering this request of this requester, if any. */
  findGrant(q: {
    requester: string;
    verb: string;
    group: string;
    resource: string;
    subresource: string;
    namespace: string;
    name: string;
    now: number;
  }): Promise<Grant | undefined>;
  getGrant(id: string): Promise<Grant | undefined>;
  /** Newest first; expired and revoked ones included for a while (the sweep forgets them after a day). */
  listGrants(limit: number): Promise<Grant[]>;
  /** Revokes an unrevoked grant; undefined when there was none to revoke. */
  revokeGrant(id: string, by: string, now: number): Promise<Grant | undefined>;
  get(id: string): Promise<Approval | undefined>;
  list(query: { state?: ApprovalState; limit: number }): Promise<Approval[]>;
  /** How many approvals wait for a decision (metrics): counted by the database, no rows read. */
  countPending(): Promise<number>;
  /** Called with an id when that approval changed on any replica, with null when changes may have been missed. */
  onChange(listener: (id: string | null) => void): void;
  close(): Promise<void>;
}

export const TABLE = 'gatehouse_approvals';
const CALLS = 'gatehouse_mcp_calls';
const DEAD_CALL_GRACE_MS = 3600_000;
const GRANTS = 'gatehouse_grants';
/** Expired or revoked grants stay listed this long, then the sweep forgets them (their audit records stay). */
const GRANT_KEPT_MS = 86_400_000;

/** A `:name` parameter of the statements below (not a `::type` cast). */
export const NAMED_PARAMETER = /(?<!:):([a-zA-Z_]\w*)/g;

/** Portable DDL: BIGINT millisecond times, JSON as text, a partial unique index for "one pending per fingerprint". */
export const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS ${TABLE} (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    subject TEXT NOT NULL,
    approver_groups TEXT NOT NULL,
    single_use INTEGER NOT NULL,
    ttl_seconds INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    preview TEXT,
    decided_by TEXT,
    decided_at BIGINT,
    reason TEXT,
    uses INTEGER NOT NULL DEFAULT 0,
    used_at BIGINT
  )`,
  `CREATE UNIQUE INDEX IF NOT EXISTS ${TABLE}_one_pending ON ${TABLE} (fingerprint) WHERE state = 'pending'`,
  `CREATE INDEX IF NOT EXISTS ${TABLE}_by_fingerprint ON ${TABLE} (fingerprint, state)`,
  `CREATE INDEX IF NOT EXISTS ${TABLE}_by_time ON ${TABLE} (created_at)`,
  `CREATE TABLE IF NOT EXISTS ${GRANTS} (
    id TEXT PRIMARY KEY,
    approval_id TEXT NOT NULL,
    requester TEXT NOT NULL,
    verb TEXT NOT NULL,
    api_group TEXT NOT NULL,
    resource TEXT NOT NULL,
    subresource TEXT NOT NULL,
    namespace TEXT NOT NULL,
    names TEXT,
    groups TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_by TEXT,
    revoked_at BIGINT
  )`,
  `CREATE INDEX IF NOT EXISTS ${GRANTS}_by_requester ON ${GRANTS} (requester, verb, resource, namespace)`,
  `CREATE TABLE IF NOT EXISTS ${CALLS} (
    approval_id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
  )`,
];

const SQL = {
  expireFingerprint: `UPDATE ${TABLE} SET state = 'expired' WHERE fingerprint = :fingerprint AND state = 'pending' AND expires_at <= :now RETURNING *`,
  insertPending: `INSERT INTO ${TABLE} (id, fingerprint, state, subject, approver_groups, single_use, ttl_seconds, created_at, expires_at)
    VALUES (:id, :fingerprint, 'pending', :subject, :groups, :singleUse, :ttl, :now, :expiresAt) ON CONFLICT DO NOTHING RETURNING *`,
  findPending: `SELECT * FROM ${TABLE} WHERE fingerprint = :fingerprint AND state = 'pending'`,
  // Under PostgreSQL's READ COMMITTED, a second UPDATE of the same row waits for the first and
  // re-checks `state = 'approved'` against the committed row: a single-use approval is used once.
  redeem: `UPDATE ${TABLE} SET uses = uses + 1, used_at = :now, state = CASE WHEN single_use = 1 THEN 'used' ELSE state END
    WHERE state = 'approved' AND id = (SELECT id FROM ${TABLE} WHERE fingerprint = :fingerprint AND state = 'approved' AND expires_at > :now ORDER BY decided_at DESC LIMIT 1)
    RETURNING *`,
  decide: `UPDATE ${TABLE} SET state = :state, decided_by = :by, decided_at = :now, reason = :reason, expires_at = :validUntil
    WHERE id = :id AND state = 'pending' AND expires_at > :now RETURNING *`,
  expireDue: `UPDATE ${TABLE} SET state = 'expired' WHERE state IN ('pending', 'approved') AND expires_at <= :now RETURNING *`,
  setPreview: `UPDATE ${TABLE} SET preview = :preview WHERE id = :id RETURNING id`,
  parkCall: `INSERT INTO ${CALLS} (approval_id, username, sealed, created_at) VALUES (:id, :username, :sealed, :now)
    ON CONFLICT (approval_id) DO UPDATE SET username = excluded.username, sealed = excluded.sealed, created_at = excluded.created_at`,
  parkedCall: `SELECT sealed FROM ${CALLS} WHERE approval_id = :id AND username = :username`,
  forgetCall: `DELETE FROM ${CALLS} WHERE approval_id = :id`,
  // A parked call whose approval can no longer be used (used, denied, expired, gone) will never run; it is kept
  // for an hour past the approval's time, so approvals_wait can still tell the agent what became of it.
  forgetDeadCalls: `DELETE FROM ${CALLS} WHERE approval_id NOT IN (SELECT id FROM ${TABLE} WHERE state IN ('pending', 'approved') OR expires_at > :cutoff)`,
  get: `SELECT * FROM ${TABLE} WHERE id = :id`,
  addGrant: `INSERT INTO ${GRANTS} (id, approval_id, requester, verb, api_group, resource, subresource, namespace, names, groups, granted_by, created_at, expires_at)
    VALUES (:id, :approvalId, :requester, :verb, :group, :resource, :subresource, :namespace, :names, :groups, :grantedBy, :createdAt, :expiresAt)`,
  findGrants: `SELECT * FROM ${GRANTS} WHERE requester = :requester AND verb = :verb AND api_group = :group AND resource = :resource
    AND subresource = :subresource AND namespace = :namespace AND revoked_at IS NULL AND expires_at > :now ORDER BY expires_at DESC`,
  getGrant: `SELECT * FROM ${GRANTS} WHERE id = :id`,
  listGrants: `SELECT * FROM ${GRANTS} ORDER BY created_at DESC LIMIT :limit`,
  revokeGrant: `UPDATE ${GRANTS} SET revoked_by = :by, revoked_at = :now WHERE id = :id AND revoked_at IS NULL RETURNING *`,
  forgetGrants: `DELETE FROM ${GRANTS} WHERE expires_at < :cutoff OR revoked_at < :cutoff`,
  listAll: `SELECT * FROM ${TABLE} ORDER BY created_at DESC LIMIT :limit`,
  listState: `SELECT * FROM ${TABLE} WHERE state = :state ORDER BY created_at DESC LIMIT :limit`,
  countPending: `SELECT COUNT(*) AS n FROM ${TABLE} WHERE state = 'pending'`,
} as const;

function num(v: unknown): number {
  // PostgreSQL's BIGINT arrives as a string.
  return typeof v === 'string' ? Number(v) : (v as number);
}

function json(v: unknown): unknown {
  return JSON.parse(v as string);
}

export function fromRow(r: Row): Approval {
  const common = {
    id: r['id'] as string,
    fingerprint: r['fingerprint'] as string,
    subject: storedSubject(json(r['subject'])),
    approverGroups: json(r['approver_groups']) as string[],
    singleUse: num(r['single_use']) === 1,
    ttlSeconds: num(r['ttl_seconds']),
    createdAt: num(r['created_at']),
    expiresAt: num(r['expires_at']),
    preview: r['preview'] == null ? null : (json(r['preview']) as Preview),
  };
  const decided = { decidedBy: (r['decided_by'] as string | null) ?? '', decidedAt: num(r['decided_at'] ?? 0), reason: (r['reason'] as string | null) ?? '' };
  const state = r['state'] as ApprovalState;
  switch (state) {
    case 'pending':
      return { ...common, state };
    case 'expired':
      return { ...common, state };
    case 'denied':
      return { ...common, ...decided, state };
    case 'approved':
      return { ...common, ...decided, state, uses: num(r['uses']) };
    case 'used':
      return { ...common, ...decided, state, uses: num(r['uses']), usedAt: num(r['used_at']) };
    default:
      throw new TypeError(`approval ${common.id} has an unknown state ${JSON.stringify(state)} in the store`);
  }
}

function grantFromRow(r: Row): Grant {
  return {
    id: r['id'] as string,
    approvalId: r['approval_id'] as string,
    requester: r['requester'] as string,
    verb: r['verb'] as string,
    group: r['api_group'] as string,
    resource: r['resource'] as string,
    subresource: r['subresource'] as string,
    namespace: r['namespace'] as string,
    names: r['names'] == null ? null : (json(r['names']) as string[]),
    groups: json(r['groups']) as string[],
    grantedBy: r['granted_by'] as string,
    createdAt: num(r['created_at']),
    expiresAt: num(r['expires_at']),
    revokedBy: (r['revoked_by'] as string | null) ?? null,
    revokedAt: r['revoked_at'] == null ? null : num(r['revoked_at']),
  };
}

export function createSqlStore(db: SqlConnection): ApprovalStore {
  const rows = async (sql: string, params: Record<string, unknown>) => (await db.all(sql, params)).map(fromRow);
  const changed = async (list: Approval[]) => {
    if (list.length) await db.announce(list.map((a) => a.id));
    return list;
  };
  return {
    kind: db.kind,
    async open(draft, now) {
      const expired = await changed(await rows(SQL.expireFingerprint, { fingerprint: draft.fingerprint, now }));
      // A concurrent replica may insert, decide or expire between these statements: try again.
      for (let attempt = 0; attempt < 5; attempt++) {
        const [inserted] = await rows(SQL.insertPending, {
          id: draft.id,
          fingerprint: draft.fingerprint,
          subject: JSON.stringify(draft.subject),
          groups: JSON.stringify(draft.approverGroups),
          singleUse: draft.singleUse ? 1 : 0,
          ttl: draft.ttlSeconds,
          now,
          expiresAt: now + draft.ttlSeconds * 1000,
        });
        if (inserted) {
          await changed([inserted]);
          return { approval: inserted, created: true, expired };
        }
        const [existing] = await rows(SQL.findPending, { fingerprint: draft.fingerprint });
        if (existing) return { approval: existing, created: false, expired };
      }
      throw new Error(`could not open an approval for fingerprint ${draft.fingerprint.slice(0, 12)}: it changed under us five times`);
    },
    async redeem(fingerprint, now) {
      const [used] = await changed(await rows(SQL.redeem, { fingerprint, now }));
      return used;
    },
    async decide(id, outcome, now) {
      const [decided] = await changed(await rows(SQL.decide, { id, now, ...outcome }));
      return decided;
    },
    async expireDue(now) {
      const expired = await changed(await rows(SQL.expireDue, { now }));
      await db.all(SQL.forgetDeadCalls, { cutoff: now - DEAD_CALL_GRACE_MS });
      await db.all(SQL.forgetGrants, { cutoff: now - GRANT_KEPT_MS });
      return expired;
    },
    async setPreview(id, preview) {
      await db.all(SQL.setPreview, { id, preview: JSON.stringify(preview) });
      await db.announce([id]);
    },
    async addGrant(g) {
      await db.all(SQL.addGrant, {
        ...g,
        names: g.names ? JSON.stringify(g.names) : null,
        groups: JSON.stringify(g.groups),
      });
      await db.announce([g.id]);
    },
    async findGrant(q) {
      const rows = (await db.all(SQL.findGrants, q)).map(grantFromRow);
      return rows.find((g) => g.names === null || g.names.includes(q.name));
    },
    async getGrant(id) {
      const [r] = await db.all(SQL.getGrant, { id });
      return r ? grantFromRow(r) : undefined;
    },
    async listGrants(limit) {
      return (await db.all(SQL.listGrants, { limit })).map(grantFromRow);
    },
    async revokeGrant(id, by, now) {
      const [r] = await db.all(SQL.revokeGrant, { id, by, now });
      if (r) await db.announce([id]);
      return r ? grantFromRow(r) : undefined;
    },
    async parkCall(id, username, sealed, now) {
      await db.all(SQL.parkCall, { id, username, sealed, now });
    },
    async parkedCall(id, username) {
      const [r] = await db.all(SQL.parkedCall, { id, username });
      return r?.['sealed'] as string | undefined;
    },
    async forgetCall(id) {
      await db.all(SQL.forgetCall, { id });
    },
    async get(id) {
      const [a] = await rows(SQL.get, { id });
      return a;
    },
    list({ state, limit }) {
      return state ? rows(SQL.listState, { state, limit }) : rows(SQL.listAll, { limit });
    },
    async countPending() {
      const [r] = await db.all(SQL.countPending, {});
      return num(r?.['n'] ?? 0);
    },
    onChange: (listener) => db.onAnnounce(listener),
    close: () => db.close(),
  };
}
