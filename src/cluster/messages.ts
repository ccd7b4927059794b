import { availableParallelism } from 'node:os';
import type { ServerHealth } from '../backend/server.js';

/**
 * What the primary tells workers. Health checks run once, in the primary; each
 * verdict is broadcast so every worker's pools route around the same DOWN servers.
 */
export interface ServerHealthMessage {
  readonly kind: 'ssh-banner-proxy:server-health';
  readonly pool: string;
  readonly server: string;
  readonly health: ServerHealth;
  readonly reason: string;
}

export function isServerHealthMessage(message: unknown): message is ServerHealthMessage {
  return typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === 'ssh-banner-proxy:server-health';
}

/** `workers: auto` is one per core the process may use. */
export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? availableParallelism() : setting;
}
