import type { PenaltiesConfig, PenaltySettings } from '../config/schema.js';
import { sourceKey } from '../net/source-key.js';
import type { AuthOutcome } from './handshake-tracker.js';
import { Acl } from './acl.js';

/** What a source is charged for; the names are sshd's (`grace-exceeded` for LoginGraceTime). */
export type PenaltyKind = 'authfail' | 'noauth' | 'grace-exceeded';

export interface PenaltyEntry {
  readonly key: string;
  /** performance.now() at which the penalty has decayed to nothing. */
  expiresAt: number;
  /** Refused until expiry: set once the remaining time exceeded `min`, as sshd does. */
  active: boolean;
  kind: PenaltyKind;
  charges: number;
  /** When it turned active (performance.now()). */
  activatedAt: number | undefined;
}

/** What one session costs its source: `ms` added, refused past `minMs`, capped at `maxMs`. */
export interface PenaltyCharge {
  readonly key: string;
  readonly kind: PenaltyKind;
  readonly ms: number;
  readonly minMs: number;
  readonly maxMs: number;
}

/** A source turned penalised by this charge. */
export interface PenaltyActivation {
  readonly key: string;
  readonly kind: PenaltyKind;
  readonly remainingMs: number;
  readonly charges: number;
}

export interface PenalisedSource {
  readonly source: string;
  readonly kind: PenaltyKind;
  readonly remainingMs: number;
  readonly charges: number;
  /** How long ago it turned active. */
  readonly activeForMs: number;
}

/**
 * Per-source penalties with sshd's semantics (srclimit.c): each charge adds its
 * seconds to the source's expiry, capped at `max`; the penalty decays in real time;
 * once the remaining time exceeds `min` the source is refused until expiry.
 *
 * Memory stays bounded: a Map in order of last charge, so past `maxSources` the
 * source charged longest ago is forgotten first (sshd's "permissive" overflow), in
 * O(1), whatever a flood of addresses does. Expired entries go when next looked at.
 */
export class SourcePenalties {
  private settings: PenaltySettings | undefined;
  private exempt: Acl;
  private readonly entries = new Map<string, PenaltyEntry>();
  private readonly now: () => number;

  constructor(config: PenaltiesConfig | 'off', now: () => number = () => performance.now()) {
    this.now = now;
    this.settings = enabledSettings(config);
    this.exempt = exemptList(this.settings);
  }

  get enabled(): boolean {
    return this.settings !== undefined;
  }

  /** Sources tracked now (charged and not yet forgotten). */
  get size(): number {
    return this.entries.size;
  }

  update(config: PenaltiesConfig | 'off'): void {
    const next = enabledSettings(config);
    const regroup = next === undefined || next.ipv4Prefix !== this.settings?.ipv4Prefix || next.ipv6Prefix !== this.settings.ipv6Prefix;
    // New grouping: keys would no longer match; forgetting is the safe side.
    if (regroup) this.entries.clear();
    this.settings = next;
    this.exempt = exemptList(next);
    while (next && this.entries.size > next.maxSources) this.forgetOldest();
  }

  /** The group `address` is charged to. */
  keyFor(address: string): string {
    return this.settings ? sourceKey(address, this.settings.ipv4Prefix, this.settings.ipv6Prefix) : address;
  }

  /** The active penalty of this client's source, if it is refused now. */
  check(address: string): { readonly key: string; readonly remainingMs: number; readonly kind: PenaltyKind } | undefined {
    if (!this.settings || this.entries.size === 0) return undefined;
    const key = this.keyFor(address);
    const entry = this.live(key);
    if (!entry?.active) return undefined;
    return { key, remainingMs: entry.expiresAt - this.now(), kind: entry.kind };
  }

  /** What a finished session's outcome costs its client's source, if anything (off, exempt, not chargeable: nothing). */
  chargeFor(address: string, outcome: AuthOutcome | undefined): PenaltyCharge | undefined {
    const settings = this.settings;
    const kind = penaltyKindOf(outcome);
    if (!settings || kind === undefined) return undefined;
    const seconds = kind === 'authfail' ? settings.authfail : kind === 'noauth' ? settings.noauth : settings.graceExceeded;
    if (seconds <= 0 || this.exempt.check(address).allowed) return undefined;
    return { key: this.keyFor(address), kind, ms: seconds, minMs: settings.min, maxMs: settings.max };
  }

  /** Charges a finished session's outcome to its client; returns the activation if this charge turned the source penalised. */
  charge(address: string, outcome: AuthOutcome | undefined): PenaltyActivation | undefined {
    const settings = this.settings;
    const charge = this.chargeFor(address, outcome);
    if (!settings || !charge) return undefined;
    const { key, kind, ms: seconds } = charge;
    const now = this.now();
    let entry = this.live(key);
    if (entry) {
      this.entries.delete(key);
      entry.expiresAt = Math.min(entry.expiresAt + seconds, now + settings.max);
      entry.charges += 1;
      entry.kind = kind;
    } else {
      while (this.entries.size >= settings.maxSources) this.forgetOldest();
      entry = { key, expiresAt: now + Math.min(seconds, settings.max), active: false, kind, charges: 1, activatedAt: undefined };
    }
    this.entries.set(key, entry);
    if (entry.active || entry.expiresAt - now <= settings.min) return undefined;
    entry.active = true;
    entry.activatedAt = now;
    return { key, kind, remainingMs: entry.expiresAt - now, charges: entry.charges };
  }

  /**
   * A penalty decided elsewhere (the shared store, for all replicas): the source is refused
   * for `remainingMs` from now. Returns whether it was not refused here before.
   */
  adopt(key: string, kind: PenaltyKind, remainingMs: number, charges: number): boolean {
    const settings = this.settings;
    if (!settings || remainingMs <= 0) return false;
    const now = this.now();
    const entry = this.live(key);
    if (entry) this.entries.delete(key);
    else while (this.entries.size >= settings.maxSources) this.forgetOldest();
    const wasActive = entry?.active === true;
    this.entries.set(key, { key, expiresAt: now + remainingMs, active: true, kind, charges, activatedAt: wasActive ? entry.activatedAt : now });
    return !wasActive;
  }

  /** Sources refused now, most recently activated first, at most `limit`. */
  penalised(limit: number): PenalisedSource[] {
    const now = this.now();
    const active: PenaltyEntry[] = [];
    for (const entry of this.entries.values()) if (entry.active && entry.expiresAt > now) active.push(entry);
    active.sort((a, b) => (b.activatedAt ?? 0) - (a.activatedAt ?? 0));
    return active.slice(0, limit).map((entry) => ({
      source: entry.key,
      kind: entry.kind,
      remainingMs: Math.round(entry.expiresAt - now),
      charges: entry.charges,
      activeForMs: Math.round(now - (entry.activatedAt ?? now)),
    }));
  }

  /** How many sources are refused now (for the gauge; a walk over at most maxSources entries). */
  penalisedCount(): number {
    const now = this.now();
    let count = 0;
    for (const entry of this.entries.values()) if (entry.active && entry.expiresAt > now) count += 1;
    return count;
  }

  private live(key: string): PenaltyEntry | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private forgetOldest(): void {
    const oldest = this.entries.keys().next();
    if (!oldest.done) this.entries.delete(oldest.value);
  }
}

/** Which penalty a session's outcome earns; `ok` and `unknown` earn none. */
export function penaltyKindOf(outcome: AuthOutcome | undefined): PenaltyKind | undefined {
  return outcome === 'authfail' || outcome === 'noauth' || outcome === 'grace-exceeded' ? outcome : undefined;
}

function enabledSettings(config: PenaltiesConfig | 'off'): PenaltySettings | undefined {
  return config === 'off' || !config.enabled ? undefined : config;
}

function exemptList(settings: PenaltySettings | undefined): Acl {
  return new Acl({ allow: settings?.exempt ?? [], deny: [] });
}
