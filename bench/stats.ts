/** Percentiles of a sample, for printed benchmark tables. */
export function percentiles(samples: number[], ps: readonly number[] = [50, 90, 99]): Record<string, number> {
  const sorted = [...samples].sort((a, b) => a - b);
  return Object.fromEntries(ps.map((p) => [`p${p}`, sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!]));
}
