import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from './config.js';
import { renderKubeconfig, type KubeconfigAuth } from './kubeconfig.js';
import { startGateway } from './server.js';
import { join } from 'node:path';
import { projectRoot } from './paths.js';
import { loginKey } from './token/cache.js';

/**
 * `gatehouse serve --config gatehouse.yaml`: runs until SIGTERM/SIGINT, then
 * drains and flushes the audit log. SIGHUP loads the policy again.
 */
export async function runServeCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', default: 'gatehouse.yaml' }, 'write-ca': { type: 'string' } } });
  const gateway = await startGateway(loadConfig(values.config));
  if (values['write-ca'] && gateway.caPem) writeFileSync(values['write-ca'], gateway.caPem);
  const reload = () => void gateway.reloadPolicy();
  process.on('SIGHUP', reload);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.off('SIGHUP', reload);
  await gateway.close();
  return 0;
}

/**
 * `gatehouse kubeconfig --server URL --ca FILE --user NAME (--token T | --exec CMD [ARG...] | --login --issuer URL --client-id ID)`:
 * a kubeconfig stock kubectl can use against the gateway; with --login its
 * credential plugin is `gatehouse token`, answering from `gatehouse login`'s cache.
 */
export async function runKubeconfigCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      server: { type: 'string' },
      ca: { type: 'string' },
      user: { type: 'string', default: 'gatehouse-user' },
      token: { type: 'string' },
      exec: { type: 'string' },
      login: { type: 'boolean', default: false },
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      namespace: { type: 'string' },
      name: { type: 'string', default: 'gatehouse' },
    },
  });
  const login = values.login && values.issuer && values['client-id'] ? { issuer: values.issuer, clientId: values['client-id'] } : undefined;
  if (!values.server || !values.ca || (!values.token && !values.exec && !login)) {
    process.stderr.write(
      'usage: gatehouse kubeconfig --server https://GATEWAY --ca CA.crt [--user NAME] [--namespace NS] (--token TOKEN | --exec COMMAND -- [ARGS...] | --login --issuer URL --client-id ID)\n',
    );
    return 2;
  }
  const auth: KubeconfigAuth = login
    ? {
        kind: 'exec',
        // The shell plugin answers from the cache without starting Node; `gatehouse token` refreshes it.
        command: join(projectRoot, 'bin/gatehouse-token'),
        args: [loginKey(login.issuer, login.clientId), process.execPath, 'token', '--issuer', login.issuer, '--client-id', login.clientId],
      }
    : values.exec
      ? { kind: 'exec', command: values.exec, args: positionals }
      : { kind: 'token', token: values.token! };
  process.stdout.write(
    renderKubeconfig({
      name: values.name,
      server: values.server,
      caPem: readFileSync(values.ca, 'utf8'),
      user: values.user,
      auth,
      ...(values.namespace ? { namespace: values.namespace } : {}),
    }),
  );
  return 0;
}
