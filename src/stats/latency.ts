/**
 * Latency statistics: nearest-rank percentiles and a log-scale text histogram.
 */

export interface LatencySummary {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank percentile of sorted values (`p` in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export function summarise(values: readonly number[]): LatencySummary | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((total, value) => total + value, 0);
  const r = (ms: number): number => Math.round(ms * 10) / 10;
  return {
    count: sorted.length,
    min: r(sorted[0] as number),
    mean: r(sum / sorted.length),
    p50: r(percentile(sorted, 50)),
    p90: r(percentile(sorted, 90)),
    p99: r(percentile(sorted, 99)),
    max: r(sorted[sorted.length - 1] as number),
  };
}

export interface HistogramBucket {
  /** Upper bound in ms (inclusive); Infinity for the last bucket. */
  readonly leMs: number;
  readonly count: number;
}

/** Bucket bounds 1-2-5 per decade from 1 ms to 60 s. */
export const HISTOGRAM_BOUNDS_MS: readonly number[] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 60000];

export function histogram(values: readonly number[], bounds: readonly number[] = HISTOGRAM_BOUNDS_MS): HistogramBucket[] {
  const counts = new Array<number>(bounds.length + 1).fill(0);
  for (const value of values) {
    let index = bounds.findIndex((bound) => value <= bound);
    if (index === -1) index = bounds.length;
    counts[index] = (counts[index] ?? 0) + 1;
  }
  const buckets = counts.map((count, index) => ({ leMs: bounds[index] ?? Number.POSITIVE_INFINITY, count }));
  // Trim empty buckets at both ends, keeping the shape in between.
  const first = buckets.findIndex((bucket) => bucket.count > 0);
  if (first === -1) return [];
  let last = buckets.length - 1;
  while (last > first && (buckets[last] as HistogramBucket).count === 0) last -= 1;
  return buckets.slice(first, last + 1);
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)}s`;
  if (ms >= 100) return `${ms.toFixed(0)}ms`;
  return `${ms.toFixed(1)}ms`;
}

/** Lines like `  <=   5.0ms |#########            |   42`. */
export function renderHistogram(buckets: readonly HistogramBucket[], width = 40): string[] {
  const max = Math.max(0, ...buckets.map((bucket) => bucket.count));
  return buckets.map((bucket) => {
    const label = Number.isFinite(bucket.leMs) ? `<= ${formatMs(bucket.leMs)}` : `>  ${formatMs(HISTOGRAM_BOUNDS_MS[HISTOGRAM_BOUNDS_MS.length - 1] ?? 0)}`;
    const bar = max === 0 ? '' : '#'.repeat(Math.round((bucket.count / max) * width));
    return `  ${label.padStart(10)} |${bar.padEnd(width)}| ${String(bucket.count).padStart(6)}`;
  });
}
