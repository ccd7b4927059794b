import { SourcePenalties } from '../proxy/penalties.js';
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { HealthChecker } from '../backend/health-checker.js';
import { BackendPool } from '../backend/pool.js';
import { attachReloader, type ReloaderOptions } from '../config/reloader.js';
import type { ClusterConfig, Config } from '../config/schema.js';
import { ProxyEvents } from '../events/bus.js';
import { AdminServer, controlLocally } from '../observe/admin.js';
import { adminAuthFor } from '../observe/admin-auth.js';
import { logEvents } from '../observe/log.js';
import { ProxyMetrics } from '../observe/metrics.js';
import { isWorkerAttachedMessage, type ServerHealthMessage, type ServerSetMessage, type StateSentMessage } from './messages.js';
import { Discovery } from '../discovery/discovery.js';
import { forkWorker } from './fork-worker.js';
import { ClusterAdminView } from './primary-admin.js';
import { ClusterReloader } from './primary-reload.js';
import { RestartPolicy } from './restart-policy.js';
import { WORKER_CONFIG_ENV, WORKER_COUNT_ENV } from './worker.js';
import { ClusterStore } from '../store/cluster-store.js';
import { SystemdNotifier } from '../systemd/notify.js';
import { notifyingReloads, serviceStatus } from '../systemd/service.js';


/**
 * `workers: N` (N > 1): the primary forks N workers that each run the full data
 * plane on shared listening sockets, and runs the control plane once: active health
 * checks, whose verdicts it broadcasts to every worker (see worker.ts).
 *
 * Scheduling is SCHED_NONE: the workers accept themselves, each on its own SO_REUSEPORT
 * socket where Node can (src/net/reuse-port.ts), else on the shared socket. The default
 * round-robin would have the primary accept every connection and pass it over IPC, a
 * per-connection cost that caps the connection rate at what one process can accept.
 *
 * The admin endpoint runs here too, once: /metrics, /readyz and /api/status are built
 * from every worker's snapshot (primary-admin.ts).
 *
 * Hot reload (SIGHUP, --watch; `reload`): the primary validates the file and has every
 * worker apply it (primary-reload.ts). Workers are forked with the config in force
 * (not the file on disk, which may hold a rejected config).
 *
 * Resolves with the exit code once every worker has exited after SIGINT/SIGTERM.
 */
export async function runPrimary(config: Config, count: number, logger: Logger, reload?: ReloaderOptions): Promise<number> {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const events = new ProxyEvents();
  const detachLog = logEvents(events, logger);
  let current = config;
  // One map, reconfigured in place by a reload: checks, metrics and the admin view all read it.
  const pools = new Map(config.pools.map((poolConfig) => [poolConfig.name, new BackendPool(poolConfig, events)]));
  const checkers: HealthChecker[] = [];
  // Health checks take their slots from the shared store too (each worker has its own connection to it).
  const store = config.cluster ? new ClusterStore({ settings: primaryStoreSettings(config.cluster), events, env: process.env }) : undefined;
  store?.start();
  // DNS sets are looked up here once; every change goes to every worker before any verdict about it.
  const sets = new Map<string, ServerSetMessage>();
  const setKey = (pool: string, entry: string): string => `${pool}\u0000${entry}`;
  const broadcast = (message: ServerSetMessage | ServerHealthMessage): void => {
    for (const worker of Object.values(cluster.workers ?? {})) if (worker?.isConnected()) worker.send(message);
  };
  const discovery = new Discovery(events, config.dns, (pool, entry, members) => {
    const message: ServerSetMessage = { kind: 'ssh-banner-proxy:server-set', pool, entry, members };
    sets.set(setKey(pool, entry), message);
    broadcast(message);
  });
  await discovery.sync(pools.values(), config.dns);
  const startChecks = (): void => {
    for (const checker of checkers.splice(0)) checker.stop();
    for (const pool of pools.values()) {
      store?.slots.attach(pool);
      const checker = new HealthChecker(pool, events);
      checkers.push(checker);
      checker.start();
    }
  };
  const startedAt = new Map<Worker, number>();
  let stopping = false;
  const primaryStartedAt = Date.now();
  const metrics = new ProxyMetrics({ listeners: [], allListeners: () => [], pools, events, penalties: new SourcePenalties('off'), store }, { processLabels: { worker: 'primary' } });
  const view = new ClusterAdminView({
    pools,
    metrics,
    startedAt: primaryStartedAt,
    expectedWorkers: () => count,
    stopping: () => stopping,
    control: (request) => controlLocally(pools, request, (pool) => discovery.resolveNow(pool)),
  });
  const admin = config.admin ? new AdminServer({ bind: config.admin.bind, maxConnections: config.admin.maxConnections, idleTimeoutMs: config.admin.idleTimeout, logger, startedAt: primaryStartedAt, view, auth: adminAuthFor(config.admin) }) : undefined;
  try {
    await admin?.listen();
  } catch (error) {
    logger.fatal({ err: error }, 'cannot start');
    discovery.stop();
    view.close();
    metrics.close();
    detachLog();
    for (const pool of pools.values()) pool.close();
    await store?.close();
    return 1;
  }

  const healthOf = (pool: BackendPool): ServerHealthMessage[] =>
    pool.servers.map((server) => ({
      kind: 'ssh-banner-proxy:server-health',
      pool: pool.name,
      server: server.name,
      health: server.health,
      reason: server.stateReason ?? 'primary:snapshot',
    }));
  const send = (worker: Worker, message: ServerHealthMessage | ServerSetMessage): void => {
    if (worker.isConnected()) worker.send(message);
  };
  events.on('server-state', ({ pool: poolName, server: serverName }) => {
    const pool = pools.get(poolName);
    const message = pool && healthOf(pool).find((entry) => entry.server === serverName);
    if (message) broadcast(message);
  });

  const sendVerdicts = (worker: Worker): void => {
    for (const message of sets.values()) send(worker, message);
    for (const pool of pools.values()) for (const message of healthOf(pool)) send(worker, message);
  };
  const fork = (): void => {
    const worker = forkWorker({ [WORKER_CONFIG_ENV]: JSON.stringify(current), [WORKER_COUNT_ENV]: String(count) }, logger);
    startedAt.set(worker, Date.now());
    // A new worker learns the current sets and verdicts once it listens for them, before it takes connections.
    worker.on('message', (message: unknown) => {
      if (!isWorkerAttachedMessage(message)) return;
      sendVerdicts(worker);
      if (worker.isConnected()) worker.send({ kind: 'ssh-banner-proxy:state-sent' } satisfies StateSentMessage);
    });
  };
  const reloader = new ClusterReloader({
    count,
    pools,
    events,
    logger,
    current: () => current,
    applied: (next) => {
      current = next;
      // Sets of entries the new config no longer has are not sent to new workers.
      const entries = new Set([...pools.values()].flatMap((pool) => pool.setEntries.map((entry) => setKey(pool.name, entry.name))));
      for (const key of sets.keys()) if (!entries.has(key)) sets.delete(key);
      void discovery.sync(pools.values(), next.dns).then(startChecks);
    },
    sendVerdicts,
    stopping: () => stopping,
  });
  const notifier = SystemdNotifier.fromEnv(process.env, process.pid, (message, error) => logger.warn({ event: 'systemd-notify', err: error }, message));
  const status = (): string => `${serviceStatus(current)}; ${count} workers`;
  const detachReloader = reload ? attachReloader(notifyingReloads(reloader, notifier, status), reload) : () => {};
  // READY=1 once every first worker listens on every listener (a worker's listen goes through here).
  const listenCounts = new Map<number, number>();
  let announced = false;
  const onWorkerListening = (worker: Worker): void => {
    listenCounts.set(worker.id, (listenCounts.get(worker.id) ?? 0) + 1);
    const listeningWorkers = [...listenCounts.values()].filter((listens) => listens >= current.listeners.length).length;
    if (announced || listeningWorkers < count) return;
    announced = true;
    void notifier.ready(status());
  };
  cluster.on('listening', onWorkerListening);

  return new Promise<number>((resolve) => {
    let exitCode = 0;
    const restarts = new RestartPolicy();
    const pendingForks = new Set<NodeJS.Timeout>();
    cluster.on('exit', (worker, code, signal) => {
      const uptimeMs = Date.now() - (startedAt.get(worker) ?? 0);
      startedAt.delete(worker);
      view.workerExited(worker.id);
      if (!stopping) {
        const decision = restarts.decide(uptimeMs, startedAt.size);
        logger.error({ event: 'worker-exit', pid: worker.process.pid, code, signal, uptimeMs, ...decision }, 'worker exited');
        if (decision.action === 'restart') {
          const timer = setTimeout(() => {
            pendingForks.delete(timer);
            if (!stopping) fork();
          }, decision.delayMs);
          pendingForks.add(timer);
          return;
        }
        logger.fatal({ event: 'workers-failed', failedStarts: decision.failedStarts }, 'no worker can start: stopping');
        exitCode = 1;
        shutdown('SIGTERM');
      } else {
        logger.info({ event: 'worker-stopped', pid: worker.process.pid, code, signal }, 'worker stopped');
        // A worker whose drain was cut short (a second signal) exits 1: so does the service. One
        // ended by the stop signal itself (an idle worker can go before its handler runs) stopped cleanly.
        const clean = code === null ? signal === 'SIGTERM' || signal === 'SIGINT' : code === 0;
        if (!clean) exitCode = 1;
      }
      finishIfDone();
    });
    /** After a shutdown: once the last worker is gone, close everything and resolve. */
    function finishIfDone(): void {
      for (const timer of pendingForks) clearTimeout(timer);
      pendingForks.clear();
      if (startedAt.size === 0) {
        for (const checker of checkers) checker.stop();
        discovery.stop();
        for (const pool of pools.values()) pool.close();
        void store?.close();
        detachReloader();
        reloader.close();
        view.close();
        metrics.close();
        detachLog();
        process.off('SIGINT', shutdown);
        process.off('SIGTERM', shutdown);
        cluster.off('listening', onWorkerListening);
        notifier.close();
        void (admin?.close() ?? Promise.resolve()).then(() => resolve(exitCode));
      }
    }
    // Workers drain on SIGTERM themselves (serve's signal handling); a second signal exits them at once.
    let signals = 0;
    function shutdown(signal: NodeJS.Signals): void {
      signals += 1;
      if (signals > 1) {
        // As a single process does: the drain is aborted, and a supervisor must be able to tell.
        exitCode = 1;
        logger.warn({ event: 'shutdown', signal, workers: startedAt.size }, 'second signal: workers exit now');
        for (const worker of startedAt.keys()) worker.process.kill(signal);
        return;
      }
      stopping = true;
      detachReloader();
      for (const checker of checkers) checker.stop();
      logger.info({ event: 'shutdown', signal, workers: startedAt.size }, 'stopping workers');
      void notifier.stopping(`stopping ${startedAt.size} worker(s)`);
      for (const worker of startedAt.keys()) worker.process.kill(signal);
      // No worker alive (all waiting for a restart): nothing will exit, so finish now.
      if (startedAt.size === 0) finishIfDone();
    }
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
    logger.info({ event: 'workers', count }, 'starting workers');
    for (let index = 0; index < count; index += 1) fork();
    startChecks();
  });
}

/** The primary is a replica of its own in the store (its health checks hold slots): a configured id gets `-primary`. */
function primaryStoreSettings(settings: ClusterConfig): ClusterConfig {
  return settings.replicaId === undefined ? settings : { ...settings, replicaId: `${settings.replicaId}-primary` };
}
