import type { BackendPool } from '../backend/pool.js';
import type { BackendServer } from '../backend/server.js';
import type { SlotAuthority, SlotMode, SlotVerdict } from '../backend/slot-authority.js';
import { CAPACITY_ALL, CAPACITY_LEARNED, SLOT_GIVE, SLOT_TAKE, SLOT_UNWAIT } from './scripts.js';
import { script } from './store-connection.js';
import { countKeyTtlMs, type StoreContext } from './store-context.js';

const TAKE = script(SLOT_TAKE);
const GIVE = script(SLOT_GIVE);
const UNWAIT = script(SLOT_UNWAIT);
const LEARNED = script(CAPACITY_LEARNED);
const LEARNED_ALL = script(CAPACITY_ALL);

/**
 * How often a replica whose waiters found every slot taken asks again without a
 * "freed" message: frees it cannot hear of (a dead replica's holdings expiring) are
 * seen this late at most. Also how recently a waiting replica must have asked to keep
 * its place in the cluster queue (three retries' worth).
 */
export const FULL_RETRY_MS = 500;
const SEEN_WINDOW_MS = FULL_RETRY_MS * 3;

/**
 * Handshake slots counted cluster-wide (src/backend/slot-authority.ts): each slot a pool
 * grants is also taken in the store, atomically against `maxStartups` summed over all
 * live replicas. A replica learns of slots freed elsewhere from the store's "freed"
 * messages, and asks again every FULL_RETRY_MS while it waits for a full server.
 */
export class SharedSlots implements SlotAuthority {
  private readonly store: StoreContext;
  private readonly pools = new Set<BackendPool>();
  /** Servers (host:port) where this replica holds a place in the store's queue. */
  private readonly waitingOn = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(store: StoreContext) {
    this.store = store;
  }

  get mode(): SlotMode {
    return this.store.up ? 'shared' : this.store.settings.onStoreDown;
  }

  get localShare(): number {
    return this.store.fallbackShare;
  }

  get epoch(): number {
    return this.store.epoch;
  }

  attach(pool: BackendPool): void {
    this.pools.add(pool);
    pool.attachSlotAuthority(this);
  }

  take(server: BackendServer, waitMs: number, done: (verdict: SlotVerdict) => void): void {
    if (!this.store.up) {
      this.fallback('down');
      done('unavailable');
      return;
    }
    const { keys, replica, settings } = this.store;
    const address = server.address;
    const args = [keys.prefix, replica, server.maxStartups, Math.max(0, Math.round(waitMs)), countKeyTtlMs(settings), SEEN_WINDOW_MS, keys.channel, address];
    // A grant that arrives after the deadline was already decided locally: give it back.
    const late = (value: number[]): void => {
      if (value[0] === 1) this.giveAddress(address);
    };
    void this.store.run<number[]>('slot-take', TAKE, [keys.slots(address), keys.wait(address), keys.seen(address)], args, late).then((result) => {
      if (!result.ok) {
        this.fallback(result.reason);
        done('unavailable');
        return;
      }
      const [granted = 0, held = 0, expired = 0] = result.value;
      this.seen(address, held, expired);
      if (granted === 1) {
        this.waitingOn.delete(address);
        done('granted');
        return;
      }
      this.waitingOn.add(address);
      this.scheduleRetry();
      done('full');
    });
  }

  give(server: BackendServer): void {
    this.giveAddress(server.address);
  }

  noWaiters(servers: readonly BackendServer[]): void {
    if (this.waitingOn.size === 0 || !this.store.up) return;
    for (const server of servers) {
      const address = server.address;
      if (!this.waitingOn.has(address) || this.stillWaitedFor(address)) continue;
      this.waitingOn.delete(address);
      const { keys, replica } = this.store;
      void this.store.run('slot-unwait', UNWAIT, [keys.wait(address), keys.seen(address)], [replica]);
    }
  }

  /** `maxStartups: auto` learnt a limit here: recorded, and told to the other replicas. */
  learned(server: BackendServer, limit: number): void {
    if (!this.store.up) return;
    const { keys, replica } = this.store;
    void this.store.run('capacity-learned', LEARNED, [keys.learned], [server.address, limit, keys.channel, replica]);
  }

  /** Another replica learnt a limit ("c address limit replica"). */
  learnedElsewhere(fields: readonly string[]): void {
    const [address, limitText, replica] = fields;
    const limit = Number(limitText);
    if (address === undefined || replica === this.store.replica || !Number.isInteger(limit) || limit < 1) return;
    for (const pool of this.pools) pool.adoptCapacity(address, limit);
  }

  /** A "freed" message from the store: waiters for that server may go. */
  freed(address: string): void {
    for (const pool of this.pools) pool.slotsFreed(address);
  }

  /** The store went up or down. Up: what other replicas learnt of `auto` servers is adopted. */
  modeChanged(): void {
    this.waitingOn.clear();
    for (const pool of this.pools) pool.slotModeChanged();
    if (this.store.up && [...this.pools].some((pool) => pool.servers.some((server) => server.capacity !== undefined))) this.adoptLearned();
  }

  private adoptLearned(): void {
    void this.store.run<string[]>('capacity-all', LEARNED_ALL, [this.store.keys.learned], []).then((result) => {
      if (!result.ok) return;
      for (let index = 0; index + 1 < result.value.length; index += 2) {
        const limit = Number(result.value[index + 1]);
        const address = result.value[index];
        if (address !== undefined && Number.isInteger(limit) && limit > 0) for (const pool of this.pools) pool.adoptCapacity(address, limit);
      }
    });
  }

  /** Slots this replica holds per sshd (host:port), over all its pools: what it asserts to the store. */
  holdings(): Map<string, number> {
    const held = new Map<string, number>();
    for (const pool of this.pools) {
      for (const server of pool.servers) held.set(server.address, (held.get(server.address) ?? 0) + server.handshakesActive);
    }
    return held;
  }

  /** What the store says is held on `address` cluster-wide (after a take, give or renewal). */
  seen(address: string, held: number, expired = 0): void {
    for (const pool of this.pools) for (const server of pool.servers) if (server.address === address) server.setClusterSlotsInUse(held);
    if (expired > 0) this.store.events.emit('store-leases-expired', { count: expired });
  }

  close(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    for (const pool of this.pools) pool.attachSlotAuthority(undefined);
    this.pools.clear();
  }

  private giveAddress(address: string): void {
    if (!this.store.up) return;
    const { keys, replica } = this.store;
    void this.store.run<number[]>('slot-give', GIVE, [keys.slots(address), keys.wait(address)], [keys.prefix, replica, keys.channel, address]).then((result) => {
      if (result.ok) this.seen(address, result.value[0] ?? 0, result.value[1] ?? 0);
    });
  }

  private stillWaitedFor(address: string): boolean {
    for (const pool of this.pools) if (pool.queueLength > 0 && pool.servers.some((server) => server.address === address)) return true;
    return false;
  }

  private scheduleRetry(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      for (const pool of this.pools) pool.slotsFreed();
    }, FULL_RETRY_MS);
  }

  private fallback(reason: 'down' | 'timeout' | 'error'): void {
    this.store.events.emit('store-fallback', { what: 'slot', reason });
  }
}
