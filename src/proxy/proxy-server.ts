import { useReusePort } from '../net/reuse-port.js';
import { BackendPool } from '../backend/pool.js';
import type { Config } from '../config/schema.js';
import { capConnections, FD_RESERVE, readFdLimit, type ConnectionCap } from '../net/fd-limit.js';
import { ProxyEvents } from '../events/bus.js';
import type { ReloadChanges } from '../events/contract.js';
import { ConnectionBudget, Listener, type ListenerDeps } from './listener.js';
import { LiveSessions } from './live-sessions.js';
import type { SharedBudget, SharedBudgetFactory } from './shared-budget.js';
import type { Session } from './session.js';
import { SourcePenalties } from './penalties.js';
import { SourceLimits } from './source-limits.js';
import { localSourceAdmission, type SourceAdmission } from './source-admission.js';
import { localPenaltyCharger, type PenaltyCharger } from './penalty-charger.js';

export interface ProxyServerOptions {
  /** Listening sockets systemd passed, by listener name (src/systemd/listen-fds.ts). */
  readonly inheritedFds?: ReadonlyMap<string, number>;
  /** A budget shared with other replicas (cluster.store): runtime.ts builds it from src/store/. */
  readonly sharedBudget?: SharedBudgetFactory | undefined;
}

/**
 * The data plane built from a config: pools and listeners sharing one event bus.
 * Observers (logs, metrics, admin) attach to `events`.
 */
export class ProxyServer {
  readonly events: ProxyEvents;
  readonly pools = new Map<string, BackendPool>();
  readonly listeners: Listener[] = [];
  /** The config in force (replaced by `reload`). */
  config: Config;
  /** Listeners removed by a reload whose sessions have not ended yet. */
  private readonly retiredListeners = new Set<Listener>();
  /** Pools removed by a reload; closed at stop. */
  private readonly retiredPools = new Set<BackendPool>();
  private readonly budget: ConnectionBudget;
  /** limits.maxConnections as configured and as the descriptor limit allows (recomputed at every reload). */
  connectionCap: ConnectionCap;
  readonly sourceLimits: SourceLimits;
  /** Per-source penalties, shared by all listeners of the process. */
  readonly penalties: SourcePenalties;
  /** Spliced sessions by their backend connection's own end (GET /api/session). */
  readonly live = new LiveSessions();
  /** The shared store (cluster.store): slots, per-source limits and penalties across replicas. */
  readonly store: SharedBudget | undefined;
  private readonly sources: SourceAdmission;
  private readonly charger: PenaltyCharger;
  private draining = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private graceEnds: (() => void) | undefined;

  /** Listening sockets systemd passed, by listener name (socket activation). */
  private readonly inheritedFds: ReadonlyMap<string, number>;

  constructor(config: Config, events: ProxyEvents = new ProxyEvents(), options: ProxyServerOptions = {}) {
    this.config = config;
    this.inheritedFds = options.inheritedFds ?? new Map();
    this.events = events;
    this.connectionCap = connectionCapFor(config);
    this.budget = new ConnectionBudget(this.connectionCap.effective);
    this.sourceLimits = new SourceLimits(config.limits);
    this.penalties = new SourcePenalties(config.penalties);
    this.store = options.sharedBudget?.({ sourceLimits: this.sourceLimits, penalties: this.penalties, events });
    this.sources = this.store?.sources ?? localSourceAdmission(this.sourceLimits);
    this.charger = this.store?.penalties ?? localPenaltyCharger(this.penalties);
    for (const pool of config.pools) this.pools.set(pool.name, this.newPool(pool));
    for (const listener of config.listeners) {
      const pool = this.pools.get(listener.pool);
      if (!pool) throw new Error(`listener "${listener.name}" names unknown pool "${listener.pool}"`);
      this.listeners.push(this.newListener(config, listener, pool));
    }
  }

  private listenerDeps(config: Config, pool: BackendPool): ListenerDeps {
    return {
      pool,
      timeouts: config.timeouts,
      limits: config.limits,
      events: this.events,
      budget: this.budget,
      sources: this.sources,
      penalties: this.penalties,
      charger: this.charger,
      reusePort: useReusePort(config.reusePort),
      live: this.live,
    };
  }

  /** A listener's deps, with the systemd socket that bears its name unless a listener already runs on it. */
  private newListener(config: Config, listener: Config['listeners'][number], pool: BackendPool): Listener {
    const fd = this.inheritedFds.get(listener.name);
    const taken = fd !== undefined && this.allListeners().some((open) => open.name === listener.name && open.inherited);
    const deps = this.listenerDeps(config, pool);
    return new Listener(listener, fd === undefined || taken ? deps : { ...deps, inheritedFd: fd });
  }

  private newPool(config: Config['pools'][number]): BackendPool {
    const pool = new BackendPool(config, this.events);
    this.store?.attach(pool);
    return pool;
  }

  /**
   * Hot reload without dropping a session or refusing a connection. Listeners with
   * the same name and bind keep their socket (new settings apply to the next
   * connection); new ones open first (if one cannot, nothing changes and this
   * throws); removed ones stop accepting and their sessions run on. Pools are
   * reconfigured in place (see BackendPool.reconfigure): health state kept for
   * unchanged servers, removed ones DRAINING. `workers` and `admin` need a restart.
   */
  async reload(config: Config): Promise<ReloadChanges> {
    if (this.draining) throw new Error('the proxy is shutting down');
    const changes: ReloadChanges = { listeners: { added: [], removed: [], updated: [] }, pools: { added: [], removed: [] }, servers: {} };
    // A listener on a socket systemd passed keeps it: the proxy cannot bind that address itself.
    const keepBind = (listener: Listener, next: Config['listeners'][number]): boolean =>
      listener.inherited || (listener.config.bind.host === next.bind.host && listener.config.bind.port === next.bind.port);
    const pools = new Map<string, BackendPool>();
    const poolFor = (name: string): BackendPool => {
      const pool = pools.get(name) ?? this.pools.get(name) ?? this.newPool(config.pools.find((p) => p.name === name) as Config['pools'][number]);
      pools.set(name, pool);
      return pool;
    };
    // 1. Open new listeners (and moved binds) first: failure leaves everything as it was.
    const opened: Listener[] = [];
    for (const next of config.listeners) {
      const current = this.listener(next.name);
      if (current && keepBind(current, next)) continue;
      const listener = this.newListener(config, next, poolFor(next.pool));
      try {
        await listener.open();
      } catch (error) {
        for (const done of opened) await done.stopAccepting();
        throw error;
      }
      opened.push(listener);
    }
    // 2. Pools: update existing ones in place, create new ones, retire removed ones.
    for (const poolConfig of config.pools) {
      const existing = this.pools.get(poolConfig.name);
      if (existing) {
        const serverChanges = existing.reconfigure(poolConfig);
        if (serverChanges.added.length + serverChanges.removed.length + serverChanges.changed.length > 0) changes.servers[poolConfig.name] = serverChanges;
      } else {
        changes.pools.added.push(poolConfig.name);
      }
      pools.set(poolConfig.name, poolFor(poolConfig.name));
    }
    for (const [name, pool] of this.pools) {
      if (pools.has(name)) continue;
      changes.pools.removed.push(name);
      this.retiredPools.add(pool);
    }
    this.pools.clear();
    for (const [name, pool] of pools) this.pools.set(name, pool);
    // The descriptor limit caps a reloaded maxConnections exactly as it capped the first one.
    this.connectionCap = connectionCapFor(config);
    this.budget.max = this.connectionCap.effective;
    this.sourceLimits.update(config.limits);
    this.penalties.update(config.penalties);
    // 3. Listeners: keep and update, swap in the opened ones, retire the rest.
    const next: Listener[] = [];
    for (const listenerConfig of config.listeners) {
      const current = this.listener(listenerConfig.name);
      const fresh = opened.find((listener) => listener.name === listenerConfig.name);
      if (fresh) {
        next.push(fresh);
        changes.listeners.added.push(listenerConfig.name);
        continue;
      }
      if (current) {
        current.update(listenerConfig, this.listenerDeps(config, poolFor(listenerConfig.pool)));
        changes.listeners.updated.push(listenerConfig.name);
        next.push(current);
      }
    }
    for (const listener of this.listeners) {
      if (next.includes(listener)) continue;
      if (!config.listeners.some((candidate) => candidate.name === listener.name)) changes.listeners.removed.push(listener.name);
      await listener.stopAccepting();
      if (listener.sessions.size > 0 || listener.pendingCount > 0) this.retiredListeners.add(listener);
    }
    this.listeners.splice(0, this.listeners.length, ...next);
    this.config = config;
    return changes;
  }

  get activeConnections(): number {
    return this.budget.active;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  async start(): Promise<void> {
    this.store?.start();
    try {
      for (const listener of this.listeners) await listener.open();
    } catch (error) {
      await Promise.all(this.listeners.map((listener) => listener.stopAccepting()));
      throw error;
    }
  }

  /** Looks a listener up by name (tests and admin use the bound port). */
  listener(name: string): Listener | undefined {
    return this.listeners.find((listener) => listener.name === name);
  }

  /**
   * Graceful stop: close listeners, end sessions still in setup, let spliced ones
   * run until `drainMs`, then close them. Resolves when every session is gone.
   */
  async stop(drainMs = this.config.timeouts.drain, graceMs = this.config.timeouts.shutdownGrace): Promise<void> {
    this.draining = true;
    // Not ready any more, but still accepting while the endpoint is being deregistered.
    if (graceMs > 0) await new Promise<void>((resolve) => {
      this.graceEnds = resolve;
      this.graceTimer = setTimeout(resolve, graceMs);
    });
    clearTimeout(this.graceTimer);
    await Promise.all(this.listeners.map((listener) => listener.stopAccepting()));
    for (const listener of this.allListeners()) listener.abortPendingHeaders();
    for (const pool of this.retiredPools) pool.close('proxy is shutting down');
    for (const pool of this.pools.values()) pool.rejectQueued('proxy is shutting down');
    for (const session of this.sessions()) if (!session.isSpliced) session.close('SHUTDOWN', 'proxy is shutting down');
    if (this.sessionCount() > 0) await this.drained(drainMs);
    // Last: sessions that ended above gave their counts back through it.
    await this.store?.close();
  }

  private drained(drainMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const session of this.sessions()) session.close('DRAIN_TIMEOUT');
      }, drainMs);
      // A session leaves its listener's set before it emits 'session-closed'; checked a tick later all the same.
      const check = (): void => {
        if (this.sessionCount() > 0) return;
        clearTimeout(timer);
        this.events.off('session-closed', onClosed);
        resolve();
      };
      const onClosed = (): void => queueMicrotask(check);
      this.events.on('session-closed', onClosed);
    });
  }

  /** Closes everything at once. */
  destroy(): void {
    this.draining = true;
    clearTimeout(this.graceTimer);
    this.graceEnds?.();
    for (const listener of this.listeners) void listener.stopAccepting();
    for (const listener of this.allListeners()) listener.abortPendingHeaders();
    for (const pool of this.retiredPools) pool.close('proxy stopped');
    for (const pool of this.pools.values()) pool.rejectQueued('proxy stopped');
    for (const session of this.sessions()) session.close('SHUTDOWN');
    void this.store?.close();
  }

  /** Listeners in force plus those a reload removed that still carry sessions (or PROXY headers being read). */
  allListeners(): Listener[] {
    for (const listener of this.retiredListeners) if (listener.sessions.size === 0 && listener.pendingCount === 0) this.retiredListeners.delete(listener);
    return [...this.listeners, ...this.retiredListeners];
  }

  private *sessions(): Generator<Session> {
    for (const listener of this.allListeners()) yield* [...listener.sessions];
  }

  sessionCount(): number {
    return this.allListeners().reduce((sum, listener) => sum + listener.sessions.size, 0);
  }
}

/** maxConnections as the descriptor limit allows, with the admin endpoint's connections kept aside. */
function connectionCapFor(config: Config): ConnectionCap {
  return capConnections(config.limits.maxConnections, readFdLimit(), FD_RESERVE + (config.admin?.maxConnections ?? 0));
}
