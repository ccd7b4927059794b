import type { Config } from '../config/schema.js';
import { ProxyRuntime } from '../runtime.js';
import { isServerHealthMessage } from './messages.js';

/**
 * A worker's side of the cluster: applies the primary's health verdicts to this
 * worker's pools. The worker runs its own data plane (listeners share the primary's
 * sockets), passive health, and no active checks or admin endpoint.
 */
export function attachWorker(runtime: ProxyRuntime): () => void {
  const onMessage = (message: unknown): void => {
    if (!isServerHealthMessage(message)) return;
    const pool = runtime.server.pools.get(message.pool);
    const server = pool?.servers.find((candidate) => candidate.name === message.server);
    if (pool && server) pool.setHealth(server, message.health, message.reason);
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

/** A worker's runtime: no active checks (the primary runs them) and no admin endpoint (see docs/benchmarks.md). */
export function workerRuntime(config: Config): ProxyRuntime {
  const { admin: _admin, ...dataPlane } = config;
  const runtime = new ProxyRuntime(dataPlane, { healthChecks: false });
  attachWorker(runtime);
  return runtime;
}
