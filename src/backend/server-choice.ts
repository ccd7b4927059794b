import type { PoolConfig } from '../config/schema.js';
import type { Balancer } from './balancer.js';
import type { BackendServer } from './server.js';

export interface LeaseRequest {
  /** What `source` balancing hashes: the client's address. */
  readonly clientKey: string;
  /** Servers this session must not use (it failed on them for good). */
  readonly exclude: ReadonlySet<BackendServer>;
  /** Whether the client has sent its identification; absent: it has. A queued request is told later (`QueuedAcquire.identified`). */
  readonly identified?: boolean;
}

/** Slots of `server` that clients which have not identified may hold (handshake.silentShare). */
export function silentSlots(server: BackendServer, silentShare: number): number {
  return Math.max(1, Math.floor(server.maxStartups * silentShare));
}

/** Servers a request may use now: healthy primaries, else healthy backups, else (whenAllDown: try) any not draining; never one held out. */
export function candidateServers(
  servers: readonly BackendServer[],
  request: LeaseRequest,
  whenAllDown: PoolConfig['whenAllDown'],
  heldOut: (server: BackendServer) => boolean = () => false,
): BackendServer[] {
  // Held out (it penalises the proxy's address): not even whenAllDown: try sends clients there.
  const open = servers.filter((server) => !request.exclude.has(server) && server.takesNewSessions && !heldOut(server));
  const primaries = open.filter((server) => !server.backup && server.health === 'UP');
  if (primaries.length > 0) return primaries;
  const backups = open.filter((server) => server.backup && server.health === 'UP');
  if (backups.length > 0) return backups;
  return whenAllDown === 'try' ? open : [];
}

/**
 * A server with a free slot (or a prefetched connection), by the balancer. `source` is
 * sticky: it picks among all candidates and waits for that server's slot, so a client
 * keeps its server under load. Otherwise servers with a prefetched banner come first:
 * the client gets it at once.
 */
export function chooseServer(
  balancer: Balancer,
  candidates: readonly BackendServer[],
  clientKey: string,
  prefetchReady: (server: BackendServer) => number,
  silentLimit: ((server: BackendServer) => number) | undefined,
): BackendServer | undefined {
  // A client that has not spoken may only use the silent share of a server's slots.
  const open = silentLimit ? candidates.filter((candidate) => candidate.silentHandshakes < silentLimit(candidate)) : candidates;
  if (balancer.sticky) {
    const server = balancer.pick(candidates, clientKey);
    return server && open.includes(server) && (server.hasFreeSlot || prefetchReady(server) > 0) ? server : undefined;
  }
  const prefetched = open.filter((candidate) => prefetchReady(candidate) > 0);
  return balancer.pick(prefetched.length > 0 ? prefetched : open.filter((candidate) => candidate.hasFreeSlot), clientKey);
}

/** Whether any server of the pool could take a session now (a slot or a prefetched connection): serving the queue is pointless otherwise. */
export function anyServerFree(servers: readonly BackendServer[], prefetchReady: (server: BackendServer) => number): boolean {
  return servers.some((server) => server.hasFreeSlot || prefetchReady(server) > 0);
}
