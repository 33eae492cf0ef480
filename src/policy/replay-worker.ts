/**
 * A replay worker: the candidate policy instantiated once in this thread, and
 * batches of audit lines decided here (replay.ts hands them out), so a replay
 * uses every core.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { checkMaskPath } from '../redact/path.js';
import { createPolicyEngine } from './engine.js';
import { compiled } from './load.js';
import { createDecider, emptyTally, type Change } from './replay.js';

const { wasm, data, since } = workerData as { wasm: Uint8Array; data: unknown; since: number | undefined };
const engine = await createPolicyEngine(compiled(Buffer.from(wasm), data), checkMaskPath);

parentPort!.on('message', ({ seq, lines }: { seq: number; lines: string[] }) => {
  const tally = emptyTally();
  const changes: Change[] = [];
  const decide = createDecider(engine, tally, (c) => changes.push(c), since);
  for (const l of lines) decide(l);
  parentPort!.postMessage({ seq, tally, changes });
});
parentPort!.postMessage({ ready: true });
