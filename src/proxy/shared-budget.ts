import type { BackendPool } from '../backend/pool.js';
import type { ProxyEvents } from '../events/bus.js';
import type { PenaltyCharger } from './penalty-charger.js';
import type { SourcePenalties } from './penalties.js';
import type { SourceAdmission } from './source-admission.js';
import type { SourceLimits } from './source-limits.js';

/** What /api/status shows of a shared budget (the store of docs/cluster.md). */
export interface SharedBudgetStatus {
  readonly replica: string;
  /** The store's URL, password masked. */
  readonly store: string;
  readonly state: string;
  /** Date.now() of the last state change. */
  readonly since: number;
  readonly reason: string | undefined;
  readonly onStoreDown: 'local' | 'refuse';
  /** Replicas sharing the store at the last heartbeat (0: not seen yet). */
  readonly replicas: number;
  /** The share of each limit kept to alone while the store is down. */
  readonly fallbackShare: number;
}

/**
 * What the proxy server needs of a budget shared with other replicas: handshake slots (each
 * pool is attached), per-source admission and penalty charging. src/store/ implements it
 * (ClusterStore); runtime.ts chooses it, so the core never imports the store.
 */
export interface SharedBudget {
  readonly up: boolean;
  readonly sources: SourceAdmission | undefined;
  readonly penalties: PenaltyCharger | undefined;
  attach(pool: BackendPool): void;
  start(): void;
  close(): Promise<void>;
  status(): SharedBudgetStatus;
}

/** Builds the shared budget from the process's own tables (it falls back on them). */
export type SharedBudgetFactory = (parts: { readonly sourceLimits: SourceLimits; readonly penalties: SourcePenalties; readonly events: ProxyEvents }) => SharedBudget;
