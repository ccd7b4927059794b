/** The workloads of issue 6, each one measurement against one frontend port. */
import net from 'node:net';
import { runSsh } from '../../test/fixtures/clients/clients.js';
import type { SshdHandle } from '../../test/fixtures/sshd/sshd.js';
import { runJson, spawnLines, treePids, treeRssBytes } from './proc.js';

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
  /** Sessions added per memory step (bench/run.ts: six steps for one process, 9,000 under its descriptor limit; twelve for workers). */
  memorySessions: 1_500,
  scaleSessions: 0, // filled from the fd limit
  sshBannerTotal: 200,
  sshRuns: 10,
};

export const QUICK: Counts = {
  bulkBytes: 512 * 1024 ** 2,
  rateConcurrency: 100,
  rateTotal: 4_000,
  latencyTotal: 1_000,
  memorySessions: 1_000,
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
 * both ways, and reports how many did (the `scale` workload: a count, not a memory figure).
 */
export async function hold(client: string, port: number, sessions: number): Promise<Figures> {
  const holder = spawnLines(client, ['hold', String(port), String(sessions), '300']);
  try {
    const held = JSON.parse(await holder.nextLine(120_000)) as { held: number; failed: number };
    holder.child.stdin?.write('check\n');
    const passing = JSON.parse(await holder.nextLine(60_000)) as { passing: number };
    return { held: held.held, passing: passing.passing };
  } finally {
    await holder.stop(30_000);
  }
}

const SETTLE_MS = 1000;
const SAMPLES = 5;
const SAMPLE_GAP_MS = 200;

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** How long a full collection is given before the settling pause starts. */
const COLLECT_MS = 300;

/**
 * RSS of the process tree once it has settled: the median of several samples. `collect`:
 * first a full GC in every process of the tree (SIGUSR2, bench/reference/collect-on-signal.mjs).
 */
async function settledRss(pid: number, collect: boolean): Promise<number> {
  if (collect) {
    for (const each of treePids(pid)) process.kill(each, 'SIGUSR2');
    await pause(COLLECT_MS);
  }
  await pause(SETTLE_MS);
  const samples: number[] = [];
  for (let sample = 0; sample < SAMPLES; sample += 1) {
    samples.push(treeRssBytes(pid));
    await pause(SAMPLE_GAP_MS);
  }
  return median(samples);
}

export interface HoldOptions {
  /** A Node target: a full GC in each of its processes before every sample. */
  readonly collect: boolean;
  /** The target's V8 heap in use, where it can tell (the proxy's admin endpoint). */
  readonly heapBytes?: () => Promise<number>;
}

/**
 * Memory per idle spliced session, measured in steps: hold `perStep` more sessions, let the
 * process settle (a full GC first, for Node targets), take the median of several RSS
 * samples of the whole process tree; repeat. The first step carries the process's
 * one-time growth (heap, allocator arenas, pools): "cold". The later steps are the
 * marginal cost of one more session: "warm", reported as their mean (all warm growth over
 * all warm sessions, so one step's allocator noise is shared out rather than picked or
 * dropped by a median) and spread (the steps' min and max). `heapBytes` gives the heap
 * part the same way. Nothing is compared across processes' baselines, which made the old
 * single before/after figure swing (and go negative).
 */
export async function holdSteps(client: string, port: number, perStep: number, steps: number, pid: number, options: HoldOptions): Promise<Figures> {
  const holders: ReturnType<typeof spawnLines>[] = [];
  const { collect, heapBytes } = options;
  try {
    const rss = [await settledRss(pid, collect)];
    const heap = heapBytes ? [await heapBytes()] : [];
    let held = 0;
    let passing = 0;
    for (let step = 0; step < steps; step += 1) {
      const holder = spawnLines(client, ['hold', String(port), String(perStep), '600']);
      holders.push(holder);
      const result = JSON.parse(await holder.nextLine(120_000)) as { held: number };
      holder.child.stdin?.write('check\n');
      passing += (JSON.parse(await holder.nextLine(60_000)) as { passing: number }).passing;
      held += result.held;
      rss.push(await settledRss(pid, collect));
      if (heapBytes) heap.push(await heapBytes());
    }
    const perSession = (series: readonly number[]): number[] => series.slice(1).map((value, index) => (value - (series[index] as number)) / 1024 / perStep);
    const warmMean = (series: readonly number[]): number => ((series.at(-1) as number) - (series[1] as number)) / 1024 / (perStep * (steps - 1));
    const warm = perSession(rss).slice(1);
    const figures: Figures = {
      held,
      passing,
      coldKbPerSession: perSession(rss)[0] ?? 0,
      kbPerSession: warmMean(rss),
      kbPerSessionMin: Math.min(...warm),
      kbPerSessionMax: Math.max(...warm),
    };
    if (heap.length > 0) figures.heapKbPerSession = warmMean(heap);
    return figures;
  } finally {
    for (const holder of holders) await holder.stop(30_000);
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
  const spoken = await bannerAfterIdentification(port, counts.sshBannerTotal);
  return {
    bannerP50Us: banner.p50Us ?? 0,
    identifiedBannerP50Us: spoken.p50Us,
    identifiedBannerP99Us: spoken.p99Us,
    sshTrueMs: times[Math.floor(times.length / 2)] ?? 0,
  };
}

/**
 * Time to the banner for a client that sends its identification first, as OpenSSH's ssh
 * does, one connection at a time: with verify: kexinit the proxy shows the banner only
 * once sshd has answered that line with its KEXINIT (the C client sends nothing, so its
 * banner row does not see verification).
 */
async function bannerAfterIdentification(port: number, count: number): Promise<{ p50Us: number; p99Us: number }> {
  const samples: number[] = [];
  for (let index = 0; index < count; index += 1) {
    samples.push(
      await new Promise<number>((resolve, reject) => {
        const startedAt = performance.now();
        const socket = net.connect({ host: '127.0.0.1', port });
        const timer = setTimeout(() => socket.destroy(new Error('no banner within 10 s')), 10_000);
        socket.on('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        socket.once('connect', () => socket.write('SSH-2.0-bench_identified\r\n'));
        socket.on('data', (chunk) => {
          if (!chunk.includes(0x0a)) return;
          clearTimeout(timer);
          socket.destroy();
          resolve((performance.now() - startedAt) * 1000);
        });
      }),
    );
  }
  samples.sort((a, b) => a - b);
  return { p50Us: samples[Math.floor(samples.length / 2)] ?? 0, p99Us: samples[Math.floor(samples.length * 0.99)] ?? 0 };
}
