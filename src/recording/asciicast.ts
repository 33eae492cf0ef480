/**
 * A session recording in asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/):
 * a JSON header line, then one JSON array per event — [seconds, "o", text] for
 * output, "i" for input, "r" for a resize ("COLSxROWS"). The header waits for
 * the first event, so a terminal size sent first (kubectl does) is in it. The
 * file is opened before the session starts: if it cannot be, no session starts.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
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
  /** Writes a last line saying how it ended, and closes the file. */
  close(end: { exitCode: number | null; reason: string }): void;
  readonly file: string;
}

export function castFile(dir: string, session: string): string {
  return join(dir, `${session}.cast`);
}

/** Throws if the recording cannot be opened; later write failures call onError (the session must then end). */
export function openRecorder(dir: string, header: CastHeader, onError: (err: Error) => void, now: () => number = Date.now): Recorder {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = castFile(dir, header.gatehouse.session);
  const fd = openSync(file, 'wx', 0o600);
  const start = now();
  let headerWritten = false;
  let failed = false;
  let closed = false;
  const out = new StringDecoder('utf8');
  const inp = new StringDecoder('utf8');

  const line = (s: string) => {
    if (failed || closed) return;
    try {
      writeSync(fd, s + '\n');
    } catch (err) {
      failed = true;
      onError(err as Error);
    }
  };
  const writeHeader = () => {
    if (headerWritten) return;
    headerWritten = true;
    line(JSON.stringify(header));
  };
  const event = (code: 'o' | 'i' | 'r', text: string) => {
    if (text === '') return;
    writeHeader();
    line(JSON.stringify([Math.round(now() - start) / 1000, code, text]));
  };
  return {
    file,
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
      // A marker event (asciicast v2 "m"): players skip it, tools read how the session ended.
      line(JSON.stringify([Math.round(now() - start) / 1000, 'm', `exit ${JSON.stringify(end)}`]));
      closed = true;
      try {
        fsyncSync(fd);
      } catch {
        // The data is written; only its durability is unconfirmed.
      }
      closeSync(fd);
    },
  };
}
