import type { ClusterConfig } from '../config/schema.js';
import type { ProxyEvents } from '../events/bus.js';
import type { StoreEpoch } from '../ticket.js';
import type { StoreKeys } from './keys.js';
import type { CallResult, Script } from './store-connection.js';

/** What the shared counts (slots, sources, penalties) need of the store they live in. */
export interface StoreContext extends StoreEpoch {
  readonly replica: string;
  readonly keys: StoreKeys;
  readonly settings: ClusterConfig;
  readonly events: ProxyEvents;
  /** Shared limits apply (connected, holdings restored, answering in time). */
  readonly up: boolean;
  /** The share of each limit kept to alone while the store is down (localShare, or 1 / live replicas). */
  readonly fallbackShare: number;
  run<T>(op: string, code: Script, keys: readonly string[], args: readonly (string | number)[], onLate?: (value: T) => void): Promise<CallResult<T>>;
}

/** The keys of a count hash live this long without a renewal (a few heartbeats). */
export function countKeyTtlMs(settings: ClusterConfig): number {
  return settings.leaseTtl * 3;
}
