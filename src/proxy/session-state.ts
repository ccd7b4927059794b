import type { AttemptHandle } from '../backend/attempt.js';
import type { AcquireHandle, Lease } from '../backend/pool.js';
import type { ReasonCode } from '../errors.js';
import type { HandshakeTracker } from './handshake-tracker.js';
import type { Splice } from './splice.js';

/**
 * A session's phases, in order. `backoff` sits between attempts when the only servers
 * left failed transiently; failover goes from `connecting`/`awaiting-banner` back to
 * `queued` (or `backoff`) while no backend byte has reached the client.
 */
export const SESSION_PHASES = ['accepted', 'admitted', 'queued', 'backoff', 'connecting', 'awaiting-banner', 'spliced', 'closed'] as const;
export type SessionPhase = (typeof SESSION_PHASES)[number];

/** Each phase holds only what it owns; leaving it releases that (see `Session.transition`). */
export type SessionState =
  | { readonly phase: 'accepted' }
  | { readonly phase: 'admitted' }
  /** `acquire` is set only while the pool keeps the request queued. */
  | { readonly phase: 'queued'; acquire: AcquireHandle | undefined }
  | { readonly phase: 'backoff'; readonly timer: NodeJS.Timeout }
  | { readonly phase: 'connecting'; readonly lease: Lease; readonly attempt: AttemptHandle }
  | { readonly phase: 'awaiting-banner'; readonly lease: Lease; readonly attempt: AttemptHandle }
  /** `silence`: set while the client has yet to send its identification after the banner. */
  | { readonly phase: 'spliced'; readonly lease: Lease; readonly splice: Splice; readonly tracker: HandshakeTracker; watchingSilence: boolean }
  | { readonly phase: 'closed'; readonly reason: ReasonCode };

/**
 * Every allowed move. `queued → spliced` is a lease that came with a prefetched
 * connection (banner already verified). Anything else is a bug and throws.
 */
export const SESSION_TRANSITIONS: { readonly [From in SessionPhase]: readonly SessionPhase[] } = {
  accepted: ['admitted', 'closed'],
  admitted: ['queued', 'closed'],
  queued: ['connecting', 'spliced', 'closed'],
  backoff: ['queued', 'closed'],
  connecting: ['awaiting-banner', 'queued', 'backoff', 'closed'],
  'awaiting-banner': ['spliced', 'queued', 'backoff', 'closed'],
  spliced: ['closed'],
  closed: [],
};

export function canTransition(from: SessionPhase, to: SessionPhase): boolean {
  return SESSION_TRANSITIONS[from].includes(to);
}

/** Milliseconds spent in each phase so far (a phase entered twice, as `queued` in a failover, adds up). */
export type PhaseTimings = { -readonly [Phase in Exclude<SessionPhase, 'closed'>]?: number };

const PHASE_INDEX: { readonly [Phase in SessionPhase]: number } = Object.fromEntries(SESSION_PHASES.map((phase, index) => [phase, index])) as { [Phase in SessionPhase]: number };

/**
 * Records the time spent in each phase: the one mechanism behind queue wait, connect
 * and banner times. Arrays by phase index on the connection path; the
 * `{ phase: ms }` object is made once, for the summary.
 */
const PHASES = SESSION_PHASES.length;

export class PhaseClock {
  /**
   * Per phase index i: the total at [i], the last stint at [PHASES + i]. One plain array
   * (cheaper to make than typed arrays, and one header instead of two per session).
   */
  private readonly times: number[] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  /** Phases entered at least once (bit per phase index). */
  private entered = 0;
  private enteredAt: number;
  private readonly now: () => number;

  constructor(now: () => number, startedAt = now()) {
    this.now = now;
    this.enteredAt = startedAt;
  }

  /** Closes the stint in `phase`; returns its length. */
  leave(phase: SessionPhase): number {
    const now = this.now();
    const stintMs = now - this.enteredAt;
    this.enteredAt = now;
    const index = PHASE_INDEX[phase];
    this.times[index] = (this.times[index] ?? 0) + stintMs;
    this.times[PHASES + index] = stintMs;
    this.entered |= 1 << index;
    return stintMs;
  }

  /** The last stint in `phase` (the banner wait of the attempt that succeeded, not the sum); undefined if never in it. */
  lastStint(phase: SessionPhase): number | undefined {
    const index = PHASE_INDEX[phase];
    return (this.entered & (1 << index)) === 0 ? undefined : this.times[PHASES + index];
  }

  /** Milliseconds in each phase entered (closed excluded). */
  get timings(): PhaseTimings {
    const timings: PhaseTimings = {};
    SESSION_PHASES.forEach((phase, index) => {
      if (phase !== 'closed' && (this.entered & (1 << index)) !== 0) timings[phase] = this.times[index] ?? 0;
    });
    return timings;
  }
}
