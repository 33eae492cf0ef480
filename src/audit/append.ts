import { fstatSync, openSync, readSync } from 'node:fs';

/**
 * An append-only JSON-lines file, opened for appending and reading, and how many
 * bytes at its end belong to a line that was never finished. A write(2) of several
 * pages can stop part-way when the process gets SIGKILL (the kernel checks for a
 * fatal signal between pages), so a crash may leave half a record without its
 * newline; the next record appended after a restart would then be glued to it and
 * both would be unreadable.
 */
export function openJsonLines(file: string): { fd: number; size: number; tornBytes: number } {
  const fd = openSync(file, 'a+', 0o600);
  const size = fstatSync(fd).size;
  return { fd, size, tornBytes: tornTail(fd, size) };
}

/** The file's last complete line and the unfinished bytes after it (without newlines), read from its end. */
export function lastLines(fd: number, size: number): { complete: string | undefined; unfinished: string | undefined } {
  if (size === 0) return { complete: undefined, unfinished: undefined };
  for (let window = 64 * 1024; ; window *= 2) {
    const start = Math.max(0, size - window);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const endsClean = buf[buf.length - 1] === 0x0a;
    const lines = buf
      .subarray(0, endsClean ? -1 : undefined)
      .toString('utf8')
      .split('\n');
    // The first piece of a window that does not reach the file's start may be part of a line.
    const whole = start === 0 ? lines : lines.slice(1);
    const unfinished = endsClean ? undefined : lines[lines.length - 1];
    const completes = endsClean ? whole : whole.slice(0, -1);
    if (completes.length > 0 || start === 0) return { complete: completes[completes.length - 1], unfinished };
  }
}

function tornTail(fd: number, size: number): number {
  const chunk = Buffer.alloc(64 * 1024);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const n = readSync(fd, chunk, 0, end - start, start);
    const nl = chunk.subarray(0, n).lastIndexOf(0x0a);
    if (nl >= 0) return size - (start + nl + 1);
    end = start;
  }
  return size;
}
