import type { LearnConfig } from '../config/schema.js';

/** Why the learnt limit moved. */
export type CapacityChange = 'raised' | 'probed' | 'lowered' | 'adopted';

/**
 * `maxStartups: auto`: a server's handshake capacity, learnt the way TCP learns a
 * window. It starts at `start` and rises by one for each handshake that got through
 * while every slot was in use. A refusal (a throttle, or a close at accept) with N
 * handshakes in flight there means the server's limit is below N: the limit drops to
 * N - 1 at once, and that level is remembered as the known-good one. Up to it, every
 * full success raises the limit again; past it, one more slot is tried only once per
 * `probeInterval`, so a server whose limit was raised is followed up while one that
 * did not change costs at most one refusal per interval.
 */
export class LearnedCapacity {
  private current: number;
  /** The highest level that refused nothing since the last refusal; undefined before any refusal. */
  private knownGood: number | undefined;
  private lastProbeAt = -Infinity;
  private settings: LearnConfig;
  private readonly now: () => number;

  constructor(settings: LearnConfig, now: () => number = () => performance.now()) {
    this.settings = settings;
    this.now = now;
    this.current = Math.min(settings.start, settings.ceiling);
  }

  /** New settings (a reload): what was learnt stays, within the new ceiling. */
  configure(settings: LearnConfig): void {
    this.settings = settings;
    this.current = Math.min(this.current, settings.ceiling);
  }

  get limit(): number {
    return this.current;
  }

  /** Highest level known not to be refused, if a refusal was ever seen. */
  get known(): number | undefined {
    return this.knownGood;
  }

  /** A handshake got through with `inFlight` handshakes (itself included) on the server. */
  succeeded(inFlight: number): CapacityChange | undefined {
    if (this.knownGood !== undefined && inFlight > this.knownGood) this.knownGood = Math.min(inFlight, this.settings.ceiling);
    // Only a server used to its limit says anything about a higher one.
    if (inFlight < this.current || this.current >= this.settings.ceiling) return undefined;
    if (this.knownGood === undefined || this.current < this.knownGood) {
      this.current += 1;
      return 'raised';
    }
    if (this.now() - this.lastProbeAt < this.settings.probeInterval) return undefined;
    this.lastProbeAt = this.now();
    this.current += 1;
    return 'probed';
  }

  /** A refusal with `inFlight` handshakes (the refused one included) on the server. */
  refused(inFlight: number): CapacityChange | undefined {
    const below = Math.max(1, inFlight - 1);
    // Only lowers what is known: a refusal counted with more in flight is older news (an
    // attempt from before the limit dropped), and must not raise the known level again.
    this.knownGood = Math.min(this.knownGood ?? below, below);
    this.lastProbeAt = this.now();
    if (below >= this.current) return undefined;
    this.current = below;
    return 'lowered';
  }

  /** Another replica learnt this limit (through the shared store). */
  adopt(limit: number): CapacityChange | undefined {
    const next = Math.max(1, Math.min(limit, this.settings.ceiling));
    if (next === this.current) return undefined;
    this.current = next;
    this.knownGood = next;
    this.lastProbeAt = this.now();
    return 'adopted';
  }
}
