/**
 * `probe --count N --concurrency C`: the same probe repeated, to see intermittent
 * failures (MaxStartups throttling shows up as "7/20 throttled").
 */
import { formatHostPort } from '../net/address.js';
import { summarise, type LatencySummary } from '../stats/latency.js';
import { probe, type ProbeOptions, type ProbeResult } from './probe.js';
import { hintFor } from './hints.js';
import type { ProbeVerdict } from './verdicts.js';

export interface ProbeDistribution {
  readonly target: string;
  readonly count: number;
  readonly concurrency: number;
  /** Verdict → how many probes got it, most frequent first. */
  readonly verdicts: Readonly<Partial<Record<ProbeVerdict, number>>>;
  /** Latency of probes that identified (ok and slow-banner). */
  readonly bannerLatency: LatencySummary | null;
  /** Time to the verdict, all probes. */
  readonly latency: LatencySummary | null;
  /** One full result per distinct verdict (the first seen), for evidence and hints. */
  readonly examples: readonly ProbeResult[];
  readonly results: readonly ProbeResult[];
}

export async function probeMany(options: ProbeOptions, count: number, concurrency: number): Promise<ProbeDistribution> {
  const results: ProbeResult[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next += 1;
      // Host key and KEXINIT are the same every time: fetch them once at most.
      const first = next === 1;
      results.push(await probe({ ...options, kexinit: first && options.kexinit !== false, hostKey: first && options.hostKey === true }));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
  return distributionOf(concurrency === 1 ? asRepeatedRefusal(results) : results, options, count, concurrency);
}

/** How sshd refuses in its listener: the line, a reset that lost it, or a bare close. */
const REFUSALS: ReadonlySet<ProbeVerdict> = new Set(['throttled', 'reset-before-banner', 'closed-before-banner']);
/** Written by OpenSSH 9.7 and earlier, which has no PerSourcePenalties (9.8+ writes "Not allowed at this time"). */
const PRE_PENALTIES_NOTICE = /Exceeded MaxStartups/i;

/**
 * Refused every time although one connection at a time cannot exceed MaxStartups on its
 * own. With "Exceeded MaxStartups" (OpenSSH before 9.8, no penalties there) it is other
 * clients holding MaxStartups: still `throttled`, and said so. With "Not allowed at this
 * time" (9.8+ writes it for penalties and MaxStartups alike), a close or a reset, the
 * probe cannot tell: `refused-repeatedly`, naming both causes. Evidence stays in the message.
 */
function asRepeatedRefusal(results: readonly ProbeResult[]): readonly ProbeResult[] {
  if (results.length < 2 || !results.every((result) => REFUSALS.has(result.verdict))) return results;
  const tally = `${results.length} of ${results.length} refused, one connection at a time`;
  if (results.every((result) => result.notice !== null && PRE_PENALTIES_NOTICE.test(result.notice))) {
    return results.map((result) => ({ ...result, message: `${result.message} (${tally}: other clients hold MaxStartups; sshd before 9.8, which writes this line, has no PerSourcePenalties)` }));
  }
  return results.map((result) => ({
    ...result,
    verdict: 'refused-repeatedly',
    message: `${result.message} (${tally})`,
    hint: hintFor('refused-repeatedly', { host: '', port: 0, slowMs: 0, timeoutMs: 0 }),
  }));
}

function distributionOf(results: readonly ProbeResult[], options: ProbeOptions, count: number, concurrency: number): ProbeDistribution {
  const counts = new Map<ProbeVerdict, number>();
  const examples = new Map<ProbeVerdict, ProbeResult>();
  for (const result of results) {
    counts.set(result.verdict, (counts.get(result.verdict) ?? 0) + 1);
    if (!examples.has(result.verdict) || (examples.get(result.verdict)?.algorithms === null && result.algorithms !== null)) {
      examples.set(result.verdict, result);
    }
  }
  const ordered = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  return {
    target: results[0]?.target ?? formatHostPort(options),
    count,
    concurrency,
    verdicts: Object.fromEntries(ordered),
    bannerLatency: summarise(results.filter((result) => result.bannerMs !== null).map((result) => result.bannerMs as number)),
    latency: summarise(results.map((result) => result.latencyMs)),
    examples: ordered.map(([verdict]) => examples.get(verdict) as ProbeResult),
    results,
  };
}
