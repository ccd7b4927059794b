import type { Socket } from 'node:net';

interface Watched {
  readonly deadline: number;
  readonly silent: () => void;
}

/** How often watched clients are looked at; bounds how late a verdict comes. */
const SWEEP_MS = 250;

/**
 * Spliced clients that have not sent their identification line yet (they waited for
 * the banner, or they are idle sockets holding a handshake slot). One whose whole
 * `SSH-…` line has not arrived within its limit is told `silent`, as sshd's
 * LoginGraceTime would, but long before it: a real client answers a banner at once.
 * A byte, or a line trickled without its end, is not an answer: the session's handshake
 * watch sees the line end and unwatches the client (the limit is for the whole line).
 *
 * One sweep timer for all of them: no timer per session, so the connection path pays
 * only a map entry.
 */
export class SilenceWatch {
  private readonly watched = new Map<Socket, Watched>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.now = now;
  }

  /** Starts watching until the verdict or `unwatch(socket)`. `limitMs` 0: never silent. */
  watch(socket: Socket, limitMs: number, silent: () => void): void {
    if (limitMs <= 0) return;
    this.watched.set(socket, { deadline: this.now() + limitMs, silent });
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), SWEEP_MS);
      this.timer.unref();
    }
  }

  /** Stops watching `socket` (idempotent). */
  unwatch(socket: Socket): void {
    this.watched.delete(socket);
  }

  get size(): number {
    return this.watched.size;
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
      if (now < entry.deadline) continue;
      this.unwatch(socket);
      entry.silent();
    }
  }
}

/** The process's one watch (sessions of every listener share it). */
export const clientSilence = new SilenceWatch();
