import type { PoolConfig } from '../config/schema.js';
import type { AttemptFailureCode } from '../errors.js';
import type { ProxyEvents } from '../events/bus.js';
import type { Ticket } from '../ticket.js';
import { createBalancer, type Balancer } from './balancer.js';
import { createLease, type Lease, type PrefetchSource } from './lease.js';
import { AcquireQueue, type AcquireResult } from './acquire-queue.js';
import type { ServerChanges } from './pool-reconfigure.js';
import { PoolMembers } from './pool-members.js';
import { ConnectRateLimiter } from './retry-policy.js';
import type { AdminState, BackendServer, CheckResult, ServerHealth, ServerStateChange } from './server.js';
import { isServerSet, type SetMember } from './server-spec.js';
import { ServerOutcomes } from './server-outcomes.js';
import { anyServerFree, candidateServers, chooseServer, silentSlots, type LeaseRequest } from './server-choice.js';
import type { SlotAuthority } from './slot-authority.js';
import { SlotGate } from './slot-gate.js';
import { CountedTicket } from '../ticket.js';
import type { QueueNode } from './linked-queue.js';
import type { Waiter } from './acquire-queue.js';

export type { Lease, PrefetchSource } from './lease.js';
export type { LeaseRequest } from './server-choice.js';

export type { AcquireFailureCode, AcquireResult } from './acquire-queue.js';

/** A request waiting in the queue: the session cancels it, or says its client has identified. */
export interface QueuedAcquire {
  cancel(): void;
  /** The client sent its identification: it may now use more than the silent share of slots. */
  identified(): void;
}

/**
 * Backend servers of one pool: picks a server by balance and health, and hands out
 * handshake slots so no server has more than `maxStartups` sessions in their SSH
 * handshake at once. Sessions that find no free slot wait in a FIFO queue and take
 * the first slot freed on any server they may use. Backend connects are also paced
 * by `retry.maxConnectRate` (retries included), so retries never amplify a storm.
 */
export class BackendPool {
  readonly name: string;
  readonly servers: BackendServer[];
  private config: PoolConfig;
  private balancer: Balancer;
  private readonly events: ProxyEvents;
  private readonly waiters: AcquireQueue;
  /** One monotonic clock for the queue's waits, the connect rate and the hold-outs (tests pass their own). */
  private readonly now: () => number;
  private rate: ConnectRateLimiter;
  private rateTimer: NodeJS.Timeout | undefined;
  /** Who the servers are: the config's, and DNS sets' members (pool-members.ts). */
  private readonly members: PoolMembers;
  /** Handshake slots, local or shared through the store (slot-gate.ts). */
  private readonly gate: SlotGate;
  /** Passive health, full holds, the own-address penalty watch, learnt capacity (server-outcomes.ts). */
  private readonly outcomes: ServerOutcomes;
  private serving = false;
  private serveAgain = false;
  private serveScheduled = false;
  /** A server's state changed: the next pass also fails waiters left with no candidate. */
  private sweepPending = false;
  /** Banner prefetch (src/backend/prefetch.ts), when `prefetch.perServer` > 0. */
  private prefetch: PrefetchSource | undefined;
  private closed = false;

  /** `now`: the monotonic clock (tests pass their own). */
  constructor(config: PoolConfig, events: ProxyEvents, now: () => number = () => performance.now()) {
    this.name = config.name;
    this.config = config;
    this.events = events;
    this.now = now;
    this.waiters = new AcquireQueue(now);
    this.balancer = createBalancer(config.balance);
    this.rate = new ConnectRateLimiter(config.retry.maxConnectRate, now);
    this.gate = new SlotGate(events, () => this.serveQueue());
    this.outcomes = new ServerOutcomes(
      {
        pool: config.name,
        events,
        settings: () => this.config,
        setHealth: (server, health, reason) => this.setHealth(server, health, reason),
        changed: (sweep) => {
          if (sweep) this.sweepPending = true;
          this.serveQueue();
        },
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
        this.sweepPending = true;
        this.serveQueue();
      },
    });
    this.servers = this.members.servers;
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
    return this.waiters.length;
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
    const silent = request.identified === false;
    // With the store up a slot is granted only once the store agrees: always through the queue.
    if (this.waiters.length === 0 && !this.gate.confirms) {
      const server = this.choose(candidates, request, silent);
      if (server && this.rate.tryTake()) return { ok: true, lease: this.leaseWithSlot(server, silent).lease, waitMs: 0 };
    }
    // A full queue makes room by dropping its oldest client that has still said nothing:
    // a flood of idle sockets must not fill the queue against clients that speak.
    if (this.waiters.length >= this.config.queue.maxLength) this.evictOldestSilent();
    if (this.waiters.length >= this.config.queue.maxLength) {
      const message = `pool "${this.name}": ${this.waiters.length} sessions already wait for a handshake slot (queue.maxLength ${this.config.queue.maxLength})`;
      return { ok: false, code: 'QUEUE_FULL', message, waitMs: 0 };
    }
    return undefined;
  }

  /**
   * Queues a request `tryAcquire` left waiting; `callback` fires once, on a later turn
   * (granted, refused, timed out), unless the request is cancelled first.
   */
  enqueue(request: LeaseRequest, callback: (result: AcquireResult) => void): QueuedAcquire {
    const timeoutMs = this.config.queue.timeout;
    const node = this.waiters.push(request, callback, timeoutMs, (waiter, waitMs) => {
      this.events.emit('queue-wait', { pool: this.name, waitMs, granted: false });
      waiter.callback({ ok: false, code: 'QUEUE_TIMEOUT', message: `pool "${this.name}": no handshake slot freed within ${timeoutMs}ms`, waitMs });
      this.queueLeft();
    });
    // Earlier waiters may be unable to use a free slot this request can use (their
    // exclusions), or the connect rate is what held it back: let the queue decide, after
    // the caller has its handle.
    this.serveSoon();
    return {
      cancel: () => {
        this.waiters.cancel(node);
        this.queueLeft();
      },
      identified: () => {
        if (!node.queued || node.value.identified) return;
        node.value.identified = true;
        this.serveQueue();
      },
    };
  }

  /** Servers this request may use now: healthy primaries, else healthy backups, else (whenAllDown: try) any not draining. */
  candidates(request: LeaseRequest): BackendServer[] {
    return candidateServers(this.servers, request, this.config.whenAllDown, (server) => this.outcomes.isHeldOut(server));
  }

  /** Whether `server` is held out now because it refuses the proxy's own address. */
  isHeldOut(server: BackendServer): boolean {
    return this.outcomes.isHeldOut(server);
  }

  /** Serves the queue once the current turn's work is done (coalesced). */
  private serveSoon(): void {
    if (this.serveScheduled) return;
    this.serveScheduled = true;
    queueMicrotask(() => {
      this.serveScheduled = false;
      this.serveQueue();
    });
  }

  /** Serves queued sessions, oldest first, after a slot was freed, a server came back or a rate token is due. */
  serveQueue(): void {
    // Granting calls back into sessions, which may release slots and re-enter: loop instead.
    if (this.serving) {
      this.serveAgain = true;
      return;
    }
    this.serving = true;
    try {
      do {
        this.serveAgain = false;
        this.serveOnce();
      } while (this.serveAgain);
    } finally {
      this.serving = false;
    }
  }

  /** Rejects every queued session (shutdown). */
  rejectQueued(message: string): void {
    this.waiters.rejectAll('SHUTDOWN', message);
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
    if (this.gate.mode === 'refuse') this.waiters.rejectAll('STORE_DOWN', `pool "${this.name}": the shared store is down (cluster.onStoreDown: refuse)`);
    this.sweepPending = true;
    this.serveQueue();
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
    this.sweepPending = true;
    this.serveQueue();
  }

  /**
   * Applies a reloaded pool config in place (same name), see `reconcileServers`: removed
   * servers (and ones whose address changed) go DRAINING: no new sessions, running
   * ones continue, and they leave the list when their last session ends.
   */
  reconfigure(config: PoolConfig): ServerChanges {
    if (config.balance !== this.config.balance) this.balancer = createBalancer(config.balance);
    if (config.retry.maxConnectRate !== this.config.retry.maxConnectRate) this.rate = new ConnectRateLimiter(config.retry.maxConnectRate, this.now);
    this.config = config;
    return this.members.reconfigure(config);
  }

  /** Stops timers and rejects queued sessions. Idempotent. */
  close(message = `pool "${this.name}" closed`): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.rateTimer);
    this.rateTimer = undefined;
    this.outcomes.clear();
    this.rejectQueued(message);
  }

  /**
   * Grants a waiter a slot the store must agree to: the lease is made now (the local
   * slot is held meanwhile), handed over if the store grants it, and given back if it
   * says full, the waiter left, or the store did not answer and the local share is used up.
   */
  private confirm(node: QueueNode<Waiter>, lease: Lease, slot: CountedTicket, authority: SlotAuthority): void {
    const waiter = node.value;
    waiter.confirming = true;
    authority.take(lease.server, this.now() - waiter.queuedAt, (verdict) => {
      waiter.confirming = false;
      const decision = this.gate.settle(lease.server, slot, verdict);
      if (decision !== 'use' || !node.queued) {
        lease.close();
        if (decision === 'refuse' && node.queued) this.waiters.settle(node, { ok: false, code: 'STORE_DOWN', message: `pool "${this.name}": the shared store did not answer (cluster.onStoreDown: refuse)` });
        this.serveQueue();
        return;
      }
      this.grant(node, lease);
    });
  }

  private grant(node: QueueNode<Waiter>, lease: Lease): void {
    // Emitted before the callback: a granted session may splice (and emit) at once.
    this.events.emit('queue-wait', { pool: this.name, waitMs: this.now() - node.value.queuedAt, granted: true });
    this.waiters.settle(node, { ok: true, lease });
    this.queueLeft();
  }

  /** Someone left the queue: once it is empty, this replica stops holding places in the store's queues. */
  private queueLeft(): void {
    if (this.waiters.length === 0) this.gate.store?.noWaiters(this.servers);
  }

  private evictOldestSilent(): void {
    const node = this.waiters.oldestSilent();
    if (!node) return;
    const message = `pool "${this.name}": dropped from a full queue (queue.maxLength ${this.config.queue.maxLength}) as its oldest client that had sent nothing`;
    this.waiters.settle(node, { ok: false, code: 'QUEUE_FULL', message });
  }

  private announce(server: BackendServer, change: ServerStateChange | undefined): void {
    if (!change) return;
    this.events.emit('server-state', { pool: this.name, server: server.name, ...change });
    // A server became usable: queued sessions may go; one became unusable: some may have no candidate left.
    this.sweepPending = true;
    this.serveQueue();
  }

  /**
   * One pass over the queue, oldest first. Once no server has a free slot, a waiter can
   * no longer be granted, only failed (no candidate left, which only a server state
   * change causes): unless such a change asked for a sweep, the pass stops there, so a
   * freed slot costs what it takes to fill it, not O(waiters).
   */
  private serveOnce(): void {
    const sweep = this.sweepPending;
    this.sweepPending = false;
    const prefetchReady = (server: BackendServer): number => this.prefetchReady(server);
    for (const node of this.waiters.nodes()) {
      const waiter = node.value;
      if (waiter.confirming) continue;
      const candidates = this.candidates(waiter.request);
      if (candidates.length === 0) {
        this.waiters.settle(node, { ok: false, code: 'NO_BACKEND', message: this.noBackendMessage(waiter.request) });
        continue;
      }
      if (!anyServerFree(this.servers, prefetchReady)) {
        if (sweep) continue;
        return;
      }
      const server = this.choose(candidates, waiter.request, !waiter.identified);
      if (!server) continue;
      if (!this.rate.tryTake()) {
        this.scheduleRateRetry();
        return;
      }
      const { lease, slot } = this.leaseWithSlot(server, !waiter.identified);
      // A new slot needs the store's yes; a prefetched connection's slot already has it.
      const store = this.gate.store;
      if (slot instanceof CountedTicket && !lease.prefetched && store?.mode === 'shared') this.confirm(node, lease, slot, store);
      else this.grant(node, lease);
    }
  }

  /** `silent`: the client has not identified yet, and may use only the silent share of each server's slots. */
  private choose(candidates: readonly BackendServer[], request: LeaseRequest, silent: boolean): BackendServer | undefined {
    const share = this.config.handshake.silentShare;
    return chooseServer(this.balancer, candidates, request.clientKey, (server) => this.prefetchReady(server), silent ? (server) => silentSlots(server, share) : undefined);
  }

  private scheduleRateRetry(): void {
    if (this.rate.unlimited || this.rateTimer || this.waiters.length === 0 || this.closed) return;
    this.rateTimer = setTimeout(() => {
      this.rateTimer = undefined;
      this.serveQueue();
    }, Math.max(1, this.rate.msUntilNext()));
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
