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
