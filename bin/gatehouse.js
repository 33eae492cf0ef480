#!/usr/bin/env node
// The CLI is compiled TypeScript; `npm install` runs `prepare` (tsc) so dist/ exists.
import('../dist/src/cli.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli.js')) {
    console.error('gatehouse: not built yet: run `npm install` (or `npm run build`) in the project folder first.');
    process.exit(1);
  }
  throw err;
});
