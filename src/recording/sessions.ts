/**
 * Where session recordings are kept: one asciicast per exec/attach session,
 * its header saying who, where and what. Files in a folder are the single-node
 * default; PostgreSQL (postgres-sessions.ts) lets every replica list and play
 * every session. Opening a recording is the check that recording works: if it
 * fails, the session is refused (fail closed) unless the operator chose
 * `recording.failOpen`.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { castFile, openRecorder, parseEndMarker, type CastHeader, type Recorder, type SessionEnd } from './asciicast.js';

/** Far above any header a request can produce (its URL is bounded by the HTTP server's header limit). */
const MAX_HEADER = 1024 * 1024;

export interface SessionSummary {
  readonly id: string;
  readonly header: CastHeader;
  readonly end: SessionEnd | null;
  readonly durationSeconds: number;
}

export interface SessionStore {
  readonly failOpen: boolean;
  /** Throws if the recording cannot be started; later write failures call onError (the session must then end). */
  open(header: CastHeader, onError: (err: Error) => void): Promise<Recorder>;
  /** Newest first. */
  list(): Promise<SessionSummary[]>;
  get(id: string): Promise<SessionSummary | undefined>;
  /**
   * The asciicast, streamed (never read whole); undefined when there is no such
   * session. Whatever the stream needs is opened before this returns, so a
   * recording removed afterwards is still read as it was.
   */
  read(id: string): Promise<Readable | undefined>;
  /** A recording of a session that never started. */
  remove(id: string): Promise<void>;
  /** Waits for recordings still being written. */
  close(): Promise<void>;
}

export const SESSION_ID = /^se-[a-z0-9]+$/;

export function newSessionId(): string {
  return (
    'se-' +
    randomBytes(9)
      .toString('base64url')
      .toLowerCase()
      .replace(/[^a-z0-9]/g, 'x')
  );
}

export function createFileSessionStore(options: { readonly dir: string; readonly failOpen: boolean }): SessionStore {
  const list = (): SessionSummary[] => {
    if (!existsSync(options.dir)) return [];
    const out: SessionSummary[] = [];
    for (const f of readdirSync(options.dir)) {
      if (!f.endsWith('.cast')) continue;
      const s = summary(castFile(options.dir, f.slice(0, -5)), f.slice(0, -5));
      if (s) out.push(s);
    }
    return out.sort((a, b) => b.header.timestamp - a.header.timestamp);
  };
  // Recordings still on their way to the disk: closing the store (the gateway shutting down) waits for them.
  const flushes = new Set<Promise<void>>();
  const flushing = (done: Promise<void>) => {
    flushes.add(done);
    void done.then(() => flushes.delete(done));
  };
  return {
    failOpen: options.failOpen,
    open: async (header, onError) => openRecorder(options.dir, header, onError, flushing),
    list: async () => list(),
    async get(id) {
      if (!SESSION_ID.test(id)) return undefined;
      const file = castFile(options.dir, id);
      return existsSync(file) ? summary(file, id) : undefined;
    },
    async read(id) {
      if (!SESSION_ID.test(id)) return undefined;
      const handle = await openFile(castFile(options.dir, id), 'r').catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      });
      return handle?.createReadStream();
    },
    remove: async (id) => rmSync(castFile(options.dir, id), { force: true }),
    close: async () => {
      await Promise.all(flushes);
    },
  };
}

/**
 * The header line, read in chunks: it holds the command, which may be a long
 * script — a fixed-size read would hide such a session from every listing.
 */
function firstLine(fd: number): Buffer {
  const chunks: Buffer[] = [];
  for (let pos = 0; pos < MAX_HEADER;) {
    const chunk = Buffer.alloc(16 * 1024);
    const n = readSync(fd, chunk, 0, chunk.length, pos);
    if (n === 0) break;
    const nl = chunk.subarray(0, n).indexOf(10);
    if (nl >= 0) return Buffer.concat([...chunks, chunk.subarray(0, nl)]);
    chunks.push(chunk.subarray(0, n));
    pos += n;
  }
  throw new Error('no header line');
}

/** Header and last line, without reading a long recording whole. */
function summary(file: string, id: string): SessionSummary | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const header = JSON.parse(firstLine(fd).toString('utf8')) as CastHeader;
    const { size } = fstatSync(fd);
    const tail = Buffer.alloc(Math.min(size, 4096));
    readSync(fd, tail, 0, tail.length, size - tail.length);
    const lines = tail.toString('utf8').trimEnd().split('\n');
    const last = lines[lines.length - 1] ?? '';
    return { id, header, end: parseEndMarker(last), durationSeconds: secondsOf(last) };
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The time of an event line; 0 for the header, or a tail that starts mid-line. */
function secondsOf(line: string): number {
  try {
    const ev = JSON.parse(line) as unknown;
    return Array.isArray(ev) && typeof ev[0] === 'number' ? ev[0] : 0;
  } catch {
    return 0;
  }
}
