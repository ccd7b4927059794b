/** A worker that dies sooner than this after its start counts as a failed start. */
export const MIN_HEALTHY_UPTIME_MS = 5000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** Failed starts in a row, with no worker alive, after which the primary gives up. */
const GIVE_UP_AFTER = 6;

export type RestartDecision = { readonly action: 'restart'; readonly delayMs: number } | { readonly action: 'give-up'; readonly failedStarts: number };

/**
 * When to replace a dead worker. A worker that ran a while is replaced at once. One
 * that died right after starting (a crash loop: a bad bind, a broken config) is
 * replaced after a growing backoff, so it cannot spin. A sibling's crash never stops a
 * healthy worker: the primary gives up only when starts keep failing and no worker is
 * left alive at all.
 */
export class RestartPolicy {
  private failedStarts = 0;

  decide(uptimeMs: number, workersAlive: number): RestartDecision {
    if (uptimeMs >= MIN_HEALTHY_UPTIME_MS) {
      this.failedStarts = 0;
      return { action: 'restart', delayMs: 0 };
    }
    this.failedStarts += 1;
    if (this.failedStarts >= GIVE_UP_AFTER && workersAlive === 0) return { action: 'give-up', failedStarts: this.failedStarts };
    return { action: 'restart', delayMs: Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (this.failedStarts - 1)) };
  }
}
