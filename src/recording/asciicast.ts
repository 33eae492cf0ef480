/**
 * A session recording in asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/):
 * a JSON header line, then one JSON array per event — [seconds, "o", text] for
 * output, "i" for input, "r" for a resize ("COLSxROWS"). The header waits for
 * the first event, so a terminal size sent first (kubectl does) is in it. A
 * recording is opened before the session starts: if it cannot be, none starts.
 */
import { close, fsync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

export interface CastHeader {
  readonly version: 2;
  width: number;
  height: number;
  readonly timestamp: number;
  readonly title: string;
  readonly env?: Record<string, string>;
  /** Who, where and what: Gatehouse's own header fields (asciicast allows extra keys). */
  readonly gatehouse: {
    readonly session: string;
    readonly user: string;
    readonly agent: string | null;
    readonly onBehalfOf: string | null;
    readonly namespace: string;
    readonly pod: string;
    readonly container: string;
    readonly command: readonly string[];
    readonly tty: boolean;
    readonly kind: 'exec' | 'attach';
    readonly auditID: string;
  };
}

export interface Recorder {
  output(data: Buffer): void;
  input(data: Buffer): void;
  resize(cols: number, rows: number): void;
  /** Writes a last line saying how it ended, and closes the recording. */
  close(end: SessionEnd): void;
  /** Where it is kept, for the audit record: a file, or `postgres:ID`. */
  readonly location: string;
  /** A store that writes behind the session (PostgreSQL) says when to stop reading; files are written at once. */
  readonly pressure?: Pressure;
}

/** A writer that can fall behind: full() says stop reading, whenDrained() when to start again. */
export interface Pressure {
  full(): boolean;
  whenDrained(resume: () => void): void;
}

export interface SessionEnd {
  readonly exitCode: number | null;
  readonly reason: string;
}

/** Where an encoder's lines go; `end` is called once, after the last line. */
export interface LineSink {
  line(text: string): void;
  end(header: CastHeader, end: SessionEnd): void;
}

export function castFile(dir: string, session: string): string {
  return join(dir, `${session}.cast`);
}

/** The last line of a recording: a marker event (asciicast v2 "m") players skip and tools read. */
export function endMarker(seconds: number, end: SessionEnd): string {
  return JSON.stringify([seconds, 'm', `exit ${JSON.stringify(end)}`]);
}

/** The end a recording's last line states, or null when it has none (yet). */
export function parseEndMarker(line: string): SessionEnd | null {
  try {
    const ev = JSON.parse(line) as [number, string, string];
    return ev[1] === 'm' && ev[2].startsWith('exit ') ? (JSON.parse(ev[2].slice(5)) as SessionEnd) : null;
  } catch {
    return null;
  }
}

/**
 * Session events → asciicast lines, whatever keeps them. Output and input are
 * decoded as UTF-8 across chunk boundaries (a character split between two
 * frames is written once, whole).
 */
export function castEncoder(header: CastHeader, sink: LineSink, location: string, now: () => number = Date.now, pressure?: Pressure): Recorder {
  const start = now();
  let headerWritten = false;
  let closed = false;
  const out = new StringDecoder('utf8');
  const inp = new StringDecoder('utf8');
  const seconds = () => Math.round(now() - start) / 1000;
  const writeHeader = () => {
    if (headerWritten) return;
    headerWritten = true;
    sink.line(JSON.stringify(header));
  };
  const event = (code: 'o' | 'i' | 'r', text: string) => {
    if (text === '' || closed) return;
    writeHeader();
    sink.line(JSON.stringify([seconds(), code, text]));
  };
  return {
    location,
    ...(pressure ? { pressure } : {}),
    output: (data) => event('o', out.write(data)),
    input: (data) => event('i', inp.write(data)),
    resize(cols, rows) {
      if (!headerWritten) {
        header.width = cols;
        header.height = rows;
        writeHeader();
        return;
      }
      event('r', `${cols}x${rows}`);
    },
    close(end) {
      if (closed) return;
      writeHeader();
      event('o', out.end());
      sink.line(endMarker(seconds(), end));
      closed = true;
      sink.end(header, end);
    },
  };
}

/**
 * Throws if the file cannot be created; later write failures call onError (the session must then end).
 * `flushing` is told of the recording's last flush to the disk, which its store waits for when it closes.
 */
export function openRecorder(
  dir: string,
  header: CastHeader,
  onError: (err: Error) => void,
  flushing: (done: Promise<void>) => void,
  now: () => number = Date.now,
): Recorder {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = castFile(dir, header.gatehouse.session);
  const fd = openSync(file, 'wx', 0o600);
  let failed = false;
  return castEncoder(
    header,
    {
      line(s) {
        if (failed) return;
        try {
          writeSync(fd, s + '\n');
        } catch (err) {
          failed = true;
          onError(err as Error);
        }
      },
      end() {
        // Flushed and closed off the event loop: a recording's last pages can take tens of ms to reach
        // the disk (the end of a 64 MB session held the loop 52-69 ms, and every other request with
        // it). The lines are written by now; like a PostgreSQL recording, which writes behind the
        // session, the session's last audit record does not wait for their durability. A failed
        // flush leaves the data written and only its durability unconfirmed.
        flushing(new Promise((done) => fsync(fd, () => close(fd, () => done()))));
      },
    },
    file,
    now,
  );
}
