/**
 * Sample inputs with the decision the policy must give them (policies/fixtures/
 * samples.json): the policy author's check that the compiled WASM — what the
 * gateway runs — answers as the Rego tests say the Rego does.
 */
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import type { Decision } from './decision.js';

export interface Sample {
  readonly name: string;
  readonly input: unknown;
  /** As the policy writes it: the gateway's defaults may be left out. */
  readonly decision: Record<string, unknown>;
}

export function readSamples(file: string): Sample[] {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { samples?: unknown };
  if (!Array.isArray(doc.samples)) throw new Error(`${file} has no "samples" list`);
  return doc.samples as Sample[];
}

/** The sample's decision as the gateway's Decision spells it out, defaults included. */
export function expectedDecision(written: Record<string, unknown>): Record<string, unknown> {
  const expected = { ...written };
  if (expected['effect'] === 'deny') delete expected['mask'];
  if (expected['effect'] !== 'deny') expected['inspect'] ??= [];
  if (expected['effect'] === 'approve') {
    const a = expected['approval'] as { approverGroups?: unknown };
    expected['approval'] = { fields: [], maxGrantSeconds: 0, grantGroups: a.approverGroups, ...a, singleUse: true };
  }
  return expected;
}

/** null when the engine answers the sample as expected; else both decisions, for the report. */
export function checkSample(evaluate: (input: unknown) => Decision, sample: Sample): { expected: unknown; got: unknown } | null {
  const expected = expectedDecision(sample.decision);
  const got = evaluate(sample.input);
  return isDeepStrictEqual(JSON.parse(JSON.stringify(got)), expected) ? null : { expected, got };
}
