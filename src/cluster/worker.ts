import cluster from 'node:cluster';
import type { Config } from '../config/schema.js';
import { buildStatus } from '../observe/status.js';
import { ProxyRuntime } from '../runtime.js';
import { isServerHealthMessage, isSnapshotRequest, type SnapshotResponse } from './messages.js';

/**
 * A worker's side of the cluster: applies the primary's health verdicts to this
 * worker's pools and answers the primary's snapshot requests (metrics and status for
 * the admin endpoint, which only the primary serves). The worker runs its own data
 * plane (listeners share the primary's sockets) and passive health.
 */
export function attachWorker(runtime: ProxyRuntime): () => void {
  const workerId = cluster.worker?.id ?? 0;
  const onMessage = (message: unknown): void => {
    if (isServerHealthMessage(message)) {
      const pool = runtime.server.pools.get(message.pool);
      const server = pool?.servers.find((candidate) => candidate.name === message.server);
      if (pool && server) pool.setHealth(server, message.health, message.reason);
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
  // The IPC channel must not keep a drained worker alive: once every listener is open
  // (a worker's listen() itself goes through the channel), the listeners keep it alive.
  let open = 0;
  const onListenerOpen = (): void => {
    open += 1;
    if (open === runtime.config.listeners.length) process.channel?.unref();
  };
  runtime.events.on('listener-open', onListenerOpen);
  return () => {
    process.off('message', onMessage);
    runtime.events.off('listener-open', onListenerOpen);
  };
}

/**
 * Handshake slots protect a real sshd's MaxStartups, and every worker keeps its own:
 * each gets its share (at least 1) so that together they stay within the configured limit.
 */
export function shareHandshakeSlots(config: Config, workers: number): Config {
  const share = (slots: number): number => Math.max(1, Math.floor(slots / workers));
  return {
    ...config,
    pools: config.pools.map((pool) => ({
      ...pool,
      handshake: { ...pool.handshake, maxStartups: share(pool.handshake.maxStartups) },
      servers: pool.servers.map((server) => (server.maxStartups === undefined ? server : { ...server, maxStartups: share(server.maxStartups) })),
    })),
  };
}

/**
 * A worker's runtime: no active checks (the primary runs them and counts them), no
 * admin endpoint (the primary serves it from the workers' snapshots), process metrics
 * labelled with the worker id, its share of the handshake slots.
 */
export function workerRuntime(config: Config, workers: number): ProxyRuntime {
  const { admin: _admin, ...dataPlane } = shareHandshakeSlots(config, workers);
  const worker = String(cluster.worker?.id ?? 0);
  const runtime = new ProxyRuntime(dataPlane, { healthChecks: false, metrics: { processLabels: { worker }, healthEvents: false } });
  attachWorker(runtime);
  return runtime;
}
