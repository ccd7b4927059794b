import type { PoolConfig } from '../config/schema.js';
import type { AttemptFailureCode } from '../errors.js';
import type { ProxyEvents } from '../events/bus.js';
import type { Ticket } from '../ticket.js';
import { createBalancer, type Balancer } from './balancer.js';
import { createLease, type Lease, type PrefetchSource } from './lease.js';
import type { AcquireResult } from './acquire-queue.js';
import type { ServerChanges } from './pool-reconfigure.js';
import { PoolMembers } from './pool-members.js';
import type { AdminState, BackendServer, CheckResult, ServerHealth, ServerStateChange } from './server.js';
import { isServerSet, type SetMember } from './server-spec.js';
import { ServerOutcomes } from './server-outcomes.js';
import { candidateServers, chooseServer, silentSlots, type LeaseRequest } from './server-choice.js';
import type { SlotAuthority } from './slot-authority.js';
import { SlotGate } from './slot-gate.js';
import { SlotDispatcher, type QueuedAcquire } from './slot-dispatcher.js';

export type { Lease, PrefetchSource } from './lease.js';
export type { LeaseRequest } from './server-choice.js';

export type { AcquireFailureCode, AcquireResult } from './acquire-queue.js';
export type { QueuedAcquire } from './slot-dispatcher.js';

/**
 * Backend servers of one pool: picks a server by balance and health, and hands out
 * handshake slots so no server has more than `maxStartups` sessions in their SSH
 * handshake at once. Its parts: who the servers are (pool-members.ts), what outcomes
 * teach of them (server-outcomes.ts), the slots themselves, local or shared (slot-gate.ts),
 * and who gets the next one: the queue and the connect rate (slot-dispatcher.ts).
 */
export class BackendPool {
  readonly name: string;
  readonly servers: BackendServer[];
  private config: PoolConfig;
  private balancer: Balancer;
  private readonly events: ProxyEvents;
  /** The queue and the connect rate (slot-dispatcher.ts). */
  private readonly dispatcher: SlotDispatcher;
  /** Who the servers are: the config's, and DNS sets' members (pool-members.ts). */
  private readonly members: PoolMembers;
  /** Handshake slots, local or shared through the store (slot-gate.ts). */
  private readonly gate: SlotGate;
  /** Passive health, full holds, the own-address penalty watch, learnt capacity (server-outcomes.ts). */
  private readonly outcomes: ServerOutcomes;
  /** Banner prefetch (src/backend/prefetch.ts), when `prefetch.perServer` > 0. */
  private prefetch: PrefetchSource | undefined;
  private closed = false;

  /** `now`: one monotonic clock for the queue's waits, the connect rate and the hold-outs (tests pass their own). */
  constructor(config: PoolConfig, events: ProxyEvents, now: () => number = () => performance.now()) {
    this.name = config.name;
    this.config = config;
    this.events = events;
    this.balancer = createBalancer(config.balance);
    this.gate = new SlotGate(events, () => this.serveQueue());
    this.outcomes = new ServerOutcomes(
      {
        pool: config.name,
        events,
        settings: () => this.config,
        setHealth: (server, health, reason) => this.setHealth(server, health, reason),
        changed: (sweep) => (sweep ? this.dispatcher.sweep() : this.serveQueue()),
        capacityChanged: (server, limit) => {
          this.gate.store?.learned?.(server, limit);
          this.gate.applyCaps(this.servers);
          this.serveQueue();
        },
      },
      now,
    );
    this.members = new PoolMembers(config, {
      pool: config.name,
      setDraining: (server, draining, reason) => this.setDraining(server, draining, reason),
      removed: (server) => {
        this.outcomes.forget(server);
        this.balancer.forget?.(server);
        this.events.emit('server-removed', { pool: this.name, server: server.name, address: server.address });
      },
      changed: () => {
        this.gate.applyCaps(this.servers);
        this.dispatcher.sweep();
      },
    });
    this.servers = this.members.servers;
    this.dispatcher = new SlotDispatcher(
      {
        name: this.name,
        servers: this.servers,
        settings: () => this.config,
        candidates: (request) => this.candidates(request),
        choose: (candidates, request, silent) => this.choose(candidates, request, silent),
        lease: (server, silentClient) => this.leaseWithSlot(server, silentClient),
        prefetchReady: (server) => this.prefetchReady(server),
        noBackendMessage: (request) => this.noBackendMessage(request),
      },
      events,
      this.gate,
      now,
    );
  }

  /** Entries of this pool that name a set found in DNS. */
  get setEntries(): readonly PoolConfig['servers'][number][] {
    return this.config.servers.filter(isServerSet);
  }

  /** A lookup's answer for a set entry (pool-members.ts): new members join once checked, vanished ones drain. */
  setMembers(entry: string, members: readonly SetMember[]): ServerChanges {
    return this.members.setMembers(this.config, entry, members);
  }

  /** Calls `watcher` whenever servers join or leave; returns the unsubscribe. */
  watchServers(watcher: () => void): () => void {
    return this.members.watch(watcher);
  }

  get settings(): PoolConfig {
    return this.config;
  }

  get queueLength(): number {
    return this.dispatcher.length;
  }

  /**
   * A lease now, a refusal now, or undefined: the request must wait in the queue
   * (`enqueue`). Never calls anything back (undici's pool shape: a synchronous try, then a
   * queue that always answers on a later turn).
   */
  tryAcquire(request: LeaseRequest): AcquireResult | undefined {
    if (this.closed) return { ok: false, code: 'SHUTDOWN', message: `pool "${this.name}" is closed`, waitMs: 0 };
    const candidates = this.candidates(request);
    if (candidates.length === 0) return { ok: false, code: 'NO_BACKEND', message: this.noBackendMessage(request), waitMs: 0 };
    if (this.gate.mode === 'refuse') return { ok: false, code: 'STORE_DOWN', message: `pool "${this.name}": the shared store is down (cluster.onStoreDown: refuse)`, waitMs: 0 };
    return this.dispatcher.tryNow(request, candidates);
  }

  /**
   * Queues a request `tryAcquire` left waiting; `callback` fires once, on a later turn
   * (granted, refused, timed out), unless the request is cancelled first.
   */
  enqueue(request: LeaseRequest, callback: (result: AcquireResult) => void): QueuedAcquire {
    return this.dispatcher.enqueue(request, callback);
  }

  /** Servers this request may use now: healthy primaries, else healthy backups, else (whenAllDown: try) any not draining. */
  candidates(request: LeaseRequest): BackendServer[] {
    return candidateServers(this.servers, request, this.config.whenAllDown, (server) => this.outcomes.isHeldOut(server));
  }

  /** Whether `server` is held out now because it refuses the proxy's own address. */
  isHeldOut(server: BackendServer): boolean {
    return this.outcomes.isHeldOut(server);
  }

  /** Serves queued sessions, oldest first, after a slot was freed, a server came back or a rate token is due. */
  serveQueue(): void {
    this.dispatcher.serve();
  }

  /** Rejects every queued session (shutdown). */
  rejectQueued(message: string): void {
    this.dispatcher.rejectAll('SHUTDOWN', message);
  }

  /**
   * Takes a handshake slot for a health check or a prefetched connection if one is free
   * (such a connection is unauthenticated too, and counts against sshd's MaxStartups).
   * With the store up the answer comes once the store has agreed; otherwise at once.
   */
  takeCheckSlot(server: BackendServer, done: (slot: Ticket | undefined) => void): void {
    this.gate.takeForCheck(server, done);
  }

  /**
   * Hooks the shared store in (undefined: unhook). With it, every slot is also taken
   * from the store; while it is down, each server is capped at its local share.
   */
  attachSlotAuthority(authority: SlotAuthority | undefined): void {
    this.gate.attach(authority);
    this.slotModeChanged();
  }

  /** The store went up or down: caps follow, and waiters are served (or refused) under the new mode. */
  slotModeChanged(): void {
    this.gate.applyCaps(this.servers);
    if (this.gate.mode === 'refuse') this.dispatcher.rejectAll('STORE_DOWN', `pool "${this.name}": the shared store is down (cluster.onStoreDown: refuse)`);
    this.dispatcher.sweep();
  }

  /** A slot was freed cluster-wide on `address` (undefined: anywhere): servers there may have room again. */
  slotsFreed(address?: string): void {
    if (this.gate.freed(this.servers, address)) this.serveQueue();
  }

  /**
   * Hooks banner prefetch in (undefined: unhook). A server with a prefetched connection
   * is choosable even with every slot taken: the lease adopts that connection's slot.
   */
  attachPrefetch(source: PrefetchSource | undefined): void {
    this.prefetch = source;
    this.serveQueue();
  }

  /** Prefetched connections ready on this server now (0 without prefetch). */
  prefetchReady(server: BackendServer): number {
    return this.prefetch?.available(server) ?? 0;
  }

  /** A health check's result: rise/fall, holds, the penalty watch, capacity (server-outcomes.ts). */
  reportCheck(server: BackendServer, result: CheckResult, proxyAddress?: string): void {
    this.outcomes.check(server, result, proxyAddress);
  }

  /** Another replica learnt `limit` for the server at `address` (shared store). */
  adoptCapacity(address: string, limit: number): void {
    this.outcomes.adoptCapacity(this.servers.filter((server) => server.address === address), limit);
    this.gate.applyCaps(this.servers);
    this.serveQueue();
  }

  /** A session attempt's outcome (undefined = success): passive health, full holds, the penalty watch, capacity. */
  reportAttempt(server: BackendServer, failure: AttemptFailureCode | undefined, proxyAddress?: string): void {
    this.outcomes.attempt(server, failure, proxyAddress);
  }

  /** Applies a health verdict; emits 'server-state' when the visible state changes. */
  setHealth(server: BackendServer, health: ServerHealth, reason: string): ServerStateChange | undefined {
    const change = server.setHealth(health, reason);
    this.announce(server, change);
    return change;
  }

  /** DRAINING: no new sessions; running ones continue. Undraining returns to the server's health. */
  setDraining(server: BackendServer, draining: boolean, reason: string): ServerStateChange | undefined {
    const change = server.setDraining(draining, reason);
    this.announce(server, change);
    return change;
  }

  /** An operator's drain, maint or ready (admin API); emits 'server-state' when the visible state changes. */
  setAdminState(server: BackendServer, admin: AdminState, reason: string): ServerStateChange | undefined {
    const change = server.setAdmin(admin, reason);
    this.announce(server, change);
    return change;
  }

  /** An operator's weight (admin API): 0 takes no new sessions, like drain. */
  setWeight(server: BackendServer, weight: number): void {
    server.setWeight(weight);
    this.dispatcher.sweep();
  }

  /**
   * Applies a reloaded pool config in place (same name), see `reconcileServers`: removed
   * servers (and ones whose address changed) go DRAINING: no new sessions, running
   * ones continue, and they leave the list when their last session ends.
   */
  reconfigure(config: PoolConfig): ServerChanges {
    if (config.balance !== this.config.balance) this.balancer = createBalancer(config.balance);
    if (config.retry.maxConnectRate !== this.config.retry.maxConnectRate) this.dispatcher.setConnectRate(config.retry.maxConnectRate);
    this.config = config;
    return this.members.reconfigure(config);
  }

  /** Stops timers and rejects queued sessions. Idempotent. */
  close(message = `pool "${this.name}" closed`): void {
    if (this.closed) return;
    this.closed = true;
    this.outcomes.clear();
    this.dispatcher.close(message);
  }

  private announce(server: BackendServer, change: ServerStateChange | undefined): void {
    if (!change) return;
    this.events.emit('server-state', { pool: this.name, server: server.name, ...change });
    // A server became usable: queued sessions may go; one became unusable: some may have no candidate left.
    this.dispatcher.sweep();
  }

  /** `silent`: the client has not identified yet, and may use only the silent share of each server's slots. */
  private choose(candidates: readonly BackendServer[], request: LeaseRequest, silent: boolean): BackendServer | undefined {
    const share = this.config.handshake.silentShare;
    return chooseServer(this.balancer, candidates, request.clientKey, (server) => this.prefetchReady(server), silent ? (server) => silentSlots(server, share) : undefined);
  }

  private leaseWithSlot(server: BackendServer, silentClient: boolean): { lease: Lease; slot: Ticket } {
    // A prefetched connection brings the handshake slot it holds with it (already counted by the store).
    const prefetched = this.prefetch?.take(server);
    const slot = prefetched?.slot ?? this.gate.take(server);
    const session = server.takeSession();
    const silent = silentClient ? server.takeSilent() : undefined;
    const lease = createLease(server, { slot, session, silent }, prefetched?.success, this);
    return { lease, slot };
  }

  /** A lease let go of everything: a retired server leaves once its last session has. */
  leaseClosed(server: BackendServer): void {
    this.members.leaseClosed(server);
  }

  private noBackendMessage(request: LeaseRequest): string {
    if (request.exclude.size > 0) return `pool "${this.name}": no server left to try after ${request.exclude.size} failed`;
    return `pool "${this.name}": no server is UP (whenAllDown: ${this.config.whenAllDown})`;
  }
}
