import { SuccessShapes } from '../protocol/success-shapes.js';
import type { ServerConfig } from '../config/schema.js';
import type { ProxyVersion } from '../protocol/proxy-protocol-encode.js';
import { formatHostPort } from '../net/address.js';
import type { Ticket } from '../ticket.js';

import type { ServerState } from '../events/contract.js';

export type { ServerState } from '../events/contract.js';
export type ServerHealth = 'UP' | 'DOWN';

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
 * State is two independent facts: `health` (UP/DOWN, from active and passive checks)
 * and `draining` (set by reload/admin). `state` is DRAINING while draining, else the
 * health; undraining returns to whatever health checks found meanwhile. Change state
 * through `BackendPool` (it emits 'server-state' and serves the queue), not directly.
 */
export class BackendServer {
  readonly pool: string;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly address: string;
  /** A PROXY protocol header goes first on every connection (servers[].sendProxy). */
  sendProxy: ProxyVersion | undefined;
  weight: number;
  backup: boolean;
  health: ServerHealth = 'UP';
  draining = false;
  stateChangedAt = Date.now();
  /** Reason code of the last state change, e.g. `check:BANNER_TIMEOUT`, `passive:THROTTLED`, `check:ok`. */
  stateReason: string | undefined;
  /** Spliced and in-setup sessions currently using this server. */
  activeSessions = 0;
  /** Sessions (and health checks) in their SSH handshake on this server, each holding a slot. */
  handshakesActive = 0;
  /** Of those, sessions whose client has not sent its identification yet (bounded by handshake.silentShare). */
  silentHandshakes = 0;
  maxStartups: number;
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

  constructor(pool: string, config: ServerConfig, defaultMaxStartups: number) {
    this.pool = pool;
    this.name = config.name;
    this.host = config.address.host;
    this.port = config.address.port;
    this.address = formatHostPort(config.address);
    this.weight = config.weight;
    this.backup = config.backup;
    this.maxStartups = config.maxStartups ?? defaultMaxStartups;
    this.sendProxy = config.sendProxy;
  }

  get state(): ServerState {
    return this.draining ? 'DRAINING' : this.health;
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
