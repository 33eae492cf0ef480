/**
 * Audit shipping in the shape of kube-apiserver's audit webhook backend: the
 * `audit.k8s.io/v1` Events, POSTed in batches as an `EventList` to the server
 * of a kubeconfig file (its CA, client certificate or token). Records are
 * spooled to a file first, with the offset delivered so far beside it: while
 * the receiver is down nothing is lost (up to `bufferMaxBytes`), records go
 * out in order, each once, and a restart resumes where delivery stopped.
 *
 * Approval and session-command records are not `audit.k8s.io` Events: they
 * stay in the file or on stdout, which are the record of truth.
 */
import { closeSync, fstatSync, ftruncateSync, mkdirSync, readFileSync, readSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import type { UpstreamTarget } from '../upstream/credentials.js';
import type { AuditRecord } from './event.js';
import { openJsonLines } from './append.js';
import { auditLine, type AuditWriter } from './writer.js';

export interface WebhookOptions {
  readonly target: UpstreamTarget;
  /** Where the spool and its cursor live (0700). */
  readonly bufferDir: string;
  /** Records waiting beyond this are not shipped (the file keeps them); each drop is counted. */
  readonly bufferMaxBytes: number;
  readonly batchMaxSize: number;
  readonly timeoutMs: number;
  /** Retry waits grow from this to 30 s. */
  readonly backoffMs: number;
  readonly log?: (message: string) => void;
}

export interface AuditShipper extends AuditWriter {
  /** Records spooled and not yet delivered, in bytes. */
  pendingBytes(): number;
  /** Records the full buffer could not take, since start. */
  dropped(): number;
  /** Stops sending after the batch in flight; what is spooled stays for the next start. */
  close(): Promise<void>;
}

const MAX_BATCH_BYTES = 4 * 1024 * 1024;

export function createAuditShipper(o: WebhookOptions): AuditShipper {
  mkdirSync(o.bufferDir, { recursive: true, mode: 0o700 });
  const spoolPath = join(o.bufferDir, 'spool.jsonl');
  const cursorPath = join(o.bufferDir, 'cursor.json');
  const spool = openJsonLines(spoolPath);
  const fd = spool.fd;
  // An unfinished record at the end (a crash mid-write) can never be shipped, and a record appended to it would
  // make the batch it lands in invalid JSON, refused by the receiver for ever: the spool is a buffer, not the
  // record of truth (the audit file keeps its copy), so the fragment is cut off.
  if (spool.tornBytes > 0) {
    ftruncateSync(fd, spool.size - spool.tornBytes);
    o.log?.(`audit webhook: dropped an unfinished record (${spool.tornBytes} bytes) at the end of ${spoolPath}, left by a crash`);
  }
  // The spool's size, kept here: a record appended costs no fstat(2); the file is only ours to grow.
  let size = spool.size - spool.tornBytes;
  let cursor = readCursor();
  let drops = 0;
  let warned = false;
  let closed = false;
  let wake: (() => void) | undefined;
  let stop: (() => void) | undefined;
  const agent = new Agent({ connect: { ...o.target.tls }, connections: 1, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs });
  const url = o.target.server;

  function readCursor(): number {
    try {
      const n = (JSON.parse(readFileSync(cursorPath, 'utf8')) as { offset?: unknown }).offset;
      return typeof n === 'number' && n >= 0 ? Math.min(n, size) : 0;
    } catch {
      return 0;
    }
  }

  function saveCursor(): void {
    writeFileSync(`${cursorPath}.tmp`, JSON.stringify({ offset: cursor }), { mode: 0o600 });
    renameSync(`${cursorPath}.tmp`, cursorPath);
  }

  function append(e: AuditRecord): void {
    if (e.kind !== 'Event' || closed) return;
    const line = Buffer.from(auditLine(e));
    if (size - cursor + line.length > o.bufferMaxBytes) {
      drops++;
      if (!warned)
        o.log?.(`audit webhook: the buffer is full (${o.bufferMaxBytes} bytes waiting for ${new URL(url).host}); records are not shipped until it drains`);
      warned = true;
      return;
    }
    // One write(2) per line, appended: a record is in the spool whole or not at all.
    let off = 0;
    try {
      while (off < line.length) off += writeSync(fd, line, off);
    } finally {
      // Whatever reached the file counts, even a write cut short (a full disk): read from the file then.
      size = off === line.length ? size + off : fstatSync(fd).size;
    }
    wake?.();
  }

  /** Complete lines from the cursor on, up to the batch limits. */
  function nextBatch(): { events: string[]; bytes: number } | undefined {
    if (size <= cursor) return undefined;
    const buf = Buffer.alloc(Math.min(size - cursor, MAX_BATCH_BYTES));
    const n = readSync(fd, buf, 0, buf.length, cursor);
    const events: string[] = [];
    let bytes = 0;
    while (events.length < o.batchMaxSize) {
      const nl = buf.indexOf(0x0a, bytes);
      if (nl < 0 || nl >= n) break;
      events.push(buf.subarray(bytes, nl).toString('utf8'));
      bytes = nl + 1;
    }
    return events.length ? { events, bytes } : undefined;
  }

  async function send(events: string[]): Promise<void> {
    const body = `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[${events.join(',')}]}`;
    const res = await request(url, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', ...(o.target.authorization ? { authorization: o.target.authorization() } : {}) },
      body,
    });
    await res.body.dump();
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}`);
  }

  /** Waits `ms`; a new record (when `early`) or close() ends the wait sooner. */
  const idle = (ms: number, early: boolean) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wake = undefined;
        stop = undefined;
        resolve();
      }
      if (early) wake = done;
      stop = done;
    });

  const pump = (async () => {
    let backoff = o.backoffMs;
    // close() sets `closed` while this loop awaits; a call reads it fresh each time round.
    const open = () => !closed;
    while (open()) {
      const batch = nextBatch();
      if (!batch) {
        await idle(1000, true);
        continue;
      }
      try {
        await send(batch.events);
      } catch (err) {
        o.log?.(`audit webhook: ${batch.events.length} records to ${new URL(url).host} not delivered (${(err as Error).message}); retrying in ${backoff} ms`);
        // New records do not cut the wait short: a receiver that is down is not hammered.
        await idle(backoff, false);
        backoff = Math.min(backoff * 2, 30_000);
        continue;
      }
      backoff = o.backoffMs;
      cursor += batch.bytes;
      // All delivered: start the spool over, so it never grows past what is waiting.
      if (cursor === size) {
        ftruncateSync(fd, 0);
        size = 0;
        cursor = 0;
        warned = false;
      }
      saveCursor();
    }
  })();

  return {
    write: append,
    commit: append,
    flush: () => {},
    pendingBytes: () => size - cursor,
    dropped: () => drops,
    async close() {
      closed = true;
      stop?.();
      await pump;
      await agent.close();
      closeSync(fd);
    },
  };
}
