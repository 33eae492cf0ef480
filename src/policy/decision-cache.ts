/**
 * Decisions of one loaded policy, by the part of the input it reads
 * (policy/footprint.ts). A compiled policy is a function of its input and its
 * data alone once it calls nothing that changes between calls (the engine
 * checks that before it makes a cache), so an input seen before gets the
 * decision it got then. Bounded by the text of its keys: at most the budget
 * and one key.
 *
 * Two generations instead of an exact LRU: new and recently used decisions go
 * to the young one; when it holds half the budget it becomes the old one and
 * the old one is dropped whole. A decision used since the last turnover
 * survives the next. An LRU in one Map evicted by iterating from its front,
 * which skips every deleted entry still in the table: 1.8 µs of the 2.7 a miss
 * spent storing its decision (bench/README.md, eighth session).
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
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  // for…in and an index loop: Object.values allocated an array at every level (half the freeze's time).
  if (Array.isArray(value)) for (let i = 0; i < value.length; i++) deepFreeze(value[i]);
  else for (const k in value) deepFreeze((value as Record<string, unknown>)[k]);
  return value;
}

export function createDecisionCache(budgetChars = 1024 * 1024): DecisionCache {
  const half = budgetChars / 2;
  let young = new Map<string, Decision>();
  let old = new Map<string, Decision>();
  let youngChars = 0;
  const keep = (key: string, decision: Decision) => {
    young.set(key, decision);
    youngChars += key.length;
    if (youngChars > half) {
      old = young;
      young = new Map();
      youngChars = 0;
    }
  };
  return {
    get(key) {
      const fresh = young.get(key);
      if (fresh !== undefined) return fresh;
      const d = old.get(key);
      if (d !== undefined) {
        old.delete(key);
        keep(key, d);
      }
      return d;
    },
    set(key, decision) {
      if (key.length > MAX_KEY_CHARS || young.has(key) || old.has(key)) return;
      keep(key, deepFreeze(decision));
    },
    get size() {
      return young.size + old.size;
    },
  };
}
