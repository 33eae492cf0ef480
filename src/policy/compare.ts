/**
 * Two decisions for the same request, as an audit record keeps them (effect,
 * reasons, mask directives as `action path`): what differs. Used by replay
 * (recorded vs candidate) and shadow mode (live vs candidate).
 */

/** The decision as an audit record keeps it. */
export interface KeptDecision {
  readonly effect: string;
  readonly reasons: readonly string[];
  readonly mask: readonly string[];
  readonly fields?: readonly string[];
}

export type ChangeKind = 'effect' | 'mask' | 'reasons';

const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** What differs between the recorded decision and the candidate's, if anything. */
export function compareDecisions(old: KeptDecision, now: KeptDecision): { kind: ChangeKind; maskAdded: string[]; maskRemoved: string[] } | null {
  const maskAdded = now.mask.filter((m) => !old.mask.includes(m));
  const maskRemoved = old.mask.filter((m) => !now.mask.includes(m));
  if (old.effect !== now.effect) return { kind: 'effect', maskAdded, maskRemoved };
  if (maskAdded.length || maskRemoved.length || !same(old.mask, now.mask)) return { kind: 'mask', maskAdded, maskRemoved };
  if (!same([...old.reasons].sort(), [...now.reasons].sort()) || !same(old.fields ?? [], now.fields ?? [])) return { kind: 'reasons', maskAdded, maskRemoved };
  return null;
}
