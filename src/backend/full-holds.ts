import type { AttemptFailureCode } from '../errors.js';
import type { BackendServer } from './server.js';

/** Closes or resets in a row, without one handshake through, that still count as full. */
const SILENT_REFUSALS_AS_FULL = 16;

export interface FullHoldSettings {
  /** The first hold (retry.backoff); each refusal in a row doubles it... */
  readonly backoff: number;
  /** ...up to this (retry.maxBackoff). */
  readonly maxBackoff: number;
}

/**
 * A server that throttles is full, not down: sshd's "Exceeded MaxStartups" / "Not allowed at
 * this time", or a close or reset at accept while the proxy holds other handshakes there
 * (Dropbear past its 5 unauthenticated connections per source, sshd's random early drop).
 * Such a refusal never counts toward passive health (a bare close or reset,
 * only up to 16 in a row without a handshake through: then it is a broken server); the server takes no
 * new handshake for a moment instead (retry.backoff, doubling per refusal in a row up to
 * retry.maxBackoff), and queued sessions go elsewhere or wait. The own-address penalty watch
 * (own-penalty.ts) still sees every refusal: it alone treats a long run of them specially.
 */
export class FullHolds {
  private readonly timers = new Map<BackendServer, NodeJS.Timeout>();
  private readonly streaks = new Map<BackendServer, number>();
  private readonly onReleased: () => void;

  constructor(onReleased: () => void) {
    this.onReleased = onReleased;
  }

  /**
   * Whether `failure` on `server` means full (then the server is held). A close or reset counts
   * as full only while the proxy holds other handshakes there: alone, it is a broken server.
   */
  refused(server: BackendServer, failure: AttemptFailureCode, settings: FullHoldSettings): boolean {
    const previous = this.streaks.get(server) ?? 0;
    // A bare close or reset is full only while others are in flight, and only for a while: a
    // server that never lets a handshake through is broken, and health must be told.
    const closedAtAccept = (failure === 'BACKEND_CLOSED' || failure === 'BACKEND_RESET') && server.handshakesActive > 0 && previous < SILENT_REFUSALS_AS_FULL;
    if (failure !== 'THROTTLED' && !closedAtAccept) return false;
    const streak = previous + 1;
    this.streaks.set(server, streak);
    const holdMs = Math.min(settings.backoff * 2 ** Math.min(streak - 1, 16), settings.maxBackoff);
    clearTimeout(this.timers.get(server));
    server.setHeldFull(true);
    const timer = setTimeout(() => {
      this.timers.delete(server);
      server.setHeldFull(false);
      this.onReleased();
    }, holdMs);
    timer.unref();
    this.timers.set(server, timer);
    return true;
  }

  /** A handshake got through: the next refusal starts from the first hold again. */
  succeeded(server: BackendServer): void {
    this.streaks.delete(server);
  }

  /** The server left the pool. */
  forget(server: BackendServer): void {
    clearTimeout(this.timers.get(server));
    this.timers.delete(server);
    this.streaks.delete(server);
  }

  clear(): void {
    for (const [server, timer] of this.timers) {
      clearTimeout(timer);
      server.setHeldFull(false);
    }
    this.timers.clear();
    this.streaks.clear();
  }
}
