import type { Readable } from 'node:stream';

/**
 * Reads a watch's body until the benchmark aborts it, and calls `arrived` the
 * first time a chunk carries the marker of the change being timed (`marker()`
 * is '' until the change is sent). It goes on reading, as a watcher does: one
 * that closed its watch on the change would have the gateway tear that watch
 * down (its last audit record, the upstream stream's reset) while the others
 * still wait for theirs, and the teardown would be measured as the change.
 */
export async function readUntilAborted(body: Readable, marker: () => string, arrived: () => void): Promise<void> {
  let seen = '';
  try {
    for await (const chunk of body) {
      const m = marker();
      if (m && m !== seen && String(chunk).includes(m)) {
        seen = m;
        arrived();
      }
    }
  } catch {
    // aborted at the end
  }
  body.destroy();
}
