/**
 * Runs many load clients against one or more targets, interleaved in time, bounded by
 * a total per target and a duration. Closed loop (`clients` workers per target, each
 * starting its next attempt when the last one ends) or open loop (`rate` attempts per
 * second per target, regardless of how many are still running, capped by `maxInFlight`).
 */
import type { HostPort } from '../net/address.js';
import { runLoadClient, type LoadAttemptRecord, type LoadClientOptions } from './client.js';

export interface LoadTarget extends HostPort {
  readonly label: string;
}

export interface LoadTestOptions extends LoadClientOptions {
  readonly targets: readonly LoadTarget[];
  /** Closed loop: concurrent clients per target. */
  readonly clients?: number;
  /** Open loop: attempts started per second per target. */
  readonly rate?: number;
  /** Attempts per target at most. */
  readonly total: number;
  /** No attempt starts after this; running ones finish within their own timeouts. */
  readonly durationMs: number;
  /** Open loop: attempts running at once (all targets); launches beyond it are skipped and counted. */
  readonly maxInFlight?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: LoadProgress) => void;
}

export interface LoadProgress {
  readonly done: number;
  /** Planned attempts (total × targets); the duration may end the run earlier. */
  readonly planned: number;
  readonly failures: number;
  readonly inFlight: number;
  readonly elapsedMs: number;
  readonly durationMs: number;
}

export interface LoadTestRun {
  readonly records: readonly LoadAttemptRecord[];
  /** Open loop launches skipped because maxInFlight attempts were running. */
  readonly skipped: number;
  readonly elapsedMs: number;
  /** Why launching stopped. */
  readonly stoppedBy: 'total' | 'duration' | 'signal';
}

const OPEN_LOOP_TICK_MS = 10;
const PROGRESS_EVERY_MS = 200;

export async function runLoadTest(options: LoadTestOptions): Promise<LoadTestRun> {
  const targets = options.targets;
  const startedAt = performance.now();
  const elapsed = (): number => performance.now() - startedAt;
  const records: LoadAttemptRecord[] = [];
  const launched = targets.map(() => 0);
  const planned = options.total * targets.length;
  let inFlight = 0;
  let failures = 0;
  let skipped = 0;
  let stoppedBy: LoadTestRun['stoppedBy'] = 'total';

  const canLaunch = (targetIndex: number): boolean => {
    if (options.signal?.aborted) {
      stoppedBy = 'signal';
      return false;
    }
    if (elapsed() >= options.durationMs) {
      if (launched.some((count) => count < options.total)) stoppedBy = 'duration';
      return false;
    }
    return (launched[targetIndex] ?? 0) < options.total;
  };
  const launch = async (targetIndex: number): Promise<void> => {
    const target = targets[targetIndex] as LoadTarget;
    const index = launched[targetIndex] ?? 0;
    launched[targetIndex] = index + 1;
    inFlight += 1;
    const record = await runLoadClient(target, index, elapsed(), options);
    inFlight -= 1;
    records.push(record);
    if (!record.ok) failures += 1;
  };

  const report = (): void => options.onProgress?.({ done: records.length, planned, failures, inFlight, elapsedMs: elapsed(), durationMs: options.durationMs });
  const progressTimer = options.onProgress ? setInterval(report, PROGRESS_EVERY_MS) : undefined;
  try {
    if (options.rate !== undefined) {
      skipped = await openLoop(options.rate, targets.length, options.maxInFlight ?? 1024, canLaunch, launch, () => inFlight, elapsed, options.signal);
    } else {
      await closedLoop(options.clients ?? 1, targets.length, canLaunch, launch);
    }
  } finally {
    clearInterval(progressTimer);
  }
  report();
  return { records, skipped, elapsedMs: elapsed(), stoppedBy };
}

/** Each worker alternates targets, so targets are interleaved in time. */
async function closedLoop(clients: number, targetCount: number, canLaunch: (target: number) => boolean, launch: (target: number) => Promise<void>): Promise<void> {
  const worker = async (workerIndex: number): Promise<void> => {
    let turn = workerIndex;
    for (;;) {
      // The first target (in rotation from this worker's turn) that still wants attempts.
      let chosen: number | undefined;
      for (let offset = 0; offset < targetCount; offset += 1) {
        const candidate = (turn + offset) % targetCount;
        if (canLaunch(candidate)) {
          chosen = candidate;
          break;
        }
      }
      if (chosen === undefined) return;
      turn = chosen + 1;
      await launch(chosen);
    }
  };
  await Promise.all(Array.from({ length: clients * targetCount }, (_, index) => worker(index)));
}

async function openLoop(
  rate: number,
  targetCount: number,
  maxInFlight: number,
  canLaunch: (target: number) => boolean,
  launch: (target: number) => Promise<void>,
  inFlight: () => number,
  elapsed: () => number,
  signal: AbortSignal | undefined,
): Promise<number> {
  const running = new Set<Promise<void>>();
  let scheduled = 0;
  let skipped = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.floor((elapsed() / 1000) * rate * targetCount);
      while (scheduled < due) {
        const target = scheduled % targetCount;
        scheduled += 1;
        if (!canLaunch(target)) {
          if (![...Array(targetCount).keys()].some(canLaunch)) {
            stop();
            return;
          }
          continue;
        }
        if (inFlight() >= maxInFlight) {
          skipped += 1;
          continue;
        }
        const attempt = launch(target).finally(() => running.delete(attempt));
        running.add(attempt);
      }
      if (![...Array(targetCount).keys()].some(canLaunch)) stop();
    };
    const timer = setInterval(tick, OPEN_LOOP_TICK_MS);
    const stop = (): void => {
      clearInterval(timer);
      signal?.removeEventListener('abort', stop);
      resolve();
    };
    signal?.addEventListener('abort', stop);
    tick();
  });
  await Promise.all(running);
  return skipped;
}
