/**
 * Reads a kubeconfig with @kubernetes/client-node in a process of its own and
 * prints the current context's cluster and user as JSON on stdout (or
 * `{"error": …}`). credentials.ts runs it once at start-up: the library is
 * ~80 MiB resident once imported (bench/README, "Memory"), and a gateway needs
 * what it read, not the library. argv: file [context]
 */
import { KubeConfig } from '@kubernetes/client-node';
import { describeKubeconfigError } from './kubeconfig-error.js';

const [file, context] = process.argv.slice(2);
let answer: unknown;
try {
  const kc = new KubeConfig();
  kc.loadFromFile(file!);
  if (context) kc.setCurrentContext(context);
  answer = { cluster: kc.getCurrentCluster() ?? null, user: kc.getCurrentUser() ?? null };
} catch (err) {
  answer = { error: describeKubeconfigError(err) };
}
process.stdout.write(JSON.stringify(answer));
