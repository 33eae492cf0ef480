/**
 * What an approval is (DESIGN §4): a request's fingerprint, the request as an
 * approver sees it, and a state that only moves forward —
 * pending → approved → used, or pending → denied | expired.
 * Pure data and pure functions; the stores keep it and the service moves it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { scrubText, scrubUri } from '../audit/scrub.js';
import type { Identity } from '../identity/identity.js';
import type { ExecFacts } from '../policy/input.js';
import type { RequestTarget } from '../request/attributes.js';

/** The request waiting for a decision, as stored and shown: never the body itself (it may hold a Secret). */
export interface ApprovalSubject {
  readonly requester: {
    readonly username: string;
    readonly groups: readonly string[];
    readonly agent: { readonly name: string; readonly onBehalfOf: string | null } | null;
  };
  readonly method: string;
  readonly verb: string;
  /** Path and query as forwarded, less any credential in them (audit/scrub.ts): this is stored and shown. */
  readonly uri: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource: string;
  readonly namespace: string;
  /** The object's name; for a create, the name in the body (the path names none). */
  readonly name: string;
  /** A create that lets the API server pick the name: its prefix (`metadata.generateName`). */
  readonly generateName: string;
  readonly exec: ExecFacts | null;
  readonly reasons: readonly string[];
  /** The object's fields that made it need approval (the policy's `approval.fields`). */
  readonly fields: readonly string[];
  readonly bodySha256: string | null;
  /** What the policy lets an approver grant with this approval: the longest grant, and who may give it. */
  readonly grant: { readonly maxSeconds: number; readonly groups: readonly string[] };
}

/** Subjects stored before a field existed read as if it were empty. */
export function storedSubject(stored: unknown): ApprovalSubject {
  return { generateName: '', fields: [], grant: { maxSeconds: 0, groups: [] }, ...(stored as Partial<ApprovalSubject>) } as ApprovalSubject;
}

/** What a write would do, shown to the approver: masked as the requester's policy masks it. */
export type Preview =
  | {
      readonly status: 'ok';
      readonly diff: string;
      readonly dryRunCode: number;
      /** Indexes of the diff's lines that show the approval's fields. */
      readonly highlight?: readonly number[];
      readonly note?: string;
    }
  | { readonly status: 'unavailable'; readonly message: string }
  | { readonly status: 'none'; readonly message: string };

interface Common {
  readonly id: string;
  readonly fingerprint: string;
  readonly subject: ApprovalSubject;
  readonly approverGroups: readonly string[];
  readonly singleUse: boolean;
  readonly ttlSeconds: number;
  readonly createdAt: number;
  /** Pending: when nobody decided in time. Approved: until when it may be used. */
  readonly expiresAt: number;
  readonly preview: Preview | null;
}

interface Decided {
  readonly decidedBy: string;
  readonly decidedAt: number;
  readonly reason: string;
}

export type Approval =
  | (Common & { readonly state: 'pending' })
  | (Common & Decided & { readonly state: 'approved'; readonly uses: number })
  | (Common & Decided & { readonly state: 'used'; readonly uses: number; readonly usedAt: number })
  | (Common & Decided & { readonly state: 'denied' })
  | (Common & { readonly state: 'expired' });

export type ApprovalState = Approval['state'];

/** What the gateway knows when it opens an approval; the store adds the times and the state. */
export type NewApproval = Pick<Common, 'id' | 'fingerprint' | 'subject' | 'approverGroups' | 'singleUse' | 'ttlSeconds'>;

/**
 * The caller (the agent and the human behind it, never a per-token session),
 * the verb, the full path with its query and the body's digest: the same
 * command run again matches, any change to what it would do does not.
 */
export function fingerprint(identity: Identity, verb: string, uri: string, body: Buffer | undefined): string {
  const h = createHash('sha256');
  const caller = identity.agent ? ['agent', identity.username, identity.agent.name, identity.agent.onBehalfOf ?? ''] : ['user', identity.username];
  // Length-prefixed fields: no two different requests can share a serialization.
  for (const field of [...caller, verb, uri]) h.update(`${Buffer.byteLength(field)}:${field};`);
  h.update(body && body.length ? createHash('sha256').update(body).digest('hex') : '-');
  return h.digest('hex');
}

/** Short, unambiguous, easy to type: "ap-" and 12 base32 characters (60 bits). */
export function newApprovalId(): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(12);
  let s = 'ap-';
  for (const b of bytes) s += alphabet.charAt(b & 31);
  return s;
}

/** The name a create gives its object: from the body, which the policy saw parsed. */
function createdName(parsedBody: unknown): { readonly name: string; readonly generateName: string } {
  const meta = typeof parsedBody === 'object' && parsedBody !== null ? (parsedBody as { metadata?: unknown }).metadata : undefined;
  const field = (k: string) => {
    const v = typeof meta === 'object' && meta !== null ? (meta as Record<string, unknown>)[k] : undefined;
    return typeof v === 'string' ? v.slice(0, 253) : '';
  };
  return { name: field('name'), generateName: field('generateName') };
}

export function subjectOf(
  identity: Identity,
  target: RequestTarget,
  method: string,
  exec: ExecFacts | null,
  reasons: readonly string[],
  body: Buffer | undefined,
  more: {
    readonly fields?: readonly string[];
    readonly parsedBody?: unknown;
    readonly grant?: { readonly maxSeconds: number; readonly groups: readonly string[] };
  } = {},
): ApprovalSubject {
  const a = target.kind === 'resource' ? target.attributes : undefined;
  const created = a?.verb === 'create' && !a.name ? createdName(more.parsedBody) : { name: a?.name ?? '', generateName: '' };
  return {
    requester: {
      username: identity.username,
      groups: identity.groups.filter((g) => !g.startsWith('system:')),
      agent: identity.agent ? { name: identity.agent.name, onBehalfOf: identity.agent.onBehalfOf } : null,
    },
    method,
    verb: target.attributes.verb,
    uri: scrubUri(target.path + target.search),
    group: a?.group ?? '',
    resource: a?.resource ?? '',
    subresource: a?.subresource ?? '',
    namespace: a?.namespace ?? '',
    name: created.name,
    generateName: created.name ? '' : created.generateName,
    exec: exec && { ...exec, command: exec.command.map(scrubText) },
    reasons,
    fields: more.fields ?? [],
    bodySha256: body && body.length ? createHash('sha256').update(body).digest('hex') : null,
    grant: more.grant ?? { maxSeconds: 0, groups: [] },
  };
}

/** Why this person may not decide on this approval, or undefined when they may. */
export function whyNotApprover(approval: Approval, approver: Identity): string | undefined {
  const s = approval.subject.requester;
  if (approver.agent) return 'an agent cannot approve requests; a person in ' + approval.approverGroups.join(' or ') + ' must';
  if (approver.username === s.username) return 'you cannot approve your own request';
  if (s.agent?.onBehalfOf && approver.username === s.agent.onBehalfOf)
    return `you cannot approve a request made by an agent acting on your behalf (${s.agent.name})`;
  if (!approver.groups.some((g) => approval.approverGroups.includes(g)))
    return `only members of ${approval.approverGroups.join(' or ')} may decide on this approval`;
  return undefined;
}

/** Who may read an approval: its requester, the human behind the agent, and those who may decide on it. */
export function mayView(approval: Approval, viewer: Identity): boolean {
  const s = approval.subject.requester;
  return (
    viewer.username === s.username ||
    (s.agent?.onBehalfOf !== undefined && viewer.username === s.agent.onBehalfOf) ||
    viewer.groups.some((g) => approval.approverGroups.includes(g))
  );
}

/** The object's name, or what a create lets the API server complete: "" when the request names none. */
export function objectName(s: ApprovalSubject): string {
  return s.name || (s.generateName ? `${s.generateName}… (generateName)` : '');
}

/** One line naming the request, for messages, notifications and the CLI. */
export function describe(s: ApprovalSubject): string {
  const who = s.requester.agent
    ? `agent ${s.requester.agent.name}${s.requester.agent.onBehalfOf ? ` (for ${s.requester.agent.onBehalfOf})` : ''}`
    : s.requester.username;
  const name = objectName(s) ? ` ${objectName(s)}` : '';
  const what = s.resource
    ? `${s.verb} ${s.subresource ? `${s.resource}/${s.subresource}` : s.resource}${s.group ? `.${s.group}` : ''}${name}${s.namespace ? ` in ${s.namespace}` : ''}`
    : `${s.verb} ${s.uri}`;
  const cmd = s.exec ? ` (command: ${s.exec.command.join(' ')})` : '';
  return `${who}: ${what}${cmd}`;
}

/**
 * A time-bound grant (issue 16): given with an approval, it lets the same
 * requester's later requests of the same verb on the same kind of resource in
 * the same namespace (optionally only the named objects) through without a new
 * approval, until it expires or is revoked. It only ever stands in for an
 * approval: a request the policy denies never reaches it.
 */
export interface Grant {
  readonly id: string;
  readonly approvalId: string;
  readonly requester: string;
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource: string;
  readonly namespace: string;
  /** null: any object of that kind. */
  readonly names: readonly string[] | null;
  /** Who may see and revoke it (besides the requester): the policy's grant groups. */
  readonly groups: readonly string[];
  readonly grantedBy: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly revokedBy: string | null;
  readonly revokedAt: number | null;
}

export function newGrantId(): string {
  return `gr-${randomBytes(8).toString('hex').slice(0, 12)}`;
}

/** The scope of a grant, said in one line. */
export function describeGrant(g: Grant): string {
  const kind = g.subresource ? `${g.resource}/${g.subresource}` : g.resource;
  return `${g.requester} may ${g.verb} ${kind}${g.group ? `.${g.group}` : ''}${g.namespace ? ` in ${g.namespace}` : ''}${g.names ? ` named ${g.names.join(', ')}` : ''}`;
}
