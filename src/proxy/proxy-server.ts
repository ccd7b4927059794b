import { BackendPool } from '../backend/pool.js';
import type { Config } from '../config/schema.js';
import { ProxyEvents } from '../observe/events.js';
import { ConnectionBudget, Listener } from './listener.js';
import type { Session } from './session.js';
import { SourceLimits } from './source-limits.js';

/**
 * The data plane built from a config: pools and listeners sharing one event bus.
 * Observers (logs, metrics, admin) attach to `events`.
 */
export class ProxyServer {
  readonly events: ProxyEvents;
  readonly pools = new Map<string, BackendPool>();
  readonly listeners: Listener[] = [];
  readonly config: Config;
  private readonly budget: ConnectionBudget;
  readonly sourceLimits: SourceLimits;
  private draining = false;

  constructor(config: Config, events: ProxyEvents = new ProxyEvents()) {
    this.config = config;
    this.events = events;
    this.budget = new ConnectionBudget(config.limits.maxConnections);
    this.sourceLimits = new SourceLimits(config.limits);
    for (const pool of config.pools) this.pools.set(pool.name, new BackendPool(pool, events));
    for (const listener of config.listeners) {
      const pool = this.pools.get(listener.pool);
      if (!pool) throw new Error(`listener "${listener.name}" names unknown pool "${listener.pool}"`);
      this.listeners.push(
        new Listener(listener, { pool, timeouts: config.timeouts, limits: config.limits, events, budget: this.budget, sourceLimits: this.sourceLimits }),
      );
    }
  }

  get activeConnections(): number {
    return this.budget.active;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  async start(): Promise<void> {
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
  async stop(drainMs = this.config.timeouts.drain): Promise<void> {
    this.draining = true;
    await Promise.all(this.listeners.map((listener) => listener.stopAccepting()));
    for (const listener of this.listeners) listener.abortPendingHeaders();
    for (const pool of this.pools.values()) pool.rejectQueued('proxy is shutting down');
    for (const session of this.sessions()) if (!session.isSpliced) session.close('SHUTDOWN', 'proxy is shutting down');
    if (this.sessionCount() === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const session of this.sessions()) session.close('DRAIN_TIMEOUT');
      }, drainMs);
      // 'session-closed' is emitted before the session leaves its listener's set: check after.
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
    for (const listener of this.listeners) void listener.stopAccepting();
    for (const listener of this.listeners) listener.abortPendingHeaders();
    for (const pool of this.pools.values()) pool.rejectQueued('proxy stopped');
    for (const session of this.sessions()) session.close('SHUTDOWN');
  }

  private *sessions(): Generator<Session> {
    for (const listener of this.listeners) yield* [...listener.sessions];
  }

  private sessionCount(): number {
    return this.listeners.reduce((sum, listener) => sum + listener.sessions.size, 0);
  }
}
