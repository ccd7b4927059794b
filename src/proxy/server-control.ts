import type { BackendPool } from '../backend/pool.js';
import type { AdminState, BackendServer } from '../backend/server.js';

/**
 * An operator's change at run time (admin API, `ssh-banner-proxy ctl`). `server` is a
 * server's name, or a config entry's name: every member of that DNS set.
 */
export type ControlRequest =
  | { readonly action: 'state'; readonly pool: string; readonly server: string; readonly state: AdminState }
  | { readonly action: 'weight'; readonly pool: string; readonly server: string; readonly weight: number }
  | { readonly action: 'resolve'; readonly pool: string };

export interface ControlledServer {
  readonly name: string;
  readonly state: string;
  readonly admin: AdminState;
  readonly weight: number;
}

export type ControlOutcome =
  | { readonly ok: true; readonly pool: string; readonly servers: readonly ControlledServer[]; readonly resolvedSets?: number }
  | { readonly ok: false; readonly status: 400 | 404; readonly error: string; readonly message: string };

export const ADMIN_STATES: readonly AdminState[] = ['ready', 'drain', 'maint'];

/** Reads a control request from a parsed JSON body, or says what is wrong with it. */
export function parseControlRequest(action: ControlRequest['action'], body: unknown): ControlRequest | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'expected a JSON object';
  const fields = body as Record<string, unknown>;
  const pool = fields['pool'];
  if (typeof pool !== 'string' || pool === '') return '"pool": expected the pool\'s name';
  if (action === 'resolve') return { action, pool };
  const server = fields['server'];
  if (typeof server !== 'string' || server === '') return '"server": expected a server\'s name, or a servers[] entry\'s name (all its DNS members)';
  if (action === 'state') {
    const state = fields['state'];
    if (typeof state !== 'string' || !(ADMIN_STATES as readonly string[]).includes(state)) return `"state": expected one of ${ADMIN_STATES.join(', ')}, got ${JSON.stringify(state)}`;
    return { action, pool, server, state: state as AdminState };
  }
  const weight = fields['weight'];
  if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > 256) return `"weight": expected a whole number from 0 to 256, got ${JSON.stringify(weight)}`;
  return { action, pool, server, weight };
}

/**
 * Applies a state or weight change to this process's pools. A change lasts as long as
 * the server object: across reloads that keep the server, not across a restart, nor for
 * a DNS member that vanished and came back (docs/operations.md, "Runtime control").
 */
export function applyControl(pools: ReadonlyMap<string, BackendPool>, request: Exclude<ControlRequest, { action: 'resolve' }>): ControlOutcome {
  const pool = pools.get(request.pool);
  if (!pool) return { ok: false, status: 404, error: 'NO_POOL', message: `no pool "${request.pool}" (have: ${[...pools.keys()].join(', ')})` };
  const servers = serversNamed(pool, request.server);
  if (servers.length === 0) {
    return { ok: false, status: 404, error: 'NO_SERVER', message: `pool "${pool.name}" has no server or entry "${request.server}" (servers: ${pool.servers.map((server) => server.name).join(', ') || 'none'})` };
  }
  for (const server of servers) {
    if (request.action === 'state') pool.setAdminState(server, request.state, `admin:${request.state}`);
    else pool.setWeight(server, request.weight);
  }
  return { ok: true, pool: pool.name, servers: servers.map(controlledServer) };
}

export function controlledServer(server: BackendServer): ControlledServer {
  return { name: server.name, state: server.state, admin: server.admin, weight: server.weight };
}

function serversNamed(pool: BackendPool, name: string): BackendServer[] {
  const exact = pool.servers.filter((server) => server.name === name);
  return exact.length > 0 ? exact : pool.servers.filter((server) => server.entry === name && !server.draining);
}
