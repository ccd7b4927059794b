import type { PoolConfig } from '../config/schema.js';
import type { AttemptFailureCode } from '../errors.js';
import type { ProxyEvents } from '../events/bus.js';
import { FullHolds } from './full-holds.js';
import { OwnPenaltyWatch } from './own-penalty.js';
import { PassiveEjections, recordAttemptOutcome } from './passive-health.js';
import type { BackendServer, CheckResult, ServerHealth } from './server.js';

/** What the outcomes change in their pool. */
export interface OutcomeHooks {
  readonly pool: string;
  readonly events: ProxyEvents;
  settings(): PoolConfig;
  setHealth(server: BackendServer, health: ServerHealth, reason: string): void;
  /** A server may be usable again (`sweep` false), or unusable for some waiters (`sweep`: fail those left with none). */
  changed(sweep: boolean): void;
  /** `maxStartups: auto` moved a limit: caps follow, and the store is told. */
  capacityChanged(server: BackendServer, limit: number): void;
}

/**
 * What a pool learns from session attempts and health checks, per server: passive
 * health (and the ejections while checks are off), the hold of a server that throttled
 * (full, not down), the watch on a server that refuses the proxy's own address, and the
 * learnt capacity of `maxStartups: auto`, and the rise/fall count of active checks. Fed
 * outcomes; tells its pool through hooks.
 */
export class ServerOutcomes {
  private readonly hooks: OutcomeHooks;
  private readonly ejections = new PassiveEjections();
  /** Backends that penalise the proxy's own address, held out (own-penalty.ts). */
  private readonly ownPenalty: OwnPenaltyWatch;
  /** Backends that throttled a moment ago: full, not down (full-holds.ts). */
  private readonly fullHolds: FullHolds;

  constructor(hooks: OutcomeHooks, now: () => number) {
    this.hooks = hooks;
    this.fullHolds = new FullHolds(() => hooks.changed(false));
    this.ownPenalty = new OwnPenaltyWatch(
      {
        started: (episode) => this.announcePenalty('started', episode.server, episode),
        extended: (episode) => this.announcePenalty('extended', episode.server, episode),
        ended: (server, refusals) => this.announcePenalty('ended', server, { refusals }),
        holdEnded: () => hooks.changed(false),
      },
      now,
    );
  }

  /** Whether `server` is held out now because it refuses the proxy's own address. */
  isHeldOut(server: BackendServer): boolean {
    return this.ownPenalty.isHeldOut(server);
  }

  /**
   * A health check's result: counted towards `rise` / `fall` (the server's health follows), and
   * taught to the penalty watch, the full holds and learnt capacity. A failure of the proxy's
   * own resources (LOCAL_RESOURCE) says nothing of the server and is only recorded.
   */
  check(server: BackendServer, result: CheckResult, proxyAddress?: string): void {
    const counted = result.ok || result.code !== 'LOCAL_RESOURCE';
    const verdict = server.recordCheck(result, this.hooks.settings().healthCheck, counted);
    if (!counted) return;
    // A throttle holds the server briefly (full-holds.ts) and still counts towards `fall`:
    // `fall` checks in a row, `interval` apart, refused is a server refusing for that long.
    this.learn(server, result.ok ? undefined : result.code, proxyAddress);
    if (verdict !== undefined) this.hooks.setHealth(server, verdict, verdict === 'UP' ? 'check:ok' : `check:${result.ok ? 'ok' : result.code}`);
  }

  /** A session attempt's outcome (undefined = success): what a check teaches, and passive health too (never for a throttle). */
  attempt(server: BackendServer, failure: AttemptFailureCode | undefined, proxyAddress?: string): void {
    if (this.learn(server, failure, proxyAddress)) return;
    const settings = this.hooks.settings();
    if (!recordAttemptOutcome(server, failure, settings.passiveHealth.consecutiveFailures)) return;
    this.hooks.setHealth(server, 'DOWN', `passive:${failure ?? 'unknown'}`);
    // Without active checks nothing would bring it back: eject for one check interval.
    if (!settings.healthCheck.enabled) {
      this.ejections.eject(server, settings.healthCheck.interval, (ejected) => this.hooks.setHealth(ejected, 'UP', 'passive:expired'));
    }
  }

  /**
   * An outcome (undefined = success) for the penalty watch, the full holds and learnt
   * capacity; true when the failure was a throttle (the server is full, not down).
   */
  private learn(server: BackendServer, failure: AttemptFailureCode | undefined, proxyAddress: string | undefined): boolean {
    if (failure === undefined) {
      this.ownPenalty.succeeded(server);
      this.fullHolds.succeeded(server);
      // The handshake's own slot is still held: it counts.
      this.learnCapacity(server, 'succeeded', server.handshakesActive);
      return false;
    }
    this.ownPenalty.failed(server, failure, proxyAddress);
    if (!this.fullHolds.refused(server, failure, this.hooks.settings().retry)) return false;
    // The refused connection's slot is already given back: it counts too.
    this.learnCapacity(server, 'refused', server.handshakesActive + 1);
    return true;
  }

  /** Another replica learnt `limit` for these servers (shared store). */
  adoptCapacity(servers: readonly BackendServer[], limit: number): void {
    for (const server of servers) {
      const change = server.capacity?.adopt(limit);
      if (change && server.capacity) this.hooks.events.emit('capacity-learned', { pool: this.hooks.pool, server: server.name, limit: server.capacity.limit, change });
    }
  }

  /** The server left the pool. */
  forget(server: BackendServer): void {
    this.fullHolds.forget(server);
  }

  clear(): void {
    this.ejections.clear();
    this.ownPenalty.clear();
    this.fullHolds.clear();
  }

  /** `maxStartups: auto`: a handshake through or refused teaches the server's limit (learned-capacity.ts). */
  private learnCapacity(server: BackendServer, outcome: 'succeeded' | 'refused', inFlight: number): void {
    const capacity = server.capacity;
    if (!capacity) return;
    const change = outcome === 'succeeded' ? capacity.succeeded(inFlight) : capacity.refused(inFlight);
    if (change === undefined) return;
    this.hooks.events.emit('capacity-learned', { pool: this.hooks.pool, server: server.name, limit: capacity.limit, change, inFlight });
    this.hooks.capacityChanged(server, capacity.limit);
  }

  private announcePenalty(
    phase: 'started' | 'extended' | 'ended',
    server: BackendServer,
    detail: { readonly holdMs?: number; readonly refusals: number; readonly proxyAddress?: string | undefined; readonly withNotice?: boolean },
  ): void {
    const { holdMs, refusals, proxyAddress, withNotice } = detail;
    this.hooks.events.emit('backend-penalty', {
      pool: this.hooks.pool,
      server: server.name,
      address: server.address,
      phase,
      refusals,
      ...(withNotice === undefined ? {} : { withNotice }),
      ...(holdMs === undefined ? {} : { holdMs }),
      ...(proxyAddress === undefined ? {} : { proxyAddress }),
    });
    // Held out: waiters left with no other server fail now rather than wait on it.
    this.hooks.changed(true);
  }
}
