import { forTerminal, visible } from './terminal.js';

const USAGE = `usage: gatehouse <command>

commands:
  serve --config gatehouse.yaml        run the gateway
  login --issuer URL --client-id ID    log in (browser, or --device); kubectl then uses \`gatehouse token\`
  token --issuer URL --client-id ID    kubectl's exec credential plugin: the cached token, refreshed when due
  kubeconfig --server URL --ca FILE …  print a kubeconfig for a user of the gateway (--login: with \`gatehouse token\`)
  demo                                 the embedded default: control plane, OIDC issuer, gateway, kubeconfigs
  demo token --user U --groups G       mint a token from the running demo's issuer
  testbed up|down|status [--dir DIR]   a local etcd + kube-apiserver for the demo and the tests
  approvals list|show|approve|deny     decide on requests waiting for approval (uses your kubeconfig)
  grants list|revoke                   time-bound grants given with approvals (approve --for 30m)
  sessions list|play|export            find and replay recorded exec/attach sessions
  audit verify FILE… [--key FILE]      check audit files' hash chains and keyed checkpoints
  policy test [DIR]                    opa fmt, check, test and the fixtures through the WASM engine
  policy replay --policy P --audit F…  re-decide recorded requests with a candidate policy
`;

/** Errors that carry a message meant for the person at the terminal. */
function isReadable(err: unknown): err is Error & { code: string } {
  const code: unknown = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('GATEHOUSE_');
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // Each command's modules are loaded when it runs: a gateway (serve) keeps only its own in memory,
  // not the clients the other commands use (@kubernetes/client-node alone is ~80 MiB resident).
  switch (command) {
    case 'serve':
      return (await import('./serve.js')).runServeCommand(rest);
    case 'kubeconfig':
      return (await import('./serve.js')).runKubeconfigCommand(rest);
    case 'demo':
      return (await import('./demo/command.js')).runDemoCommand(rest);
    case 'testbed':
      return (await import('./testbed/command.js')).runTestbedCommand(rest);
    case 'approvals':
      return (await import('./approval/command.js')).runApprovalsCommand(rest);
    case 'grants':
      return (await import('./approval/command.js')).runGrantsCommand(rest);
    case 'sessions':
      return (await import('./recording/command.js')).runSessionsCommand(rest);
    case 'audit':
      return (await import('./audit/command.js')).runAuditCommand(rest);
    case 'policy':
      return (await import('./policy/command.js')).runPolicyCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`gatehouse: unknown command '${command}'\n${USAGE}`);
      return 2;
  }
}

/**
 * Exits once stdout and stderr have taken everything written: into a pipe they
 * write asynchronously, and process.exit() dropped the rest (a piped
 * `gatehouse sessions export` of a long session stopped at 128 KiB).
 */
function exitFlushed(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

main(process.argv.slice(2)).then(
  (code) => exitFlushed(code),
  (err: unknown) => {
    // An error may quote the gateway's answer, which may quote the request: made visible too.
    process.stderr.write(
      forTerminal(`gatehouse: ${isReadable(err) ? visible(err.message) : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`),
    );
    exitFlushed(1);
  },
);
