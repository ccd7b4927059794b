import { SuccessShapes } from '../protocol/success-shapes.js';
import type { ProxyVersion } from '../protocol/proxy-protocol-encode.js';
import { formatHostPort } from '../net/address.js';
import type { Ticket } from '../ticket.js';
import type { AttemptFailureCode } from '../errors.js';
import { LearnedCapacity } from './learned-capacity.js';
import type { ServerSpec } from './server-spec.js';

import type { ServerState } from '../events/contract.js';

export type { ServerState } from '../events/contract.js';
export type ServerHealth = 'UP' | 'DOWN';
/** Set at run time by an operator (admin API, `ctl`): `drain` and `maint` take no new sessions; `maint` also stops checks. */
export type AdminState = 'ready' | 'drain' | 'maint';

export interface ServerStateChange {
  readonly from: ServerState;
  readonly to: ServerState;
  readonly reason: string;
}

export interface HealthCheckRecord {
  readonly ok: boolean;
  /** Attempt reason code when the check failed. */
  readonly code?: string;
  readonly message?: string;
  /** Date.now() when the check finished. */
  readonly at: number;
}

/** An active check's result (health-checker.ts). */
export type CheckResult =
  | { readonly ok: true; readonly at: number; readonly bannerMs: number; readonly identification: string }
  | { readonly ok: false; readonly at: number; readonly code: AttemptFailureCode; readonly message: string };

/**
 * One backend server's live state: what balancing, health and observers read.
 *
 * State is three independent facts: `health` (UP/DOWN, from active and passive checks),
 * `draining` (retired: a reload or a lookup removed it) and `admin` (an operator's
 * drain or maint). `state` is MAINT, else DRAINING, else the health; going back to
 * ready returns to whatever health checks found meanwhile. Change state through
 * `BackendPool` (it emits 'server-state' and serves the queue), not directly.
 *
 * Its fields are read-only views; each fact changes through the one method that owns it
 * (checks through `recordCheck`, attempts through `recordAttempt`, counts through tickets).
 */
export class BackendServer {
  readonly pool: string;
  readonly name: string;
  /** The config entry it comes from (servers[].name); a set's members share it. */
  readonly entry: string;
  readonly host: string;
  readonly port: number;
  readonly address: string;
  /** How this server's USERAUTH_SUCCESS looks when read together with the next packet (learnt). */
  readonly successShapes = new SuccessShapes();
  #sendProxy: ProxyVersion | undefined;
  #weight: number;
  #backup: boolean;
  #health: ServerHealth = 'UP';
  #draining = false;
  #admin: AdminState = 'ready';
  #stateChangedAt = Date.now();
  #stateReason: string | undefined;
  readonly #counts: Record<CountName, number> = { activeSessions: 0, handshakesActive: 0, silentHandshakes: 0 };
  /** The configured limit; with `auto`, what `capacity` learnt. */
  #fixedMaxStartups: number | undefined;
  #capacity: LearnedCapacity | undefined;
  #clusterFull = false;
  #heldFull = false;
  #localCap: number | undefined;
  #clusterSlotsInUse: number | undefined;
  #consecutiveFailures = 0;
  #checkSuccesses = 0;
  #checkFailures = 0;
  #lastIdentification: string | undefined;
  #lastBannerMs: number | undefined;
  #lastCheck: HealthCheckRecord | undefined;

  constructor(pool: string, spec: ServerSpec) {
    this.pool = pool;
    this.name = spec.name;
    this.entry = spec.entry;
    this.host = spec.host;
    this.port = spec.port;
    this.address = formatHostPort(spec);
    this.#weight = spec.weight;
    this.#backup = spec.backup;
    this.#sendProxy = spec.sendProxy;
    this.configureCapacity(spec);
    // Found after start: no sessions until its checks pass.
    if (spec.awaitRise) {
      this.#health = 'DOWN';
      this.#stateReason = 'dns:new';
    }
  }

  /** A PROXY protocol header goes first on every connection (servers[].sendProxy). */
  get sendProxy(): ProxyVersion | undefined {
    return this.#sendProxy;
  }
  get weight(): number {
    return this.#weight;
  }
  get backup(): boolean {
    return this.#backup;
  }
  get health(): ServerHealth {
    return this.#health;
  }
  /** Retired by a reload or a lookup: it leaves once its last session ends. */
  get draining(): boolean {
    return this.#draining;
  }
  get admin(): AdminState {
    return this.#admin;
  }
  get stateChangedAt(): number {
    return this.#stateChangedAt;
  }
  /** Reason code of the last state change, e.g. `check:BANNER_TIMEOUT`, `passive:THROTTLED`, `check:ok`. */
  get stateReason(): string | undefined {
    return this.#stateReason;
  }
  /** Spliced and in-setup sessions currently using this server. */
  get activeSessions(): number {
    return this.#counts.activeSessions;
  }
  /** Sessions (and health checks) in their SSH handshake on this server, each holding a slot. */
  get handshakesActive(): number {
    return this.#counts.handshakesActive;
  }
  /** Of those, sessions whose client has not sent its identification yet (bounded by handshake.silentShare). */
  get silentHandshakes(): number {
    return this.#counts.silentHandshakes;
  }
  /** `maxStartups: auto` (learned-capacity.ts). */
  get capacity(): LearnedCapacity | undefined {
    return this.#capacity;
  }
  /** With a shared store: the store said no slot is free cluster-wide (cleared when one is freed). */
  get clusterFull(): boolean {
    return this.#clusterFull;
  }
  /** It throttled a moment ago: no new handshake until the hold ends (full-holds.ts). */
  get heldFull(): boolean {
    return this.#heldFull;
  }
  /** With a shared store that is down: the slots this replica may use alone (cluster.localShare). */
  get localCap(): number | undefined {
    return this.#localCap;
  }
  /** With a shared store: handshake slots held on this sshd by all replicas, as last seen. */
  get clusterSlotsInUse(): number | undefined {
    return this.#clusterSlotsInUse;
  }
  /** Consecutive failed session attempts (passive health); reset by a successful attempt. */
  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }
  /** Consecutive successful / failed active checks (rise / fall). */
  get checkSuccesses(): number {
    return this.#checkSuccesses;
  }
  get checkFailures(): number {
    return this.#checkFailures;
  }
  get lastIdentification(): string | undefined {
    return this.#lastIdentification;
  }
  get lastBannerMs(): number | undefined {
    return this.#lastBannerMs;
  }
  get lastCheck(): HealthCheckRecord | undefined {
    return this.#lastCheck;
  }

  /** Handshake slots allowed at once: the configured number, or the learnt one. */
  get maxStartups(): number {
    return this.#capacity?.limit ?? this.#fixedMaxStartups ?? 1;
  }

  /** A reload's settings for a server it keeps (pool-reconfigure.ts); a learner already running keeps what it learnt. */
  reconfigure(spec: Pick<ServerSpec, 'weight' | 'backup' | 'sendProxy' | 'maxStartups' | 'learn'>): void {
    this.#sendProxy = spec.sendProxy;
    this.#weight = spec.weight;
    this.#backup = spec.backup;
    this.configureCapacity(spec);
  }

  /** An operator's weight (admin API); the next reload applies the config's again. */
  setWeight(weight: number): void {
    this.#weight = weight;
  }

  private configureCapacity(spec: Pick<ServerSpec, 'maxStartups' | 'learn'>): void {
    if (spec.maxStartups === 'auto') {
      this.#fixedMaxStartups = undefined;
      if (this.#capacity) this.#capacity.configure(spec.learn);
      else this.#capacity = new LearnedCapacity(spec.learn);
    } else {
      this.#fixedMaxStartups = spec.maxStartups;
      this.#capacity = undefined;
    }
  }

  get state(): ServerState {
    if (this.#admin === 'maint') return 'MAINT';
    return this.#draining || this.#admin === 'drain' ? 'DRAINING' : this.#health;
  }

  /** Whether new sessions may come here (not retired, not drained or in maintenance by an operator, weight above 0). */
  get takesNewSessions(): boolean {
    return !this.#draining && this.#admin === 'ready' && this.#weight > 0;
  }

  get hasFreeSlot(): boolean {
    return !this.#clusterFull && !this.#heldFull && this.#counts.handshakesActive < (this.#localCap ?? this.maxStartups);
  }

  /** One handshake slot (the pool checks `hasFreeSlot` first); `afterRelease` runs once it is free again. */
  takeSlot(afterRelease: () => void): Ticket {
    return this.take('handshakesActive', afterRelease);
  }

  /** Marks a slot as held by a client that has not identified itself yet. */
  takeSilent(): Ticket {
    return this.take('silentHandshakes', undefined);
  }

  /** One session using this server, in setup or spliced (what `leastconn` balances). */
  takeSession(): Ticket {
    return this.take('activeSessions', undefined);
  }

  private take(count: CountName, afterRelease: (() => void) | undefined): Ticket {
    this.#counts[count] += 1;
    return new ServerTicket(this.#counts, count, afterRelease);
  }

  /**
   * An active check's result, counted towards `rise` / `fall` unless `counted` is false (the
   * proxy's own resources failed: it says nothing of the server). Returns the health the
   * counts now call for, when it differs from the present one.
   */
  recordCheck(check: CheckResult, thresholds: { readonly rise: number; readonly fall: number }, counted = true): ServerHealth | undefined {
    this.#lastCheck = check.ok ? { ok: true, at: check.at } : { ok: false, code: check.code, message: check.message, at: check.at };
    if (check.ok) {
      this.#lastBannerMs = check.bannerMs;
      this.#lastIdentification = check.identification;
      this.#checkFailures = 0;
      this.#checkSuccesses += 1;
      return this.#health === 'DOWN' && this.#checkSuccesses >= thresholds.rise ? 'UP' : undefined;
    }
    if (!counted) return undefined;
    this.#checkSuccesses = 0;
    this.#checkFailures += 1;
    return this.#health === 'UP' && this.#checkFailures >= thresholds.fall ? 'DOWN' : undefined;
  }

  /** A session attempt's result for passive health; true when `threshold` failures in a row were just reached on an UP server. */
  recordAttempt(failed: boolean, threshold: number): boolean {
    if (!failed) {
      this.#consecutiveFailures = 0;
      return false;
    }
    this.#consecutiveFailures += 1;
    return threshold > 0 && this.#consecutiveFailures >= threshold && this.#health === 'UP';
  }

  /** Held after a throttle (full-holds.ts), or released. */
  setHeldFull(held: boolean): void {
    this.#heldFull = held;
  }

  /** The shared store said no slot is free cluster-wide, or one was freed (slot-gate.ts). */
  setClusterFull(full: boolean): void {
    this.#clusterFull = full;
  }

  /** This replica's share of the slots while the store is down; undefined: the whole limit (slot-gate.ts). */
  setLocalCap(cap: number | undefined): void {
    this.#localCap = cap;
  }

  /** Slots all replicas hold on this sshd, as the store last said (shared-slots.ts); undefined: no store. */
  setClusterSlotsInUse(inUse: number | undefined): void {
    this.#clusterSlotsInUse = inUse;
  }

  /** Applies a health verdict; returns the visible change, if any. */
  setHealth(health: ServerHealth, reason: string): ServerStateChange | undefined {
    if (this.#health === health) return undefined;
    const from = this.state;
    this.#health = health;
    this.#checkSuccesses = 0;
    this.#checkFailures = 0;
    if (health === 'UP') this.#consecutiveFailures = 0;
    return this.changed(from, reason);
  }

  setDraining(draining: boolean, reason: string): ServerStateChange | undefined {
    if (this.#draining === draining) return undefined;
    const from = this.state;
    this.#draining = draining;
    return this.changed(from, reason);
  }

  setAdmin(admin: AdminState, reason: string): ServerStateChange | undefined {
    const from = this.state;
    this.#admin = admin;
    return this.changed(from, reason);
  }

  private changed(from: ServerState, reason: string): ServerStateChange | undefined {
    const to = this.state;
    if (from === to) return undefined;
    this.#stateChangedAt = Date.now();
    this.#stateReason = reason;
    return { from, to, reason };
  }
}

type CountName = 'handshakesActive' | 'silentHandshakes' | 'activeSessions';

/**
 * One of a server's counts, given back once. A class, not a closure per ticket: a
 * spliced session holds its session count for its whole life.
 */
class ServerTicket implements Ticket {
  private counts: Record<CountName, number> | undefined;
  private readonly count: CountName;
  private readonly afterRelease: (() => void) | undefined;

  constructor(counts: Record<CountName, number>, count: CountName, afterRelease: (() => void) | undefined) {
    this.counts = counts;
    this.count = count;
    this.afterRelease = afterRelease;
  }

  get held(): boolean {
    return this.counts !== undefined;
  }

  release(): void {
    const counts = this.counts;
    if (counts === undefined) return;
    this.counts = undefined;
    counts[this.count] -= 1;
    this.afterRelease?.();
  }
}
