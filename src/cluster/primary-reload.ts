import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { BackendPool } from '../backend/pool.js';
import type { Reloadable } from '../config/reloader.js';
import type { Config } from '../config/schema.js';
import type { ProxyEvents } from '../events/bus.js';
import type { ReloadChanges } from '../events/contract.js';
import { isConfigReloadResult, workerCount, type ConfigReloadRequest, type ConfigReloadResult } from './messages.js';

/** How long the primary waits for each worker to apply a config; one that does not answer failed. */
const WORKER_RELOAD_TIMEOUT_MS = 10_000;

export interface ClusterReloadOptions {
  /** Workers running (the `workers` setting of the config they were started with). */
  readonly count: number;
  /** The primary's pools (health checks, admin view, metrics): reconfigured in place. */
  readonly pools: Map<string, BackendPool>;
  readonly events: ProxyEvents;
  readonly logger: Logger;
  /** The config in force. */
  readonly current: () => Config;
  /** Every worker applied `config` and the primary's pools follow it: record it (workers forked from now get it), restart checks. */
  readonly applied: (config: Config) => void;
  /** Sends a worker every current health verdict (after it applied a config, new servers included). */
  readonly sendVerdicts: (worker: Worker) => void;
  readonly stopping: () => boolean;
}

/**
 * Hot reload with workers, from the primary: the config was validated here (an invalid
 * one never leaves the primary); every worker applies it with its runtime's reload and
 * answers; only when all did does the primary reconfigure its own pools (health state
 * kept for unchanged servers) and restart its checks. When a worker could not apply
 * it (a new listener cannot bind), the workers that did are sent the old config back,
 * and the old config stays in force everywhere. One outcome is logged and counted.
 */
export class ClusterReloader implements Reloadable {
  private readonly options: ClusterReloadOptions;
  private nextId = 1;
  private readonly pending = new Map<number, (result: ConfigReloadResult) => void>();
  private readonly onMessage = (_worker: Worker, message: unknown): void => {
    if (isConfigReloadResult(message)) this.pending.get(message.id)?.(message);
  };

  constructor(options: ClusterReloadOptions) {
    this.options = options;
    cluster.on('message', this.onMessage);
  }

  close(): void {
    cluster.off('message', this.onMessage);
  }

  async reload(config: Config, source: string): Promise<ReloadChanges | undefined> {
    const { events, logger } = this.options;
    const previous = this.options.current();
    const fail = (message: string, workers?: readonly object[]): Error => {
      events.emit('config-reload', { outcome: 'failed', source, message });
      logger.error({ event: 'config-reload', outcome: 'failed', source, err: message, ...(workers ? { workers } : {}) }, 'config reload failed: old config kept');
      return new Error(message);
    };
    if (this.options.stopping()) throw fail('the proxy is shutting down');
    const results = await this.apply(config, source);
    const failed = results.filter((result) => !result.ok);
    if (failed.length > 0) {
      const applied = results.filter((result) => result.ok).map((result) => result.worker);
      const back = applied.length > 0 ? await this.apply(previous, `${source}:rollback`, applied) : [];
      const stuck = back.filter((result) => !result.ok);
      if (stuck.length > 0) logger.error({ event: 'config-reload', outcome: 'rollback-failed', source, workers: stuck }, 'workers could not return to the old config');
      const reasons = failed.map((result) => `worker ${result.worker}: ${result.message ?? 'failed'}`);
      throw fail(reasons.join('; '), failed.map((result) => ({ worker: result.worker, err: result.message ?? 'failed' })));
    }
    const servers = reconfigurePools(this.options.pools, config, events);
    this.options.applied(config);
    // Verdicts sent while the workers applied the config may have named servers they did not have yet.
    for (const worker of this.connected()) this.options.sendVerdicts(worker);
    this.catchUp(config, source, results);
    logger.level = config.log.level;
    const changes = results[0]?.changes;
    const needRestart = [
      workerCount(config.workers) !== this.options.count ? 'workers' : undefined,
      JSON.stringify(config.admin) !== JSON.stringify(previous.admin) ? 'admin' : undefined,
      config.log.pretty !== previous.log.pretty ? 'log.pretty' : undefined,
    ].filter((field): field is string => field !== undefined);
    events.emit('config-reload', { outcome: 'ok', source, ...(changes ? { changes } : {}) });
    logger.info(
      { event: 'config-reload', outcome: 'ok', source, workers: results.length, changes: changes ?? { servers }, ...(needRestart.length > 0 ? { needRestart } : {}) },
      needRestart.length > 0 ? `config reloaded in ${results.length} workers; ${needRestart.join(', ')} changes need a restart` : `config reloaded in ${results.length} workers`,
    );
    return changes;
  }

  /** A SIGHUP while the workers drain: logged, nothing else. */
  readonly onIgnoredHangup = (): void => {
    this.options.logger.warn({ event: 'sighup-ignored', draining: true }, 'SIGHUP ignored: the proxy is draining');
  };

  rejectReload(source: string, problems: readonly string[]): void {
    this.options.events.emit('config-reload', { outcome: 'invalid', source, message: problems.join('; ') });
    this.options.logger.error({ event: 'config-reload', outcome: 'invalid', source, problems }, 'config reload rejected: invalid config, old config kept');
  }

  /**
   * A worker forked while the reload ran was forked with the old config and was not
   * asked: it gets the new one now (applied once it has started), then the verdicts.
   */
  private catchUp(config: Config, source: string, asked: readonly ConfigReloadResult[]): void {
    const late = this.connected().filter((worker) => !asked.some((result) => result.worker === worker.id));
    if (late.length === 0) return;
    void this.apply(config, `${source}:late`, late.map((worker) => worker.id)).then((results) => {
      for (const result of results) {
        const worker = late.find((candidate) => candidate.id === result.worker);
        if (result.ok && worker) this.options.sendVerdicts(worker);
        else this.options.logger.error({ event: 'config-reload', outcome: 'late-failed', source, worker: result.worker, err: result.message }, 'a worker forked during the reload could not apply it');
      }
    });
  }

  private connected(): Worker[] {
    return Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined && worker.isConnected());
  }

  /** Sends `config` to the connected workers (or those with the given ids); one result per worker, a silent one failed. */
  private apply(config: Config, source: string, only?: readonly number[]): Promise<ConfigReloadResult[]> {
    const workers = this.connected().filter((worker) => only === undefined || only.includes(worker.id));
    const id = this.nextId++;
    const request: ConfigReloadRequest = { kind: 'ssh-banner-proxy:config-reload', id, source, config, workers: this.options.count };
    return new Promise((resolve) => {
      const results = new Map<number, ConfigReloadResult>();
      const done = (): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        const silent = workers.filter((worker) => !results.has(worker.id));
        const all = [
          ...results.values(),
          ...silent.map((worker): ConfigReloadResult => ({ kind: 'ssh-banner-proxy:config-reload-result', id, worker: worker.id, ok: false, message: 'did not answer' })),
        ];
        resolve(all.sort((a, b) => a.worker - b.worker));
      };
      const timer = setTimeout(done, WORKER_RELOAD_TIMEOUT_MS);
      this.pending.set(id, (result) => {
        results.set(result.worker, result);
        if (results.size === workers.length) done();
      });
      if (workers.length === 0) done();
      for (const worker of workers) worker.send(request);
    });
  }
}

/**
 * The primary's pools follow a new config: existing ones reconfigured in place (health
 * state kept for unchanged servers), new ones created, removed ones closed. Keeps the
 * map's order that of the config. Returns the server changes by pool.
 */
export function reconfigurePools(pools: Map<string, BackendPool>, config: Config, events: ProxyEvents): Record<string, { added: string[]; removed: string[]; changed: string[] }> {
  const servers: Record<string, { added: string[]; removed: string[]; changed: string[] }> = {};
  const next = new Map<string, BackendPool>();
  for (const poolConfig of config.pools) {
    const existing = pools.get(poolConfig.name);
    if (existing) {
      const changes = existing.reconfigure(poolConfig);
      if (changes.added.length + changes.removed.length + changes.changed.length > 0) servers[poolConfig.name] = changes;
      next.set(poolConfig.name, existing);
    } else {
      next.set(poolConfig.name, new BackendPool(poolConfig, events));
    }
  }
  for (const [name, pool] of pools) if (!next.has(name)) pool.close();
  pools.clear();
  for (const [name, pool] of next) pools.set(name, pool);
  return servers;
}
