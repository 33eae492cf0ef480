/**
 * Which lines of a preview show the fields that made a write need approval
 * (the policy's `approval.fields`): found in the YAML the preview renders,
 * then located in the unified diff by its hunk headers. Pure functions.
 */
import { isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import type { FieldPath } from '../policy/field-path.js';

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/** The [start, end) character range of a field in a YAML document: its key and value together. */
function rangeOf(root: unknown, path: FieldPath): readonly [number, number] | undefined {
  if (path.length === 0) return undefined;
  let parent: unknown = root;
  for (const step of path.slice(0, -1)) {
    if (isMap(parent)) parent = parent.get(step, true);
    else if (isSeq(parent) && typeof step === 'number') parent = parent.get(step, true);
    else return undefined;
  }
  const last = path.at(-1)!;
  if (isMap(parent)) {
    const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === last);
    const key = pair?.key as Node | undefined;
    if (!pair || !key?.range) return undefined;
    const value = pair.value as Node | null;
    return [key.range[0], value?.range ? value.range[1] : key.range[1]];
  }
  if (isSeq(parent) && typeof last === 'number') {
    const item = parent.items[last] as Node | undefined;
    return item?.range ? [item.range[0], item.range[1]] : undefined;
  }
  return undefined;
}

/** The 1-based lines of `yaml` that show each field; fields it does not have are skipped. */
export function linesShowing(yaml: string, fields: readonly FieldPath[]): Set<number> {
  const lines = new Set<number>();
  if (!yaml || fields.length === 0) return lines;
  const doc = parseDocument(yaml);
  for (const field of fields) {
    const range = rangeOf(doc.contents, field);
    if (!range) continue;
    // A block value's range ends after its newline: the line it ends on is the one before.
    const end = Math.max(range[0], yaml[range[1] - 1] === '\n' ? range[1] - 2 : range[1] - 1);
    for (let l = lineAt(yaml, range[0]); l <= lineAt(yaml, end); l++) lines.add(l);
  }
  return lines;
}

/** Indexes of the lines of a unified diff that show lines of the new text (context or added). */
export function diffLinesShowing(diff: string, newLines: ReadonlySet<number>): number[] {
  const out: number[] = [];
  if (newLines.size === 0) return out;
  let next = 0;
  diff.split('\n').forEach((line, i) => {
    const hunk = /^@@ -\d+,\d+ \+(\d+),\d+ @@/.exec(line);
    if (hunk) next = Number(hunk[1]);
    else if (next > 0 && (line.startsWith(' ') || line.startsWith('+'))) {
      if (newLines.has(next)) out.push(i);
      next++;
    }
  });
  return out;
}
