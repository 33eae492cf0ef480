/**
 * A unified line diff, for showing an approver what a write would change.
 * Longest common subsequence over lines; objects are small (a cap keeps the
 * table bounded), so the simple quadratic table is enough.
 */

const MAX_LINES = 1500;
const CONTEXT = 3;

type Op = { readonly kind: ' ' | '-' | '+'; readonly line: string };

function ops(a: readonly string[], b: readonly string[]): Op[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: common lines of a[i..] and b[j..], one flat row-major table.
  const lcs = new Uint16Array((n + 1) * (m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * (m + 1) + j] = a[i] === b[j] ? lcs[(i + 1) * (m + 1) + j + 1]! + 1 : Math.max(lcs[(i + 1) * (m + 1) + j]!, lcs[i * (m + 1) + j + 1]!);
    }
  }
  const out: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ kind: ' ', line: a[i++]! });
      j++;
    } else if (lcs[(i + 1) * (m + 1) + j]! >= lcs[i * (m + 1) + j + 1]!) out.push({ kind: '-', line: a[i++]! });
    else out.push({ kind: '+', line: b[j++]! });
  }
  while (i < n) out.push({ kind: '-', line: a[i++]! });
  while (j < m) out.push({ kind: '+', line: b[j++]! });
  return out;
}

/** `before` → `after` as unified-diff hunks; "" when they are the same. */
export function unifiedDiff(before: string, after: string, labels: { readonly before: string; readonly after: string }): string {
  const a = before === '' ? [] : before.replace(/\n$/, '').split('\n');
  const b = after === '' ? [] : after.replace(/\n$/, '').split('\n');
  if (a.length > MAX_LINES || b.length > MAX_LINES) return `--- ${labels.before}\n+++ ${labels.after}\n(too large to show: ${a.length} → ${b.length} lines)\n`;
  const all = ops(a, b);
  if (all.every((o) => o.kind === ' ')) return '';
  const lines = [`--- ${labels.before}`, `+++ ${labels.after}`];
  let k = 0;
  let aLine = 1;
  let bLine = 1;
  while (k < all.length) {
    // Skip to the next change, keeping CONTEXT lines before it.
    let next = k;
    while (next < all.length && all[next]!.kind === ' ') next++;
    if (next === all.length) break;
    const start = Math.max(k, next - CONTEXT);
    for (let s = k; s < start; s++) {
      aLine++;
      bLine++;
    }
    // Extend the hunk while changes are within 2 × CONTEXT of each other.
    let end = next;
    let quiet = 0;
    while (end < all.length && quiet <= 2 * CONTEXT) {
      quiet = all[end]!.kind === ' ' ? quiet + 1 : 0;
      end++;
    }
    end = Math.min(all.length, end - Math.max(0, quiet - CONTEXT));
    const hunk = all.slice(start, end);
    const aCount = hunk.filter((o) => o.kind !== '+').length;
    const bCount = hunk.filter((o) => o.kind !== '-').length;
    lines.push(`@@ -${aCount ? aLine : aLine - 1},${aCount} +${bCount ? bLine : bLine - 1},${bCount} @@`);
    for (const o of hunk) lines.push(o.kind + o.line);
    aLine += aCount;
    bLine += bCount;
    k = end;
  }
  return lines.join('\n') + '\n';
}
