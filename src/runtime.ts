import { noauthOverBudget } from './config/noauth-budget.js';
import type { Logger } from 'pino';
import { HealthChecker } from './backend/health-checker.js';
import type { BackendPool } from './backend/pool.js';
import { BannerPrefetcher } from './backend/prefetch.js';
import type { Config } from './config/schema.js';
import { checkTransparentSetup } from './net/transparent-checks.js';
import { ClusterStore } from './store/cluster-store.js';
import { AdminServer } from './observe/admin.js';
import { adminAuthFor } from './observe/admin-auth.js';
import { ProxyEvents } from './events/bus.js';
import { createLogger, logEvents } from './observe/log.js';
import { logIdentity } from './observe/log-identity.js';
import { ProxyMetrics, type ProxyMetricsOptions } from './observe/metrics.js';
import type { ReloadChanges } from './events/contract.js';
import { ProxyServer } from './proxy/proxy-server.js';
import { Discovery } from './discovery/discovery.js';

export interface RuntimeOptions {
  /** Defaults to a pino logger built from `config.log`. */
  readonly logger?: Logger;
  /** Run active health checks here (default true); a cluster worker gets verdicts from the primary instead. */
  readonly healthChecks?: boolean;
  /** Options for this process's metrics (a cluster worker labels its process metrics, leaves health events to the primary). */
  readonly metrics?: ProxyMetricsOptions;
  /** Look DNS sets up here (default true); a cluster worker gets them from the primary instead. */
  readonly discovery?: boolean;
  /** Awaited before the listeners open (a cluster worker waits for the primary's sets and verdicts). */
  readonly beforeListen?: () => Promise<void>;
  /** Listening sockets systemd passed, by listener name (socket activation). */
  readonly inheritedFds?: ReadonlyMap<string, number>;
}

/**
 * Everything `serve` runs, composed: the data plane, its observers (logs, metrics),
 * health checks, banner prefetch and the admin endpoint. Tests start it in-process.
 */
export class ProxyRuntime {
  /** The config in force (replaced by `reload`). */
  config: Config;
  readonly events = new ProxyEvents();
  readonly logger: Logger;
  readonly server: ProxyServer;
  /** Prometheus metrics (own registry), fed by `events`; served by the admin endpoint. */
  readonly metrics: ProxyMetrics;
  readonly startedAt = Date.now();
  private admin: AdminServer | undefined;
  /** One active health checker per pool (started with the data plane). */
  readonly healthCheckers: HealthChecker[] = [];
  /** Banner prefetch per pool with `prefetch.perServer` > 0 (src/backend/prefetch.ts). */
  readonly prefetchers = new Map<BackendPool, BannerPrefetcher>();
  private readonly detachers: (() => void)[] = [];
  /** DNS sets (docs/discovery.md), when this process looks them up. */
  readonly discovery: Discovery | undefined;
  private stopping: Promise<void> | undefined;

  private readonly options: RuntimeOptions;

  constructor(config: Config, options: RuntimeOptions = {}) {
    this.config = config;
    this.options = options;
    this.logger = options.logger ?? createLogger(config.log, logIdentity(config.cluster?.replicaId));
    const { cluster } = config;
    this.server = new ProxyServer(config, this.events, {
      ...(options.inheritedFds ? { inheritedFds: options.inheritedFds } : {}),
      // The shared store (docs/cluster.md): chosen here, so the data plane never imports it.
      sharedBudget: cluster ? (parts) => new ClusterStore({ settings: cluster, ...parts }) : undefined,
    });
    // A throwing observer is caught by the bus; say so once per event name (it may throw on every event).
    const reported = new Set<string>();
    this.events.onObserverError = (event, error) => {
      if (reported.has(event)) return;
      reported.add(event);
      this.logger.error({ event: 'observer-error', on: event, err: error }, `an observer of '${event}' threw; the data path is unaffected (counted in sshproxy_observer_errors_total)`);
    };
    this.detachers.push(logEvents(this.events, this.logger));
    this.metrics = new ProxyMetrics(this.server, options.metrics);
    this.detachers.push(() => this.metrics.close());
    this.discovery = options.discovery === false ? undefined : new Discovery(this.events, config.dns);
  }

  async start(): Promise<void> {
    this.logger.info(
      {
        event: 'config',
        listeners: this.config.listeners.map((listener) => ({ name: listener.name, pool: listener.pool })),
        pools: this.config.pools.map((pool) => ({ name: pool.name, balance: pool.balance, servers: pool.servers.length })),
      },
      'starting',
    );
    // Sets first: the proxy starts with its servers known (each lookup bounded by dns.timeout × attempts).
    await this.discovery?.sync(this.server.pools.values(), this.config.dns);
    await this.options.beforeListen?.();
    await this.checkTransparent(this.config);
    const cap = this.server.connectionCap;
    if (cap.effective < cap.configured) {
      // A cap within 10% of the setting is the default config meeting a default ulimit: say so, quietly.
      const level = cap.effective < cap.configured * 0.9 ? 'warn' : 'info';
      const needed = cap.configured * 2 + (cap.fdLimit ?? 0) - cap.effective * 2;
      this.logger[level](
        { event: 'fd-limit', maxConnections: cap.configured, fdLimit: cap.fdLimit, effectiveMaxConnections: cap.effective, fdsNeeded: needed },
        `limits.maxConnections ${cap.configured} would need ${needed} file descriptors (two per connection, plus a reserve); the limit is ${cap.fdLimit}, so at most ${cap.effective} connections are accepted (raise ulimit -n to ${needed} for all ${cap.configured})`,
      );
    }
    for (const load of noauthOverBudget(this.config)) {
      this.logger.warn(
        { event: 'noauth-budget', ...load },
        `pool ${load.pool}: health checks (${load.checksPerSecond.toFixed(2)}/s) and unused prefetched connections (${load.prefetchPerSecond.toFixed(2)}/s) leave each backend ${load.perSecond.toFixed(2)} unauthenticated connections per second from this proxy alone; ` +
          'OpenSSH 9.8+ charges each one to the proxy\'s address (PerSourcePenalties noauth) and refuses it past about 1/s sustained. Exempt the proxy (PerSourcePenaltyExemptList) or check less often (docs/penalties.md)',
      );
    }
    if (this.config.admin) {
      // Before the data plane: a bad admin bind fails start with nothing else open.
      this.admin = new AdminServer({
        bind: this.config.admin.bind,
        maxConnections: this.config.admin.maxConnections,
        idleTimeoutMs: this.config.admin.idleTimeout,
        proxy: this.server,
        metrics: this.metrics,
        logger: this.logger,
        startedAt: this.startedAt,
        auth: adminAuthFor(this.config.admin),
        resolve: (pool) => this.discovery?.resolveNow(pool) ?? Promise.resolve(0),
      });
      await this.admin.listen();
    }
    try {
      await this.server.start();
      for (const pool of this.server.pools.values()) {
        if (this.options.healthChecks === false) break;
        const checker = new HealthChecker(pool, this.events);
        this.healthCheckers.push(checker);
        checker.start();
      }
      this.syncPrefetch();
    } catch (error) {
      await this.admin?.close();
      throw error;
    }
  }

  /** With a `source: transparent` pool: every piece it needs is in place, or this throws naming what is missing. */
  private async checkTransparent(config: Config): Promise<void> {
    // A set's members as last looked up (members found later are not checked ahead: SOURCE_UNUSABLE names them).
    const transparent = new Set(config.pools.filter((pool) => pool.source === 'transparent').map((pool) => pool.name));
    const servers = [...this.server.pools.values()].filter((pool) => transparent.has(pool.name)).flatMap((pool) => pool.servers.map(({ host, port }) => ({ host, port })));
    for (const pool of config.pools) if (transparent.has(pool.name) && !this.server.pools.has(pool.name)) servers.push(...pool.servers.flatMap((server) => (server.address === undefined ? [] : [server.address])));
    if (servers.length === 0) return;
    const { problems, warnings } = await checkTransparentSetup({ servers });
    for (const warning of warnings) this.logger.warn({ event: 'transparent-check' }, warning);
    if (problems.length > 0) throw new Error(problems.join('\n'));
  }

  /**
   * Applies a new config without dropping sessions (see ProxyServer.reload); health
   * checkers restart on the reconfigured pools, keeping each server's health state.
   * On failure the old config stays in force. Emits 'config-reload' either way,
   * unless `quiet` (a cluster worker: the primary logs and counts the outcome once).
   */
  async reload(config: Config, source = 'reload', options: { readonly quiet?: boolean } = {}): Promise<ReloadChanges> {
    const needRestart = [
      JSON.stringify(config.admin) !== JSON.stringify(this.config.admin) ? 'admin' : undefined,
      config.workers !== this.config.workers ? 'workers' : undefined,
      config.reusePort !== this.config.reusePort ? 'reusePort' : undefined,
      config.log.pretty !== this.config.log.pretty ? 'log.pretty' : undefined,
      config.log.format !== this.config.log.format || config.log.levelNames !== this.config.log.levelNames ? 'log.format' : undefined,
      // The store connection and every replica's holdings under it live as long as the process.
      JSON.stringify(config.cluster) !== JSON.stringify(this.config.cluster) ? 'cluster' : undefined,
    ].filter((field): field is string => field !== undefined);
    let changes: ReloadChanges;
    try {
      await this.checkTransparent(config);
      changes = await this.server.reload(config);
      await this.discovery?.sync(this.server.pools.values(), config.dns);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (options.quiet === true) throw error;
      this.events.emit('config-reload', { outcome: 'failed', source, message });
      this.logger.error({ event: 'config-reload', outcome: 'failed', source, err: error }, 'config reload failed: old config kept');
      throw error;
    }
    this.config = config;
    this.logger.level = config.log.level;
    if (this.options.healthChecks !== false) {
      for (const checker of this.healthCheckers.splice(0)) checker.stop();
      for (const pool of this.server.pools.values()) {
        const checker = new HealthChecker(pool, this.events);
        this.healthCheckers.push(checker);
        checker.start();
      }
    }
    this.syncPrefetch();
    if (options.quiet === true) return changes;
    this.events.emit('config-reload', { outcome: 'ok', source, changes });
    this.logger.info(
      { event: 'config-reload', outcome: 'ok', source, changes, ...(needRestart.length > 0 ? { needRestart } : {}) },
      needRestart.length > 0 ? `config reloaded; ${needRestart.join(', ')} changes need a restart` : 'config reloaded',
    );
    return changes;
  }

  /** A SIGHUP during the drain: logged, nothing else. */
  onIgnoredHangup = (): void => {
    this.logger.warn({ event: 'sighup-ignored', draining: true }, 'SIGHUP ignored: the proxy is draining');
  };

  /** Records a new config that could not be used (parse or validation errors); the old one stays. */
  rejectReload(source: string, problems: readonly string[]): void {
    this.events.emit('config-reload', { outcome: 'invalid', source, message: problems.join('; ') });
    this.logger.error({ event: 'config-reload', outcome: 'invalid', source, problems }, 'config reload rejected: invalid config, old config kept');
  }

  /** Port the admin endpoint bound, or undefined when `admin` is not configured. */
  get adminPort(): number | undefined {
    return this.admin?.port;
  }

  /** Port a listener actually bound (port 0 in tests). */
  port(listenerName: string): number {
    const port = this.server.listener(listenerName)?.port;
    if (port === undefined) throw new Error(`listener "${listenerName}" is not listening`);
    return port;
  }

  /** One prefetcher per pool that wants prefetch; stopped (connections retired) for pools gone or turned off. */
  private syncPrefetch(): void {
    if (this.stopping) return;
    const pools = new Set(this.server.pools.values());
    for (const [pool, prefetcher] of this.prefetchers) {
      if (pools.has(pool) && (pool.settings.prefetch?.perServer ?? 0) > 0) continue;
      prefetcher.stop();
      this.prefetchers.delete(pool);
    }
    for (const pool of pools) {
      if ((pool.settings.prefetch?.perServer ?? 0) === 0 || this.prefetchers.has(pool)) continue;
      const prefetcher = new BannerPrefetcher(pool, this.events, { timeouts: () => this.config.timeouts });
      this.prefetchers.set(pool, prefetcher);
      prefetcher.start();
    }
  }

  /** Graceful: idempotent, resolves when all sessions are gone. */
  stop(drainMs?: number): Promise<void> {
    this.discovery?.stop();
    // The admin endpoint stays up while draining (/readyz answers 503), then closes.
    for (const checker of this.healthCheckers) checker.stop();
    for (const prefetcher of this.prefetchers.values()) prefetcher.stop();
    // An immediate stop (drainMs 0) skips the shutdown grace too.
    this.stopping ??= this.server.stop(drainMs, drainMs === 0 ? 0 : undefined).finally(async () => {
      for (const pool of this.server.pools.values()) pool.close();
      await this.admin?.close();
      for (const detach of this.detachers.splice(0)) detach();
    });
    return this.stopping;
  }
}
