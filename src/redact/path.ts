/**
 * Mask paths (jsonpath-plus syntax) compiled once into steps a streaming matcher
 * can follow. The supported subset is what can be decided while bytes stream:
 * `$`, `.name`, `['name']`, unions, `[n]`, `[*]`, `*`, non-negative slices,
 * `..`, and filters over the tested element's own fields. Everything else —
 * negative indices, parent (`^`) and property-name (`~`) operators, `@root`,
 * `$` inside filters, script expressions — is refused with an error naming the
 * construct: a path is never silently ignored.
 */

export type Key = string | number;

export type Selector =
  | { readonly kind: 'names'; readonly names: ReadonlySet<string>; readonly indices: ReadonlySet<number> }
  | { readonly kind: 'wildcard' }
  | { readonly kind: 'slice'; readonly start: number; readonly end: number | undefined; readonly step: number }
  | Filter
  /** A directive's `when`: the value reached so far must pass the filter to go on. Consumes no key. */
  | (Omit<Filter, 'kind'> & { readonly kind: 'guard' });

export interface Filter {
  readonly kind: 'filter';
  readonly test: (value: unknown) => boolean;
  readonly text: string;
  /** The tested element's own members the filter reads; undefined when it reads `@` itself. */
  readonly reads: ReadonlySet<string> | undefined;
}

export interface Step {
  /** `..`: the selector applies at any depth below. */
  readonly descendant: boolean;
  readonly selector: Selector;
}

export interface CompiledPath {
  readonly text: string;
  readonly steps: readonly Step[];
}

export class MaskPathError extends Error {
  readonly code = 'GATEHOUSE_MASK_PATH';
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`${problem} in ${JSON.stringify(path)}`);
  }
}

/** Whether a non-filter selector picks the child at `key`. */
export function selects(selector: Selector, key: Key): boolean {
  switch (selector.kind) {
    case 'wildcard':
      return true;
    case 'names':
      return typeof key === 'string' ? selector.names.has(key) : selector.indices.has(key);
    case 'slice':
      return (
        typeof key === 'number' && key >= selector.start && (selector.end === undefined || key < selector.end) && (key - selector.start) % selector.step === 0
      );
    case 'filter':
    case 'guard':
      return false;
  }
}

const cache = new Map<string, CompiledPath>();

/** Compiles a path, once per distinct text. */
export function compilePath(text: string): CompiledPath {
  let compiled = cache.get(text);
  if (!compiled) {
    compiled = { text, steps: new Parser(text).path() };
    if (cache.size > 4096) cache.clear();
    cache.set(text, compiled);
  }
  return compiled;
}

const whenCache = new Map<string, Filter>();

/** Compiles a directive's `when`: one filter expression, in the syntax of `[?( … )]`. */
export function compileWhen(text: string): Filter {
  let compiled = whenCache.get(text);
  if (!compiled) {
    compiled = new Parser(text).filter();
    if (whenCache.size > 4096) whenCache.clear();
    whenCache.set(text, compiled);
  }
  return compiled;
}

/**
 * For the policy engine: the problem with a directive's path and `when`, or undefined if they compile.
 * A `when` guards what the path selects inside the object, so the path must go inside it.
 */
export function checkMaskPath(path: string, when?: string): string | undefined {
  try {
    const steps = compilePath(path).steps;
    if (when === undefined) return undefined;
    compileWhen(when);
    return steps.length === 0 ? 'a directive with "when" must select inside the object, not "$" itself' : undefined;
  } catch (err) {
    if (err instanceof MaskPathError) return err.message;
    throw err;
  }
}

// ---------------------------------------------------------------------------

type Expr = (v: unknown) => unknown;

const NAME_CHAR = /[A-Za-z0-9_\-$]/;

class Parser {
  private i = 0;
  /** Members read by the filter being parsed (undefined once it reads `@` whole). */
  private reads: Set<string> | undefined;
  constructor(private readonly s: string) {}

  private fail(problem: string): never {
    throw new MaskPathError(this.s, problem);
  }

  private peek(n = 0): string {
    return this.s[this.i + n] ?? '';
  }

  private eat(token: string): boolean {
    if (this.s.startsWith(token, this.i)) {
      this.i += token.length;
      return true;
    }
    return false;
  }

  private ws(): void {
    while (this.peek() === ' ') this.i++;
  }

  path(): Step[] {
    if (!this.eat('$')) this.fail('a mask path must start with "$"');
    const steps: Step[] = [];
    while (this.i < this.s.length) {
      if (this.eat('..')) {
        if (this.peek() === '[') steps.push({ descendant: true, selector: this.bracket() });
        else steps.push({ descendant: true, selector: this.dotted() });
      } else if (this.eat('.')) {
        steps.push({ descendant: false, selector: this.dotted() });
      } else if (this.peek() === '[') {
        steps.push({ descendant: false, selector: this.bracket() });
      } else if (this.peek() === '^') {
        this.fail('the parent operator "^" is not supported');
      } else if (this.peek() === '~') {
        this.fail('the property-name operator "~" is not supported');
      } else {
        this.fail(`unexpected ${JSON.stringify(this.peek())} at offset ${this.i}`);
      }
    }
    return steps;
  }

  /** A whole text as one filter expression (a directive's `when`). */
  filter(): Filter {
    this.reads = new Set();
    const test = this.expr();
    this.ws();
    if (this.i < this.s.length) this.fail(`unexpected ${JSON.stringify(this.peek())} at offset ${this.i}`);
    return { kind: 'filter', test: (v) => Boolean(test(v)), text: this.s, reads: this.reads };
  }

  private dotted(): Selector {
    if (this.eat('*')) return { kind: 'wildcard' };
    if (this.peek() === '@') this.fail('"@" names (@root, @parent, @path, @property) are not supported');
    const start = this.i;
    while (this.i < this.s.length && NAME_CHAR.test(this.peek())) this.i++;
    if (this.i === start) this.fail(`a name is expected at offset ${start}`);
    const name = this.s.slice(start, this.i);
    if (this.peek() === '~') this.fail('the property-name operator "~" is not supported');
    if (this.peek() === '(') this.fail(`function calls (${name}()) are not supported`);
    return { kind: 'names', names: new Set([name]), indices: new Set() };
  }

  private bracket(): Selector {
    this.eat('[');
    this.ws();
    let sel: Selector;
    if (this.eat('*')) sel = { kind: 'wildcard' };
    else if (this.eat('?(')) {
      const start = this.i;
      this.reads = new Set();
      const test = this.expr();
      const reads = this.reads;
      this.ws();
      if (!this.eat(')')) this.fail(`")" expected to close the filter at offset ${this.i}`);
      const body = this.s.slice(start, this.i - 1);
      sel = { kind: 'filter', test: (v) => Boolean(test(v)), text: body, reads };
    } else if (this.peek() === '(') this.fail('script expressions "[(...)]" are not supported');
    else sel = this.unionOrSlice();
    this.ws();
    if (!this.eat(']')) this.fail(`"]" expected at offset ${this.i}`);
    return sel;
  }

  private int(): number | undefined {
    const m = /^-?\d+/.exec(this.s.slice(this.i));
    if (!m) return undefined;
    if (m[0].startsWith('-')) this.fail('negative indices are not supported (the length of a streamed array is not known)');
    this.i += m[0].length;
    return Number(m[0]);
  }

  private unionOrSlice(): Selector {
    const first = this.peek();
    if (first === ':' || /\d|-/.test(first)) {
      const save = this.i;
      const a = this.int();
      this.ws();
      if (this.eat(':')) {
        this.ws();
        const end = this.int();
        this.ws();
        let step = 1;
        if (this.eat(':')) {
          this.ws();
          const st = this.int();
          if (st === 0) this.fail('a slice step of 0 is not allowed');
          step = st ?? 1;
        }
        return { kind: 'slice', start: a ?? 0, end, step };
      }
      this.i = save;
    }
    const names = new Set<string>();
    const indices = new Set<number>();
    for (;;) {
      this.ws();
      const q = this.peek();
      if (q === "'" || q === '"') names.add(this.quoted());
      else {
        const n = this.int();
        if (n === undefined) this.fail(`a quoted name, an index, "*", a slice or a filter is expected at offset ${this.i}`);
        indices.add(n);
      }
      this.ws();
      if (!this.eat(',')) break;
    }
    return { kind: 'names', names, indices };
  }

  private quoted(): string {
    const q = this.s[this.i++]!;
    let out = '';
    while (this.i < this.s.length && this.peek() !== q) {
      if (this.peek() === '\\') {
        this.i++;
        out += this.s[this.i++] ?? '';
      } else out += this.s.charAt(this.i++);
    }
    if (!this.eat(q)) this.fail('an unterminated quoted name');
    return out;
  }

  // Filter expressions: ||, &&, !, parentheses, comparisons, =~ and .match(), over @.field chains.
  private expr(): Expr {
    let left = this.and();
    for (;;) {
      this.ws();
      if (!this.eat('||')) return left;
      const l = left;
      const r = this.and();
      left = (v) => l(v) || r(v);
    }
  }

  private and(): Expr {
    let left = this.unary();
    for (;;) {
      this.ws();
      if (!this.eat('&&')) return left;
      const l = left;
      const r = this.unary();
      left = (v) => l(v) && r(v);
    }
  }

  private unary(): Expr {
    this.ws();
    if (this.peek() === '!' && this.peek(1) !== '=') {
      this.i++;
      const inner = this.unary();
      return (v) => !inner(v);
    }
    if (this.eat('(')) {
      const inner = this.expr();
      this.ws();
      if (!this.eat(')')) this.fail(`")" expected at offset ${this.i}`);
      return inner;
    }
    return this.comparison();
  }

  private comparison(): Expr {
    const left = this.operand();
    this.ws();
    const op = ['===', '!==', '==', '!=', '=~', '<=', '>=', '<', '>'].find((o) => this.s.startsWith(o, this.i));
    if (!op) return left;
    this.i += op.length;
    this.ws();
    if (op === '=~') {
      const re = this.regex();
      return (v) => {
        const s = left(v);
        return typeof s === 'string' && re.test(s);
      };
    }
    const right = this.operand();
    switch (op) {
      case '==':
      case '===':
        return (v) => left(v) === right(v);
      case '!=':
      case '!==':
        return (v) => left(v) !== right(v);
      default: {
        const cmp = {
          '<': (a: number, b: number) => a < b,
          '<=': (a: number, b: number) => a <= b,
          '>': (a: number, b: number) => a > b,
          '>=': (a: number, b: number) => a >= b,
        }[op]!;
        return (v) => {
          const a = left(v);
          const b = right(v);
          return typeof a === 'number' && typeof b === 'number' && cmp(a, b);
        };
      }
    }
  }

  private regex(): RegExp {
    if (this.peek() !== '/') this.fail(`a /regular expression/ is expected at offset ${this.i}`);
    this.i++;
    let body = '';
    while (this.i < this.s.length && this.peek() !== '/') {
      if (this.peek() === '\\') body += this.s.charAt(this.i++);
      body += this.s.charAt(this.i++);
    }
    if (!this.eat('/')) this.fail('an unterminated regular expression');
    const flags = /^[imsu]*/.exec(this.s.slice(this.i))![0];
    this.i += flags.length;
    try {
      return new RegExp(body, flags);
    } catch (err) {
      this.fail(`an invalid regular expression (${(err as Error).message})`);
    }
  }

  private operand(): Expr {
    this.ws();
    const c = this.peek();
    if (c === '@') {
      this.i++;
      if (/[A-Za-z]/.test(this.peek()))
        this.fail(`"@${/^[A-Za-z]+/.exec(this.s.slice(this.i))![0]}" is not supported: filters may read only the tested element's own fields`);
      const fields: string[] = [];
      let match: RegExp | undefined;
      for (;;) {
        if (this.eat('.')) {
          const start = this.i;
          while (this.i < this.s.length && NAME_CHAR.test(this.peek())) this.i++;
          const name = this.s.slice(start, this.i);
          if (!name) this.fail(`a field name is expected at offset ${start}`);
          if (this.peek() === '(') {
            if (name !== 'match') this.fail(`function calls (${name}()) are not supported; use .match(/re/) or =~`);
            this.i++;
            match = this.regex();
            if (!this.eat(')')) this.fail(`")" expected to close .match( at offset ${this.i}`);
            break;
          }
          fields.push(name);
        } else if (this.peek() === '[' && (this.peek(1) === "'" || this.peek(1) === '"')) {
          this.i++;
          fields.push(this.quoted());
          if (!this.eat(']')) this.fail(`"]" expected at offset ${this.i}`);
        } else break;
      }
      if (fields.length === 0) this.reads = undefined;
      else this.reads?.add(fields[0]!);
      const read = (v: unknown): unknown => {
        let cur = v;
        for (const f of fields) {
          if (typeof cur !== 'object' || cur === null || Array.isArray(cur) || !Object.prototype.hasOwnProperty.call(cur, f)) return undefined;
          cur = (cur as Record<string, unknown>)[f];
        }
        return cur;
      };
      if (match) {
        const re = match;
        return (v) => {
          const s = read(v);
          return typeof s === 'string' && re.test(s);
        };
      }
      return read;
    }
    if (c === '$') this.fail('"$" inside a filter is not supported: filters may read only the tested element\'s own fields');
    if (c === "'" || c === '"') {
      const s = this.quoted();
      return () => s;
    }
    const num = /^-?\d+(\.\d+)?/.exec(this.s.slice(this.i));
    if (num) {
      this.i += num[0].length;
      const n = Number(num[0]);
      return () => n;
    }
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.s.startsWith(word, this.i) && !NAME_CHAR.test(this.s[this.i + word.length] ?? '')) {
        this.i += word.length;
        return () => value;
      }
    }
    this.fail(`unsupported filter expression at offset ${this.i}: ${JSON.stringify(this.s.slice(this.i, this.i + 20))}`);
  }
}
