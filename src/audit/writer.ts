import { mkdirSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { openJsonLines } from './append.js';
import { checkpointMac, createChain, linkOf, resumeAfter } from './chain.js';
import type { AuditRecord } from './event.js';
import { scrubText } from './scrub.js';

export interface AuditWriter {
  /** Queues a record; it reaches the kernel with the next commit or at the end of this turn of the event loop. */
  write(event: AuditRecord): void;
  /**
   * Hands this record, and every one queued before it, to the kernel before it
   * returns (audit before action): called before a request is forwarded, so a
   * crash (SIGKILL, the OOM killer) cannot lose the record of a request the API
   * server acted on. Throws when the record cannot be written; the caller then
   * does not act (fail closed).
   */
  commit(event: AuditRecord): void;
  /** Writes out what is queued; called at shutdown after in-flight requests finish. */
  flush(): void;
}

/**
 * The line as written: JSON.stringify leaves a JWT's characters as they are, so
 * one pass over the whole line catches a token wherever a record carries it (a
 * typed session line, a reason, an annotation) — the last check before disk.
 */
export function auditLine(event: AuditRecord): string {
  return scrubText(JSON.stringify(event)) + '\n';
}

/** The chain's keyed checkpoints: their key, and how often one is written while records come in. */
export interface CheckpointOptions {
  readonly key: Buffer;
  readonly everyMs: number;
}

/**
 * One JSON line per record, appended to a file opened once (0600: records hold
 * who did what). Every write is a synchronous write(2) on that descriptor, so
 * records land in the order they were made; queued ones are batched into one
 * write per turn of the event loop. bench/audit.ts measures what a commit costs.
 * Each line is a link of a hash chain (chain.ts), opened by an anchor record;
 * with a key, a checkpoint is written every `everyMs` that records arrived, and
 * at flush (shutdown).
 */
export function createAuditWriter(
  file: string,
  onError: (err: Error) => void = () => {},
  log: (message: string) => void = () => {},
  checkpoints?: CheckpointOptions,
  now: () => number = Date.now,
): AuditWriter {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const { fd, size, complete, unfinished, tornBytes } = openJsonLines(file);
  if (tornBytes > 0) {
    // Never cut evidence away: the fragment stays, on a line of its own, and the first new record starts on the next.
    writeFully(fd, Buffer.from('\n'));
    log(`audit log ${file} ended in an unfinished record (${tornBytes} bytes: the process was killed while writing it); new records start on the next line`);
  }
  const chain = createChain(resumeAfter(unfinished ?? complete, complete === undefined ? undefined : linkOf(complete)?.seq));
  const writer = createFdAuditWriter(fd, onError, (event) => chain.link(scrubText(JSON.stringify(event))) + '\n');
  writer.commit({
    kind: 'AuditAnchor',
    apiVersion: 'gatehouse.dev/v1',
    timestamp: new Date(now()).toISOString(),
    reason: size === 0 ? 'new file' : 'restart',
    // Checkpoints follow: a file that does not end with the shutdown one was cut (or its gateway is running).
    checkpointed: checkpoints !== undefined,
    ...(tornBytes > 0 ? { unfinishedBytes: tornBytes } : {}),
  });
  if (!checkpoints) return writer;
  let checkpointed = chain.head.seq;
  const checkpoint = (final: boolean) => {
    if (!final && chain.head.seq === checkpointed) return;
    // Records are linked as they are queued, so the head is the checkpoint's own place in the chain.
    const mac = checkpointMac(checkpoints.key, chain.head);
    writer.commit({ kind: 'AuditCheckpoint', apiVersion: 'gatehouse.dev/v1', timestamp: new Date(now()).toISOString(), final, mac });
    checkpointed = chain.head.seq;
  };
  const timer = setInterval(() => {
    try {
      checkpoint(false);
    } catch (err) {
      onError(err as Error);
    }
  }, checkpoints.everyMs);
  timer.unref();
  return {
    ...writer,
    flush() {
      clearInterval(timer);
      checkpoint(true);
    },
  };
}

/**
 * The same, on standard output: one JSON line per record for a log shipper
 * (Fluent Bit, Vector) beside the pod. A pipe may be full for a moment: the
 * write is retried, so a record is never dropped or cut in two.
 */
export function createStdoutAuditWriter(onError: (err: Error) => void = () => {}): AuditWriter {
  return createFdAuditWriter(1, onError);
}

/** Every record to each writer, in order; a commit fails when any of them fails (fail closed). */
export function teeAuditWriters(writers: readonly AuditWriter[]): AuditWriter {
  if (writers.length === 1) return writers[0]!;
  return {
    write: (e) => writers.forEach((w) => w.write(e)),
    commit: (e) => writers.forEach((w) => w.commit(e)),
    flush: () => writers.forEach((w) => w.flush()),
  };
}

function writeFully(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off);
    } catch (err) {
      // A non-blocking pipe (stdout) that is full right now: wait for the reader, never drop.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

function createFdAuditWriter(fd: number, onError: (err: Error) => void, lineOf: (event: AuditRecord) => string = auditLine): AuditWriter {
  let queued: string[] = [];
  let scheduled = false;

  function writeOut(): void {
    scheduled = false;
    if (queued.length === 0) return;
    const data = Buffer.from(queued.join(''));
    queued = [];
    writeFully(fd, data);
  }

  function later(): void {
    try {
      writeOut();
    } catch (err) {
      onError(err as Error);
    }
  }

  return {
    write(event) {
      queued.push(lineOf(event));
      if (!scheduled) {
        scheduled = true;
        setImmediate(later);
      }
    },
    commit(event) {
      queued.push(lineOf(event));
      writeOut();
    },
    flush() {
      writeOut();
    },
  };
}

/** For tests: records handed to a callback, as they would be read back from the file. */
export function createMemoryAuditWriter(sink: (e: AuditRecord) => void): AuditWriter {
  const deliver = (e: AuditRecord) => sink(JSON.parse(auditLine(e)) as AuditRecord);
  return { write: deliver, commit: deliver, flush: () => {} };
}
