import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';

/**
 * Forks a worker that cannot take the primary down with it. A message sent to a worker
 * that has just died, before the primary has seen its channel close, fails with EPIPE,
 * which the Worker emits as 'error': with no listener that is an uncaught exception in
 * the primary. The worker's exit is handled by the 'exit' event; the lost message
 * (a snapshot request, a verdict) only matters to a process that is gone.
 */
export function forkWorker(env: Readonly<Record<string, string>>, logger: Logger): Worker {
  const worker = cluster.fork(env);
  worker.on('error', (error: Error) => {
    logger.warn({ event: 'worker-message-lost', pid: worker.process.pid, err: error }, 'a message to an exiting worker was lost');
  });
  return worker;
}
