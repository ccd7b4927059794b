import type { PoolConfig } from '../config/schema.js';
import { formatHostPort } from '../net/address.js';
import { BackendServer } from './server.js';

export interface ServerChanges {
  added: string[];
  removed: string[];
  changed: string[];
}

export interface ReconciledServers {
  /** The pool's servers under the new config, in config order. */
  readonly next: BackendServer[];
  /** Servers the new config no longer has that still carry sessions: they go DRAINING. */
  readonly toRetire: BackendServer[];
  /** Kept servers that a reload had retired and the new config brings back. */
  readonly toUndrain: BackendServer[];
  readonly changes: ServerChanges;
}

/**
 * Matches a reloaded pool's servers to the live ones by name and address: unchanged
 * ones keep their object (health, counters), with weight/backup/maxStartups updated
 * in place; a server whose address changed is a new one.
 */
export function reconcileServers(current: readonly BackendServer[], retired: ReadonlySet<BackendServer>, config: PoolConfig): ReconciledServers {
  const changes: ServerChanges = { added: [], removed: [], changed: [] };
  const kept = new Set<BackendServer>();
  const next: BackendServer[] = [];
  const toUndrain: BackendServer[] = [];
  for (const serverConfig of config.servers) {
    const address = formatHostPort(serverConfig.address);
    const existing = current.find((server) => server.name === serverConfig.name && server.address === address && !retired.has(server));
    if (!existing) {
      next.push(new BackendServer(config.name, serverConfig, config.handshake.maxStartups));
      changes.added.push(serverConfig.name);
      continue;
    }
    kept.add(existing);
    const maxStartups = serverConfig.maxStartups ?? config.handshake.maxStartups;
    if (existing.weight !== serverConfig.weight || existing.backup !== serverConfig.backup || existing.maxStartups !== maxStartups || existing.sendProxy !== serverConfig.sendProxy) {
      changes.changed.push(serverConfig.name);
    }
    existing.sendProxy = serverConfig.sendProxy;
    existing.weight = serverConfig.weight;
    existing.backup = serverConfig.backup;
    existing.maxStartups = maxStartups;
    if (existing.draining && existing.stateReason === 'reload:removed') toUndrain.push(existing);
    next.push(existing);
  }
  const toRetire: BackendServer[] = [];
  for (const server of current) {
    if (kept.has(server) || retired.has(server)) continue;
    changes.removed.push(server.name);
    if (server.activeSessions > 0) toRetire.push(server);
  }
  return { next, toRetire, toUndrain, changes };
}
