/**
 * `gatehouse audit verify`: walks an audit file's hash chain (chain.ts) line by
 * line and names the first line that was edited, inserted, deleted or moved,
 * a cut tail, and a checkpoint that does not verify with the key. It reads one
 * line ahead (to tell a moved line from a deleted one) and keeps no more, so a
 * file of any size is checked in constant memory.
 */
import { checkpointMac, sha256, type ChainLink } from './chain.js';

export interface VerifyReport {
  readonly lines: number;
  /** The first break of the chain, by line number (1-based); none when the whole chain holds. */
  readonly problem: { readonly line: number; readonly what: string } | null;
  /** What holds but is worth knowing (restarts after a crash, lines before the chain, the tail after the last checkpoint). */
  readonly notes: readonly string[];
  readonly checkpoints: number;
}

interface Line {
  readonly n: number;
  readonly hash: string;
  readonly kind: string | undefined;
  readonly link: ChainLink | undefined;
  readonly parsed: boolean;
  readonly record: { readonly reason?: unknown; readonly final?: unknown; readonly mac?: unknown; readonly checkpointed?: unknown } | undefined;
}

function lineOf(n: number, text: string): Line {
  let record: Record<string, unknown> | undefined;
  try {
    const v: unknown = JSON.parse(text);
    record = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    record = undefined;
  }
  const c = record?.['chain'] as { seq?: unknown; prev?: unknown } | undefined;
  const link = typeof c?.seq === 'number' && typeof c.prev === 'string' ? { seq: c.seq, prev: c.prev } : undefined;
  return { n, hash: sha256(text), kind: typeof record?.['kind'] === 'string' ? record['kind'] : undefined, link, parsed: record !== undefined, record };
}

export interface VerifyOptions {
  /** The checkpoint key: without it, checkpoints are not checked (an editor could have forged them). */
  readonly key?: Buffer;
  /** The file of a running gateway: its end need not be a shutdown checkpoint. */
  readonly live?: boolean;
}

export function createVerifier(options: VerifyOptions = {}) {
  const notes: string[] = [];
  let problem: VerifyReport['problem'] = null;
  let before: Line | undefined; // the line before `current`, checked
  let beforeThat: Line | undefined;
  let current: Line | undefined; // read, waiting for the line after it
  let chained = false;
  /** An anchor said checkpoints follow: the file must end with a shutdown checkpoint. */
  let sealed = false;
  let unchained = 0;
  let checkpoints = 0;
  let lastCheckpoint: Line | undefined;
  let lines = 0;

  const fail = (line: number, what: string) => {
    problem ??= { line, what };
  };

  /** Checks `l` against the lines before it, with `next` (undefined at the end) to tell cases apart. */
  function check(l: Line, next: Line | undefined): void {
    if (!l.parsed) {
      if (next?.kind === 'AuditAnchor' && next.record?.reason === 'restart' && next.link?.prev === l.hash) {
        notes.push(`line ${l.n}: a record cut short by a crash; the gateway restarted after it (line ${next.n})`);
        return;
      }
      fail(l.n, next ? `line ${l.n} is not a JSON record: edited` : `line ${l.n} is unfinished: the tail of the file was cut`);
      return;
    }
    const link = l.link;
    if (!link) {
      if (!chained) {
        unchained++;
        return;
      }
      fail(l.n, `line ${l.n} carries no chain link: inserted or edited`);
      return;
    }
    const prevHash = before?.hash ?? '';
    const expect = before?.link ? before.link.seq + 1 : 0;
    if (l.kind === 'AuditAnchor') {
      if (link.prev !== prevHash) return fail(l.n, `line ${l.n} (an anchor) does not link to the line before it: that line was edited, or lines were deleted`);
      if (chained && link.seq !== expect && before?.link)
        return fail(l.n, `line ${l.n} (an anchor) breaks the sequence (${link.seq} after ${expect - 1}): lines were deleted or moved`);
      if (chained && before?.parsed && !(before.kind === 'AuditCheckpoint' && before.record?.final === true))
        notes.push(`line ${l.n}: the gateway restarted without a shutdown checkpoint before it (it crashed or was killed)`);
      chained = true;
      sealed ||= l.record?.checkpointed === true;
      return;
    }
    if (!chained) return fail(l.n, `line ${l.n} comes before any anchor but carries a chain link: the anchor was deleted`);
    if (link.seq === expect && link.prev === prevHash) return checkpoint(l);
    if (link.seq === expect) {
      // The line after this one runs through the line before it: this one was slipped in between.
      if (next?.link?.prev === prevHash) return fail(l.n, `line ${l.n} was inserted: the chain runs from line ${before?.n} to line ${next.n}`);
      return fail(before?.n ?? l.n, `line ${before?.n ?? l.n} was edited: line ${l.n} recorded another hash for it`);
    }
    if (link.seq === expect - 1 || (link.seq === expect - 2 && link.prev === beforeThat?.hash)) {
      if (before && l.hash === before.hash) return fail(l.n, `line ${l.n} was inserted: a copy of line ${before.n}`);
      // Two lines share a sequence number: the one the chain does not run through was inserted.
      const inserted = link.prev === beforeThat?.hash ? before!.n : l.n;
      return fail(inserted, `line ${inserted} was inserted: it takes the place of sequence number ${link.seq} in the chain`);
    }
    if (link.seq > expect) {
      if (next?.link?.seq === expect) return fail(l.n, `lines ${l.n} and ${next.n} are out of order: reordered`);
      return fail(l.n, `${link.seq - expect} record(s) deleted before line ${l.n} (the sequence jumps from ${expect - 1} to ${link.seq})`);
    }
    fail(l.n, `line ${l.n} is out of order (sequence ${link.seq} after ${expect - 1}): reordered`);
  }

  function checkpoint(l: Line): void {
    if (l.kind !== 'AuditCheckpoint') return;
    checkpoints++;
    lastCheckpoint = l;
    if (options.key && l.record?.mac !== checkpointMac(options.key, l.link!))
      fail(l.n, `line ${l.n}: the checkpoint does not verify with this key (forged, the chain before it rewritten, or another key)`);
  }

  function step(next: Line | undefined): void {
    if (current && !problem) {
      check(current, next);
      beforeThat = before;
      before = current;
    }
    current = next;
  }

  return {
    line(text: string): void {
      lines++;
      step(lineOf(lines, text));
    },
    /** `endsWithNewline`: whether the file's last byte is a newline (a cut mid-line leaves it without). */
    end(endsWithNewline: boolean): VerifyReport {
      const last = current;
      step(undefined);
      if (!problem && last && !endsWithNewline && last.parsed) fail(last.n, `line ${last.n} has no newline: the tail of the file was cut`);
      if (unchained) notes.push(`lines 1–${unchained} were written before the chain began (no links to check)`);
      if (!problem && (sealed || checkpoints > 0) && last) {
        const closed = last.kind === 'AuditCheckpoint' && last.record?.final === true;
        const after = lastCheckpoint ? `after line ${lastCheckpoint.n}` : 'after the anchor';
        if (!closed && !options.live)
          fail(last.n, `the file does not end with a shutdown checkpoint: lines ${after} may have been cut (or the gateway is running: --live)`);
        else if (!closed) notes.push(`the lines ${after} are covered by the chain only (no checkpoint yet)`);
      }
      if (!problem && checkpoints === 0 && lines > 0) notes.push('no checkpoints: the chain alone cannot show a rewritten chain or a cut tail');
      if (!options.key && checkpoints > 0) notes.push(`${checkpoints} checkpoint(s) not verified: no --key given`);
      return { lines, problem, notes, checkpoints };
    },
  };
}
