/**
 * Live progress on a terminal: one line redrawn in place, with a bar, rate, failures
 * and elapsed time. Silent when the stream is not a TTY.
 */
import type { LoadProgress } from './runner.js';

export interface ProgressLine {
  update(progress: LoadProgress): void;
  /** Erases the line. Idempotent. */
  clear(): void;
}

const BAR_WIDTH = 30;

export function progressLine(stream: NodeJS.WriteStream): ProgressLine | undefined {
  if (!stream.isTTY) return undefined;
  let drawn = false;
  return {
    update(progress) {
      stream.write(`\r${renderProgress(progress)}\x1b[K`);
      drawn = true;
    },
    clear() {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}

export function renderProgress(progress: LoadProgress): string {
  // The run ends at the planned count or the duration, whichever comes first.
  const byCount = progress.planned === 0 ? 1 : progress.done / progress.planned;
  const byTime = progress.durationMs === 0 ? 1 : progress.elapsedMs / progress.durationMs;
  const fraction = Math.min(1, Math.max(byCount, byTime));
  const filled = Math.round(fraction * BAR_WIDTH);
  const seconds = progress.elapsedMs / 1000;
  const rate = seconds > 0 ? progress.done / seconds : 0;
  return (
    `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${progress.done}/${progress.planned} ` +
    `${rate.toFixed(1)}/s  failed ${progress.failures}  in flight ${progress.inFlight}  ${seconds.toFixed(1)}s`
  );
}
