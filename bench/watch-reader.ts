import type { Readable } from 'node:stream';

/**
 * Reads a watch's body until a chunk carries the marker of the change being
 * timed (`marker()` is '' until the change is sent), then calls `arrived` and
 * stops. An abort at the end of a benchmark ends it quietly.
 */
export async function readUntilMarked(body: Readable, marker: () => string, arrived: () => void): Promise<void> {
  try {
    for await (const chunk of body) {
      const m = marker();
      if (m && String(chunk).includes(m)) {
        arrived();
        break;
      }
    }
  } catch {
    // aborted at the end
  }
  body.destroy();
}
