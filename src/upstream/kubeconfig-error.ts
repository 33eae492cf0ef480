/**
 * What went wrong reading a kubeconfig, without the file's text: js-yaml's
 * message for a YAML error quotes the lines around the fault, which may hold a
 * token or a key (docs/threat-model.md).
 */
export function describeKubeconfigError(err: unknown): string {
  const e = err as { name?: string; reason?: string; mark?: { line: number; column: number }; message?: string };
  if (e.name === 'YAMLException' && e.reason !== undefined) return e.mark ? `${e.reason} (line ${e.mark.line + 1}, column ${e.mark.column + 1})` : e.reason;
  return (e.message ?? String(err)).split('\n')[0]!;
}
