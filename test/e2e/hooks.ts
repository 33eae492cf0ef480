/**
 * Root hooks of the end-to-end suite: one real control plane (etcd + kube-apiserver
 * built from Go modules by scripts/tools.sh) per test run, in a folder of its own so
 * two runs never collide. Set GATEHOUSE_TESTBED_DIR to reuse one already running.
 */
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { down, readState, up, type Testbed } from '../../src/testbed/controlplane.js';
import { runRoot } from '../../src/paths.js';

let current: Testbed | undefined;
let owned = false;

export function testbed(): Testbed {
  if (!current) throw new Error('the test bed is not up: run the e2e suite with test/.mocharc.e2e.json');
  return current;
}

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(120_000);
    const reuse = process.env['GATEHOUSE_TESTBED_DIR'];
    if (reuse && readState(reuse)) {
      current = readState(reuse);
      return;
    }
    current = await up({ dir: join(runRoot, `test-${process.pid}`, 'testbed'), ownerPid: process.pid });
    owned = true;
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(30_000);
    if (owned && current) {
      await down(current.dir);
      rmSync(dirname(current.dir), { recursive: true, force: true });
    }
  },
};
