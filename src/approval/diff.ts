/**
 * A unified line diff, for showing an approver what a write would change:
 * jsdiff's structured patch (Myers' algorithm), written as `---`/`+++` and
 * `@@` hunks with three lines of context. Objects are small; a cap keeps a
 * huge one from costing the gateway time it should spend on requests.
 */
import { createRequire } from 'node:module';
import type * as Jsdiff from 'diff';

/**
 * jsdiff, loaded the first time a write is previewed: a gateway that never shows one keeps its
 * ~100 KB of source out of the heap (with openid-client, ~1.5 MiB of RSS; bench/README.md,
 * thirteenth session). Its CommonJS build, so that the diff stays a plain function call.
 */
let jsdiff: typeof Jsdiff | undefined;
const loadJsdiff = (): typeof Jsdiff => (jsdiff ??= createRequire(import.meta.url)('diff') as typeof Jsdiff);

const MAX_LINES = 1500;
const CONTEXT = 3;

const lineCount = (text: string) => (text === '' ? 0 : text.replace(/\n$/, '').split('\n').length);

/** `before` → `after` as unified-diff hunks; "" when they are the same. */
export function unifiedDiff(before: string, after: string, labels: { readonly before: string; readonly after: string }): string {
  const a = lineCount(before);
  const b = lineCount(after);
  if (a > MAX_LINES || b > MAX_LINES) return `--- ${labels.before}\n+++ ${labels.after}\n(too large to show: ${a} → ${b} lines)\n`;
  const patch = loadJsdiff().structuredPatch(labels.before, labels.after, before, after, undefined, undefined, { context: CONTEXT });
  if (patch.hunks.length === 0) return '';
  const lines = [`--- ${labels.before}`, `+++ ${labels.after}`];
  for (const h of patch.hunks) {
    // As in diff(1): a side with no lines is numbered from the line before it.
    lines.push(`@@ -${h.oldLines ? h.oldStart : h.oldStart - 1},${h.oldLines} +${h.newLines ? h.newStart : h.newStart - 1},${h.newLines} @@`);
    // The texts end in a newline (YAML), so jsdiff's "\ No newline at end of file" never applies.
    for (const l of h.lines) if (!l.startsWith('\\')) lines.push(l);
  }
  return lines.join('\n') + '\n';
}
