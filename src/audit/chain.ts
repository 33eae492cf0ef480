/**
 * The audit file as a hash chain: every line carries `"chain": {"seq", "prev"}`
 * — its number in the chain and the SHA-256 of the line before it, byte for
 * byte — so a line edited, inserted, deleted or moved breaks the chain where
 * it happened. Anyone who can write the file could compute a new chain from
 * the edit on; keyed checkpoints (an HMAC of the chain's head with a key the
 * gateway holds, written periodically and at shutdown) are what such an
 * editor cannot forge. An anchor record opens each chain: a new file, a
 * restart that appends to one (its `prev` links to the last line already
 * there, even one a crash cut short).
 */
import { createHmac, hash } from 'node:crypto';

export interface ChainLink {
  readonly seq: number;
  /** SHA-256 (hex) of the previous line without its newline; '' for the first line of a file. */
  readonly prev: string;
}

export interface Chain {
  /** The line for a record's JSON (an object): the same JSON with the link appended, and the chain moved on. */
  link(json: string): string;
  /** The link the next line will carry. */
  readonly head: ChainLink;
}

// The one-shot hash: no Hash object per line (two lines per request).
export const sha256 = (line: string | Buffer): string => hash('sha256', line, 'hex');

export function createChain(start: ChainLink): Chain {
  let seq = start.seq;
  let prev = start.prev;
  return {
    link(json) {
      const open = json.length > 2 ? ',' : '';
      const line = `${json.slice(0, -1)}${open}"chain":{"seq":${seq},"prev":"${prev}"}}`;
      seq++;
      prev = sha256(line);
      return line;
    },
    get head() {
      return { seq, prev };
    },
  };
}

/** What a checkpoint's `mac` covers: its own place in the chain, which commits to every line before it. */
export function checkpointMac(key: Buffer, link: ChainLink): string {
  return createHmac('sha256', key).update(`gatehouse audit checkpoint\n${link.seq}\n${link.prev}`).digest('hex');
}

/**
 * Where an existing file's chain goes on: after its last line, whatever that
 * line is (a record, a checkpoint, a fragment a crash left, a line written
 * before the chain existed); the sequence continues from the last line that
 * carries one.
 */
export function resumeAfter(lastLine: string | undefined, lastSeq: number | undefined): ChainLink {
  if (lastLine === undefined) return { seq: 0, prev: '' };
  return { seq: lastSeq === undefined ? 0 : lastSeq + 1, prev: sha256(lastLine) };
}

/** The chain link of a line, if it is a record that carries one. */
export function linkOf(line: string): ChainLink | undefined {
  try {
    const c = (JSON.parse(line) as { chain?: { seq?: unknown; prev?: unknown } }).chain;
    return typeof c?.seq === 'number' && typeof c.prev === 'string' ? { seq: c.seq, prev: c.prev } : undefined;
  } catch {
    return undefined;
  }
}
