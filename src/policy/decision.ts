/**
 * The decision contract (README, "Policy contract") as types, and the check
 * that turns whatever the policy returned into one of them. Anything that is not
 * a well-formed decision becomes a deny with a reason: never an allow.
 */

import type { MaskAction, MaskDirective } from '../redact/directive.js';
import { parseFieldPath } from './field-path.js';

export type { MaskAction, MaskDirective };

export interface Approval {
  readonly approverGroups: readonly string[];
  readonly ttlSeconds: number;
  readonly singleUse: boolean;
  /** The object's fields that made this request need approval (field paths); the preview highlights them. */
  readonly fields: readonly string[];
  /**
   * The longest time-bound grant an approver may give with the approval (the same verb on the same kind
   * of resource in the same namespace, for the same requester); 0: none, every request needs its own.
   */
  readonly maxGrantSeconds: number;
  /** Who may give such a grant: the approver groups unless the policy names others. */
  readonly grantGroups: readonly string[];
}

/**
 * What the policy wants to see before its answer counts: `object`, the result
 * of a write as the API server would store it (a server-side dry run as the
 * requester). The gateway then asks again with `request.object` and
 * `request.oldObject`, and the second answer decides.
 */
export type Inspect = 'object';

export interface AuditHint {
  readonly level: 'Metadata' | 'Request' | 'RequestResponse';
}

/** What an allow and an approve both carry: the request goes ahead, masked, once any approval is given. */
interface Proceeding {
  readonly reasons: readonly string[];
  readonly mask: readonly MaskDirective[];
  readonly inspect: readonly Inspect[];
  readonly audit: AuditHint;
}

export type Decision =
  | (Proceeding & { readonly effect: 'allow' })
  | (Proceeding & { readonly effect: 'approve'; readonly approval: Approval })
  | { readonly effect: 'deny'; readonly reasons: readonly string[]; readonly audit: AuditHint };

const DEFAULT_AUDIT: AuditHint = { level: 'Metadata' };
const MAX_REASONS = 32;
const MAX_TEXT = 1024;

export function denyDecision(reason: string): Decision {
  return { effect: 'deny', reasons: [reason], audit: DEFAULT_AUDIT };
}

/** Checks a mask path and its `when` before they are used; the redactor's compiler plugs in here. */
export type MaskPathCheck = (path: string, when?: string) => string | undefined;

const basicPathCheck: MaskPathCheck = (path) => (path.startsWith('$') ? undefined : 'a JSONPath must start with "$"');

class Malformed extends Error {}

function strings(value: unknown, what: string, max: number): string[] {
  if (!Array.isArray(value) || value.length > max || !value.every((v) => typeof v === 'string' && v.length <= MAX_TEXT)) {
    throw new Malformed(`${what} must be a list of at most ${max} strings`);
  }
  return value as string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseMask(value: unknown, check: MaskPathCheck): MaskDirective[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Malformed('mask must be a list');
  return value.map((m, i) => {
    if (!isRecord(m)) throw new Malformed(`mask[${i}] must be an object`);
    const { path, action, columns, when } = m;
    if (typeof path !== 'string' || path.length > MAX_TEXT) throw new Malformed(`mask[${i}].path must be a string`);
    if (action !== 'redact' && action !== 'hash' && action !== 'remove')
      throw new Malformed(`mask[${i}].action must be redact, hash or remove, not ${JSON.stringify(action)}`);
    if (when !== undefined && (typeof when !== 'string' || when.length > MAX_TEXT)) throw new Malformed(`mask[${i}].when must be a string`);
    const problem = check(path, when);
    if (problem)
      throw new Malformed(`mask[${i}].path ${JSON.stringify(path)}${when === undefined ? '' : ` when ${JSON.stringify(when)}`} does not compile: ${problem}`);
    return {
      path,
      action,
      ...(when === undefined ? {} : { when }),
      ...(columns === undefined ? {} : { columns: strings(columns, `mask[${i}].columns`, 64) }),
    };
  });
}

function parseAudit(value: unknown): AuditHint {
  if (value === undefined) return DEFAULT_AUDIT;
  if (!isRecord(value) || !['Metadata', 'Request', 'RequestResponse'].includes(value['level'] as string)) {
    throw new Malformed('audit.level must be Metadata, Request or RequestResponse');
  }
  return { level: value['level'] as AuditHint['level'] };
}

function parseApproval(value: unknown): Approval {
  if (!isRecord(value)) throw new Malformed('approval must be an object for effect approve');
  const groups = strings(value['approverGroups'], 'approval.approverGroups', 64);
  if (groups.length === 0) throw new Malformed('approval.approverGroups must name at least one group');
  const ttl = value['ttlSeconds'];
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl <= 0 || ttl > 7 * 24 * 3600)
    throw new Malformed('approval.ttlSeconds must be a whole number of seconds between 1 and 604800');
  const singleUse = value['singleUse'] ?? true;
  if (typeof singleUse !== 'boolean') throw new Malformed('approval.singleUse must be a boolean');
  const fields = value['fields'] === undefined ? [] : strings(value['fields'], 'approval.fields', 64);
  const bad = fields.find((f) => parseFieldPath(f) === undefined);
  if (bad !== undefined) throw new Malformed(`approval.fields: ${JSON.stringify(bad)} is not a field path ($ then .name, ['name'] or [n] steps)`);
  const maxGrant = value['maxGrantSeconds'] ?? 0;
  if (typeof maxGrant !== 'number' || !Number.isInteger(maxGrant) || maxGrant < 0 || maxGrant > 24 * 3600)
    throw new Malformed('approval.maxGrantSeconds must be a whole number of seconds between 0 and 86400');
  const grantGroups = value['grantGroups'] === undefined ? groups : strings(value['grantGroups'], 'approval.grantGroups', 64);
  return { approverGroups: groups, ttlSeconds: ttl, singleUse, fields, maxGrantSeconds: maxGrant, grantGroups };
}

function parseInspect(value: unknown): Inspect[] {
  if (value === undefined) return [];
  const wanted = strings(value, 'inspect', 4);
  const unknown = wanted.find((w) => w !== 'object');
  // Unknown wishes are refused, not ignored: the policy expects to see something it would not get.
  if (unknown !== undefined) throw new Malformed(`inspect: unknown ${JSON.stringify(unknown)} (the gateway can inspect "object")`);
  return wanted.length ? ['object'] : [];
}

/**
 * The decision in a policy's result set (`[{result: ...}]`), or a deny saying
 * what was wrong with it.
 */
export function toDecision(resultSet: unknown, check: MaskPathCheck = basicPathCheck): Decision {
  try {
    if (!Array.isArray(resultSet) || resultSet.length === 0 || !isRecord(resultSet[0]) || !('result' in resultSet[0])) {
      throw new Malformed('the policy returned no decision (undefined result)');
    }
    if (resultSet.length > 1) throw new Malformed('the policy returned more than one result');
    const d = resultSet[0]['result'];
    if (!isRecord(d)) throw new Malformed('the decision must be an object');
    const reasons = d['reasons'] === undefined ? [] : strings(d['reasons'], 'reasons', MAX_REASONS);
    const audit = parseAudit(d['audit']);
    switch (d['effect']) {
      case 'deny':
        return { effect: 'deny', reasons: reasons.length ? reasons : ['denied by policy'], audit };
      case 'allow':
        return { effect: 'allow', reasons, mask: parseMask(d['mask'], check), inspect: parseInspect(d['inspect']), audit };
      case 'approve':
        return {
          effect: 'approve',
          reasons,
          mask: parseMask(d['mask'], check),
          inspect: parseInspect(d['inspect']),
          approval: parseApproval(d['approval']),
          audit,
        };
      default:
        throw new Malformed(`unknown effect ${JSON.stringify(d['effect'])}`);
    }
  } catch (err) {
    if (err instanceof Malformed) return denyDecision(`policy error: ${err.message}`);
    throw err;
  }
}
