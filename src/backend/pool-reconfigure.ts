import { formatHostPort } from '../net/address.js';
import { BackendServer } from './server.js';
import type { ServerSpec } from './server-spec.js';

export interface ServerChanges {
  added: string[];
  removed: string[];
  changed: string[];
}

export interface ReconciledServers {
  /** The pool's servers under the new specs, in spec order. */
  readonly next: BackendServer[];
  /** Servers no longer wanted that still carry sessions: they go DRAINING. */
  readonly toRetire: BackendServer[];
  /** Servers no longer wanted with no session: they leave now. */
  readonly gone: BackendServer[];
  /** Kept servers that had been retired and are wanted again. */
  readonly toUndrain: BackendServer[];
  readonly changes: ServerChanges;
}

/**
 * Matches wanted servers (a reloaded config, or a set's new lookup) to the live ones by
 * name and address: unchanged ones keep their object (health, counters, what capacity
 * learnt), with weight/backup/maxStartups updated in place; a server whose address
 * changed is a new one. Retired servers (`retired`) come back if wanted again.
 */
export function reconcileServers(current: readonly BackendServer[], retired: ReadonlySet<BackendServer>, specs: readonly ServerSpec[], pool: string): ReconciledServers {
  const changes: ServerChanges = { added: [], removed: [], changed: [] };
  const kept = new Set<BackendServer>();
  const next: BackendServer[] = [];
  const toUndrain: BackendServer[] = [];
  for (const spec of specs) {
    const address = formatHostPort(spec);
    const existing = current.find((server) => server.name === spec.name && server.address === address && !kept.has(server));
    if (!existing) {
      next.push(new BackendServer(pool, spec));
      changes.added.push(spec.name);
      continue;
    }
    kept.add(existing);
    const before = existing.maxStartups;
    if (existing.weight !== spec.weight || existing.backup !== spec.backup || existing.sendProxy !== spec.sendProxy) changes.changed.push(spec.name);
    existing.reconfigure(spec);
    if (existing.maxStartups !== before && !changes.changed.includes(spec.name)) changes.changed.push(spec.name);
    if (retired.has(existing)) toUndrain.push(existing);
    next.push(existing);
  }
  const toRetire: BackendServer[] = [];
  const gone: BackendServer[] = [];
  for (const server of current) {
    if (kept.has(server) || retired.has(server)) continue;
    changes.removed.push(server.name);
    if (server.activeSessions > 0) toRetire.push(server);
    else gone.push(server);
  }
  return { next, toRetire, gone, toUndrain, changes };
}
