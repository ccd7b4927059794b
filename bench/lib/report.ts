/** Medians over runs, ratios to HAProxy, and the printed table. */
import type { TargetName } from './targets.js';
import type { Figures } from './workloads.js';

/** workload → target → one Figures per run. */
export type Samples = Map<string, Map<TargetName, Figures[]>>;

export interface Row {
  readonly workload: string;
  readonly metric: string;
  readonly unit: string;
  /** Which way is better, for reading the ratio. */
  readonly better: 'higher' | 'lower';
  readonly direct: number | undefined;
  readonly proxy: number | undefined;
  readonly haproxy: number | undefined;
  /** The bare pipe() proxy, when measured (`--pipe`). */
  readonly pipe: number | undefined;
  /** The same proxy and pipe() proxy on another Node (`--alt-node`). */
  readonly proxyAlt: number | undefined;
  readonly pipeAlt: number | undefined;
  /** proxy / haproxy (for added latency: proxy's added / haproxy's added). */
  readonly ratio: number | undefined;
  readonly runs: number;
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export function record(samples: Samples, workload: string, target: TargetName, figures: Figures): void {
  let byTarget = samples.get(workload);
  if (!byTarget) samples.set(workload, (byTarget = new Map()));
  let runs = byTarget.get(target);
  if (!runs) byTarget.set(target, (runs = []));
  runs.push(figures);
}

interface MetricSpec {
  readonly workload: string;
  readonly metric: string;
  readonly label: string;
  readonly unit: string;
  readonly better: 'higher' | 'lower';
  /** Subtract direct's median (added latency). */
  readonly minusDirect?: boolean;
}

const METRICS: readonly MetricSpec[] = [
  { workload: 'bulk-up', metric: 'mibPerSecond', label: 'bulk client→server', unit: 'MiB/s', better: 'higher' },
  { workload: 'bulk-down', metric: 'mibPerSecond', label: 'bulk server→client', unit: 'MiB/s', better: 'higher' },
  { workload: 'rate', metric: 'perSecond', label: 'connection rate', unit: 'conn/s', better: 'higher' },
  { workload: 'rate', metric: 'p50Us', label: 'rate time-to-banner p50', unit: 'µs', better: 'lower' },
  { workload: 'rate', metric: 'p99Us', label: 'rate time-to-banner p99', unit: 'µs', better: 'lower' },
  { workload: 'rate', metric: 'cpuUsPerConn', label: 'CPU per connection under the rate load', unit: 'µs', better: 'lower' },
  { workload: 'latency', metric: 'p50Us', label: 'added latency p50', unit: 'µs', better: 'lower', minusDirect: true },
  { workload: 'latency', metric: 'p99Us', label: 'added latency p99', unit: 'µs', better: 'lower', minusDirect: true },
  { workload: 'latency', metric: 'cpuUsPerConn', label: 'CPU per connection, one at a time', unit: 'µs', better: 'lower' },
  { workload: 'memory', metric: 'coldKbPerSession', label: 'RSS per idle session (cold)', unit: 'KB', better: 'lower' },
  { workload: 'memory', metric: 'kbPerSession', label: 'RSS per idle session (warm, mean of steps)', unit: 'KB', better: 'lower' },
  { workload: 'memory', metric: 'kbPerSessionMin', label: 'RSS per idle session (warm, lowest step)', unit: 'KB', better: 'lower' },
  { workload: 'memory', metric: 'kbPerSessionMax', label: 'RSS per idle session (warm, highest step)', unit: 'KB', better: 'lower' },
  { workload: 'memory', metric: 'heapKbPerSession', label: 'of which V8 heap (warm)', unit: 'KB', better: 'lower' },
  { workload: 'scale', metric: 'passing', label: 'sessions held, passing bytes', unit: 'sessions', better: 'higher' },
  { workload: 'sshd', metric: 'bannerP50Us', label: 'sshd time-to-banner p50', unit: 'µs', better: 'lower' },
  { workload: 'sshd', metric: 'identifiedBannerP50Us', label: 'sshd time-to-banner p50, client speaks first', unit: 'µs', better: 'lower' },
  { workload: 'sshd', metric: 'identifiedBannerP99Us', label: 'sshd time-to-banner p99, client speaks first', unit: 'µs', better: 'lower' },
  { workload: 'sshd', metric: 'sshTrueMs', label: 'sshd `ssh … true`', unit: 'ms', better: 'lower' },
];

export function summarise(samples: Samples): Row[] {
  const rows: Row[] = [];
  for (const spec of METRICS) {
    const byTarget = samples.get(spec.workload);
    if (!byTarget) continue;
    const med = (target: TargetName): number | undefined =>
      median((byTarget.get(target) ?? []).map((figures) => figures[spec.metric]).filter((v): v is number => v !== undefined));
    let direct = med('direct');
    let proxy = med('proxy');
    let haproxy = med('haproxy');
    let pipe = med('pipe');
    let proxyAlt = med('proxy-alt');
    let pipeAlt = med('pipe-alt');
    if (spec.minusDirect && direct !== undefined) {
      const minus = (value: number | undefined): number | undefined => (value === undefined ? undefined : value - (direct as number));
      proxy = minus(proxy);
      haproxy = minus(haproxy);
      pipe = minus(pipe);
      proxyAlt = minus(proxyAlt);
      pipeAlt = minus(pipeAlt);
      direct = 0;
    }
    const ratio = proxy !== undefined && haproxy !== undefined && haproxy !== 0 ? proxy / haproxy : undefined;
    const runs = Math.max(...[...byTarget.values()].map((list) => list.length));
    rows.push({ workload: spec.workload, metric: spec.label, unit: spec.unit, better: spec.better, direct, proxy, haproxy, pipe, proxyAlt, pipeAlt, ratio, runs });
  }
  return rows;
}

function format(value: number | undefined): string {
  if (value === undefined) return '—';
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(value === Math.round(value) ? 0 : 2);
}

/** A Markdown table (pastes straight into docs/benchmarks.md). */
export function table(rows: readonly Row[], altNode?: string): string {
  const withPipe = rows.some((row) => row.pipe !== undefined);
  const withAlt = rows.some((row) => row.proxyAlt !== undefined);
  const withPipeAlt = rows.some((row) => row.pipeAlt !== undefined);
  const alt = altNode ?? 'alt Node';
  const lines = [
    `| workload | unit | direct | ssh-banner-proxy | HAProxy | proxy / HAProxy |${withPipe ? ' bare pipe() proxy |' : ''}${withAlt ? ` proxy on ${alt} | ÷ HAProxy |` : ''}${withPipeAlt ? ` pipe() on ${alt} |` : ''}`,
    `|---|---|---:|---:|---:|---:|${withPipe ? '---:|' : ''}${withAlt ? '---:|---:|' : ''}${withPipeAlt ? '---:|' : ''}`,
  ];
  const times = (value: number | undefined, of: number | undefined): string => (value === undefined || of === undefined || of === 0 ? '—' : `${(value / of).toFixed(2)}×`);
  for (const row of rows) {
    const ratio = row.ratio === undefined ? '—' : `${row.ratio.toFixed(2)}× (${row.better} is better)`;
    const pipe = withPipe ? ` ${format(row.pipe)} |` : '';
    const proxyAlt = withAlt ? ` ${format(row.proxyAlt)} | ${times(row.proxyAlt, row.haproxy)} |` : '';
    const pipeAlt = withPipeAlt ? ` ${format(row.pipeAlt)} |` : '';
    lines.push(`| ${row.metric} | ${row.unit} | ${format(row.direct)} | ${format(row.proxy)} | ${format(row.haproxy)} | ${ratio} |${pipe}${proxyAlt}${pipeAlt}`);
  }
  return lines.join('\n');
}
