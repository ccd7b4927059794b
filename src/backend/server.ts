import { SuccessShapes } from '../protocol/success-shapes.js';
import type { ProxyVersion } from '../protocol/proxy-protocol-encode.js';
import { formatHostPort } from '../net/address.js';
import type { Ticket } from '../ticket.js';
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

/**
 * One backend server's live state: what balancing, health and observers read.
 *
 * State is three independent facts: `health` (UP/DOWN, from active and passive checks),
 * `draining` (retired: a reload or a lookup removed it) and `admin` (an operator's
 * drain or maint). `state` is MAINT, else DRAINING, else the health; going back to
 * ready returns to whatever health checks found meanwhile. Change state through
 * `BackendPool` (it emits 'server-state' and serves the queue), not directly.
 */
export class BackendServer {
  readonly pool: string;
  readonly name: string;
  /** The config entry it comes from (servers[].name); a set's members share it. */
  readonly entry: string;
  readonly host: string;
  readonly port: number;
  readonly address: string;
  /** A PROXY protocol header goes first on every connection (servers[].sendProxy). */
  sendProxy: ProxyVersion | undefined;
  weight: number;
  backup: boolean;
  health: ServerHealth = 'UP';
  /** Retired by a reload or a lookup: it leaves once its last session ends. */
  draining = false;
  admin: AdminState = 'ready';
  stateChangedAt = Date.now();
  /** Reason code of the last state change, e.g. `check:BANNER_TIMEOUT`, `passive:THROTTLED`, `check:ok`. */
  stateReason: string | undefined;
  /** Spliced and in-setup sessions currently using this server. */
  activeSessions = 0;
  /** Sessions (and health checks) in their SSH handshake on this server, each holding a slot. */
  handshakesActive = 0;
  /** Of those, sessions whose client has not sent its identification yet (bounded by handshake.silentShare). */
  silentHandshakes = 0;
  /** The configured limit; with `auto`, what `capacity` learnt. */
  private fixedMaxStartups: number | undefined;
  /** `maxStartups: auto` (learned-capacity.ts). */
  capacity: LearnedCapacity | undefined;
  /** With a shared store: the store said no slot is free cluster-wide (cleared when one is freed). */
  clusterFull = false;
  /** It throttled a moment ago: no new handshake until the hold ends (full-holds.ts). */
  heldFull = false;
  /** With a shared store that is down: the slots this replica may use alone (cluster.localShare). */
  localCap: number | undefined;
  /** With a shared store: handshake slots held on this sshd by all replicas, as last seen. */
  clusterSlotsInUse: number | undefined;
  /** Consecutive failed session attempts (passive health); reset by a successful attempt. */
  consecutiveFailures = 0;
  /** Consecutive successful / failed active checks (rise / fall). */
  checkSuccesses = 0;
  checkFailures = 0;
  lastIdentification: string | undefined;
  lastBannerMs: number | undefined;
  lastCheck: HealthCheckRecord | undefined;
  /** How this server's USERAUTH_SUCCESS looks when read together with the next packet (learnt). */
  readonly successShapes = new SuccessShapes();

  constructor(pool: string, spec: ServerSpec) {
    this.pool = pool;
    this.name = spec.name;
    this.entry = spec.entry;
    this.host = spec.host;
    this.port = spec.port;
    this.address = formatHostPort(spec);
    this.weight = spec.weight;
    this.backup = spec.backup;
    this.sendProxy = spec.sendProxy;
    this.configureCapacity(spec);
    // Found after start: no sessions until its checks pass.
    if (spec.awaitRise) {
      this.health = 'DOWN';
      this.stateReason = 'dns:new';
    }
  }

  /** Handshake slots allowed at once: the configured number, or the learnt one. */
  get maxStartups(): number {
    return this.capacity?.limit ?? this.fixedMaxStartups ?? 1;
  }

  /** Applies a spec's capacity setting; a learner already running keeps what it learnt. */
  configureCapacity(spec: Pick<ServerSpec, 'maxStartups' | 'learn'>): void {
    if (spec.maxStartups === 'auto') {
      this.fixedMaxStartups = undefined;
      if (this.capacity) this.capacity.configure(spec.learn);
      else this.capacity = new LearnedCapacity(spec.learn);
    } else {
      this.fixedMaxStartups = spec.maxStartups;
      this.capacity = undefined;
    }
  }

  get state(): ServerState {
    if (this.admin === 'maint') return 'MAINT';
    return this.draining || this.admin === 'drain' ? 'DRAINING' : this.health;
  }

  /** Whether new sessions may come here (not retired, not drained or in maintenance by an operator, weight above 0). */
  get takesNewSessions(): boolean {
    return !this.draining && this.admin === 'ready' && this.weight > 0;
  }

  get hasFreeSlot(): boolean {
    return !this.clusterFull && !this.heldFull && this.handshakesActive < (this.localCap ?? this.maxStartups);
  }

  /** One handshake slot (the pool checks `hasFreeSlot` first); `afterRelease` runs once it is free again. */
  takeSlot(afterRelease: () => void): Ticket {
    this.handshakesActive += 1;
    return new ServerTicket(this, 'handshakesActive', afterRelease);
  }

  /** Marks a slot as held by a client that has not identified itself yet. */
  takeSilent(): Ticket {
    this.silentHandshakes += 1;
    return new ServerTicket(this, 'silentHandshakes', undefined);
  }

  /** One session using this server, in setup or spliced (what `leastconn` balances). */
  takeSession(): Ticket {
    this.activeSessions += 1;
    return new ServerTicket(this, 'activeSessions', undefined);
  }

  /** Applies a health verdict; returns the visible change, if any. */
  setHealth(health: ServerHealth, reason: string): ServerStateChange | undefined {
    if (this.health === health) return undefined;
    const from = this.state;
    this.health = health;
    this.checkSuccesses = 0;
    this.checkFailures = 0;
    if (health === 'UP') this.consecutiveFailures = 0;
    return this.changed(from, reason);
  }

  setDraining(draining: boolean, reason: string): ServerStateChange | undefined {
    if (this.draining === draining) return undefined;
    const from = this.state;
    this.draining = draining;
    return this.changed(from, reason);
  }

  setAdmin(admin: AdminState, reason: string): ServerStateChange | undefined {
    const from = this.state;
    this.admin = admin;
    return this.changed(from, reason);
  }

  private changed(from: ServerState, reason: string): ServerStateChange | undefined {
    const to = this.state;
    if (from === to) return undefined;
    this.stateChangedAt = Date.now();
    this.stateReason = reason;
    return { from, to, reason };
  }
}

/**
 * One of a server's counts, given back once. A class, not a closure per ticket: a
 * spliced session holds its session count for its whole life.
 */
class ServerTicket implements Ticket {
  private server: BackendServer | undefined;
  private readonly count: 'handshakesActive' | 'silentHandshakes' | 'activeSessions';
  private readonly afterRelease: (() => void) | undefined;

  constructor(server: BackendServer, count: 'handshakesActive' | 'silentHandshakes' | 'activeSessions', afterRelease: (() => void) | undefined) {
    this.server = server;
    this.count = count;
    this.afterRelease = afterRelease;
  }

  get held(): boolean {
    return this.server !== undefined;
  }

  release(): void {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    server[this.count] -= 1;
    this.afterRelease?.();
  }
}
