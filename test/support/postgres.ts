// The demo starts the same server for `gatehouse demo --replicas N`; tests use it directly.
export { startPostgres, type RunningPostgres } from '../../src/demo/postgres.js';
