import type { BackendPool } from '../backend/pool.js';
import type { BackendServer } from '../backend/server.js';
import { serverHealthFields, type ListenerStatus, type PoolStatus, type ProxyStatus, type ServerStatus } from '../observe/status.js';

/** Adds `read` over `items`. */
export const sum = <T>(items: readonly T[], read: (item: T) => number): number => items.reduce((total, item) => total + read(item), 0);

/**
 * /api/status with workers, merged from every worker's own: listeners and counts add up,
 * health fields are the primary's (it runs the checks).
 */
export function mergeListeners(statuses: readonly ProxyStatus[]): ListenerStatus[] {
  const first = statuses[0];
  if (!first) return [];
  return first.listeners.map((listener) => {
    const same = statuses.map((status) => status.listeners.find((candidate) => candidate.name === listener.name));
    return {
      ...listener,
      listening: same.every((entry) => entry?.listening === true),
      activeSessions: sum(same, (entry) => entry?.activeSessions ?? 0),
    };
  });
}

export function mergePool(pool: BackendPool, statuses: readonly ProxyStatus[]): PoolStatus {
  const same = statuses.map((status) => status.pools.find((candidate) => candidate.name === pool.name));
  return {
    name: pool.name,
    balance: pool.settings.balance,
    serversUp: pool.servers.filter((server) => server.state === 'UP').length,
    queueLength: sum(same, (entry) => entry?.queueLength ?? 0),
    queueMaxLength: sum(same, (entry) => entry?.queueMaxLength ?? 0),
    servers: pool.servers.map((server) => mergeServer(server, same.map((entry) => entry?.servers.find((candidate) => candidate.name === server.name)))),
  };
}

/** Counts add up across workers; health fields are the primary's (it runs the checks). */
function mergeServer(server: BackendServer, perWorker: readonly (ServerStatus | undefined)[]): ServerStatus {
  const totalOrNull = (read: (entry: ServerStatus) => number | null): number | null => {
    const values = perWorker.map((entry) => (entry ? read(entry) : null)).filter((value): value is number => value !== null);
    return values.length === 0 ? null : values.reduce((a, b) => a + b, 0);
  };
  return {
    ...serverHealthFields(server),
    activeSessions: sum(perWorker, (entry) => entry?.activeSessions ?? 0),
    handshakeSlots: mergeSlots(perWorker.map((entry) => entry?.handshakeSlots)),
    totalSessions: totalOrNull((entry) => entry.totalSessions),
    failedAttempts: totalOrNull((entry) => entry.failedAttempts),
    lastSessionBannerMs: perWorker.find((entry) => entry?.lastSessionBannerMs !== null && entry?.lastSessionBannerMs !== undefined)?.lastSessionBannerMs ?? null,
  };
}

/**
 * Workers' slots on one server: without a store each has its share of the limit, so
 * limits add up; with one each takes from the whole limit, and the store's count is
 * the cluster-wide one (the highest any worker saw last).
 */
function mergeSlots(perWorker: readonly (ServerStatus['handshakeSlots'] | undefined)[]): ServerStatus['handshakeSlots'] {
  const present = perWorker.filter((entry) => entry !== undefined);
  const clusterCounts = present.map((entry) => entry.cluster).filter((count) => count !== null);
  const shared = present.some((entry) => entry.cluster !== null);
  return {
    used: present.reduce((total, entry) => total + entry.used, 0),
    limit: shared ? Math.max(0, ...present.map((entry) => entry.limit)) : present.reduce((total, entry) => total + entry.limit, 0),
    cluster: clusterCounts.length > 0 ? Math.max(...clusterCounts) : null,
    learned: present.some((entry) => entry.learned),
    known: present.some((entry) => entry.known !== null) ? present.reduce((total, entry) => total + (entry.known ?? 0), 0) : null,
  };
}

/** The store as the workers see it: up only while every worker shares; otherwise the first that does not. */
export function mergeStore(statuses: readonly ProxyStatus[]): ProxyStatus['store'] {
  const stores = statuses.map((status) => status.store).filter((store) => store !== null);
  return stores.find((store) => store.state !== 'up') ?? stores[0] ?? null;
}
