/**
 * Session recordings on disk: one asciicast file per exec/attach session in a
 * folder, its header saying who, where and what. Opening one is the check that
 * recording works: if it fails, the session is refused (fail closed) unless
 * the operator chose `recording.failOpen`.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { castFile, openRecorder, type CastHeader, type Recorder } from './asciicast.js';

/** Far above any header a request can produce (its URL is bounded by the HTTP server's header limit). */
const MAX_HEADER = 1024 * 1024;

export interface SessionSummary {
  readonly id: string;
  readonly header: CastHeader;
  readonly end: { readonly exitCode: number | null; readonly reason: string } | null;
  readonly durationSeconds: number;
}

export function newSessionId(): string {
  return (
    'se-' +
    randomBytes(9)
      .toString('base64url')
      .toLowerCase()
      .replace(/[^a-z0-9]/g, 'x')
  );
}

export function createSessionStore(options: { readonly dir: string; readonly failOpen: boolean }) {
  return {
    dir: options.dir,
    failOpen: options.failOpen,
    open(header: CastHeader, onError: (err: Error) => void): Recorder {
      return openRecorder(options.dir, header, onError);
    },
    /** Newest first; reads each file's header line and its last line. */
    list(): SessionSummary[] {
      if (!existsSync(options.dir)) return [];
      const out: SessionSummary[] = [];
      for (const f of readdirSync(options.dir)) {
        if (!f.endsWith('.cast')) continue;
        const s = summary(castFile(options.dir, f.slice(0, -5)), f.slice(0, -5));
        if (s) out.push(s);
      }
      return out.sort((a, b) => b.header.timestamp - a.header.timestamp);
    },
    get(id: string): SessionSummary | undefined {
      if (!/^se-[a-z0-9]+$/.test(id)) return undefined;
      const file = castFile(options.dir, id);
      return existsSync(file) ? summary(file, id) : undefined;
    },
    file: (id: string) => castFile(options.dir, id),
    remove: (id: string) => rmSync(castFile(options.dir, id), { force: true }),
  };
}

export type SessionStore = ReturnType<typeof createSessionStore>;

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
    let end: SessionSummary['end'] = null;
    let durationSeconds = 0;
    try {
      const ev = JSON.parse(last) as [number, string, string];
      durationSeconds = typeof ev[0] === 'number' ? ev[0] : 0;
      if (ev[1] === 'm' && ev[2].startsWith('exit ')) end = JSON.parse(ev[2].slice(5)) as SessionSummary['end'];
    } catch {
      // The header is the last line, or the tail starts mid-line: no end yet.
    }
    return { id, header, end, durationSeconds };
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
