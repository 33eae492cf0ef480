/**
 * The approval stage (DESIGN §4). For a request the policy sent to `approve`:
 * use an approval given for its fingerprint, or open one and either hold the
 * request until someone decides or refuse it at once, saying how to get it
 * approved. Also where approvers decide, and where time runs out.
 */
import type { ApprovalEvent } from '../audit/event.js';
import type { AuditWriter } from '../audit/writer.js';
import { GatehouseError, messageOf } from '../errors.js';
import type { Identity } from '../identity/identity.js';
import type { Approval as PolicyApproval } from '../policy/decision.js';
import {
  describe as describeSubject,
  describeGrant,
  newApprovalId,
  newGrantId,
  whyNotApprover,
  type Approval,
  type ApprovalSubject,
  type Grant,
  type Preview,
} from './approval.js';
import type { ApprovalStore } from './store.js';

export type HoldMode = 'hold' | 'refuse';

/** A refusal that waits on an approval names it in the Status's details as this group and kind. */
export const APPROVAL_GROUP = 'gatehouse.dev';
export const APPROVAL_KIND = 'approvals';

export interface ApprovalSettings {
  /** Agents just wait by default; people are told how to get approval and run the command again. */
  readonly mode: { readonly agents: HoldMode; readonly people: HoldMode };
  readonly holdSeconds: number;
  /** The operator's cap on the policy's ttlSeconds. */
  readonly maxTtlSeconds: number;
  /** Where approvers find the web page, as people reach the gateway. */
  readonly publicUrl: string;
  readonly sweepSeconds: number;
}

export interface ApprovalServiceDeps {
  readonly store: ApprovalStore;
  readonly audit: AuditWriter;
  readonly settings: ApprovalSettings;
  readonly now?: () => number;
  /** A new pending approval: tell someone (the webhook). Must not throw or block. */
  readonly announce?: (approval: Approval) => void;
  readonly log?: (message: string) => void;
}

export interface GateRequest {
  readonly identity: Identity;
  readonly fingerprint: string;
  readonly subject: ApprovalSubject;
  readonly policy: PolicyApproval;
  readonly auditId: string;
  /** The client went away: stop holding. */
  readonly signal: AbortSignal;
  /** What the request would do, computed after the approval is opened. */
  readonly preview?: () => Promise<Preview>;
}

export interface Granted {
  /** The approval used, or the grant (gr-…) that stood in for one. */
  readonly id: string;
  readonly approvedBy: string;
}

/** What an approver may add to an approval: a grant for this long, optionally only for these objects. */
export interface GrantRequest {
  readonly seconds: number;
  readonly names?: readonly string[];
}

type Wake = () => void;

export function createApprovalService(deps: ApprovalServiceDeps) {
  const now = deps.now ?? Date.now;
  const { store, settings } = deps;
  const waiters = new Map<string, Set<Wake>>();
  const shutdown = new AbortController();

  store.onChange((id) => {
    if (id === null) for (const set of waiters.values()) set.forEach((w) => w());
    else waiters.get(id)?.forEach((w) => w());
  });

  /** `at`: when it happened, if not now (a decision is stamped with the moment it was made, before it was stored). */
  function record(
    action: ApprovalEvent['action'],
    a: Approval,
    extra: { actor?: string; reason?: string; auditID?: string; grant?: Grant; at?: number } = {},
  ): void {
    const s = a.subject;
    deps.audit.write({
      kind: 'ApprovalEvent',
      apiVersion: 'gatehouse.dev/v1',
      action,
      approvalID: a.id,
      fingerprint: a.fingerprint,
      timestamp: new Date(extra.at ?? now()).toISOString(),
      requester: { username: s.requester.username, agent: s.requester.agent?.name ?? null, onBehalfOf: s.requester.agent?.onBehalfOf ?? null },
      ...(extra.actor ? { actor: extra.actor } : {}),
      ...(extra.reason ? { reason: extra.reason } : {}),
      request: {
        verb: s.verb,
        uri: s.uri,
        namespace: s.namespace,
        name: s.name,
        resource: s.subresource ? `${s.resource}/${s.subresource}` : s.resource,
        summary: describeSubject(s),
      },
      approverGroups: a.approverGroups,
      ...(extra.auditID ? { auditID: extra.auditID } : {}),
      ...(extra.grant
        ? {
            grant: {
              id: extra.grant.id,
              scope: describeGrant(extra.grant),
              expiresAt: new Date(extra.grant.expiresAt).toISOString(),
              ...(extra.grant.revokedBy ? { revokedBy: extra.grant.revokedBy } : {}),
            },
          }
        : {}),
    });
  }

  function mayHandleGrant(g: Grant, who: Identity): boolean {
    return who.username === g.requester || (!who.agent && who.groups.some((x) => g.groups.includes(x)));
  }

  const approvalUrl = (id: string) => `${settings.publicUrl}/gatehouse/approvals/${id}`;

  function howToApprove(a: Approval): string {
    return `An approver runs \`gatehouse approvals approve ${a.id}\` or opens ${approvalUrl(a.id)}`;
  }

  function refusal(a: Approval, lead: string): GatehouseError {
    const s = a.subject;
    return new GatehouseError(
      'GATEHOUSE_APPROVAL_REQUIRED',
      `${lead}: approval ${a.id} by a member of ${a.approverGroups.join(' or ')} is pending until ${new Date(a.expiresAt).toISOString()}${s.reasons.length ? ` (${s.reasons.join('; ')})` : ''}. ${howToApprove(a)}; then run the same command again.`,
      // What the refusal is about, for a client that reads more than the message (the MCP tools park the call under it).
      { details: { group: APPROVAL_GROUP, kind: APPROVAL_KIND, name: a.id } },
    );
  }

  function outcomeError(a: Approval): GatehouseError {
    switch (a.state) {
      case 'denied':
        return new GatehouseError('GATEHOUSE_DENIED', `approval ${a.id} was denied by ${a.decidedBy}${a.reason ? `: ${a.reason}` : ''}`);
      case 'expired':
        return new GatehouseError('GATEHOUSE_DENIED', `approval ${a.id} expired before anyone approved it; run the command again to ask anew`);
      default:
        return new GatehouseError(
          'GATEHOUSE_DENIED',
          `approval ${a.id} was used by another request with the same fingerprint; run the command again to ask anew`,
        );
    }
  }

  async function use(fingerprint: string, auditId: string, actor: string): Promise<Granted | undefined> {
    const used = await store.redeem(fingerprint, now());
    if (!used || used.state === 'pending' || used.state === 'expired' || used.state === 'denied') return undefined;
    record('use', used, { actor, auditID: auditId });
    return { id: used.id, approvedBy: used.decidedBy };
  }

  /** Resolves with the approval once it is no longer pending, or undefined when the hold ends first. */
  function waitForDecision(id: string, untilMs: number, signal: AbortSignal): Promise<Approval | undefined> {
    return new Promise((resolve, reject) => {
      let done = false;
      let set = waiters.get(id);
      if (!set) waiters.set(id, (set = new Set()));
      const finish = (value: Approval | undefined, err?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(poll);
        set.delete(check);
        if (set.size === 0) waiters.delete(id);
        signal.removeEventListener('abort', onAbort);
        shutdown.signal.removeEventListener('abort', onShutdown);
        if (err) reject(err);
        else resolve(value);
      };
      const check: Wake = () => {
        store.get(id).then(
          (a) => a && a.state !== 'pending' && finish(a),
          (err: unknown) => deps.log?.(`approval ${id}: reading the store failed: ${messageOf(err)}`),
        );
      };
      const onAbort = () => finish(undefined);
      const onShutdown = () =>
        finish(
          undefined,
          new GatehouseError(
            'GATEHOUSE_SHUTTING_DOWN',
            `the gateway is shutting down while this request waited for approval ${id}; the approval stays pending — run the command again once it is approved`,
          ),
        );
      set.add(check);
      // A timer may fire a little before the clock says its time has come (they round differently): a hold ended by the
      // approval's expiry must end when the clock has reached it, or the request is told "no decision" about an approval
      // that is in fact expiring (found by the e2e test of expiry, failing under load).
      const wake = () => {
        const left = untilMs - now();
        if (left > 0) timer = setTimeout(wake, left);
        else finish(undefined);
      };
      let timer = setTimeout(wake, Math.max(0, untilMs - now()));
      // Notifications are the fast path; a slow poll covers one that was lost.
      const poll = setInterval(check, 5000);
      signal.addEventListener('abort', onAbort, { once: true });
      shutdown.signal.addEventListener('abort', onShutdown, { once: true });
      // The client may have gone, or the gateway begun to stop, while the approval was being opened.
      if (shutdown.signal.aborted) onShutdown();
      else if (signal.aborted) onAbort();
      else check();
    });
  }

  async function sweep(): Promise<void> {
    for (const a of await store.expireDue(now())) record('expire', a);
  }
  const sweeper = setInterval(
    () => void sweep().catch((err: unknown) => deps.log?.(`expiring approvals failed: ${messageOf(err)}`)),
    settings.sweepSeconds * 1000,
  );
  sweeper.unref();

  return {
    approvalUrl,

    /** Requests held open now, waiting for a decision. */
    held(): number {
      let n = 0;
      for (const set of waiters.values()) n += set.size;
      return n;
    },

    /** The approval stage: returns the approval (or grant) used, or throws the 403 (or 503) the client gets. */
    async gate(req: GateRequest): Promise<Granted> {
      const s = req.subject;
      // A grant given earlier for this kind of request stands in for an approval — only where this request's
      // own approval could carry one: a write the policy judges riskier (a privileged pod spec, a prod
      // delete: no grant allowed) is not covered by a grant given for ordinary writes of the same kind.
      // Read from the store each time, so a revocation holds at once on every replica.
      const p = req.policy;
      const grant =
        p.maxGrantSeconds > 0
          ? await store.findGrant({
              requester: req.identity.username,
              verb: s.verb,
              group: s.group,
              resource: s.resource,
              subresource: s.subresource,
              namespace: s.namespace,
              name: s.name,
              now: now(),
            })
          : undefined;
      if (grant && grant.expiresAt - grant.createdAt <= p.maxGrantSeconds * 1000 && grant.groups.some((g) => p.grantGroups.includes(g)))
        return { id: grant.id, approvedBy: grant.grantedBy };
      const granted = await use(req.fingerprint, req.auditId, req.identity.username);
      if (granted) return granted;
      const { approval, created, expired } = await store.open(
        {
          id: newApprovalId(),
          fingerprint: req.fingerprint,
          subject: req.subject,
          approverGroups: req.policy.approverGroups,
          singleUse: req.policy.singleUse,
          ttlSeconds: Math.min(req.policy.ttlSeconds, settings.maxTtlSeconds),
        },
        now(),
      );
      for (const e of expired) record('expire', e);
      if (created) {
        record('create', approval, { actor: req.identity.username, auditID: req.auditId });
        deps.announce?.(approval);
        if (req.preview) {
          req
            .preview()
            // A preview that failed says so, instead of "being prepared" for ever.
            .catch((err: unknown): Preview => ({ status: 'unavailable', message: `the preview failed: ${messageOf(err)}` }))
            .then((p) => store.setPreview(approval.id, p))
            .catch((err: unknown) => deps.log?.(`approval ${approval.id}: storing the preview failed: ${messageOf(err)}`));
        }
      }
      const mode = req.identity.agent ? settings.mode.agents : settings.mode.people;
      if (mode === 'refuse') throw refusal(approval, 'this request needs approval');
      const holdUntil = Math.min(approval.expiresAt, now() + settings.holdSeconds * 1000);
      let decided = await waitForDecision(approval.id, holdUntil, req.signal);
      if (!decided && !req.signal.aborted && now() >= approval.expiresAt) {
        // The hold ended because the approval's time ran out: say so, and record it now.
        await sweep();
        decided = await store.get(approval.id);
      }
      if (!decided || decided.state === 'pending')
        throw refusal(approval, req.signal.aborted ? 'the client went away while waiting' : 'no decision while the request was held');
      if (decided.state !== 'approved') throw outcomeError(decided);
      const used = await use(req.fingerprint, req.auditId, req.identity.username);
      if (!used) throw outcomeError({ ...decided, state: 'used', usedAt: now() });
      return used;
    },

    /** An approver's decision, checked here whatever interface it came through; with `grant`, also a grant. */
    async decide(id: string, approver: Identity, approve: boolean, reason: string, grant?: GrantRequest): Promise<Approval & { grant?: Grant }> {
      const a = await store.get(id);
      if (!a) throw new GatehouseError('GATEHOUSE_NOT_FOUND', `approval ${id} does not exist`);
      const why = whyNotApprover(a, approver);
      if (why) throw new GatehouseError('GATEHOUSE_DENIED', `${approver.username} may not decide on approval ${id}: ${why}`);
      if (a.state !== 'pending') throw new GatehouseError('GATEHOUSE_CONFLICT', `approval ${id} is ${a.state}, not pending`);
      if (grant) {
        const g = a.subject.grant;
        if (!approve) throw new GatehouseError('GATEHOUSE_BAD_REQUEST', 'a grant comes with an approval, not a denial');
        if (g.maxSeconds === 0) throw new GatehouseError('GATEHOUSE_DENIED', `the policy allows no grant with approval ${id}: approve it alone`);
        if (!Number.isInteger(grant.seconds) || grant.seconds < 1 || grant.seconds > g.maxSeconds)
          throw new GatehouseError('GATEHOUSE_DENIED', `the policy allows a grant of at most ${g.maxSeconds} s with approval ${id}`);
        if (!approver.groups.some((x) => g.groups.includes(x)))
          throw new GatehouseError('GATEHOUSE_DENIED', `only members of ${g.groups.join(' or ')} may give a grant with approval ${id}`);
        if (grant.names && (grant.names.length === 0 || grant.names.length > 100 || grant.names.some((n) => !n || n.length > 253)))
          throw new GatehouseError('GATEHOUSE_BAD_REQUEST', 'a grant names 1 to 100 objects');
      }
      const at = now();
      const decided = await store.decide(
        id,
        {
          state: approve ? 'approved' : 'denied',
          by: approver.username,
          reason: reason.slice(0, 1024),
          validUntil: approve ? at + a.ttlSeconds * 1000 : a.expiresAt,
        },
        at,
      );
      if (!decided) {
        const current = await store.get(id);
        throw new GatehouseError(
          'GATEHOUSE_CONFLICT',
          `approval ${id} is ${current?.state === 'pending' ? 'past its expiry' : (current?.state ?? 'gone')}, not pending`,
        );
      }
      // Stamped with the moment of the decision: once it is stored, the replica holding the request may
      // release it and record its use before this process resumes, and the audit must not show the use first.
      record(approve ? 'approve' : 'deny', decided, { actor: approver.username, ...(reason ? { reason } : {}), at });
      if (!grant) return decided;
      const s = decided.subject;
      const given: Grant = {
        id: newGrantId(),
        approvalId: id,
        requester: s.requester.username,
        verb: s.verb,
        group: s.group,
        resource: s.resource,
        subresource: s.subresource,
        namespace: s.namespace,
        names: grant.names ? [...grant.names] : null,
        groups: s.grant.groups,
        grantedBy: approver.username,
        createdAt: at,
        expiresAt: at + grant.seconds * 1000,
        revokedBy: null,
        revokedAt: null,
      };
      await store.addGrant(given);
      record('grant', decided, { actor: approver.username, grant: given });
      return { ...decided, grant: given };
    },

    /** The grants someone may see: their own, and those their groups may revoke. */
    async grants(viewer: Identity): Promise<Grant[]> {
      return (await store.listGrants(800)).filter((g) => mayHandleGrant(g, viewer)).slice(0, 200);
    },

    /** Ends a grant at once, on every replica (the gate reads the store on each request). */
    async revoke(id: string, who: Identity): Promise<Grant> {
      const g = await store.getGrant(id);
      if (!g || !mayHandleGrant(g, who)) throw new GatehouseError('GATEHOUSE_NOT_FOUND', `grant ${id} does not exist or is not yours to revoke`);
      const revoked = await store.revokeGrant(id, who.username, now());
      if (!revoked) throw new GatehouseError('GATEHOUSE_CONFLICT', `grant ${id} was already revoked`);
      const a = await store.get(g.approvalId);
      if (a) record('revoke', a, { actor: who.username, grant: revoked });
      return revoked;
    },

    sweep,

    /**
     * Waits until the approval is decided (or expires), the time is up or the signal ends; the approval as it then
     * stands. For a caller that holds no request of its own (the MCP tool approvals_wait).
     */
    async waitFor(id: string, untilMs: number, signal: AbortSignal): Promise<Approval | undefined> {
      const a = await store.get(id);
      if (!a || a.state !== 'pending') return a;
      const decided = await waitForDecision(id, Math.min(untilMs, a.expiresAt), signal);
      if (decided) return decided;
      if (now() >= a.expiresAt) await sweep();
      return store.get(id);
    },

    /** Held requests get a clean 503 at once; pending approvals stay in the store. */
    async close(): Promise<void> {
      clearInterval(sweeper);
      shutdown.abort();
    },
  };
}

export type ApprovalService = ReturnType<typeof createApprovalService>;
