/**
 * Reads a kubeconfig with @kubernetes/client-node in a process of its own and
 * prints the current context's cluster and user as JSON on stdout (or
 * `{"error": …}`). credentials.ts runs it once at start-up: the library is
 * ~80 MiB resident once imported (bench/README, "Memory"), and a gateway needs
 * what it read, not the library. argv: file [context]
 */
import { KubeConfig } from '@kubernetes/client-node';

/**
 * What went wrong, without the file's text: a YAML error's message quotes the
 * lines around the fault, which may hold the token or key (threat model).
 */
function describe(err: unknown): string {
  const e = err as { name?: string; reason?: string; mark?: { line: number; column: number }; message?: string };
  if (e.name === 'YAMLException' && e.reason !== undefined) return e.mark ? `${e.reason} (line ${e.mark.line + 1}, column ${e.mark.column + 1})` : e.reason;
  return (e.message ?? String(err)).split('\n')[0]!;
}

const [file, context] = process.argv.slice(2);
let answer: unknown;
try {
  const kc = new KubeConfig();
  kc.loadFromFile(file!);
  if (context) kc.setCurrentContext(context);
  answer = { cluster: kc.getCurrentCluster() ?? null, user: kc.getCurrentUser() ?? null };
} catch (err) {
  answer = { error: describe(err) };
}
process.stdout.write(JSON.stringify(answer));
