import type { PenalisedSource } from '../proxy/penalties.js';
import type { StoreStatus } from '../store/cluster-store.js';
import type { BackendPool } from '../backend/pool.js';
import type { BackendServer, ServerState } from '../backend/server.js';
import type { ProxyServer } from '../proxy/proxy-server.js';
import { VERSION } from '../version.js';
import type { ServerTotals } from './metrics.js';

export interface ServerStatus {
  readonly name: string;
  /** The config entry it comes from (a DNS set's members share one). */
  readonly entry: string;
  readonly address: string;
  readonly state: ServerState;
  /** An operator's state (admin API): ready, drain or maint. */
  readonly admin: string;
  readonly stateReason: string | null;
  /** ISO time of the last state change (or of start). */
  readonly lastStateChange: string;
  readonly weight: number;
  readonly backup: boolean;
  readonly activeSessions: number;
  /** `cluster`: held by all replicas, as the shared store last said (null without a store). */
  /** `learned`: the limit comes from `maxStartups: auto` (`known`: the highest level not refused since the last refusal). */
  readonly handshakeSlots: { readonly used: number; readonly limit: number; readonly cluster: number | null; readonly learned: boolean; readonly known: number | null };
  readonly totalSessions: number | null;
  readonly failedAttempts: number | null;
  readonly lastCheck: { readonly ok: boolean; readonly code: string | null; readonly message: string | null; readonly at: string } | null;
  /** From the last health check. */
  readonly lastBannerMs: number | null;
  /** From the last session that reached this server's banner. */
  readonly lastSessionBannerMs: number | null;
  readonly identification: string | null;
}

export interface PoolStatus {
  readonly name: string;
  readonly balance: string;
  readonly serversUp: number;
  readonly queueLength: number;
  readonly queueMaxLength: number;
  readonly servers: readonly ServerStatus[];
}

export interface ListenerStatus {
  readonly name: string;
  readonly address: string | null;
  readonly pool: string;
  readonly listening: boolean;
  readonly activeSessions: number;
}

export interface ProxyStatus {
  readonly version: string;
  readonly nodeVersion: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly uptimeSeconds: number;
  readonly draining: boolean;
  readonly ready: Readiness;
  /** `limit`: the limit in force (maxConnections capped by the descriptor limit); `configured`: the file's. */
  readonly connections: { readonly active: number; readonly limit: number; readonly configured: number; readonly fdLimit: number | null };
  readonly listeners: readonly ListenerStatus[];
  readonly pools: readonly PoolStatus[];
  readonly penalties: PenaltiesStatus;
  /** The shared store (cluster.store), or null without one. */
  readonly store: StoreStatusView | null;
}

/** What /api/status shows of the shared store. */
export interface StoreStatusView {
  readonly replica: string;
  /** The URL, password masked. */
  readonly url: string;
  /** up: limits are shared; connecting/down: this replica decides alone (onStoreDown). */
  readonly state: string;
  /** ISO time of the last state change. */
  readonly since: string;
  readonly reason: string | null;
  readonly onStoreDown: string;
  /** Replicas sharing the store at the last heartbeat (0: not seen yet). */
  readonly replicas: number;
  /** The share of each limit this replica keeps to alone while the store is down. */
  readonly fallbackShare: number;
}

/** Sources refused for their penalties right now, most recently penalised first (at most PENALISED_SHOWN). */
export interface PenaltiesStatus {
  readonly enabled: boolean;
  /** Sources with a penalty running (refused or not yet). */
  readonly sourcesTracked: number;
  readonly penalisedCount: number;
  readonly penalised: readonly PenalisedSource[];
}

export const PENALISED_SHOWN = 50;

export type Readiness =
  | { readonly ready: true }
  | { readonly ready: false; readonly reason: 'DRAINING' | 'LISTENER_CLOSED' | 'NO_SERVER_UP' | 'UNKNOWN_POOL'; readonly message: string };

export interface StatusSource {
  readonly proxy: ProxyServer;
  readonly startedAt: number;
  /** Per-server totals since start, when metrics are attached. */
  readonly totals?: (pool: string, server: string) => ServerTotals;
}

/**
 * Ready means "this proxy can accept and queue": not draining, every listener open.
 * Backend health is deliberately left out: a proxy whose backends are all briefly
 * down still holds and queues clients (whenAllDown: try), and if readiness followed
 * backends every replica would leave the Service together. Backend health belongs in
 * metrics and alerts. `/readyz?pool=NAME` adds "and NAME has a server UP", for a probe
 * that is about the backend (a sidecar's sshd container).
 */
export function readiness(proxy: ProxyServer, pool?: string): Readiness {
  if (proxy.isDraining) return { ready: false, reason: 'DRAINING', message: 'the proxy is shutting down' };
  const closed = proxy.listeners.filter((listener) => !listener.listening).map((listener) => listener.name);
  if (closed.length > 0) {
    return { ready: false, reason: 'LISTENER_CLOSED', message: `listener(s) not open: ${closed.join(', ')}` };
  }
  return poolReadiness(proxy.pools, pool);
}

/** For `/readyz?pool=NAME`: whether that pool has a server UP (ready when no pool is named). */
export function poolReadiness(pools: ReadonlyMap<string, BackendPool>, name: string | undefined): Readiness {
  if (name === undefined) return { ready: true };
  const pool = pools.get(name);
  // A probe that names a pool the config lacks is misconfigured: say so, not "no server UP".
  if (!pool) return { ready: false, reason: 'UNKNOWN_POOL', message: `no pool named "${name}" (pools: ${[...pools.keys()].join(', ')})` };
  if (!pool.servers.some((server) => server.state === 'UP')) return { ready: false, reason: 'NO_SERVER_UP', message: `no server UP in pool ${name}` };
  return { ready: true };
}

/** Snapshot of listeners, pools and servers: what /api/status returns and the status page shows. */
export function buildStatus(source: StatusSource): ProxyStatus {
  const { proxy } = source;
  const now = Date.now();
  return {
    version: VERSION,
    nodeVersion: process.versions.node,
    pid: process.pid,
    startedAt: new Date(source.startedAt).toISOString(),
    uptimeSeconds: Math.round((now - source.startedAt) / 1000),
    draining: proxy.isDraining,
    ready: readiness(proxy),
    connections: { active: proxy.activeConnections, limit: proxy.connectionCap.effective, configured: proxy.config.limits.maxConnections, fdLimit: proxy.connectionCap.fdLimit ?? null },
    listeners: proxy.listeners.map((listener) => ({
      name: listener.name,
      address: listener.address ?? null,
      pool: listener.config.pool,
      listening: listener.listening,
      activeSessions: listener.sessions.size,
    })),
    pools: [...proxy.pools.values()].map((pool) => poolStatus(pool, source)),
    penalties: {
      enabled: proxy.penalties.enabled,
      sourcesTracked: proxy.penalties.size,
      penalisedCount: proxy.penalties.penalisedCount(),
      penalised: proxy.penalties.penalised(PENALISED_SHOWN),
    },
    store: storeStatus(proxy.store?.status()),
  };
}

export function storeStatus(status: StoreStatus | undefined): StoreStatusView | null {
  if (!status) return null;
  return {
    replica: status.replica,
    url: status.store,
    state: status.state,
    since: new Date(status.since).toISOString(),
    reason: status.reason ?? null,
    onStoreDown: status.onStoreDown,
    replicas: status.replicas,
    fallbackShare: Math.round(status.fallbackShare * 1000) / 1000,
  };
}

function poolStatus(pool: BackendPool, source: StatusSource): PoolStatus {
  return {
    name: pool.name,
    balance: pool.settings.balance,
    serversUp: pool.servers.filter((server) => server.state === 'UP').length,
    queueLength: pool.queueLength,
    queueMaxLength: pool.settings.queue.maxLength,
    servers: pool.servers.map((server) => serverStatus(server, source)),
  };
}

/** A server's health and settings as /api/status shows them (with workers, from the primary's checks). */
export type ServerHealthFields = Pick<ServerStatus, 'name' | 'entry' | 'admin' | 'address' | 'state' | 'stateReason' | 'lastStateChange' | 'weight' | 'backup' | 'lastCheck' | 'lastBannerMs' | 'identification'>;

export function serverHealthFields(server: BackendServer): ServerHealthFields {
  const check = server.lastCheck;
  return {
    name: server.name,
    entry: server.entry,
    admin: server.admin,
    address: server.address,
    state: server.state,
    stateReason: server.stateReason ?? null,
    lastStateChange: new Date(server.stateChangedAt).toISOString(),
    weight: server.weight,
    backup: server.backup,
    lastCheck: check
      ? { ok: check.ok, code: check.code ?? null, message: check.message ?? null, at: new Date(check.at).toISOString() }
      : null,
    lastBannerMs: roundMs(server.lastBannerMs),
    identification: server.lastIdentification ?? null,
  };
}

function serverStatus(server: BackendServer, source: StatusSource): ServerStatus {
  const totals = source.totals?.(server.pool, server.name);
  const health = serverHealthFields(server);
  return {
    ...health,
    activeSessions: server.activeSessions,
    handshakeSlots: {
      used: server.handshakesActive,
      limit: server.maxStartups,
      cluster: server.clusterSlotsInUse ?? null,
      learned: server.capacity !== undefined,
      known: server.capacity?.known ?? null,
    },
    totalSessions: totals?.sessions ?? null,
    failedAttempts: totals?.failedAttempts ?? null,
    lastSessionBannerMs: roundMs(totals?.lastSessionBannerMs),
  };
}

const roundMs = (ms: number | undefined): number | null => (ms === undefined ? null : Math.round(ms * 100) / 100);
