import { createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/**
 * An append-only JSON-lines file, opened for appending and reading, with its last
 * complete line and the bytes after it that no newline ends. A write(2) of several
 * pages can stop part-way when the process gets SIGKILL (the kernel checks for a
 * fatal signal between pages), so a crash may leave half a record without its
 * newline; the next record appended after a restart would then be glued to it and
 * both would be unreadable.
 */
export function openJsonLines(file: string): { fd: number; size: number } & Tail {
  const fd = openSync(file, 'a+', 0o600);
  const size = fstatSync(fd).size;
  return { fd, size, ...tailOf(fd, size) };
}

interface Tail {
  readonly complete: string | undefined;
  /** The unfinished bytes as text, and their exact count (a cut may fall inside a character). */
  readonly unfinished: string | undefined;
  readonly tornBytes: number;
}

/** Read from the end, in windows that double until they hold the last complete line (or the whole file). */
function tailOf(fd: number, size: number): Tail {
  if (size === 0) return { complete: undefined, unfinished: undefined, tornBytes: 0 };
  for (let window = 64 * 1024; ; window *= 2) {
    const start = Math.max(0, size - window);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const last = buf.lastIndexOf(0x0a);
    // Before the last line's start is known, a window that does not reach the file's start may cut it.
    const before = last > 0 ? buf.lastIndexOf(0x0a, last - 1) : -1;
    if ((last < 0 || before < 0) && start > 0) continue;
    const tornBytes = buf.length - (last + 1);
    return {
      complete: last < 0 ? undefined : buf.toString('utf8', before + 1, last),
      unfinished: tornBytes > 0 ? buf.toString('utf8', last + 1) : undefined,
      tornBytes,
    };
  }
}

/** The lines of a file, split on newlines only (a hash chain is over exact bytes), from large reads. */
export async function* readLines(file: string): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    const text = rest + decoder.write(chunk);
    const parts = text.split('\n');
    rest = parts.pop()!;
    yield* parts;
  }
  rest += decoder.end();
  if (rest) yield rest;
}
