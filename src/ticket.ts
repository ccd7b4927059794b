/**
 * Something taken that must be given back exactly once: a handshake slot, a place in
 * the connection budget, a per-source count. Whoever holds it calls `release()` on
 * every exit path; a second call does nothing, so no counter can drift.
 */
export interface Ticket {
  release(): void;
  readonly held: boolean;
}

/** A ticket whose first `release()` runs `onRelease`. */
export function ticket(onRelease: () => void): Ticket {
  let held = true;
  return {
    release(): void {
      if (!held) return;
      held = false;
      onRelease();
    },
    get held(): boolean {
      return held;
    },
  };
}

/** A ticket that holds nothing (a grant that took nothing). */
export const NO_TICKET: Ticket = { release: () => {}, held: false };
