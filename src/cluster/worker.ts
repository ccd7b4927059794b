import cluster from 'node:cluster';
import type { Config } from '../config/schema.js';
import { liveSessionReply } from '../observe/log-identity.js';
import { buildStatus } from '../observe/status.js';
import { controlLocally } from '../observe/admin.js';
import { ProxyRuntime } from '../runtime.js';
import {
  isConfigReloadRequest,
  isServerHealthMessage,
  isServerSetMessage,
  isServerControlRequest,
  isStateSentMessage,
  type ServerControlResult,
  type WorkerAttachedMessage,
  isSessionLookupRequest,
  isSnapshotRequest,
  type ConfigReloadRequest,
  type ConfigReloadResult,
  type SessionLookupResponse,
  type SnapshotResponse,
} from './messages.js';

/** The primary hands each worker the config in force (it may differ from the file on disk: a rejected reload). */
// Not under SSH_BANNER_PROXY_: that prefix is for flags (src/cli/env-flags.ts).
export const WORKER_CONFIG_ENV = 'SBP_CLUSTER_WORKER_CONFIG';
export const WORKER_COUNT_ENV = 'SBP_CLUSTER_WORKERS';

/** How long a new worker waits for the primary's sets and verdicts before it listens anyway. */
const STATE_WAIT_MS = 5000;

/**
 * A worker's side of the cluster: applies the primary's DNS sets and health verdicts to this
 * worker's pools and answers the primary's snapshot requests (metrics and status for
 * the admin endpoint, which only the primary serves). The worker runs its own data
 * plane (listeners share the primary's sockets) and passive health. A reload request
 * is applied with the runtime's reload, quietly (the primary logs and counts it once),
 * and answered with the outcome.
 */
export function attachWorker(runtime: ProxyRuntime, stateReceived: () => void = () => {}): () => void {
  const workerId = cluster.worker?.id ?? 0;
  const onMessage = (message: unknown): void => {
    if (isStateSentMessage(message)) {
      stateReceived();
      return;
    }
    if (isServerControlRequest(message)) {
      void controlLocally(runtime.server.pools, message.request, undefined).then((outcome) => {
        const result: ServerControlResult = { kind: 'ssh-banner-proxy:server-control-result', id: message.id, worker: workerId, outcome };
        if (process.connected) process.send?.(result);
      });
      return;
    }
    if (isServerSetMessage(message)) {
      runtime.server.pools.get(message.pool)?.setMembers(message.entry, message.members);
      return;
    }
    if (isServerHealthMessage(message)) {
      const pool = runtime.server.pools.get(message.pool);
      const server = pool?.servers.find((candidate) => candidate.name === message.server);
      if (pool && server) pool.setHealth(server, message.health, message.reason);
      return;
    }
    if (isConfigReloadRequest(message)) {
      // A worker forked during a reload is asked right after: apply once it has started.
      void started.then(() => applyReload(runtime, message, workerId));
      return;
    }
    if (isSessionLookupRequest(message)) {
      const response: SessionLookupResponse = {
        kind: 'ssh-banner-proxy:session-lookup-result',
        id: message.id,
        worker: workerId,
        session: liveSessionReply(runtime.server.live.find(message.address, message.port)),
      };
      if (process.connected) process.send?.(response);
      return;
    }
    if (isSnapshotRequest(message)) {
      void runtime.metrics.registry.getMetricsAsJSON().then((metrics) => {
        const { metrics: totals } = runtime;
        const response: SnapshotResponse = {
          kind: 'ssh-banner-proxy:snapshot',
          id: message.id,
          worker: workerId,
          metrics,
          status: buildStatus({ proxy: runtime.server, startedAt: runtime.startedAt, totals: (pool, server) => totals.serverTotals(pool, server) }),
        };
        if (process.connected) process.send?.(response);
      });
    }
  };
  process.on('message', onMessage);
  // Messages sent before this listener existed are lost: ask for the sets and verdicts now.
  const attached: WorkerAttachedMessage = { kind: 'ssh-banner-proxy:worker-attached' };
  if (process.connected) process.send?.(attached);
  // Reload is the primary's: a SIGHUP sent to the whole process group must not kill a worker.
  process.on('SIGHUP', () => {});
  // The IPC channel must not keep a drained worker alive: once every listener is open
  // (a worker's listen() itself goes through the channel), the listeners keep it alive.
  let open = 0;
  let markStarted = (): void => {};
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const onListenerOpen = (): void => {
    open += 1;
    if (open !== runtime.config.listeners.length) return;
    process.channel?.unref();
    markStarted();
  };
  runtime.events.on('listener-open', onListenerOpen);
  return () => {
    process.off('message', onMessage);
    // The SIGHUP listener stays: a closing terminal's SIGHUP to the group must not end a draining worker either.
    runtime.events.off('listener-open', onListenerOpen);
  };
}

async function applyReload(runtime: ProxyRuntime, request: ConfigReloadRequest, workerId: number): Promise<void> {
  let result: ConfigReloadResult;
  try {
    const changes = await runtime.reload(workerConfig(request.config, request.workers), request.source, { quiet: true });
    result = { kind: 'ssh-banner-proxy:config-reload-result', id: request.id, worker: workerId, ok: true, changes };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    result = { kind: 'ssh-banner-proxy:config-reload-result', id: request.id, worker: workerId, ok: false, message };
  }
  if (process.connected) process.send?.(result);
}

/**
 * The config the primary forked this worker with, and the worker count (instead of
 * the file: after a rejected reload the file is not the config in force).
 */
export function inheritedConfig(): { readonly config: Config; readonly workers: number } | undefined {
  const json = process.env[WORKER_CONFIG_ENV];
  const workers = Number(process.env[WORKER_COUNT_ENV]);
  if (!cluster.isWorker || json === undefined || !Number.isInteger(workers) || workers < 1) return undefined;
  // Validated by the primary; a validated Config is plain data (JSON round-trips it).
  return { config: JSON.parse(json) as Config, workers };
}

/**
 * Handshake slots protect a real sshd's MaxStartups, and every worker keeps its own:
 * each gets its share (at least 1) so that together they stay within the configured limit.
 */
export function shareHandshakeSlots(config: Config, workers: number): Config {
  const share = (slots: number): number => Math.max(1, Math.floor(slots / workers));
  // `auto` learns per worker: each starts from, and stays under, its share.
  const shareLimit = (limit: number | 'auto'): number | 'auto' => (limit === 'auto' ? limit : share(limit));
  return {
    ...config,
    pools: config.pools.map((pool) => ({
      ...pool,
      handshake: {
        ...pool.handshake,
        maxStartups: shareLimit(pool.handshake.maxStartups),
        learn: { ...pool.handshake.learn, start: share(pool.handshake.learn.start), ceiling: share(pool.handshake.learn.ceiling) },
      },
      servers: pool.servers.map((server) => (server.maxStartups === undefined ? server : { ...server, maxStartups: shareLimit(server.maxStartups) })),
    })),
  };
}

/**
 * What a worker runs of a config: no admin endpoint, its share of the handshake slots;
 * with a shared store, all of them: each worker takes its slots from the store directly.
 */
export function workerConfig(config: Config, workers: number): Config {
  const { admin: _admin, ...dataPlane } = config.cluster ? config : shareHandshakeSlots(config, workers);
  const replicaId = config.cluster?.replicaId;
  // Each worker is a replica of its own in the store: a configured id gets the worker's number.
  if (dataPlane.cluster && replicaId !== undefined) return { ...dataPlane, cluster: { ...dataPlane.cluster, replicaId: `${replicaId}-w${cluster.worker?.id ?? 0}` } };
  return dataPlane;
}

/**
 * A worker's runtime: no active checks (the primary runs them and counts them), no
 * admin endpoint (the primary serves it from the workers' snapshots), process metrics
 * labelled with the worker id, its share of the handshake slots.
 */
export function workerRuntime(config: Config, workers: number, inheritedFds: ReadonlyMap<string, number> = new Map()): ProxyRuntime {
  const dataPlane = workerConfig(config, workers);
  const worker = String(cluster.worker?.id ?? 0);
  // Sockets systemd passed to the primary: a worker's listen({ fd }) is served by the primary, which holds them.
  // The primary's DNS sets and verdicts arrive before the listeners open (bounded: a primary that does not answer is not waited for).
  let received = (): void => {};
  const stateIn = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, STATE_WAIT_MS);
    timer.unref();
    received = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  const runtime = new ProxyRuntime(dataPlane, { healthChecks: false, discovery: false, beforeListen: () => stateIn, metrics: { processLabels: { worker }, healthEvents: false }, inheritedFds });
  attachWorker(runtime, () => received());
  return runtime;
}
