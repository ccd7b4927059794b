import type { Socket } from 'node:net';

interface Watched {
  readonly bytesReadAtStart: number;
  readonly deadline: number;
  readonly spoke: () => void;
  readonly silent: () => void;
}

/** How often watched clients are looked at; bounds how late a verdict comes. */
const SWEEP_MS = 250;

/**
 * Spliced clients that have not sent their identification yet (they waited for the
 * banner, or they are idle sockets holding a handshake slot). A client that sends
 * anything is told `spoke`; one that sends nothing within its limit is told `silent`,
 * as sshd's LoginGraceTime would, but long before it: a real client answers a banner
 * at once.
 *
 * One sweep timer for all of them, reading each socket's own byte counter: no timer
 * and no 'data' listener per session, so the connection path pays only a map entry.
 */
export class SilenceWatch {
  private readonly watched = new Map<Socket, Watched>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.now = now;
  }

  /** Starts watching until a verdict or `unwatch(socket)`. `limitMs` 0: never silent, only `spoke`. */
  watch(socket: Socket, limitMs: number, outcome: { readonly spoke: () => void; readonly silent: () => void }): void {
    this.watched.set(socket, { bytesReadAtStart: socket.bytesRead, deadline: limitMs > 0 ? this.now() + limitMs : Infinity, ...outcome });
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), SWEEP_MS);
      this.timer.unref();
    }
  }

  /** Stops watching `socket` (idempotent). */
  unwatch(socket: Socket): void {
    this.watched.delete(socket);
  }

  private sweep(): void {
    // Stopped only here, when a whole sweep period found nothing: under load the timer
    // is not torn down and rebuilt for every short session.
    if (this.watched.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const now = this.now();
    for (const [socket, entry] of this.watched) {
      if (socket.bytesRead > entry.bytesReadAtStart) {
        this.unwatch(socket);
        entry.spoke();
      } else if (now >= entry.deadline) {
        this.unwatch(socket);
        entry.silent();
      }
    }
  }
}

/** The process's one watch (sessions of every listener share it). */
export const clientSilence = new SilenceWatch();
