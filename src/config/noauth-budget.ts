import { availableParallelism } from 'node:os';
import type { Config } from './schema.js';

/**
 * sshd ≥ 9.8 charges every connection that ends without authenticating (`noauth`, 1 s)
 * to its source, and refuses the source once more than 15 s have piled up: a source
 * must stay under one such connection per second, sustained. The proxy's own health
 * checks and abandoned prefetched connections are such connections, all from the
 * proxy's address, unless sshd exempts it (PerSourcePenaltyExemptList).
 */
export const NOAUTH_PER_SECOND_BUDGET = 1;

export interface NoauthLoad {
  readonly pool: string;
  /** Unauthenticated connections per second per backend server, at most: checks + prefetched connections retired unused. */
  readonly perSecond: number;
  readonly checksPerSecond: number;
  readonly prefetchPerSecond: number;
}

/** Pools whose own checks and prefetch refills alone reach the budget (one process; replicas multiply it). */
export function noauthOverBudget(config: Config): NoauthLoad[] {
  // Checks run once per process (the primary's, with workers); each worker keeps its own prefetched connections.
  const workers = config.workers === 'auto' ? availableParallelism() : config.workers;
  const over: NoauthLoad[] = [];
  for (const pool of config.pools) {
    const checksPerSecond = pool.healthCheck.enabled ? 1000 / pool.healthCheck.interval : 0;
    const perServer = pool.prefetch?.perServer ?? 0;
    const prefetchPerSecond = perServer > 0 && pool.prefetch ? (perServer * workers * 1000) / pool.prefetch.maxAge : 0;
    const perSecond = checksPerSecond + prefetchPerSecond;
    if (perSecond >= NOAUTH_PER_SECOND_BUDGET) over.push({ pool: pool.name, perSecond, checksPerSecond, prefetchPerSecond });
  }
  return over;
}
