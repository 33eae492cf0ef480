import { startDemo } from './dist/src/demo/demo.js';
import { readState } from './dist/src/testbed/controlplane.js';
const demo = await startDemo({ dir: '.gatehouse/try-demo', testbed: readState('.gatehouse/dev-testbed') });
console.log('READY', demo.kubeconfigs.alice);
process.on('SIGTERM', async () => { await demo.stop(); process.exit(0); });
