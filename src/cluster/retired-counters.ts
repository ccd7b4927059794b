import { AggregatorRegistry } from 'prom-client';

type MetricJson = Awaited<ReturnType<AggregatorRegistry<'text/plain; version=0.0.4; charset=utf-8'>['getMetricsAsJSON']>>[number];

/**
 * Keeps cluster counters monotonic across worker restarts. The primary remembers each
 * worker's latest snapshot; when a worker dies, its sshproxy_* counters and histograms
 * (cumulative by nature) are kept and added to every later scrape, so
 * `sshproxy_sessions_total` never goes backwards when a worker is replaced. Gauges and
 * process metrics of a dead worker are dropped: they describe a process that is gone.
 * What a worker counted after its last snapshot is lost; snapshots are taken at every
 * scrape and every few seconds, which bounds that.
 */
export class RetiredCounters {
  private readonly latest = new Map<number, readonly MetricJson[]>();
  private retired: MetricJson[] = [];

  remember(worker: number, metrics: readonly object[]): void {
    this.latest.set(worker, metrics as readonly MetricJson[]);
  }

  /** A worker exited: keep what it had counted. */
  retire(worker: number): void {
    const last = this.latest.get(worker);
    this.latest.delete(worker);
    if (!last) return;
    for (const metric of last) {
      if (metric.name.startsWith('sshproxy_') && ['counter', 'histogram'].includes(String(metric.type))) this.retired.push(metric);
    }
  }

  /** The retired counters as one snapshot to aggregate with the live ones (merged as it goes, so it stays one worker's size). */
  async snapshot(): Promise<readonly MetricJson[]> {
    if (this.retired.length === 0) return [];
    const names = new Set(this.retired.map((metric) => metric.name));
    if (names.size < this.retired.length) {
      // Two dead workers' copies of a metric: add them up into one.
      const merged = AggregatorRegistry.aggregate(this.retired.map((metric) => [metric]));
      this.retired = await merged.getMetricsAsJSON();
    }
    return this.retired;
  }
}
