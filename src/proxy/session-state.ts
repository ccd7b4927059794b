import type { AttemptHandle } from '../backend/attempt.js';
import type { Lease, QueuedAcquire } from '../backend/pool.js';
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
  /** `acquire`: the pool's queue place, when the pool had no answer at once. */
  | { readonly phase: 'queued'; readonly acquire: QueuedAcquire | undefined }
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

/** A total per phase, then the last stint of the two phases whose stint is asked for. */
const TOTALS = SESSION_PHASES.length;
type StintPhase = 'connecting' | 'awaiting-banner';
const STINT_INDEX: { readonly [Phase in StintPhase]: number } = { connecting: TOTALS, 'awaiting-banner': TOTALS + 1 };
/** Every phase before this index is setup (SESSION_PHASES lists them in order, `spliced` then `closed` last). */
const SPLICED_INDEX = PHASE_INDEX.spliced;

/**
 * Records the time spent in each phase: the one mechanism behind queue wait, connect
 * and banner times. Arrays by phase index on the connection path; the
 * `{ phase: ms }` object is made once, for the summary.
 */
export class PhaseClock {
  /**
   * The total per phase index at [i], then the last stints (STINT_INDEX). One plain
   * array of doubles, exactly as long as needed: an idle session keeps it.
   */
  private readonly times: number[] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
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
    if (phase === 'connecting' || phase === 'awaiting-banner') this.times[STINT_INDEX[phase]] = stintMs;
    this.entered |= 1 << index;
    return stintMs;
  }

  /** The last stint in `phase` (the banner wait of the attempt that succeeded, not the sum); undefined if never in it. */
  lastStint(phase: StintPhase): number | undefined {
    return (this.entered & (1 << PHASE_INDEX[phase])) === 0 ? undefined : this.times[STINT_INDEX[phase]];
  }

  /** Milliseconds from the accept until the splice (or until now, before it): every phase before `spliced`. */
  get setupMs(): number {
    let total = 0;
    for (let index = 0; index < SPLICED_INDEX; index += 1) total += this.times[index] ?? 0;
    return total;
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
