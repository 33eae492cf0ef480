import { existsSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, stopProcesses } from '../testbed/controlplane.js';

/**
 * Runs detached beside `gatehouse demo --replicas N`: when the demo dies without
 * cleaning up (SIGKILL), it stops what the demo started — the replicas, the
 * balancer, PostgreSQL — and removes PostgreSQL's folder and the demo's ready
 * and replicas.json. The demo keeps the list in a
 * file, since a replica it restarts has a new pid; the file's removal (a clean
 * stop) ends the watch. argv: ownerPid ownedFile
 */
interface Owned {
  readonly pids: readonly number[];
  /** Files and folders to remove. */
  readonly paths: readonly string[];
}

const [ownerArg, ownedFile] = process.argv.slice(2);
const owner = Number(ownerArg);
const read = (): Owned | undefined => {
  try {
    return JSON.parse(readFileSync(ownedFile!, 'utf8')) as Owned;
  } catch {
    return undefined;
  }
};

for (;;) {
  if (!existsSync(ownedFile!)) process.exit(0);
  if (!isAlive(owner)) {
    const owned = read();
    if (owned) {
      await stopProcesses(owned.pids);
      for (const p of owned.paths) rmSync(p, { recursive: true, force: true });
    }
    rmSync(ownedFile!, { force: true });
    process.exit(0);
  }
  await sleep(500);
}
