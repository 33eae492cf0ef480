/**
 * Shadow mode (policy.shadow): a candidate policy decides every request beside
 * the live one. What the caller gets is the live decision, always; where the
 * candidate would have decided otherwise, the request's audit record says so
 * (and a metric counts it), so a policy change can be watched on real traffic
 * before it is made. A shadow that fails is counted and never fails a request.
 */
import { decisionFacts } from '../admission/record.js';
import { messageOf } from '../errors.js';
import { compareDecisions, type ChangeKind } from './compare.js';
import type { Decision } from './decision.js';
import type { EmbeddedPolicyEngine } from './engine.js';

export type ShadowVerdict =
  | {
      readonly outcome: 'differs';
      readonly change: ChangeKind;
      readonly revision: string;
      readonly effect: string;
      readonly reasons: readonly string[];
      readonly mask: readonly string[];
    }
  | { readonly outcome: 'error'; readonly revision: string; readonly message: string };

export interface Shadow {
  /** null when the candidate decides as the live policy did. */
  judge(input: unknown, live: Decision): ShadowVerdict | null;
}

export function createShadow(
  engine: Pick<EmbeddedPolicyEngine, 'evaluate' | 'revision'>,
  count: (outcome: 'same' | 'differs' | 'error', change?: ChangeKind) => void,
): Shadow {
  return {
    judge(input, live) {
      let facts;
      try {
        facts = decisionFacts(engine.evaluate(input));
      } catch (err) {
        count('error');
        return { outcome: 'error', revision: engine.revision, message: messageOf(err).slice(0, 512) };
      }
      const diff = compareDecisions(decisionFacts(live), facts);
      count(diff ? 'differs' : 'same', diff?.kind);
      return diff ? { outcome: 'differs', change: diff.kind, revision: engine.revision, effect: facts.effect, reasons: facts.reasons, mask: facts.mask } : null;
    },
  };
}
