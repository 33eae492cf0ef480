/**
 * Mask directives compiled for one response shape into a set of rules the
 * streaming engine follows as a small NFA: a state is (rule, step), advanced by
 * each member key or array index on the way down.
 *
 * Kubernetes shapes become path prefixes, so one policy path written for an
 * object (`$.data.*`) covers a get, every item of a list, every watch event and
 * every Table row. A value reached by several rules is rewritten once, by the
 * strongest action (remove > redact > hash), so overlapping prefixes never apply
 * a directive twice.
 *
 * A directive's `when` becomes a guard step right after the prefix: it consumes no
 * key, and the object it stands on goes on only if it passes. The engine decides it
 * as it decides a filter (holding the object until the members `when` reads arrive),
 * so a guard sits on the object of each item, event or row, never on a sibling.
 */
import type { MaskAction, MaskDirective } from './directive.js';
import { compilePath, compileWhen, selects, type Key, type Step } from './path.js';

/** What a response looks like, chosen from the request that produced it. */
export type Shape = 'object' | 'list' | 'watch';

export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Rule actions: the directive's; re-masking the JSON held in last-applied-configuration;
 * reading a Table's column names; a Table cell, redacted if its column is named in a directive.
 */
export type RuleAction = MaskAction | 'lastApplied' | 'columnDefs' | 'cell';

export const STRENGTH: Readonly<Record<MaskAction, number>> = { hash: 1, redact: 2, remove: 3 };

interface Rule {
  readonly steps: readonly Step[];
  readonly action: RuleAction;
}

const child = (name: string): Step => ({ descendant: false, selector: { kind: 'names', names: new Set([name]), indices: new Set() } });
const every: Step = { descendant: false, selector: { kind: 'wildcard' } };
const TABLE_ROWS: Step[] = [child('rows'), every, child('object')];

const PREFIXES: Readonly<Record<Shape, readonly (readonly Step[])[]>> = {
  // A get, a create/update/patch/delete echo; with as=Table, each row's object.
  object: [[], TABLE_ROWS],
  list: [[child('items'), every], TABLE_ROWS],
  // Each newline-separated event: {"type": ..., "object": {...}}; the object may be a Table (kubectl get -w).
  watch: [[child('object')], [child('object'), ...TABLE_ROWS]],
};

const LAST_APPLIED_STEPS: Step[] = [child('metadata'), child('annotations'), child(LAST_APPLIED)];

/** The outcome of stepping from a node's states to one child. */
export interface Advance {
  readonly states: number[];
  /** 0 for none, else the STRENGTH of the strongest directive ending here. */
  readonly strength: number;
  readonly lastApplied: boolean;
  readonly columnDefs: boolean;
  readonly cell: boolean;
  /** States whose next step is a filter: the child's value decides them. */
  readonly pending: number[];
}

/** No states: shared, never written to. */
export const NONE: number[] = [];
const EMPTY: Advance = { states: NONE, strength: 0, lastApplied: false, columnDefs: false, cell: false, pending: NONE };

/** Where a Table's column names and cells are, per shape (a watch event wraps the Table in `object`). */
const TABLE_PARTS: Readonly<Record<Shape, readonly (readonly Step[])[]>> = { object: [[]], list: [[]], watch: [[child('object')]] };

/** Member names a subtree is scanned for (Program.seekOf). */
export interface Seek {
  readonly names: ReadonlySet<string>;
  /** Each name with its UTF-8: a key with no escape matches only if its bytes are one of these. */
  readonly needles: readonly { readonly name: string; readonly bytes: Buffer }[];
  /** A key longer than this (escaped: six bytes per UTF-16 unit) cannot be one of the names. */
  readonly maxKeyBytes: number;
  /** A name holds U+FFFD, which invalid UTF-8 decodes to: every key short enough is decoded. */
  readonly decodeAll: boolean;
}

function mergeSeeks(parts: readonly Pick<Seek, 'names'>[]): Seek {
  const names = [...new Set(parts.flatMap((p) => [...p.names]))];
  return {
    names: new Set(names),
    needles: names.map((name) => ({ name, bytes: Buffer.from(name) })),
    maxKeyBytes: 6 * Math.max(...names.map((n) => n.length)),
    decodeAll: names.some((n) => n.includes('\uFFFD')),
  };
}

export class Program {
  private readonly rules: Rule[] = [];
  readonly rootStates: number[];
  /** The same directives for a lone object: applied to the JSON inside last-applied-configuration. */
  readonly directives: readonly MaskDirective[];
  readonly shape: Shape;
  /** Lower-cased Table column names whose cells are redacted. */
  readonly columns: ReadonlySet<string>;

  /** Root states that stand on a guard: the root object itself decides them (a get with a `when`). */
  readonly rootPending: number[];

  constructor(directives: readonly MaskDirective[], shape: Shape) {
    this.directives = directives;
    this.shape = shape;
    for (const prefix of PREFIXES[shape]) {
      for (const d of directives) {
        const guard: Step[] = d.when === undefined ? [] : [{ descendant: false, selector: { ...compileWhen(d.when), kind: 'guard' } }];
        this.rules.push({ steps: [...prefix, ...guard, ...compilePath(d.path).steps], action: d.action });
      }
      if (directives.length) this.rules.push({ steps: [...prefix, ...LAST_APPLIED_STEPS], action: 'lastApplied' });
    }
    this.columns = new Set(directives.flatMap((d) => d.columns ?? []).map((c) => c.toLowerCase()));
    if (this.columns.size) {
      for (const prefix of TABLE_PARTS[shape]) {
        this.rules.push({ steps: [...prefix, child('columnDefinitions')], action: 'columnDefs' });
        this.rules.push({ steps: [...prefix, child('rows'), every, child('cells'), every], action: 'cell' });
      }
    }
    if (this.rules.length > 1 << 15) throw new TypeError('too many mask rules');
    const guarded = (r: number) => this.rules[r]!.steps[0]?.selector.kind === 'guard';
    this.rootStates = this.rules.flatMap((_, r) => (guarded(r) ? [] : [r << 8]));
    this.rootPending = this.rules.flatMap((_, r) => (guarded(r) ? [r << 8] : []));
  }

  /** The outcome for a value already in `states`: the directives complete there, and the filters waiting on it. */
  finalOf(states: number[], pending: number[] = NONE): Advance {
    let strength = 0;
    let lastApplied = false;
    let columnDefs = false;
    let cell = false;
    for (const s of states) {
      const rule = this.rules[s >> 8]!;
      if ((s & 0xff) !== rule.steps.length) continue;
      if (rule.action === 'lastApplied') lastApplied = true;
      else if (rule.action === 'columnDefs') columnDefs = true;
      else if (rule.action === 'cell') cell = true;
      else strength = Math.max(strength, STRENGTH[rule.action]);
    }
    return { states, pending, strength, lastApplied, columnDefs, cell };
  }

  /** Steps from a container's states to its child at `key`. Hot path: no sets, no spreads (bench/redact). */
  advance(states: readonly number[], key: Key): Advance {
    if (states.length === 0) return EMPTY;
    let next: number[] | undefined;
    let pending: number[] | undefined;
    let strength = 0;
    let lastApplied = false;
    let columnDefs = false;
    let cell = false;
    for (let k = 0; k < states.length; k++) {
      const s = states[k]!;
      const rule = this.rules[s >> 8]!;
      const i = s & 0xff;
      if (i >= rule.steps.length) continue;
      const step = rule.steps[i]!;
      if (step.descendant) {
        if (next === undefined) next = [s];
        else if (!next.includes(s)) next.push(s);
      }
      if (step.selector.kind === 'filter') (pending ??= []).push(s);
      else if (selects(step.selector, key)) {
        const n = s + 1;
        // The child stands on a guard: its own value decides whether the rule goes on.
        if (rule.steps[i + 1]?.selector.kind === 'guard') (pending ??= []).push(n);
        else if (next === undefined) next = [n];
        else if (!next.includes(n)) next.push(n);
        if (i + 1 === rule.steps.length) {
          if (rule.action === 'lastApplied') lastApplied = true;
          else if (rule.action === 'columnDefs') columnDefs = true;
          else if (rule.action === 'cell') cell = true;
          else if (STRENGTH[rule.action] > strength) strength = STRENGTH[rule.action];
        }
      }
    }
    if (next === undefined && pending === undefined) return EMPTY;
    return { states: next ?? [], pending: pending ?? NONE, strength, lastApplied, columnDefs, cell };
  }

  /**
   * After the filters and guards waiting on a child saw its value: the states they
   * add for that child (a filter that passes may land on a guard, tested on the same value).
   */
  resolveFilters(pending: readonly number[], value: unknown): number[] {
    const out: number[] = [];
    for (let s of pending) {
      const steps = this.rules[s >> 8]!.steps;
      for (;;) {
        const sel = steps[s & 0xff]?.selector;
        if ((sel?.kind !== 'filter' && sel?.kind !== 'guard') || !sel.test(value)) break;
        s++;
        if (steps[s & 0xff]?.selector.kind !== 'guard') {
          out.push(s);
          break;
        }
      }
    }
    return out;
  }

  /**
   * The members of the tested element that the pending filters read, or
   * undefined when one reads the element whole: then the element is held entire.
   */
  readsOf(pending: readonly number[]): ReadonlySet<string> | undefined {
    // One filter waiting is the common case (each element of a filtered array): computed once.
    if (pending.length === 1) {
      const s = pending[0]!;
      if (!this.reads.has(s)) this.reads.set(s, this.readsOfAll(pending));
      return this.reads.get(s);
    }
    return this.readsOfAll(pending);
  }

  private readonly reads = new Map<number, ReadonlySet<string> | undefined>();

  private readsOfAll(pending: readonly number[]): ReadonlySet<string> | undefined {
    const all = new Set<string>();
    for (const s of pending) {
      const steps = this.rules[s >> 8]!.steps;
      // A filter that passes may land on a guard, which the same element then decides too.
      for (let i = s & 0xff; i < steps.length; i++) {
        const sel = steps[i]!.selector;
        if (sel.kind !== 'guard' && (sel.kind !== 'filter' || i > (s & 0xff))) break;
        if (sel.reads === undefined) return undefined;
        for (const r of sel.reads) all.add(r);
      }
    }
    return all;
  }

  /**
   * Whether no scalar child of a node in these states can be affected: no state
   * is one step from its end and none waits on a filter or a guard. Then scalars are
   * copied without stepping (bench/redact, PodList under `..`).
   */
  scalarsInert(states: readonly number[]): boolean {
    return !states.some((s) => {
      const rule = this.rules[s >> 8]!;
      const i = s & 0xff;
      return i >= rule.steps.length - 1 || rule.steps[i]!.selector.kind === 'filter' || rule.steps[i + 1]!.selector.kind === 'guard';
    });
  }

  /**
   * The names these states look for when every one of them is a `..name` step that nothing
   * else can complete or remove on the way: then any other member, at any depth, leaves the
   * states as they are, and the engine may scan the subtree for those member names alone
   * instead of stepping through every key (bench/redact, PodList under `..env`).
   */
  seekOf(states: readonly number[]): Seek | undefined {
    if (states.length <= 1) return states.length === 1 ? this.seekOfState(states[0]!) : undefined;
    // Most frames mix in a state that is no `..name`: known without building a key.
    const parts: Seek[] = [];
    for (const s of states) {
      const part = this.seekOfState(s);
      if (part === undefined) return undefined;
      parts.push(part);
    }
    const key = states.join(',');
    let seek = this.seeks.get(key);
    if (!seek) {
      seek = mergeSeeks(parts);
      this.seeks.set(key, seek);
    }
    return seek;
  }

  private readonly seeks = new Map<number | string, Seek | null>();

  private seekOfState(s: number): Seek | undefined {
    let seek = this.seeks.get(s);
    if (seek === undefined) {
      const rule = this.rules[s >> 8]!;
      const i = s & 0xff;
      const step = rule.steps[i];
      const sel = step?.selector;
      const removes = rule.action === 'remove' && i === rule.steps.length - 1;
      seek = step?.descendant && sel?.kind === 'names' && sel.indices.size === 0 && !removes ? mergeSeeks([sel]) : null;
      this.seeks.set(s, seek);
    }
    return seek ?? undefined;
  }

  /** Whether a child of a node in these states may be removed (the container then manages its commas). */
  mayRemoveChild(states: readonly number[]): boolean {
    return states.some((s) => {
      const rule = this.rules[s >> 8]!;
      return rule.action === 'remove' && (s & 0xff) === rule.steps.length - 1;
    });
  }

  private lastApplied: Program | undefined;

  /** The program for the lone object held in last-applied-configuration, built once. */
  lastAppliedProgram(): Program {
    return (this.lastApplied ??= new Program(this.directives, 'object'));
  }
}
