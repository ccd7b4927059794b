import { ticket, type Ticket } from '../ticket.js';
import { sourceKey } from '../net/source-key.js';

export interface SourceLimitSettings {
  /** Concurrent connections per source (0 = unlimited). */
  readonly perSourceConnections: number;
  /** New connections per second per source (0 = unlimited); a token bucket of that size. */
  readonly perSourceRate: number;
  /** IPv6 sources are grouped by this prefix length (a /64 is one subscriber). */
  readonly perSourceIpv6Prefix: number;
}

export type SourceVerdict =
  | { readonly ok: true; readonly key: string; readonly release: () => void }
  | { readonly ok: false; readonly key: string; readonly code: 'PER_SOURCE_LIMIT' | 'PER_SOURCE_RATE'; readonly message: string };

interface SourceEntry {
  active: number;
  tokens: number;
  refilledAt: number;
}

const MIN_SWEEP_SIZE = 1024;

/**
 * Per-client limits, enforced by the proxy because every backend sees only the
 * proxy's address (one abusive client would otherwise trip sshd's
 * PerSourcePenalties for everybody). Shared by all listeners of a process.
 *
 * Memory stays bounded: an entry with no open connection and a full bucket
 * carries no information and is swept once the map doubles in size, so the map
 * holds at most the sources with open connections plus those seen in the last
 * second (twice over).
 */
export class SourceLimits {
  private settings: SourceLimitSettings;
  private readonly entries = new Map<string, SourceEntry>();
  private sweepAt = MIN_SWEEP_SIZE;
  private readonly now: () => number;

  constructor(settings: SourceLimitSettings, now: () => number = () => performance.now()) {
    this.settings = settings;
    this.now = now;
  }

  get enabled(): boolean {
    return this.settings.perSourceConnections > 0 || this.settings.perSourceRate > 0;
  }

  /** Tracked sources right now (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  /** New limits apply to the next connection; counts of open connections are kept. */
  update(settings: SourceLimitSettings): void {
    const regroup = settings.perSourceIpv6Prefix !== this.settings.perSourceIpv6Prefix;
    this.settings = settings;
    // A new IPv6 grouping would orphan the open counts; start over rather than mis-release.
    if (regroup) this.entries.clear();
  }

  /** The group a client address counts against: IPv4 as is, IPv6 by prefix. */
  keyFor(address: string): string {
    return sourceKey(address, 32, this.settings.perSourceIpv6Prefix);
  }

  get settingsInForce(): SourceLimitSettings {
    return this.settings;
  }

  /**
   * Admits one connection from `address` or says which limit it hit. Call `release` when
   * it closes. `share` scales both limits (a replica alone while the shared store is down).
   */
  admit(address: string, share = 1): SourceVerdict {
    const key = this.keyFor(address);
    if (!this.enabled) return { ok: true, key, release: noop };
    const perSourceConnections = scaled(this.settings.perSourceConnections, share);
    const perSourceRate = scaled(this.settings.perSourceRate, share);
    const now = this.now();
    const entry = this.entryFor(key, now);
    if (perSourceConnections > 0 && entry.active >= perSourceConnections) {
      return { ok: false, key, code: 'PER_SOURCE_LIMIT', message: `${key} already has ${entry.active} connections (limit ${perSourceConnections})` };
    }
    if (perSourceRate > 0) {
      this.refill(entry, now, perSourceRate);
      if (entry.tokens < 1) {
        return { ok: false, key, code: 'PER_SOURCE_RATE', message: `${key} opened more than ${perSourceRate} connections per second` };
      }
      entry.tokens -= 1;
    }
    const held = this.count(key, entry);
    return { ok: true, key, release: () => held.release() };
  }

  /** Counts one connection from the source `key` without checking (the shared store admitted it). */
  record(key: string): Ticket {
    return this.count(key, this.entryFor(key, this.now()));
  }

  /** Sources with open connections here, and how many each (what this replica asserts to the store). */
  *openCounts(): Generator<[string, number]> {
    for (const [key, entry] of this.entries) if (entry.active > 0) yield [key, entry.active];
  }

  private entryFor(key: string, now: number): SourceEntry {
    let entry = this.entries.get(key);
    if (!entry) {
      this.maybeSweep(now);
      entry = { active: 0, tokens: this.settings.perSourceRate, refilledAt: now };
      this.entries.set(key, entry);
    }
    return entry;
  }

  private count(key: string, entry: SourceEntry): Ticket {
    entry.active += 1;
    return ticket(() => {
      entry.active -= 1;
      if (entry.active === 0 && this.settings.perSourceRate === 0 && this.entries.get(key) === entry) this.entries.delete(key);
    });
  }

  private refill(entry: SourceEntry, now: number, rate: number): void {
    const elapsedSeconds = (now - entry.refilledAt) / 1000;
    entry.tokens = Math.min(rate, entry.tokens + elapsedSeconds * rate);
    entry.refilledAt = now;
  }

  private maybeSweep(now: number): void {
    if (this.entries.size < this.sweepAt) return;
    const rate = this.settings.perSourceRate;
    for (const [key, entry] of this.entries) {
      if (entry.active > 0) continue;
      if (rate > 0) this.refill(entry, now, rate);
      if (rate === 0 || entry.tokens >= rate) this.entries.delete(key);
    }
    this.sweepAt = Math.max(MIN_SWEEP_SIZE, this.entries.size * 2);
  }
}

function noop(): void {}

/** A limit scaled to a share of it, at least 1 (0 stays unlimited). */
function scaled(limit: number, share: number): number {
  return limit === 0 || share >= 1 ? limit : Math.max(1, Math.floor(limit * share));
}
