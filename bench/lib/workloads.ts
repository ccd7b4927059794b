/** The workloads of issue 6, each one measurement against one frontend port. */
import { runSsh } from '../../test/fixtures/clients.js';
import type { SshdHandle } from '../../test/fixtures/sshd.js';
import { runJson, spawnLines, treeRssBytes } from './proc.js';

export interface Counts {
  readonly bulkBytes: number;
  readonly rateConcurrency: number;
  readonly rateTotal: number;
  readonly latencyTotal: number;
  readonly memorySessions: number;
  readonly scaleSessions: number;
  readonly sshBannerTotal: number;
  readonly sshRuns: number;
}

export const FULL: Counts = {
  bulkBytes: 4 * 1024 ** 3,
  rateConcurrency: 100,
  rateTotal: 20_000,
  latencyTotal: 5_000,
  memorySessions: 5_000,
  scaleSessions: 0, // filled from the fd limit
  sshBannerTotal: 200,
  sshRuns: 10,
};

export const QUICK: Counts = {
  bulkBytes: 512 * 1024 ** 2,
  rateConcurrency: 100,
  rateTotal: 4_000,
  latencyTotal: 1_000,
  memorySessions: 2_000,
  scaleSessions: 0,
  sshBannerTotal: 50,
  sshRuns: 4,
};

/** Metric name → value for one workload, one target, one run. */
export type Figures = Record<string, number>;

interface BulkOutput {
  readonly mibPerSecond: number;
  readonly bytes: number;
}
interface RateOutput {
  readonly ok: number;
  readonly failed: number;
  readonly perSecond: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

export async function bulk(client: string, port: number, direction: 'up' | 'down', bytes: number): Promise<Figures> {
  const out = await runJson<BulkOutput>(client, [`bulk-${direction}`, String(port), String(bytes), '120'], 130_000);
  if (out.bytes !== bytes) throw new Error(`bulk-${direction}: moved ${out.bytes} of ${bytes} bytes`);
  return { mibPerSecond: out.mibPerSecond };
}

export async function rate(client: string, port: number, concurrency: number, total: number): Promise<Figures> {
  const out = await runJson<RateOutput>(client, ['rate', String(port), String(concurrency), String(total), '120'], 130_000);
  return { perSecond: out.perSecond, p50Us: out.p50Us, p99Us: out.p99Us, failed: out.failed };
}

/**
 * Holds `sessions` spliced sessions through the echo backend, checks each passes a byte
 * both ways, and reports how many did and the RSS growth of `pid`'s process tree.
 */
export async function hold(client: string, port: number, sessions: number, pid: number | undefined): Promise<Figures> {
  const rssBefore = pid === undefined ? 0 : treeRssBytes(pid);
  const holder = spawnLines(client, ['hold', String(port), String(sessions), '300']);
  try {
    const held = JSON.parse(await holder.nextLine(120_000)) as { held: number; failed: number };
    holder.child.stdin?.write('check\n');
    const passing = JSON.parse(await holder.nextLine(60_000)) as { passing: number };
    // Let lazily-freed setup state settle before reading RSS.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const rssAfter = pid === undefined ? 0 : treeRssBytes(pid);
    const figures: Figures = { held: held.held, passing: passing.passing };
    if (pid !== undefined) figures.kbPerSession = (rssAfter - rssBefore) / 1024 / Math.max(1, held.held);
    return figures;
  } finally {
    await holder.stop(30_000);
  }
}

/** Real sshd: time to banner (C client, one at a time) and wall time of `ssh ... true`. */
export async function sshd(client: string, port: number, handle: SshdHandle, counts: Counts): Promise<Figures> {
  const banner = await rate(client, port, 1, counts.sshBannerTotal);
  const times: number[] = [];
  for (let run = 0; run < counts.sshRuns; run += 1) {
    const startedAt = performance.now();
    const result = await runSsh({ ...handle, port, command: 'true', timeoutMs: 20_000 });
    if (result.code !== 0) throw new Error(`ssh ... true through port ${port} exited ${result.code}`);
    times.push(performance.now() - startedAt);
  }
  times.sort((a, b) => a - b);
  return { bannerP50Us: banner.p50Us ?? 0, sshTrueMs: times[Math.floor(times.length / 2)] ?? 0 };
}
