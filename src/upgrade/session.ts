/**
 * What a session's streams say, in Kubernetes terms, whichever protocol
 * carried them: stdin (0), stdout (1), stderr (2), the error channel (3, a
 * Status with the exit code) and resizes (4, {"Width","Height"}). Feeds the
 * recording, turns typed lines into commands for the audit, and counts bytes.
 */
import type { Recorder } from '../recording/asciicast.js';

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const ERROR = 3;
export const RESIZE = 4;

const MAX_LINE = 4096;

export interface SessionFacts {
  exitCode: number | null;
  failure: string | null;
  bytesIn: number;
  bytesOut: number;
  lines: number;
}

/** Strips what a terminal would not show as text: escape sequences, other control characters; applies backspace. */
export function typedLine(raw: string): string {
  let s = raw.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '').replace(/\x1b[@-_]/g, '');
  let out = '';
  for (const ch of s) {
    if (ch === '\x7f' || ch === '\b') out = out.slice(0, -1);
    else if (ch >= ' ' || ch === '\t') out += ch;
  }
  s = out;
  return s;
}

export class SessionTap {
  readonly facts: SessionFacts = { exitCode: null, failure: null, bytesIn: 0, bytesOut: 0, lines: 0 };
  private pending = '';

  /** Lines become commands only on a terminal: piped stdin (kubectl cp's tar, a file) is data, not typing. */
  constructor(
    private readonly recorder: Recorder | null,
    private readonly onLine: ((line: string) => void) | null,
  ) {}

  fromClient(channel: number, data: Buffer): void {
    if (channel === STDIN) {
      this.facts.bytesIn += data.length;
      this.recorder?.input(data);
      if (!this.onLine) return;
      this.pending += data.toString('utf8');
      let i: number;
      while ((i = this.pending.search(/[\r\n]/)) >= 0) {
        const line = typedLine(this.pending.slice(0, i));
        this.pending = this.pending.slice(i + 1);
        if (line.trim()) {
          this.facts.lines++;
          this.onLine(line);
        }
      }
      if (this.pending.length > MAX_LINE) this.pending = this.pending.slice(-MAX_LINE);
    } else if (channel === RESIZE) {
      try {
        const size = JSON.parse(data.toString('utf8')) as { Width?: number; Height?: number };
        // A client without a terminal size sends 0x0: nothing to record.
        if (typeof size.Width === 'number' && typeof size.Height === 'number' && size.Width > 0 && size.Height > 0)
          this.recorder?.resize(size.Width, size.Height);
      } catch {
        // Not a size: nothing to record.
      }
    }
  }

  fromServer(channel: number, data: Buffer): void {
    if (channel === STDOUT || channel === STDERR) {
      this.facts.bytesOut += data.length;
      this.recorder?.output(data);
    } else if (channel === ERROR) {
      this.status(data);
    }
  }

  /** The error channel's Status: Success is exit 0; NonZeroExitCode carries the code in its causes. */
  private status(data: Buffer): void {
    let st: { status?: string; reason?: string; message?: string; details?: { causes?: { reason?: string; message?: string }[] } };
    try {
      st = JSON.parse(data.toString('utf8')) as typeof st;
    } catch {
      this.facts.failure = data.toString('utf8').slice(0, 256);
      return;
    }
    if (st.status === 'Success') {
      this.facts.exitCode = 0;
      return;
    }
    const code = st.details?.causes?.find((c) => c.reason === 'ExitCode')?.message;
    if (st.reason === 'NonZeroExitCode' && code !== undefined && /^\d+$/.test(code)) this.facts.exitCode = Number(code);
    else this.facts.failure = (st.message ?? 'unknown failure').slice(0, 256);
  }
}
