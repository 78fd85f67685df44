/** Median and p99 of samples (ms), as `[median, p99]` strings with three significant digits. */
export function summarise(samples: readonly number[]): [string, string] {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v.toPrecision(3));
  return [fmt(at(0.5)), fmt(at(0.99))];
}

/** A Markdown table; cells that are `[a, b]` pairs fill two columns. */
export function table(header: string[], rows: Array<Array<string | [string, string]>>): string {
  const flat = rows.map((r) => r.flatMap((c) => (Array.isArray(c) ? c : [c])));
  return [header, header.map(() => '---'), ...flat].map((r) => `| ${r.join(' | ')} |`).join('\n');
}
