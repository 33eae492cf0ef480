#!/usr/bin/env node
// The CLI is compiled TypeScript; `npm install` runs `prepare` (tsc) so dist/ exists.
// `gatehouse token` is kubectl's credential plugin, run before every kubectl request: it loads its
// own module only (node built-ins and a cache file), not the whole CLI.
const [command] = process.argv.slice(2);
const entry =
  command === 'token' || command === 'login'
    ? import('../dist/src/token/command.js').then(async (m) => {
        const code = await (command === 'token' ? m.runTokenCommand : m.runLoginCommand)(process.argv.slice(3));
        process.exitCode = code;
      })
    : import('../dist/src/cli.js');
entry.catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('/dist/src/')) {
    console.error('gatehouse: not built yet: run `npm install` (or `npm run build`) in the project folder first.');
    process.exit(1);
  }
  throw err;
});
