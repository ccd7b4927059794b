import type { ReasonCode } from '../errors.js';
import type { PenaltyKind } from '../events/contract.js';
import type { PenaltiesConfig, PenaltySettings } from '../config/schema.js';
import { sourceKey } from '../net/source-key.js';
import type { AuthOutcome } from '../events/contract.js';
import { Acl } from './acl.js';

export type { PenaltyKind } from '../events/contract.js';

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
 * Memory stays bounded by `maxSources`, and a flood of new addresses cannot flush an
 * active penalty (the attacker's own included): sources still accumulating (`pending`,
 * in order of last charge) are forgotten first, in O(1); refused sources (`active`) are
 * never evicted, only expired. With the table full of refused sources, `overflow` decides
 * as sshd's does: `permissive` records no new penalty, `deny-all` refuses every other source.
 */
export class SourcePenalties {
  private settings: PenaltySettings | undefined;
  private exempt: Acl;
  private readonly pending = new Map<string, PenaltyEntry>();
  private readonly active = new Map<string, PenaltyEntry>();
  private readonly now: () => number;
  /** When expired active entries were last swept (a full table is swept at most once a second). */
  private sweptAt = -Infinity;
  /** Penalties not recorded because the table was full of refused sources (permissive overflow). */
  overflowed = 0;

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
    return this.pending.size + this.active.size;
  }

  /** deny-all overflow in force: the table is full of refused sources. */
  get overflowing(): boolean {
    const settings = this.settings;
    if (settings?.overflow !== 'deny-all' || this.active.size < settings.maxSources) return false;
    this.sweepExpired(settings);
    return this.active.size >= settings.maxSources;
  }

  update(config: PenaltiesConfig | 'off'): void {
    const next = enabledSettings(config);
    const regroup = next === undefined || next.ipv4Prefix !== this.settings?.ipv4Prefix || next.ipv6Prefix !== this.settings.ipv6Prefix;
    // New grouping: keys would no longer match; forgetting is the safe side.
    if (regroup) {
      this.pending.clear();
      this.active.clear();
    }
    this.settings = next;
    this.exempt = exemptList(next);
    while (next && this.size > next.maxSources && this.pending.size > 0) this.forgetOldestPending();
  }

  /** The group `address` is charged to. */
  keyFor(address: string): string {
    return this.settings ? sourceKey(address, this.settings.ipv4Prefix, this.settings.ipv6Prefix) : address;
  }

  /** The active penalty of this client's source, if it is refused now. */
  check(address: string): { readonly key: string; readonly remainingMs: number; readonly kind: PenaltyKind } | undefined {
    if (!this.settings || this.active.size === 0) return undefined;
    const key = this.keyFor(address);
    const entry = this.live(key);
    if (entry?.active) return { key, remainingMs: entry.expiresAt - this.now(), kind: entry.kind };
    // deny-all: while the table is full of refused sources, every other source is refused too.
    if (this.overflowing && !this.exempt.check(address).allowed) return { key, remainingMs: 1000, kind: 'noauth' };
    return undefined;
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
      entry.expiresAt = Math.min(entry.expiresAt + seconds, now + settings.max);
      entry.charges += 1;
      entry.kind = kind;
      if (entry.active) return undefined;
      // Still accumulating: to the back of the eviction order.
      this.pending.delete(key);
    } else {
      if (!this.makeRoom(settings)) return undefined;
      entry = { key, expiresAt: now + Math.min(seconds, settings.max), active: false, kind, charges: 1, activatedAt: undefined };
    }
    if (entry.expiresAt - now <= settings.min) {
      this.pending.set(key, entry);
      return undefined;
    }
    entry.active = true;
    entry.activatedAt = now;
    this.active.set(key, entry);
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
    if (entry) this.pending.delete(key);
    else if (!this.makeRoom(settings)) return false;
    const wasActive = entry?.active === true;
    this.active.set(key, { key, expiresAt: now + remainingMs, active: true, kind, charges, activatedAt: wasActive ? entry.activatedAt : now });
    return !wasActive;
  }

  /** Sources refused now, most recently activated first, at most `limit`. */
  penalised(limit: number): PenalisedSource[] {
    const now = this.now();
    const active: PenaltyEntry[] = [];
    for (const entry of this.active.values()) if (entry.expiresAt > now) active.push(entry);
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
    for (const entry of this.active.values()) if (entry.expiresAt > now) count += 1;
    return count;
  }

  private live(key: string): PenaltyEntry | undefined {
    const entry = this.active.get(key) ?? this.pending.get(key);
    if (entry && entry.expiresAt <= this.now()) {
      this.active.delete(key);
      this.pending.delete(key);
      return undefined;
    }
    return entry;
  }

  /**
   * Room for one more source: a pending one goes if need be (the least recently charged).
   * False when the table is full of refused sources: the new one is not recorded
   * (permissive; deny-all then refuses at check), as sshd does.
   */
  private makeRoom(settings: PenaltySettings): boolean {
    if (this.size < settings.maxSources) return true;
    if (this.pending.size > 0) {
      this.forgetOldestPending();
      return true;
    }
    this.sweepExpired(settings);
    if (this.size < settings.maxSources) return true;
    this.overflowed += 1;
    return false;
  }

  /** Drops expired refused sources; at most once a second, since it walks the table. */
  private sweepExpired(settings: PenaltySettings): void {
    const now = this.now();
    if (now - this.sweptAt < 1000 && this.active.size >= settings.maxSources) return;
    this.sweptAt = now;
    for (const [key, entry] of this.active) if (entry.expiresAt <= now) this.active.delete(key);
  }

  private forgetOldestPending(): void {
    const oldest = this.pending.keys().next();
    if (!oldest.done) this.pending.delete(oldest.value);
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

/** A client that closes before the splice within this of connecting, without being made to wait, left of its own accord. */
export const ABANDON_CHARGED_WITHIN_MS = 1000;

/**
 * The outcome a session is charged for, or undefined when it was not the client's
 * doing: the proxy or a backend ended it (shutdown, no backend, a server that closed before the
 * key exchange), or the proxy made it wait (queued, backed off, failed over, a slow banner)
 * and it gave up. A client that left before the splice of its own accord (a scanner, a port
 * check: gone within a second, never kept waiting) is `noauth`, as at sshd.
 */
export function chargeableOutcome(outcome: AuthOutcome | undefined, reason: ReasonCode, spliced: boolean, ownAccord: boolean): AuthOutcome | undefined {
  if (outcome === undefined || outcome === 'ok' || outcome === 'unknown') return undefined;
  if (reason === 'SHUTDOWN' || reason === 'DRAIN_TIMEOUT') return undefined;
  if (!spliced) return ownAccord && (reason === 'CLIENT_CLOSED' || reason === 'CLIENT_RESET') ? 'noauth' : undefined;
  if (outcome === 'noauth' && reason.startsWith('SERVER_')) return undefined;
  return outcome;
}
