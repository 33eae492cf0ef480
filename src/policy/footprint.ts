/**
 * The parts of the policy input a policy can read, as OPA's own dependency
 * analysis (`opa deps`) reports them. The embedded engine hands the policy only
 * those parts (less JSON for the WASM to parse) and remembers decisions for
 * inputs it has seen (policy/decision-cache.ts): both are exact only because
 * the analysis is conservative. A reference it cannot follow (`input[k]`,
 * `object.keys(input)`, `f(input.a)`) is reported at its last static prefix,
 * which then keeps that whole subtree (test/unit/policy/footprint.test.ts).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setMember } from '../members.js';

const run = promisify(execFile);

/** `true`: the whole value at this place is read; an object: only these members are. */
export type Footprint = true | { readonly [member: string]: Footprint };

interface Term {
  readonly type: string;
  readonly value: unknown;
}

const refText = (ref: readonly Term[]): string => ref.map((t) => (t.type === 'var' ? String(t.value) : `.${String(t.value)}`)).join('');

/**
 * The footprint of `input` in `opa deps --format json` output for `rule`, or
 * undefined when the output is not what is expected: then the policy gets its
 * input whole. The rule must be among the virtual documents: a rule opa deps
 * did not find is reported as a base document, with no input under it at all.
 */
export function footprintFromDeps(deps: unknown, rule: string): Footprint | undefined {
  // A member with nothing in it is left out of the output.
  const { base = [], virtual = [] } = (deps ?? {}) as { base?: unknown; virtual?: unknown };
  if (!Array.isArray(base) || !Array.isArray(virtual)) return undefined;
  if (!virtual.some((ref) => Array.isArray(ref) && refText(ref as Term[]) === rule)) return undefined;
  let root: Record<string, Footprint> = {};
  for (const ref of base as unknown[]) {
    if (!Array.isArray(ref) || ref.length === 0) return undefined;
    const [head, ...rest] = ref as (Term | null)[];
    if (head?.type !== 'var' || head.value !== 'input') continue;
    const keys: string[] = [];
    // A step that is not a plain member name (a number, a variable) ends what is known: keep all below.
    for (const t of rest) {
      if (t?.type !== 'string' || typeof t.value !== 'string') break;
      keys.push(t.value);
    }
    if (keys.length === 0) return true;
    root = add(root, keys);
  }
  return root;
}

function add(node: Record<string, Footprint>, keys: readonly string[]): Record<string, Footprint> {
  const [key, ...rest] = keys as [string, ...string[]];
  const had = Object.hasOwn(node, key) ? node[key]! : undefined;
  if (had === true) return node;
  return { ...node, [key]: rest.length === 0 ? true : add(had ?? {}, rest) };
}

/**
 * The input with only what the footprint names. A value that is not an object
 * where the footprint goes deeper is kept whole: whatever the policy asks of it
 * is undefined either way.
 */
export function project(value: unknown, footprint: Footprint): unknown {
  if (footprint === true || typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const from = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(footprint)) {
    if (!Object.hasOwn(from, key)) continue;
    const v = from[key];
    // A member named __proto__ (JSON.parse makes one) is a member here too, not out's prototype.
    if (v !== undefined) setMember(out, key, project(v, footprint[key]!));
  }
  return out;
}

/** Whether the footprint reads the value at this path, or anything inside it. */
export function reads(footprint: Footprint, path: readonly string[]): boolean {
  let node: Footprint = footprint;
  for (const key of path) {
    if (node === true) return true;
    if (!Object.hasOwn(node, key)) return false;
    node = node[key]!;
  }
  return true;
}

/**
 * Runs `opa deps` for the decision rule on the policy files (relative to `cwd`).
 * Undefined when anything fails: the analysis only makes evaluation cheaper, it
 * never decides.
 */
export async function analyseFootprint(opa: string, files: readonly string[], cwd: string, rule: string): Promise<Footprint | undefined> {
  try {
    const { stdout } = await run(opa, ['deps', '--format', 'json', rule, ...files.flatMap((f) => ['-d', f])], { cwd, maxBuffer: 16 * 1024 * 1024 });
    return footprintFromDeps(JSON.parse(stdout), rule);
  } catch {
    return undefined;
  }
}
