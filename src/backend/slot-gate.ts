import type { ProxyEvents } from '../events/bus.js';
import { CountedTicket, type Ticket } from '../ticket.js';
import type { BackendServer } from './server.js';
import { localSlotCap, type SlotAuthority, type SlotMode, type SlotVerdict } from './slot-authority.js';

/** What to do with a slot held locally once the store has answered. */
export type SlotDecision = 'use' | 'wait' | 'refuse';

/**
 * A pool's handshake slots, local or shared: alone, a slot is the server's count; with a
 * store (src/store/shared-slots.ts) it is also taken in the store, and while the store is
 * down each server is capped at this replica's share. The pool asks the gate for a slot
 * and, when the store must agree first, how to settle its answer.
 */
export class SlotGate {
  private authority: SlotAuthority | undefined;
  private readonly events: ProxyEvents;
  /** Runs when a handshake slot is free again; one function for every slot, not a closure per session. */
  private readonly slotFreed: () => void;

  constructor(events: ProxyEvents, slotFreed: () => void) {
    this.events = events;
    this.slotFreed = slotFreed;
  }

  /** `shared` (the store decides), `local` or `refuse` (it is down), or undefined without a store. */
  get mode(): SlotMode | undefined {
    return this.authority?.mode;
  }

  /** Whether a new slot needs the store's yes before it is used. */
  get confirms(): boolean {
    return this.authority?.mode === 'shared';
  }

  get store(): SlotAuthority | undefined {
    return this.authority;
  }

  attach(authority: SlotAuthority | undefined): void {
    this.authority = authority;
  }

  /** Caps follow the mode: a replica alone keeps to its share of each server's limit. */
  applyCaps(servers: readonly BackendServer[]): void {
    const authority = this.authority;
    const capped = authority !== undefined && authority.mode !== 'shared';
    for (const server of servers) {
      server.setClusterFull(false);
      server.setLocalCap(capped ? localSlotCap(server, authority.localShare) : undefined);
      if (!authority) server.setClusterSlotsInUse(undefined);
    }
  }

  /** A local slot, which with a store also stands for the store's count. */
  take(server: BackendServer): Ticket {
    const local = server.takeSlot(this.slotFreed);
    const authority = this.authority;
    if (!authority) return local;
    // Decided here alone (within the local share): counted as a fallback.
    if (authority.mode !== 'shared') this.events.emit('store-fallback', { what: 'slot', reason: 'down' });
    return new CountedTicket(local, () => authority.give(server), authority);
  }

  /**
   * A slot for a health check or a prefetched connection, if one is free: with the store up,
   * once the store has agreed; otherwise at once.
   */
  takeForCheck(server: BackendServer, done: (slot: Ticket | undefined) => void): void {
    if (!server.hasFreeSlot) {
      done(undefined);
      return;
    }
    const slot = this.take(server);
    const authority = this.authority;
    if (authority?.mode !== 'shared' || !(slot instanceof CountedTicket)) {
      done(slot);
      return;
    }
    authority.take(server, 0, (verdict) => done(this.settle(server, slot, verdict) === 'use' ? slot : undefined));
  }

  /**
   * What to do with a slot held locally once the store has answered: `use` it (granted,
   * or no answer and within the local share), or give it back (`wait` for a freed
   * slot, or `refuse` under onStoreDown: refuse).
   */
  settle(server: BackendServer, slot: CountedTicket, verdict: SlotVerdict): SlotDecision {
    if (verdict === 'granted') {
      slot.counted = true;
      return 'use';
    }
    if (verdict === 'unavailable') {
      if (this.authority?.mode === 'refuse') {
        slot.release();
        return 'refuse';
      }
      // No answer in time: decide as if the store were down, for this slot only.
      if (server.handshakesActive <= localSlotCap(server, this.authority?.localShare ?? 1)) return 'use';
    } else {
      server.setClusterFull(true);
    }
    slot.release();
    return 'wait';
  }

  /** A slot was freed cluster-wide on `address` (undefined: anywhere); true when a server has room again. */
  freed(servers: readonly BackendServer[], address?: string): boolean {
    let any = false;
    for (const server of servers) {
      if (!server.clusterFull || (address !== undefined && server.address !== address)) continue;
      server.setClusterFull(false);
      any = true;
    }
    return any;
  }
}
