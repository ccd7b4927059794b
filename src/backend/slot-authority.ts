import type { StoreEpoch } from '../ticket.js';
import type { BackendServer } from './server.js';

/** What the shared store answered for one slot: taken, none free cluster-wide, or no answer (down, past the deadline). */
export type SlotVerdict = 'granted' | 'full' | 'unavailable';

/**
 * `shared`: every handshake slot is also taken from the store (cluster-wide limit);
 * `local`: the store is down, each replica keeps to `localShare` of each limit on its own;
 * `refuse`: the store is down and new sessions are refused (cluster.onStoreDown).
 */
export type SlotMode = 'shared' | 'local' | 'refuse';

/** Who decides handshake slots beyond this process: the shared store (src/store/shared-slots.ts). */
export interface SlotAuthority extends StoreEpoch {
  readonly mode: SlotMode;
  /** Share of each server's limit this replica may use on its own while the store is down. */
  readonly localShare: number;
  /** Asks for one slot on `server` for a request that has waited `waitMs` (the oldest waiter goes first cluster-wide). */
  take(server: BackendServer, waitMs: number, done: (verdict: SlotVerdict) => void): void;
  /** Gives back one slot the store counts. */
  give(server: BackendServer): void;
  /** This pool no longer waits for these servers (its queue emptied): stop holding a place in their cluster queues. */
  noWaiters(servers: readonly BackendServer[]): void;
  /** `maxStartups: auto` learnt a new limit for `server`: other replicas adopt it. */
  learned?(server: BackendServer, limit: number): void;
}

/** The slots this replica may use alone on `server` while the store is down (at least one). */
export function localSlotCap(server: BackendServer, localShare: number): number {
  return Math.max(1, Math.floor(server.maxStartups * localShare));
}
