/**
 * The slow, obviously-right way the streaming redactor must agree with:
 * JSON.parse, find matches with jsonpath-plus, rewrite the tree, stringify.
 */
import { createHmac } from 'node:crypto';
import { JSONPath } from 'jsonpath-plus';
import { HASH_PREFIX, REDACTED } from '../../src/redact/stream.js';

export type Action = 'redact' | 'hash' | 'remove';
const STRENGTH: Record<Action, number> = { hash: 1, redact: 2, remove: 3 };

export function referenceHash(value: unknown, key: Buffer): string {
  return HASH_PREFIX + createHmac('sha256', key).update(JSON.stringify(value)).digest().subarray(0, 18).toString('base64');
}

/**
 * `refPath` is the same path in syntax jsonpath-plus evaluates (`.match()` for `=~`);
 * `refWhen`, a directive's `when` the same way: the directive applies to `doc` only if
 * jsonpath-plus's own filter keeps `doc`.
 */
export function referenceRedact(doc: unknown, directives: { refPath: string; action: Action; refWhen?: string | undefined }[], hashKey: Buffer): unknown {
  const matched = new Map<string, number>();
  for (const d of directives) {
    if (d.refWhen !== undefined && JSONPath<unknown[]>({ path: `$[?(${d.refWhen})]`, json: [doc], wrap: true }).length === 0) continue;
    const pointers = JSONPath<string[]>({ path: d.refPath, json: doc as object, resultType: 'pointer', wrap: true });
    for (const p of pointers) matched.set(p, Math.max(matched.get(p) ?? 0, STRENGTH[d.action]));
  }
  const REMOVED = Symbol('removed');
  const walk = (value: unknown, pointer: string): unknown => {
    const strength = matched.get(pointer);
    if (strength === STRENGTH.remove) return pointer === '' ? REDACTED : REMOVED;
    if (strength === STRENGTH.redact) return REDACTED;
    if (strength === STRENGTH.hash) return referenceHash(value, hashKey);
    if (Array.isArray(value)) return value.map((v, i) => walk(v, `${pointer}/${i}`)).filter((v) => v !== REMOVED);
    if (typeof value === 'object' && value !== null) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const w = walk(v, `${pointer}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`);
        if (w !== REMOVED) out[k] = w;
      }
      return out;
    }
    return value;
  };
  return walk(doc, '');
}
