import { loadPolicy, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { toDecision, type Decision, type MaskPathCheck } from './decision.js';
import { ENTRYPOINT, PolicyLoadError, type CompiledPolicy } from './load.js';

/** What the pipeline asks: a decision now (embedded WASM) or soon (an OPA server). */
export interface PolicyEngine {
  readonly revision: string;
  evaluate(input: unknown): Decision | Promise<Decision>;
  /**
   * The revision serving now, held: a request that evaluates twice (an inspected
   * write) gets both answers, and its audit record's revision, from one policy
   * while a reload swaps another in. Absent: the engine never changes.
   */
  pin?(): PolicyEngine;
}

export interface EmbeddedPolicyEngine extends PolicyEngine {
  /** Synchronous, like the WASM it runs: one evaluation at a time, by construction. */
  evaluate(input: unknown): Decision;
  /** The same, for an input that is JSON text already (a replayed audit record's): no parse and serialize in between. */
  evaluateJson(input: string): Decision;
}

const encoder = new TextEncoder();

/**
 * Instantiates the compiled policy once. Inputs are handed over as JSON bytes
 * in an ArrayBuffer, so opa-wasm copies them straight into its memory.
 */
export async function createPolicyEngine(policy: CompiledPolicy, maskPathCheck?: MaskPathCheck): Promise<EmbeddedPolicyEngine> {
  let loaded: LoadedPolicy;
  try {
    loaded = await loadPolicy(policy.wasm);
  } catch (err) {
    throw new PolicyLoadError(`the policy WASM does not load: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!Object.prototype.hasOwnProperty.call(loaded.entrypoints, ENTRYPOINT)) {
    throw new PolicyLoadError(`the policy has no entrypoint ${ENTRYPOINT} (it has: ${Object.keys(loaded.entrypoints as object).join(', ') || 'none'})`);
  }
  if (policy.data !== undefined) loaded.setData(policy.data as object);
  const engine: EmbeddedPolicyEngine = {
    revision: policy.revision,
    evaluate: (input) => engine.evaluateJson(JSON.stringify(input)),
    evaluateJson(json) {
      const bytes = encoder.encode(json);
      const buffer = bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
      let resultSet: unknown;
      try {
        resultSet = loaded.evaluate(buffer, ENTRYPOINT);
      } catch (err) {
        // opa-wasm throws strings as well as Errors; both are a failed evaluation.
        const why = err instanceof Error ? err.message : String(err);
        return toDecision([{ result: { effect: 'deny', reasons: [`policy error: evaluation failed: ${why}`] } }]);
      }
      return toDecision(resultSet, maskPathCheck);
    },
  };
  return engine;
}
