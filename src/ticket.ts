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
