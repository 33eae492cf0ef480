import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, stopProcesses } from './controlplane.js';

/**
 * Runs detached beside a test bed: when the process that owns it dies (a test run
 * killed with SIGKILL cannot run its own clean-up), it stops the servers and
 * removes the run folder. Exits on its own once the servers are gone (`down`).
 * argv: ownerPid (0: none) dir pid...
 */
const [ownerArg, dir, ...pidArgs] = process.argv.slice(2);
const owner = Number(ownerArg);
const pids = pidArgs.map(Number);

// Servers gone is not the end: `down` stops them, then removes the folder, then this process. An
// owner killed between the last two (a loaded machine stretches that moment) left the folder behind
// while this loop saw the servers gone and quit; so it waits for its owner (or, with none, for the
// servers) and always finishes the job itself.
for (;;) {
  const serversUp = pids.some(isAlive);
  const ownerGone = owner > 0 ? !isAlive(owner) : !serversUp;
  if (ownerGone) {
    if (serversUp) await stopProcesses(pids);
    rmSync(dir!, { recursive: true, force: true });
    process.exit(0);
  }
  await sleep(500);
}
