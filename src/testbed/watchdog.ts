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

for (;;) {
  if (!pids.some(isAlive)) process.exit(0);
  if (owner > 0 && !isAlive(owner)) {
    await stopProcesses(pids);
    rmSync(dir!, { recursive: true, force: true });
    process.exit(0);
  }
  await sleep(500);
}
