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
const decoder = new TextDecoder();
const PAGE = 64 * 1024;

/** What opa-wasm 1.x keeps on a LoadedPolicy and its fast path (ABI 1.2, `opa_eval`) uses. */
interface Internals {
  readonly minorVersion?: number;
  readonly mem?: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  readonly wasmInstance?: { readonly exports: Record<string, unknown> };
  readonly dataAddr?: number;
  readonly dataHeapPtr?: number;
  readonly entrypoints?: Record<string, number>;
}

/**
 * opa-wasm's own fast path, minus what the profile showed around it (bench/README.md): the input is
 * encoded straight into the instance's memory (no intermediate buffer and copy), and the result's end
 * is found with a native search and decoded by one shared decoder (opa-wasm scans for it byte by byte
 * in JavaScript and makes a TextDecoder per call). Undefined when the loaded policy does not look as
 * expected (another opa-wasm, an older ABI): then opa-wasm's evaluate is used.
 */
function directEval(loaded: LoadedPolicy): ((json: string) => unknown) | undefined {
  const p = loaded as unknown as Internals;
  const opaEval = p.wasmInstance?.exports['opa_eval'];
  const entry = p.entrypoints?.[ENTRYPOINT];
  const mem = p.mem;
  if ((p.minorVersion ?? 0) < 2 || typeof opaEval !== 'function' || entry === undefined || !mem || p.dataAddr === undefined) return undefined;
  const evalFn = opaEval as (reserved: number, entrypoint: number, data: number, input: number, len: number, heap: number, format: number) => number;
  const dataAddr = p.dataAddr;
  return (json) => {
    // setData moves the heap start; read it each time, as opa-wasm does.
    const at = p.dataHeapPtr!;
    const most = json.length * 3;
    const short = at + most - mem.buffer.byteLength;
    if (short > 0) mem.grow(Math.ceil(short / PAGE));
    const { written } = encoder.encodeInto(json, new Uint8Array(mem.buffer, at, most));
    const ret = evalFn(0, entry, dataAddr, at, written, at + written, 0);
    const bytes = new Uint8Array(mem.buffer);
    return JSON.parse(decoder.decode(bytes.subarray(ret, bytes.indexOf(0, ret)))) as unknown;
  };
}

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
  const run =
    directEval(loaded) ??
    ((json: string): unknown => {
      const bytes = encoder.encode(json);
      return loaded.evaluate(bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer, ENTRYPOINT) as unknown;
    });
  const engine: EmbeddedPolicyEngine = {
    revision: policy.revision,
    evaluate: (input) => engine.evaluateJson(JSON.stringify(input)),
    evaluateJson(json) {
      let resultSet: unknown;
      try {
        resultSet = run(json);
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
