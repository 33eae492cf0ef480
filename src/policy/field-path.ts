/**
 * A field of an object, as a policy names it for an approver: `$`, then
 * `.name`, `['name']` or `[n]` steps. No wildcards or filters: it names one
 * field, which the approval's preview can find and highlight.
 */
export type FieldPath = readonly (string | number)[];

const STEP = /^(?:\.([A-Za-z_$][\w$-]*)|\[(\d{1,9})\]|\['((?:[^'\\]|\\.)*)'\])/;

/** The steps of a field path, or undefined when it is not one. */
export function parseFieldPath(path: string): FieldPath | undefined {
  if (!path.startsWith('$')) return undefined;
  const steps: (string | number)[] = [];
  let rest = path.slice(1);
  while (rest) {
    const m = STEP.exec(rest);
    if (!m) return undefined;
    if (m[1] !== undefined) steps.push(m[1]);
    else if (m[2] !== undefined) steps.push(Number(m[2]));
    else steps.push(m[3]!.replace(/\\(.)/g, '$1'));
    rest = rest.slice(m[0].length);
  }
  return steps;
}
