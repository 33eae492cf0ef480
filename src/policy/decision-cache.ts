/**
 * Decisions of one loaded policy, by the part of the input it reads
 * (policy/footprint.ts). A compiled policy is a function of its input and its
 * data alone once it calls nothing that changes between calls (the engine
 * checks that before it makes a cache), so an input seen before gets the
 * decision it got then. Bounded by the text it keeps: least recently used
 * entries go first.
 */
import type { Decision } from './decision.js';

export interface DecisionCache {
  get(key: string): Decision | undefined;
  set(key: string, decision: Decision): void;
  readonly size: number;
}

/** Keys past this length (an inspected write's objects) are not kept: they rarely come back. */
export const MAX_KEY_CHARS = 4096;

/** A remembered decision is handed to many requests: none of them may change it for the others. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export function createDecisionCache(budgetChars = 1024 * 1024): DecisionCache {
  // A Map iterates in insertion order: re-inserting on a hit keeps the least recently used first.
  const entries = new Map<string, Decision>();
  let chars = 0;
  return {
    get(key) {
      const d = entries.get(key);
      if (d !== undefined) {
        entries.delete(key);
        entries.set(key, d);
      }
      return d;
    },
    set(key, decision) {
      if (key.length > MAX_KEY_CHARS || entries.has(key)) return;
      entries.set(key, deepFreeze(decision));
      chars += key.length;
      for (const [old] of entries) {
        if (chars <= budgetChars) break;
        entries.delete(old);
        chars -= old.length;
      }
    },
    get size() {
      return entries.size;
    },
  };
}
