import { loadPolicy, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { createDecisionCache, type DecisionCache } from './decision-cache.js';
import { toDecision, type Decision, type MaskPathCheck } from './decision.js';
import { project, reads, type Footprint } from './footprint.js';
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
  /**
   * The same, for an input that is JSON text already (a replayed audit record's): no parse and serialize in
   * between, and no cache: the whole input goes to the policy.
   */
  evaluateJson(input: string): Decision;
  /** Whether decisions are remembered (policy/decision-cache.ts), and if not, why not: for the start-up log. */
  readonly cache: { readonly on: true } | { readonly on: false; readonly why: string };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const PAGE = 64 * 1024;
/** Result texts are short (a few hundred characters) and few: this keeps about a thousand. */
const RESULT_BUDGET_CHARS = 256 * 1024;

/** What opa-wasm 1.x keeps on a LoadedPolicy and its fast path (ABI 1.2, `opa_eval`) uses. */
interface Internals {
  readonly minorVersion?: number;
  readonly mem?: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  readonly wasmInstance?: { readonly exports: Record<string, unknown> };
  readonly dataAddr?: number;
  readonly dataHeapPtr?: number;
  readonly entrypoints?: Record<string, number>;
}

/** The NUL-terminated JSON the WASM wrote at `at`: its end found by a native search, decoded by one shared decoder. */
function textAt(buffer: ArrayBuffer, at: number): string {
  const bytes = new Uint8Array(buffer);
  return decoder.decode(bytes.subarray(at, bytes.indexOf(0, at)));
}

function jsonAt(buffer: ArrayBuffer, at: number): unknown {
  return JSON.parse(textAt(buffer, at));
}

/**
 * The builtins opa-wasm implements in JavaScript (every other one is compiled into the WASM, which
 * imports nothing else from its host: no clock, no randomness, no network). These are functions of
 * their arguments. A policy that needs any other host builtin fails to evaluate; one that opa-wasm
 * may add later (time.now_ns, rand.intn) would make decisions change between calls, so the cache
 * stays off for any builtin not named here.
 */
const PURE_HOST_BUILTINS = new Set(['json.is_valid', 'sprintf', 'regex.split', 'yaml.is_valid', 'yaml.marshal', 'yaml.unmarshal']);

/** The builtins the policy needs from its host, read from the WASM the way opa-wasm does; undefined if it cannot be. */
function hostBuiltins(loaded: LoadedPolicy): string[] | undefined {
  const p = loaded as unknown as Internals;
  const exports = p.wasmInstance?.exports;
  const list = exports?.['builtins'];
  const dump = exports?.['opa_json_dump'];
  if (typeof list !== 'function' || typeof dump !== 'function' || !p.mem) return undefined;
  // Dumping allocates in the instance, which may grow its memory: read the buffer after.
  const at = (dump as (addr: number) => number)((list as () => number)());
  try {
    return Object.keys(jsonAt(p.mem.buffer, at) as object);
  } catch {
    return undefined;
  }
}

/** Input members that differ on every request: a policy that reads one never sees the same input twice. */
const UNIQUE_PER_REQUEST = [
  ['request', 'id'],
  ['context', 'now_ns'],
] as const;

function cacheVerdict(footprint: Footprint | undefined, builtins: string[] | undefined): EmbeddedPolicyEngine['cache'] {
  if (footprint === undefined) return { on: false, why: 'the input the policy reads is not known (a prebuilt policy, or opa deps failed on the Rego)' };
  const unique = UNIQUE_PER_REQUEST.find((path) => reads(footprint, path));
  if (unique) return { on: false, why: `the policy reads input.${unique.join('.')}, which differs on every request` };
  if (builtins === undefined) return { on: false, why: 'the builtins the policy calls are not known' };
  const impure = builtins.filter((b) => !PURE_HOST_BUILTINS.has(b));
  if (impure.length) return { on: false, why: `the policy calls ${impure.join(', ')}, which may answer differently each time` };
  return { on: true };
}

/**
 * opa-wasm's own fast path, minus what the profile showed around it (bench/README.md): the input is
 * encoded straight into the instance's memory (no intermediate buffer and copy), and the result's end
 * is found with a native search and decoded by one shared decoder (opa-wasm scans for it byte by byte
 * in JavaScript and makes a TextDecoder per call). Undefined when the loaded policy does not look as
 * expected (another opa-wasm, an older ABI): then opa-wasm's evaluate is used.
 */
function directEval(loaded: LoadedPolicy): ((json: string) => string) | undefined {
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
    // Only now: the evaluation may have grown the memory, which replaces its buffer.
    return textAt(mem.buffer, ret);
  };
}

/**
 * Instantiates the compiled policy once. Inputs are handed over as JSON bytes
 * in an ArrayBuffer, so opa-wasm copies them straight into its memory.
 */
export async function createPolicyEngine(
  policy: CompiledPolicy,
  maskPathCheck?: MaskPathCheck,
  options: { readonly onCacheLookup?: (hit: boolean) => void } = {},
): Promise<EmbeddedPolicyEngine> {
  let loaded: LoadedPolicy;
  try {
    loaded = await loadPolicy(policy.wasm);
  } catch (err) {
    throw new PolicyLoadError(`the policy WASM does not load: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!Object.prototype.hasOwnProperty.call(loaded.entrypoints, ENTRYPOINT)) {
    throw new PolicyLoadError(`the policy has no entrypoint ${ENTRYPOINT} (it has: ${Object.keys(loaded.entrypoints as object).join(', ') || 'none'})`);
  }
  const builtins = hostBuiltins(loaded);
  if (policy.data !== undefined) loaded.setData(policy.data as object);
  const footprint = policy.footprint;
  const cacheState = cacheVerdict(footprint, builtins);
  const cache: DecisionCache | undefined = cacheState.on ? createDecisionCache() : undefined;
  const direct = directEval(loaded);
  const viaOpaWasm = (json: string): unknown => {
    const bytes = encoder.encode(json);
    return loaded.evaluate(bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer, ENTRYPOINT) as unknown;
  };
  /**
   * Decisions by the text of the result the WASM wrote. Many inputs get the same answer (the same
   * rule allowed or denied them), and the decision is a function of that text alone: a text seen
   * before skips its JSON.parse, its checks and its freeze (bench/README.md, ninth session). Kept
   * whatever the input cache's verdict, since it does not depend on how the policy reached the text.
   */
  const results = createDecisionCache(RESULT_BUDGET_CHARS);
  /** A failed evaluation is not remembered: it may say more about this moment (memory) than about the input. */
  const decide = (json: string): { readonly decision: Decision; readonly remember: boolean } => {
    let resultSet: unknown;
    let text: string | undefined;
    try {
      if (direct !== undefined) {
        text = direct(json);
        const known = results.get(text);
        if (known !== undefined) return { decision: known, remember: true };
        resultSet = JSON.parse(text);
      } else resultSet = viaOpaWasm(json);
    } catch (err) {
      // opa-wasm throws strings as well as Errors; both are a failed evaluation.
      const why = err instanceof Error ? err.message : String(err);
      return { decision: toDecision([{ result: { effect: 'deny', reasons: [`policy error: evaluation failed: ${why}`] } }]), remember: false };
    }
    const decision = toDecision(resultSet, maskPathCheck);
    if (text !== undefined) results.set(text, decision);
    return { decision, remember: true };
  };
  return {
    revision: policy.revision,
    cache: cacheState,
    evaluate(input) {
      // What the policy cannot read is left out: less JSON for the WASM to parse, and equal keys for equal decisions.
      const json = JSON.stringify(footprint === undefined ? input : project(input, footprint));
      if (cache === undefined) return decide(json).decision;
      const known = cache.get(json);
      options.onCacheLookup?.(known !== undefined);
      if (known) return known;
      const { decision, remember } = decide(json);
      if (remember) cache.set(json, decision);
      return decision;
    },
    evaluateJson: (json) => decide(json).decision,
  };
}
