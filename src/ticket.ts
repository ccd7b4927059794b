/**
 * Something taken that must be given back exactly once: a handshake slot, a place in
 * the connection budget, a per-source count. Whoever holds it calls `release()` on
 * every exit path; a second call does nothing, so no counter can drift.
 */
export interface Ticket {
  release(): void;
  readonly held: boolean;
}

/** A class, not an object literal with an accessor: one is made per ticket on the connection path. */
class OnceTicket implements Ticket {
  private onRelease: (() => void) | undefined;

  constructor(onRelease: () => void) {
    this.onRelease = onRelease;
  }

  get held(): boolean {
    return this.onRelease !== undefined;
  }

  release(): void {
    const onRelease = this.onRelease;
    if (onRelease === undefined) return;
    this.onRelease = undefined;
    onRelease();
  }
}

/** A ticket whose first `release()` runs `onRelease`. */
export function ticket(onRelease: () => void): Ticket {
  return new OnceTicket(onRelease);
}

/** Something released with a ticket (a per-source count), once, by the ticket. */
export interface Releasable {
  release(): void;
}

/** A ticket and what goes with it (a connection's place in the budget and its per-source count). */
class PairTicket implements Ticket {
  private readonly first: Ticket;
  private second: Releasable | undefined;

  constructor(first: Ticket, second: Releasable) {
    this.first = first;
    this.second = second;
  }

  get held(): boolean {
    return this.first.held;
  }

  release(): void {
    this.first.release();
    const second = this.second;
    this.second = undefined;
    second?.release();
  }
}

/** A ticket that releases `first`, then `second`, once; no closure per holder. */
export function bothTickets(first: Ticket, second: Releasable): Ticket {
  return new PairTicket(first, second);
}

/** Counts the times this replica gave a shared store its holdings anew (src/store/cluster-store.ts). */
export interface StoreEpoch {
  readonly epoch: number;
}

/**
 * A ticket that may also be counted by a shared store: released once, it releases the
 * local count and gives the store its count back if the store counted it, i.e. the
 * store granted it (`counted`), or it was held when this replica last asserted its
 * holdings to the store (the epoch has moved on since it was taken).
 */
export class CountedTicket implements Ticket {
  counted = false;
  private readonly local: Ticket;
  private readonly giveBack: () => void;
  private readonly store: StoreEpoch;
  private readonly takenIn: number;

  constructor(local: Ticket, giveBack: () => void, store: StoreEpoch) {
    this.local = local;
    this.giveBack = giveBack;
    this.store = store;
    this.takenIn = store.epoch;
  }

  get held(): boolean {
    return this.local.held;
  }

  release(): void {
    if (!this.local.held) return;
    this.local.release();
    if (this.counted || this.store.epoch > this.takenIn) this.giveBack();
  }
}
