/**
 * The streaming redactor: a byte-level JSON scanner that tracks where it is,
 * copies untouched bytes through as slices of the input (no parse, no
 * stringify), and rewrites only the values a mask rule reaches. Subtrees no rule
 * can reach are skipped at memchr speed; subtrees only `..name` steps reach are
 * searched for those names without frames (seekScan). Chunk boundaries may fall
 * anywhere: inside strings, escapes and multi-byte characters.
 *
 * Bytes leave only once their fate is known: a matched value is never emitted,
 * and after an error nothing more is. Memory is bounded: besides one chunk, the
 * scanner holds only the container stack and, for a filter, a hash or the
 * last-applied annotation, the one value it must see whole (up to maxHoldBytes).
 */
import { hash as sha } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { Key } from './path.js';
import { NONE, STRENGTH, type Program, type Seek } from './program.js';

/** Stays valid base64, so a redacted Secret `data` value still decodes for typed clients. */
export const REDACTED = 'GATEHOUSE+REDACTED++';
/** Hashes keep the same property; the prefix lets writes carrying one back be refused. */
export const HASH_PREFIX = 'GATEHOUSE+HMAC++';

export interface RedactOptions {
  /** Key of the keyed hash: equal values hash equal, and nobody without the key can test guesses. */
  readonly hashKey: Buffer;
  /** The most a filter, a hash or last-applied may hold back; beyond it the response fails closed. */
  readonly maxHoldBytes: number;
}

export class RedactError extends Error {
  constructor(
    readonly code: 'GATEHOUSE_REDACT_MALFORMED' | 'GATEHOUSE_REDACT_TRUNCATED' | 'GATEHOUSE_REDACT_TOO_LARGE',
    message: string,
  ) {
    super(message);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const COMMA_BUF = Buffer.from(',');
const REDACTED_JSON = Buffer.from(JSON.stringify(REDACTED));

const WS = new Uint8Array(256);
for (const c of [0x20, 0x09, 0x0a, 0x0d]) WS[c] = 1;
// Bytes that end a bare scalar (number, true, false, null).
const DELIM = new Uint8Array(256);
for (const c of [0x20, 0x09, 0x0a, 0x0d, COMMA, RBRACE, RBRACKET]) DELIM[c] = 1;

const enum Mode {
  Top,
  Value,
  ObjFirst,
  ObjNext,
  Key,
  Colon,
  After,
  ArrFirst,
  Skip,
}

/** What happens to the bytes of a value being skipped. */
const enum Fate {
  Copy,
  Drop,
  Capture,
  /** Handed to a nested scanner, after a filter decided early what applies inside the element. */
  Delegate,
  /** Copied while its member names are searched for the ones a `..` looks for (Program.seekOf). */
  Seek,
}

/** What the seek scanner expects next (whitespace aside). */
const enum Want {
  Value,
  ValueOrClose,
  Key,
  KeyOrClose,
  Colon,
  CommaOrClose,
  Scalar,
}

/**
 * Following a filtered object's own members: until the ones the filter reads have arrived, and
 * then, once decided, to its end, so that a member the filter reads written a second time is
 * refused. A client's parser keeps the last copy, so a decision on the first would mask the
 * wrong one.
 */
interface Track {
  readonly fields: ReadonlySet<string>;
  /** The members read so far, as the filter will see them: own properties of a plain object. */
  readonly seen: Record<string, unknown>;
  /** How many members of `fields` are in `seen`. */
  count: number;
  /** 0: expecting a member name, 1: in it, 2: expecting ':', 3: in the value. */
  phase: 0 | 1 | 2 | 3;
  keyOff: number;
  valueOff: number;
  key: string | undefined;
  /** Where (an offset like keyOff) every member the filter reads had arrived: what a decision had to hold; -1 before. */
  readyAt: number;
  /** Decided (decideEarly): its bytes are no longer held, so names are read by index, pieced together across chunks. */
  decided: boolean;
  keyAt: number;
  keyHead: Buffer | undefined;
}

const EMPTY_BUF = Buffer.alloc(0);

/** Why a value is captured, and what to do once it is whole. */
type Capture =
  | { readonly kind: 'hash' }
  | { readonly kind: 'filter'; readonly states: number[]; readonly pending: number[] }
  | { readonly kind: 'lastApplied' }
  | { readonly kind: 'columnDefs' };

interface Frame {
  readonly isObj: boolean;
  readonly states: number[];
  /** This container manages its own commas, because a child may be removed. */
  readonly removable: boolean;
  /** No rule can touch a scalar child (Program.scalarsInert). */
  readonly scalarsInert: boolean;
  index: number;
  key: Key | undefined;
  emitted: boolean;
}

export class StreamRedactor {
  private readonly stack: Frame[] = [];
  private mode = Mode.Top;
  private out: Buffer[] = [];
  /** Start of the bytes of the current chunk not yet emitted, cut or held. */
  private start = 0;
  /** Bytes from earlier chunks whose fate waits for a decision (a key that may be removed). */
  private held: Buffer[] = [];
  private holding = false;
  private keyParts: Buffer[] = [];
  private keyEscaped = false;
  private keyNeeded = false;

  // Skip state: a value being copied, dropped or captured.
  private fate = Fate.Copy;
  /** Open brackets of the value being skipped; its length is the depth. */
  private skipStack: number[] = [];
  private inString = false;
  private escape = false;
  private scalar = false;
  private capture: Capture | undefined;
  /** The held value, in one growable buffer (fresh per capture: pieces sent on may alias it). */
  private cap: Buffer = EMPTY_BUF;
  private capLen = 0;
  private track: Track | undefined;
  private delegate: StreamRedactor | undefined;
  private replacement: Buffer | undefined;
  private topLevelDone = false;
  /** The states a filter decided for the value about to be scanned again (decideEarly). */
  private forced: number[] | undefined;
  /** Indexes of Table columns named in a directive; kept across watch events, which send definitions once. */
  private redactedCells = new Set<number>();

  private readonly rootStates: number[];
  /** Guards the root object decides (a `when` on a get); none for a held value replayed, already decided. */
  private readonly rootPending: number[];

  constructor(
    private readonly program: Program,
    private readonly options: RedactOptions,
    /** The states a held value is replayed in; the program's own for a response. */
    rootStates?: number[],
    /** A lone document (a capture replayed): a second top-level value is malformed. */
    private readonly single = false,
  ) {
    this.rootStates = rootStates ?? program.rootStates;
    this.rootPending = rootStates === undefined ? program.rootPending : [];
  }

  /** Feeds one chunk; returns what may be sent on. */
  write(buf: Buffer): Buffer[] {
    this.out = [];
    this.start = 0;
    this.scan(buf);
    const n = buf.length;
    const t = this.track;
    if (t && !t.decided && t.count === t.fields.size && this.mode === Mode.Skip) {
      // An element still open at the chunk's end with every member its filter reads in: decided
      // now, so that the rest of it streams instead of being held.
      this.decideEarly(buf, n);
    }
    if (this.mode === Mode.Skip && this.fate !== Fate.Copy && this.fate !== Fate.Seek) {
      if (this.fate === Fate.Capture) this.keep(buf, this.start, n);
      else if (this.fate === Fate.Delegate) this.out.push(...this.delegate!.write(buf.subarray(this.start, n)));
      this.start = n;
    } else if (this.holding) {
      if (this.start < n) this.held.push(Buffer.from(buf.subarray(this.start, n)));
      this.start = n;
    } else this.emit(buf, n);
    return this.out;
  }

  /** The end of the response: anything unfinished is a truncated document. */
  end(): Buffer[] {
    this.out = [];
    this.start = 0;
    if (this.mode === Mode.Skip && this.scalar && this.stack.length === 0) this.finishSkip(Buffer.alloc(0), 0);
    if (this.mode !== Mode.Top || this.stack.length > 0)
      throw new RedactError('GATEHOUSE_REDACT_TRUNCATED', 'the upstream response ended in the middle of a JSON document');
    return this.out;
  }

  // --- output ---------------------------------------------------------------

  private emit(buf: Buffer, upto: number): void {
    if (this.held.length) {
      this.out.push(...this.held);
      this.held = [];
    }
    if (upto > this.start) this.out.push(buf.subarray(this.start, upto));
    this.start = upto;
  }

  private cut(at: number): void {
    this.held = [];
    this.start = at;
  }

  /** Appends buf[from..to) to the held value, within maxHoldBytes (copied straight from the chunk: no subarray). */
  private keep(buf: Buffer, from: number, to: number): void {
    const need = this.capLen + (to - from);
    this.mayHold(need);
    if (need > this.cap.length) {
      const grown = Buffer.allocUnsafe(Math.max(256, need * 2));
      this.cap.copy(grown, 0, 0, this.capLen);
      this.cap = grown;
    }
    buf.copy(this.cap, this.capLen, from, to);
    this.capLen = need;
  }

  /** A value the mask must see whole may be this long: within maxHoldBytes, or the response fails. */
  private mayHold(bytes: number): void {
    if (bytes > this.options.maxHoldBytes) {
      throw new RedactError('GATEHOUSE_REDACT_TOO_LARGE', `a value the mask must see whole is larger than ${this.options.maxHoldBytes} bytes`);
    }
  }

  /** Offset in the held value of buf[i]. */
  private off(i: number): number {
    return this.capLen + (i - this.start);
  }

  /** Flushes the current chunk into the held value up to buf[toIndex]. */
  private holdUpTo(buf: Buffer, toIndex: number): void {
    if (toIndex > this.start) this.keep(buf, this.start, toIndex);
    this.start = toIndex;
  }

  /**
   * Held bytes [from, to) as text. When they lie in the current chunk they are
   * read in place; only a range that began in an earlier chunk is flushed into
   * the held value first (bench/redact: copying every filtered element cost
   * more than deciding on it).
   */
  private heldText(buf: Buffer, from: number, toIndex: number): string {
    if (from >= this.capLen) return buf.toString('utf8', this.start + (from - this.capLen), toIndex);
    this.holdUpTo(buf, toIndex);
    return this.cap.toString('utf8', from, this.capLen);
  }

  private malformed(buf: Buffer, i: number, what: string): never {
    throw new RedactError('GATEHOUSE_REDACT_MALFORMED', `the upstream response is not valid JSON: ${what} (byte 0x${(buf[i] ?? 0).toString(16)})`);
  }

  // --- the scanner ----------------------------------------------------------

  private scan(buf: Buffer): void {
    const n = buf.length;
    let i = 0;
    while (i < n) {
      // Between tokens, whitespace is skipped the same way in every mode that reads tokens.
      if (this.mode !== Mode.Skip && this.mode !== Mode.Key && WS[buf[i]!]) {
        i++;
        continue;
      }
      switch (this.mode) {
        case Mode.Skip:
          i = this.skip(buf, i);
          break;
        case Mode.Key:
          i = this.scanKey(buf, i);
          break;
        case Mode.Top:
        case Mode.Value:
        case Mode.ArrFirst: {
          const c = buf[i]!;
          if (this.mode === Mode.ArrFirst && c === RBRACKET) {
            i = this.close(buf, i, false);
            break;
          }
          if (this.mode === Mode.Top) {
            if (this.single && this.topLevelDone) this.malformed(buf, i, 'more than one document');
          }
          i = this.beginValue(buf, i);
          break;
        }
        case Mode.ObjFirst:
        case Mode.ObjNext: {
          const c = buf[i]!;
          if (c === RBRACE && this.mode === Mode.ObjFirst) {
            i = this.close(buf, i, true);
            break;
          }
          if (c !== QUOTE) this.malformed(buf, i, 'a member name was expected');
          this.beginKey(buf, i);
          i++;
          break;
        }
        case Mode.Colon: {
          const c = buf[i]!;
          if (c !== COLON) this.malformed(buf, i, '":" was expected');
          this.mode = Mode.Value;
          i++;
          break;
        }
        case Mode.After: {
          const c = buf[i]!;
          const f = this.stack[this.stack.length - 1]!;
          if (c === COMMA) {
            if (f.removable) {
              this.emit(buf, i);
              this.start = i + 1;
            }
            this.mode = f.isObj ? Mode.ObjNext : Mode.Value;
            i++;
          } else if (c === RBRACE || c === RBRACKET) {
            i = this.close(buf, i, c === RBRACE);
          } else this.malformed(buf, i, '"," or the end of a container was expected');
          break;
        }
      }
    }
  }

  private beginKey(buf: Buffer, i: number): void {
    const f = this.stack[this.stack.length - 1]!;
    if (f.removable) {
      // The member's fate is known only at its value: hold its bytes until then.
      this.emit(buf, i);
      this.holding = true;
    }
    this.keyNeeded = f.states.length > 0;
    this.keyParts = [];
    this.keyEscaped = false;
    this.escape = false;
    this.mode = Mode.Key;
    this.keyStart = i + 1;
  }

  private keyStart = 0;
  // Seek state (Fate.Seek).
  private seek: Seek | undefined;
  private seekStates: number[] = NONE;
  private want = Want.Value;
  /** The string being scanned is a member name. */
  private seekKey = false;
  /** Bytes of the member name so far, when it began in an earlier chunk. */
  private keyLength = 0;
  /** Set by stringEnd when the string may contain an escape. */
  private sawBackslash = false;
  /** A removable container's member whose key and comma wait for its filter. */
  private deferred: { prefix: Buffer[]; comma: boolean } | undefined;

  private scanKey(buf: Buffer, i: number): number {
    const n = buf.length;
    const from = i === 0 ? 0 : Math.max(i, this.keyStart);
    this.sawBackslash = false;
    const q = this.stringEnd(buf, i);
    this.keyEscaped ||= this.sawBackslash;
    if (q < 0) {
      if (this.keyNeeded) this.keyParts.push(Buffer.from(buf.subarray(from, n)));
      this.keyStart = 0;
      return n;
    }
    if (this.keyNeeded) {
      let text: string;
      // Most keys sit in one chunk: decode in place, without an intermediate Buffer (bench/redact).
      if (this.keyParts.length === 0) text = internKey(buf, from, q);
      else {
        this.keyParts.push(buf.subarray(from, q));
        text = Buffer.concat(this.keyParts).toString('utf8');
      }
      this.stack[this.stack.length - 1]!.key = this.keyEscaped ? (JSON.parse(`"${text}"`) as string) : text;
    } else this.stack[this.stack.length - 1]!.key = undefined;
    this.keyParts = [];
    this.mode = Mode.Colon;
    this.keyStart = 0;
    return q + 1;
  }

  /** A value starts at buf[i]: decide its fate from the states of its container. */
  private beginValue(buf: Buffer, i: number): number {
    const c = buf[i]!;
    const parent = this.stack[this.stack.length - 1];
    if (parent !== undefined && parent.scalarsInert && c !== LBRACE && c !== LBRACKET) {
      this.startSkip(buf, i, Fate.Copy, undefined);
      return i + (this.scalar ? 0 : 1);
    }
    let adv;
    const again = this.forced;
    if (again) {
      adv = this.program.finalOf(again);
      this.forced = undefined;
    } else if (!parent) adv = this.program.finalOf(this.rootStates, this.rootPending);
    else adv = this.program.advance(parent.states, parent.isObj ? (parent.key ?? '') : parent.index);

    // A removable container's member: remove it whole, or let it (and a separating comma) through.
    // (A value scanned again was let through, with its comma, when its filter decided.)
    if (parent?.removable && !again) {
      if (adv.strength === STRENGTH.remove) {
        this.holding = false;
        this.cut(i);
        this.startSkip(buf, i, Fate.Drop, undefined);
        this.replacement = Buffer.alloc(0);
        return i + (this.scalar ? 0 : 1);
      }
      this.holding = false;
      if (adv.pending.length > 0) {
        // A filter decides whether this member stays: keep its key and comma back until it has.
        this.deferred = { prefix: [...this.held, Buffer.from(buf.subarray(this.start, i))], comma: parent.emitted };
        this.held = [];
        this.start = i;
      } else if (parent.emitted) {
        const pendingHeld = this.held;
        this.held = [];
        this.out.push(COMMA_BUF, ...pendingHeld);
      }
    }

    // A filter may yet add a stronger action than a direct match: let it see the value first.
    if (adv.pending.length > 0 && adv.strength < STRENGTH.remove) {
      this.emit(buf, i);
      this.startSkip(buf, i, Fate.Capture, { kind: 'filter', states: adv.states, pending: adv.pending });
      return i + (this.scalar ? 0 : 1);
    }
    if (adv.strength > 0) {
      this.emit(buf, i);
      if (adv.strength === STRENGTH.hash) this.startSkip(buf, i, Fate.Capture, { kind: 'hash' });
      else {
        this.startSkip(buf, i, Fate.Drop, undefined);
        this.replacement = REDACTED_JSON;
      }
      return i + (this.scalar ? 0 : 1);
    }
    if (adv.cell && parent && this.redactedCells.has(parent.index)) {
      this.emit(buf, i);
      this.startSkip(buf, i, Fate.Drop, undefined);
      this.replacement = REDACTED_JSON;
      return i + (this.scalar ? 0 : 1);
    }
    if (adv.columnDefs && c === LBRACKET) {
      this.emit(buf, i);
      this.startSkip(buf, i, Fate.Capture, { kind: 'columnDefs' });
      return i + 1;
    }
    if (adv.lastApplied && c === QUOTE) {
      this.emit(buf, i);
      this.startSkip(buf, i, Fate.Capture, { kind: 'lastApplied' });
      return i + 1;
    }
    if (adv.states.length > 0 && (c === LBRACE || c === LBRACKET)) {
      const seek = this.program.seekOf(adv.states);
      if (seek !== undefined) {
        this.startSeek(buf, i, adv.states, seek);
        return i + 1;
      }
      this.stack.push({
        isObj: c === LBRACE,
        states: adv.states,
        removable: this.program.mayRemoveChild(adv.states),
        scalarsInert: this.program.scalarsInert(adv.states),
        index: 0,
        key: undefined,
        emitted: false,
      });
      this.mode = c === LBRACE ? Mode.ObjFirst : Mode.ArrFirst;
      if (this.stack[this.stack.length - 1]!.removable) this.emit(buf, i + 1);
      return i + 1;
    }
    this.startSkip(buf, i, Fate.Copy, undefined);
    return i + (this.scalar ? 0 : 1);
  }

  private startSkip(buf: Buffer, i: number, fate: Fate, capture: Capture | undefined): void {
    const c = buf[i]!;
    this.mode = Mode.Skip;
    this.fate = fate;
    this.capture = capture;
    this.cap = EMPTY_BUF;
    this.capLen = 0;
    this.track = undefined;
    this.replacement = undefined;
    this.skipStack = [];
    this.escape = false;
    this.inString = false;
    this.scalar = false;
    if (fate === Fate.Drop) this.cut(i);
    if (fate === Fate.Capture) this.start = i;
    if (c === LBRACE || c === LBRACKET) {
      this.skipStack.push(c);
      if (capture?.kind === 'filter' && c === LBRACE) {
        // Hold the element only until the members the filter reads have arrived.
        const fields = this.program.readsOf(capture.pending);
        if (fields && fields.size > 0)
          this.track = {
            fields,
            seen: Object.create(null) as Record<string, unknown>,
            count: 0,
            phase: 0,
            keyOff: 0,
            valueOff: 0,
            key: undefined,
            readyAt: -1,
            decided: false,
            keyAt: 0,
            keyHead: undefined,
          };
      }
    } else if (c === QUOTE) {
      this.inString = true;
    } else if ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x74 || c === 0x66 || c === 0x6e) {
      this.scalar = true;
    } else this.malformed(buf, i, 'a value was expected');
  }

  /** Advances over the value being skipped; returns where scanning continues. */
  private skip(buf: Buffer, i: number): number {
    if (this.fate === Fate.Seek) return this.seekScan(buf, i);
    if (this.track) return this.skipTracked(buf, i);
    const n = buf.length;
    if (this.scalar) {
      while (i < n && !DELIM[buf[i]!]) i++;
      return i < n ? this.finishSkip(buf, i) : i;
    }
    for (;;) {
      if (this.inString) {
        const q = this.stringEnd(buf, i);
        if (q < 0) return n;
        this.inString = false;
        i = q + 1;
        if (this.skipStack.length === 0) return this.finishSkip(buf, i);
        continue;
      }
      for (; i < n; i++) {
        const c = buf[i]!;
        if (c === QUOTE) {
          this.inString = true;
          i++;
          break;
        }
        if (this.bracket(buf, i, c)) return this.finishSkip(buf, i + 1);
      }
      if (i >= n) return n;
    }
  }

  /** Starts seeking through the container at buf[i], whose states are `states` (Program.seekOf). */
  private startSeek(buf: Buffer, i: number, states: number[], seek: Seek): void {
    this.startSkip(buf, i, Fate.Seek, undefined);
    this.seek = seek;
    this.seekStates = states;
    this.want = buf[i] === LBRACE ? Want.KeyOrClose : Want.ValueOrClose;
    this.seekKey = false;
  }

  /**
   * skip() for a subtree under `..name` steps alone: follows the JSON grammar as strictly as
   * the full scanner (a member name where one belongs, colons, commas, matching brackets),
   * but keeps no frames and steps no states. A member name the steps look for hands the
   * subtree back to the full scanner at that member.
   */
  private seekScan(buf: Buffer, i: number): number {
    const n = buf.length;
    const stack = this.skipStack;
    while (i < n) {
      if (this.inString) {
        const from = i;
        this.sawBackslash = false;
        const q = this.stringEnd(buf, i);
        if (this.seekKey) {
          this.keyEscaped ||= this.sawBackslash;
          if (q < 0) {
            this.keepKeyPart(buf, from, n);
            return n;
          }
          const name = this.seekKeyName(buf, from, q);
          this.inString = false;
          if (name !== undefined) return this.leaveSeek(name, q + 1);
          this.want = Want.Colon;
        } else {
          if (q < 0) return n;
          this.inString = false;
          this.want = Want.CommaOrClose;
        }
        i = q + 1;
        continue;
      }
      if (this.want === Want.Scalar) {
        while (i < n && !DELIM[buf[i]!]) i++;
        if (i < n) this.want = Want.CommaOrClose;
        continue;
      }
      const c = buf[i]!;
      if (WS[c]) {
        i++;
        continue;
      }
      const want = this.want;
      if (want === Want.Colon) {
        if (c !== COLON) this.malformed(buf, i, '":" was expected');
        this.want = Want.Value;
      } else if (want === Want.CommaOrClose || (want === Want.KeyOrClose && c === RBRACE) || (want === Want.ValueOrClose && c === RBRACKET)) {
        if (c === COMMA && want === Want.CommaOrClose) this.want = stack[stack.length - 1] === LBRACE ? Want.Key : Want.Value;
        else if (c === RBRACE || c === RBRACKET) {
          if (this.bracket(buf, i, c)) return this.finishSkip(buf, i + 1);
          this.want = Want.CommaOrClose;
        } else this.malformed(buf, i, '"," or the end of a container was expected');
      } else if (want === Want.Key || want === Want.KeyOrClose) {
        if (c !== QUOTE) this.malformed(buf, i, 'a member name was expected');
        this.inString = true;
        this.escape = false;
        this.seekKey = true;
        this.keyStart = i + 1;
        // Reset only when used: a new array for every member name sought was garbage on the hot path.
        if (this.keyParts.length > 0) this.keyParts = [];
        this.keyLength = 0;
        this.keyEscaped = false;
      } else if (c === LBRACE || c === LBRACKET) {
        stack.push(c);
        this.want = c === LBRACE ? Want.KeyOrClose : Want.ValueOrClose;
      } else if (c === QUOTE) {
        this.inString = true;
        this.escape = false;
        this.seekKey = false;
      } else if ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x74 || c === 0x66 || c === 0x6e) {
        this.want = Want.Scalar;
      } else this.malformed(buf, i, 'a value was expected');
      i++;
    }
    return n;
  }

  /** Keeps a piece of a member name cut by the chunk's end, while it could still be a sought name. */
  private keepKeyPart(buf: Buffer, from: number, to: number): void {
    this.keyLength += to - from;
    if (this.keyLength <= this.seek!.maxKeyBytes) this.keyParts.push(Buffer.from(buf.subarray(from, to)));
  }

  /** The member name ending before buf[q], if it is one the seek looks for. */
  private seekKeyName(buf: Buffer, from: number, q: number): string | undefined {
    const seek = this.seek!;
    const length = this.keyLength + (q - from);
    if (length > seek.maxKeyBytes) return undefined;
    if (this.keyParts.length === 0 && !this.keyEscaped && !seek.decodeAll) {
      // Unescaped: the same bytes are the same name, so no decoding (bench/redact, PodList).
      for (const { name, bytes } of seek.needles) {
        if (bytes.length !== length) continue;
        let k = 0;
        while (k < length && bytes[k] === buf[from + k]) k++;
        if (k === length) return name;
      }
      return undefined;
    }
    const raw = this.keyParts.length === 0 ? buf.toString('utf8', from, q) : Buffer.concat([...this.keyParts, buf.subarray(from, q)]).toString('utf8');
    let name: string;
    try {
      name = this.keyEscaped ? (JSON.parse(`"${raw}"`) as string) : raw;
    } catch {
      this.malformed(buf, q, 'a member name is not a valid JSON string');
    }
    return seek.names.has(name) ? name : undefined;
  }

  /**
   * A sought name: the containers the seek is inside become frames of the full scanner, all in
   * the seek's states (no other member on the way could have changed them), and it goes on
   * from the name's closing quote.
   */
  private leaveSeek(name: string, i: number): number {
    const states = this.seekStates;
    const scalarsInert = this.program.scalarsInert(states);
    for (const b of this.skipStack) this.stack.push({ isObj: b === LBRACE, states, removable: false, scalarsInert, index: 0, key: undefined, emitted: true });
    this.stack[this.stack.length - 1]!.key = name;
    this.skipStack = [];
    this.keyParts = [];
    this.seek = undefined;
    this.fate = Fate.Copy;
    this.mode = Mode.Colon;
    return i;
  }

  /**
   * Follows brackets while skipping: opens and closes (checking they match),
   * and says whether this byte closed the skipped value.
   */
  private bracket(buf: Buffer, i: number, c: number): boolean {
    if (c === LBRACE || c === LBRACKET) this.skipStack.push(c);
    else if (c === RBRACE || c === RBRACKET) {
      if (this.skipStack.pop() !== (c === RBRACE ? LBRACE : LBRACKET)) this.malformed(buf, i, 'mismatched brackets');
      return this.skipStack.length === 0;
    }
    return false;
  }

  /**
   * The skipped value ends just before buf[end]; `members`: all a filter on it reads, when they
   * are known. Returns where scanning continues: `end`, or the value's start when it is scanned again.
   */
  private finishSkip(buf: Buffer, end: number, members?: Readonly<Record<string, unknown>>): number {
    if (this.fate === Fate.Copy || this.fate === Fate.Seek) {
      // Bytes flow on with the rest of the chunk.
    } else if (this.fate === Fate.Drop) {
      this.cut(end);
      if (this.replacement && this.replacement.length) this.out.push(this.replacement);
    } else if (this.fate === Fate.Delegate) {
      const inner = this.delegate!;
      this.delegate = undefined;
      this.out.push(...inner.write(buf.subarray(this.start, end)), ...inner.end());
      this.start = end;
    } else {
      // A container held whole within this chunk can be scanned again in place, once decided.
      const inPlace = this.capLen === 0 && (buf[this.start] === LBRACE || buf[this.start] === LBRACKET);
      let raw: Buffer;
      if (inPlace) {
        // A filter that followed the members it reads checked what it held (skipTracked).
        if (!members) this.mayHold(end - this.start);
        raw = buf.subarray(this.start, end);
      } else {
        this.keep(buf, this.start, end);
        raw = this.cap.subarray(0, this.capLen);
      }
      this.cap = EMPTY_BUF;
      this.capLen = 0;
      const outcome = this.resolveCapture(raw, members, inPlace);
      if ('again' in outcome) return this.scanAgain(outcome.again);
      const { removed, pieces } = outcome;
      if (this.deferred) {
        this.releaseDeferred(removed);
        if (!removed) this.out.push(...pieces);
      } else this.out.push(...(removed ? [REDACTED_JSON] : pieces));
      this.start = end;
    }
    this.valueDone();
    return end;
  }

  /**
   * A filter decided the states of a value that began in this chunk: scan it again from its
   * first byte as an ordinary value in those states (bench/redact: a nested scanner per
   * element cost more than the second scan).
   */
  private scanAgain(states: number[]): number {
    this.releaseDeferred(false);
    this.forced = states;
    this.fate = Fate.Copy;
    this.mode = Mode.Value;
    this.skipStack = [];
    this.inString = false;
    this.capture = undefined;
    this.track = undefined;
    return this.start;
  }

  /** A removable container's member waiting on its filter: drop its key and comma, or send them. */
  private releaseDeferred(removed: boolean): void {
    const d = this.deferred;
    this.deferred = undefined;
    if (!d) return;
    if (removed) this.replacement = EMPTY_BUF;
    else this.out.push(...(d.comma ? [COMMA_BUF] : []), ...d.prefix);
  }

  /**
   * Where the string that buf[i] is inside ends (its closing quote), or -1 if
   * not in this chunk (an escape cut by the chunk's end is remembered). Short
   * strings are scanned in JS: for them Buffer.indexOf's call costs more than
   * the scan (bench/redact, SecretList); long ones go to indexOf.
   */
  private stringEnd(buf: Buffer, i: number): number {
    const n = buf.length;
    if (this.escape) {
      this.escape = false;
      i++;
    }
    const lim = i + 48 < n ? i + 48 : n;
    for (; i < lim; i++) {
      const c = buf[i]!;
      if (c === QUOTE) return i;
      if (c === BACKSLASH) {
        this.sawBackslash = true;
        if (++i >= n) {
          this.escape = true;
          return -1;
        }
      }
    }
    if (i >= n) return -1;
    // Past the short-string scan: escapes are not tracked, so decoding must assume some.
    this.sawBackslash = true;
    for (;;) {
      const q = buf.indexOf(QUOTE, i);
      if (q < 0) {
        this.escape = oddBackslashes(buf, i, n);
        return -1;
      }
      if (!oddBackslashes(buf, i, q)) return q;
      i = q + 1;
    }
  }

  /** skip(), while following a filtered object's own members (see Track). */
  private skipTracked(buf: Buffer, i: number): number {
    const n = buf.length;
    const t = this.track!;
    while (i < n) {
      if (this.inString) {
        const q = this.stringEnd(buf, i);
        if (q < 0) break;
        this.inString = false;
        if (this.skipStack.length === 1 && t.phase === 1) {
          const raw = this.trackedName(buf, t, q);
          t.key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
          t.phase = 2;
          // Written twice: a client's parser keeps the last copy, so a filter must not decide on another.
          if (Object.prototype.hasOwnProperty.call(t.seen, t.key)) this.malformed(buf, q, 'a member the filter reads is written twice in one object');
        }
        i = q + 1;
        continue;
      }
      const c = buf[i]!;
      if (c === QUOTE) {
        this.inString = true;
        if (this.skipStack.length === 1 && t.phase === 0) {
          t.phase = 1;
          t.keyOff = this.off(i + 1);
          t.keyAt = i + 1;
          t.keyHead = undefined;
        }
      } else if (this.bracket(buf, i, c)) {
        // The element ended: what was seen decides (a member the filter reads and lacks is absent),
        // without parsing the whole element (bench/redact, a Secret's type, which comes last).
        if (!t.decided && t.phase === 3 && t.key !== undefined && t.fields.has(t.key)) this.see(buf, t, t.valueOff, i);
        this.track = undefined;
        // Read in place or held, it counts as held up to where it could have been decided.
        if (!t.decided) this.mayHold(t.readyAt >= 0 ? t.readyAt : this.off(i + 1));
        return this.finishSkip(buf, i + 1, t.seen);
      } else if (this.skipStack.length === 1) {
        if (c === COLON && t.phase === 2) {
          t.phase = 3;
          t.valueOff = this.off(i + 1);
        } else if (c === COMMA && t.phase === 3) {
          if (!t.decided && t.key !== undefined && t.fields.has(t.key)) this.see(buf, t, t.valueOff, i);
          t.phase = 0;
          // An element that began in this chunk is followed to its end and scanned again in place;
          // one held from an earlier chunk is decided as soon as it can be, so the rest streams.
          if (!t.decided && t.count === t.fields.size) {
            if (this.capLen > 0) return this.decideEarly(buf, i);
            if (t.readyAt < 0) t.readyAt = this.off(i);
          }
        }
      }
      i++;
    }
    // The chunk ends in a member name of a decided element, whose bytes are not held: keep its start.
    if (this.inString && t.decided && t.phase === 1 && this.skipStack.length === 1) {
      t.keyHead = t.keyHead ? Buffer.concat([t.keyHead, buf.subarray(t.keyAt, n)]) : Buffer.from(buf.subarray(t.keyAt, n));
      t.keyAt = 0;
    }
    return n;
  }

  /** A member name of a tracked element, ending just before buf[q]; interned when it lies in this chunk. */
  private trackedName(buf: Buffer, t: Track, q: number): string {
    if (t.decided) {
      if (!t.keyHead) return internKey(buf, t.keyAt, q);
      const name = Buffer.concat([t.keyHead, buf.subarray(0, q)]).toString('utf8');
      t.keyHead = undefined;
      return name;
    }
    return t.keyOff >= this.capLen ? internKey(buf, this.start + (t.keyOff - this.capLen), q) : this.heldText(buf, t.keyOff, q);
  }

  /** Records the value of a member the filter reads, held at [from, buf[to]). */
  private see(buf: Buffer, t: Track, from: number, to: number): void {
    let value: unknown = from >= this.capLen ? plainStringAt(buf, this.start + (from - this.capLen), to) : undefined;
    if (value === undefined) {
      const raw = this.heldText(buf, from, to);
      try {
        value = JSON.parse(raw);
      } catch {
        this.malformed(buf, to, 'a member the filter reads is not valid JSON');
      }
    }
    // A second copy was refused at its name (skipTracked).
    t.count++;
    t.seen[t.key!] = value;
  }

  /**
   * Every member the filter reads of an element held from an earlier chunk has arrived: decide
   * now, send or drop what was held, and let the rest of the element stream (copied, dropped, or
   * handed to a scanner for what applies inside it), still followed for a member written twice.
   * Returns where scanning continues.
   */
  private decideEarly(buf: Buffer, i: number): number {
    const cap = this.capture as Extract<Capture, { kind: 'filter' }>;
    const t = this.track!;
    t.decided = true;
    // What it held: still in this chunk (buf[start..i)) unless the element began in an earlier one,
    // then all of it in the held value.
    const inPlace = this.capLen === 0;
    this.mayHold(t.readyAt >= 0 ? t.readyAt : this.off(i));
    if (!inPlace) this.holdUpTo(buf, i);
    // Decided inside a member name (at a chunk's end): the name's first bytes are kept to complete it.
    if (t.phase === 1) {
      t.keyHead = Buffer.from(inPlace ? buf.subarray(this.start + t.keyOff, i) : this.cap.subarray(t.keyOff, this.capLen));
      t.keyAt = 0;
    }
    const resolved = this.program.resolveFilters(cap.pending, t.seen);
    const states = resolved.length === 0 ? cap.states : cap.states.concat(resolved);
    const { strength } = this.program.finalOf(states);
    // A hash needs the whole value: keep holding.
    if (strength === STRENGTH.hash) return i;
    const held = inPlace ? undefined : this.cap.subarray(0, this.capLen);
    this.cap = EMPTY_BUF;
    this.capLen = 0;
    if (strength === STRENGTH.remove && this.deferred) {
      this.releaseDeferred(true);
      this.start = i;
      this.fate = Fate.Drop;
    } else if (strength > 0) {
      this.releaseDeferred(false);
      this.start = i;
      this.fate = Fate.Drop;
      this.replacement = REDACTED_JSON;
    } else if (states.length === 0) {
      this.releaseDeferred(false);
      // In place, the bytes flow on with the rest of the chunk.
      if (held) this.out.push(held);
      this.fate = Fate.Copy;
    } else {
      this.releaseDeferred(false);
      this.delegate = new StreamRedactor(this.program, this.options, states, true);
      this.out.push(...this.delegate.write(held ?? buf.subarray(this.start, i)));
      this.start = i;
      this.fate = Fate.Delegate;
    }
    return i;
  }

  /**
   * What a held value becomes; `removed` when a filter decided to remove it; `again`, the states
   * to scan it in once more, when it may be scanned again in place and something applies inside it.
   */
  private resolveCapture(
    raw: Buffer,
    members: Readonly<Record<string, unknown>> | undefined,
    inPlace: boolean,
  ): { removed: boolean; pieces: Buffer[] } | { again: number[] } {
    const cap = this.capture!;
    if (cap.kind === 'hash') return { removed: false, pieces: [this.hash(raw)] };
    if (cap.kind === 'lastApplied') return { removed: false, pieces: [this.maskLastApplied(raw)] };
    if (cap.kind === 'columnDefs') {
      this.redactedCells = columnIndexes(raw, this.program.columns);
      return { removed: false, pieces: [raw] };
    }
    let value: unknown;
    try {
      value = members ?? JSON.parse(raw.toString('utf8'));
    } catch {
      throw new RedactError('GATEHOUSE_REDACT_MALFORMED', 'the upstream response is not valid JSON inside a filtered value');
    }
    const states = [...cap.states, ...this.program.resolveFilters(cap.pending, value)];
    const { strength } = this.program.finalOf(states);
    if (strength === STRENGTH.remove) return { removed: true, pieces: [] };
    if (strength === STRENGTH.hash) return { removed: false, pieces: [this.hash(raw)] };
    if (strength > 0) return { removed: false, pieces: [REDACTED_JSON] };
    if (states.length === 0) return { removed: false, pieces: [raw] };
    if (inPlace) return { again: states };
    // Replay the held value with what the filter decided.
    const inner = new StreamRedactor(this.program, this.options, states, true);
    return { removed: false, pieces: [...inner.write(raw), ...inner.end()] };
  }

  private hash(raw: Buffer): Buffer {
    // The hash is of the value's canonical JSON (JSON.stringify of what a parser reads), which for
    // a string of printable ASCII without escapes is its bytes as they are (bench/redact, PodList).
    const canonical = isPlainString(raw, 0, raw.length, true) ? raw : Buffer.from(JSON.stringify(JSON.parse(raw.toString('utf8'))));
    const mac = hmacSha256(this.pads, canonical).subarray(0, 18).toString('base64');
    // base64 needs no escaping in JSON.
    return Buffer.from(`"${HASH_PREFIX}${mac}"`);
  }

  private pads_: { inner: Buffer; outer: Buffer } | undefined;
  private get pads(): { inner: Buffer; outer: Buffer } {
    return (this.pads_ ??= hmacPads(this.options.hashKey));
  }

  /**
   * kubectl keeps a full JSON copy of the applied object in this annotation:
   * mask it with the same directives, or drop the copy when it is not JSON.
   */
  private maskLastApplied(raw: Buffer): Buffer {
    const text = JSON.parse(raw.toString('utf8')) as string;
    try {
      const inner = new StreamRedactor(this.program.lastAppliedProgram(), this.options, undefined, true);
      const masked = Buffer.concat([...inner.write(Buffer.from(text)), ...inner.end()]).toString('utf8');
      return Buffer.from(JSON.stringify(masked));
    } catch {
      return REDACTED_JSON;
    }
  }

  /** A value has ended: its container moves on. */
  private valueDone(): void {
    const parent = this.stack[this.stack.length - 1];
    this.scalar = false;
    if (!parent) {
      this.mode = Mode.Top;
      this.topLevelDone = true;
      return;
    }
    if (!parent.isObj) parent.index++;
    if (this.replacement === undefined || this.replacement.length > 0) parent.emitted = true;
    this.replacement = undefined;
    this.mode = Mode.After;
  }

  private close(buf: Buffer, i: number, isObj: boolean): number {
    const f = this.stack.pop();
    if (!f || f.isObj !== isObj) this.malformed(buf, i, 'mismatched brackets');
    this.fate = Fate.Copy;
    this.replacement = undefined;
    this.valueDone();
    return i + 1;
  }
}

/**
 * Member names, interned: Kubernetes JSON repeats a small vocabulary of keys,
 * and decoding each one anew was a large share of the allocations (and GC) in
 * bench/redact. Bounded; entries are compared byte for byte, never trusted by hash.
 */
const KEY_CACHE = new Map<number, { bytes: Buffer; text: string }[]>();
let keyCacheSize = 0;

function internKey(buf: Buffer, from: number, to: number): string {
  const len = to - from;
  if (len > 64) return buf.toString('utf8', from, to);
  let h = len;
  for (let k = from; k < to; k++) h = (Math.imul(h, 31) + buf[k]!) | 0;
  const bucket = KEY_CACHE.get(h);
  if (bucket) {
    for (const e of bucket) {
      if (e.bytes.length !== len) continue;
      let k = 0;
      while (k < len && e.bytes[k] === buf[from + k]) k++;
      if (k === len) return e.text;
    }
  }
  const text = buf.toString('utf8', from, to);
  if (keyCacheSize < 8192) {
    const entry = { bytes: Buffer.from(buf.subarray(from, to)), text };
    if (bucket) bucket.push(entry);
    else KEY_CACHE.set(h, [entry]);
    keyCacheSize++;
  }
  return text;
}

/** Positions of the named columns in a Table's columnDefinitions. */
function columnIndexes(raw: Buffer, names: ReadonlySet<string>): Set<number> {
  let defs: unknown;
  try {
    defs = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new RedactError('GATEHOUSE_REDACT_MALFORMED', "the upstream response is not valid JSON in a Table's columnDefinitions");
  }
  const out = new Set<number>();
  if (!Array.isArray(defs)) return out;
  defs.forEach((d: unknown, i) => {
    const name = typeof d === 'object' && d !== null ? (d as { name?: unknown }).name : undefined;
    if (typeof name === 'string' && names.has(name.toLowerCase())) out.add(i);
  });
  return out;
}

/** HMAC-SHA256 key pads (RFC 2104), computed once per key. */
const PAD_CACHE = new WeakMap<Buffer, { inner: Buffer; outer: Buffer }>();
function hmacPads(key: Buffer): { inner: Buffer; outer: Buffer } {
  let pads = PAD_CACHE.get(key);
  if (!pads) {
    const k = Buffer.alloc(64);
    (key.length > 64 ? (sha('sha256', key, 'buffer') as unknown as Buffer) : key).copy(k);
    pads = { inner: Buffer.from(k.map((b) => b ^ 0x36)), outer: Buffer.from(k.map((b) => b ^ 0x5c)) };
    PAD_CACHE.set(key, pads);
  }
  return pads;
}

/**
 * HMAC-SHA256 from its definition, H(K^opad || H(K^ipad || m)), with one-shot
 * hashes: a createHmac object per masked value cost more than the hashing
 * (bench/redact, PodList). Checked against createHmac in the tests.
 */
function hmacSha256(pads: { inner: Buffer; outer: Buffer }, message: Buffer): Buffer {
  const inner = sha('sha256', Buffer.concat([pads.inner, message]), 'buffer') as unknown as Buffer;
  return sha('sha256', Buffer.concat([pads.outer, inner]), 'buffer');
}

/**
 * The string buf[from..to) holds when it is one string token, blanks around, with no escape,
 * quote or control character inside: what JSON.parse would read, without its cost per call
 * (bench/redact, PodList: each `env` element's name). Undefined for anything else.
 */
function plainStringAt(buf: Buffer, from: number, to: number): string | undefined {
  while (from < to && WS[buf[from]!]) from++;
  while (to > from && WS[buf[to - 1]!]) to--;
  return isPlainString(buf, from, to, false) ? buf.toString('utf8', from + 1, to - 1) : undefined;
}

/**
 * Whether buf[from..to) is one JSON string token with no escape, quote or control character
 * inside; with `ascii`, nothing past 0x7e either: then JSON.stringify would write it byte for byte.
 */
function isPlainString(buf: Buffer, from: number, to: number, ascii: boolean): boolean {
  if (to - from < 2 || buf[from] !== QUOTE || buf[to - 1] !== QUOTE) return false;
  for (let k = from + 1; k < to - 1; k++) {
    const c = buf[k]!;
    if (c < 0x20 || c === QUOTE || c === BACKSLASH || (ascii && c > 0x7e)) return false;
  }
  return true;
}

/** Whether buf[from..to) ends in an odd run of backslashes (the next byte is escaped). */
function oddBackslashes(buf: Buffer, from: number, to: number): boolean {
  let k = to - 1;
  while (k >= from && buf[k] === BACKSLASH) k--;
  return (to - 1 - k) % 2 === 1;
}

/** A Transform for a response body: fails (and sends nothing more) on malformed input. */
export function createRedactStream(program: Program, options: RedactOptions): Transform {
  const redactor = new StreamRedactor(program, options);
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      try {
        for (const piece of redactor.write(chunk)) this.push(piece);
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    flush(done: TransformCallback) {
      try {
        for (const piece of redactor.end()) this.push(piece);
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

/** Whole-buffer convenience, for tests and small bodies. */
export function redactBuffer(program: Program, options: RedactOptions, input: Buffer): Buffer {
  const r = new StreamRedactor(program, options);
  return Buffer.concat([...r.write(input), ...r.end()]);
}
