/**
 * Waiting for a state instead of for a time: a test that sleeps a fixed time
 * passes on a fast machine and fails on one twice as slow (STYLE.md rule 11).
 */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `probe` until it returns something other than undefined, null or false,
 * and returns that. The timeout only bounds a test that would otherwise hang; it
 * names what was awaited so a failure says which state never came.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined && got !== null && got !== false) return got;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}
