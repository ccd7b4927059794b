import type { PoolConfig } from '../config/schema.js';
import type { AttemptFailureCode } from '../errors.js';
import type { ProxyEvents } from '../events/bus.js';
import type { Ticket } from '../ticket.js';
import { createBalancer, type Balancer } from './balancer.js';
import { createLease, type Lease, type PrefetchSource } from './lease.js';
import { AcquireQueue, type AcquireResult } from './acquire-queue.js';
import { PassiveEjections, recordAttemptOutcome } from './passive-health.js';
import { FullHolds } from './full-holds.js';
import { OwnPenaltyWatch } from './own-penalty.js';
import { reconcileServers, type ServerChanges } from './pool-reconfigure.js';
import { ConnectRateLimiter } from './retry-policy.js';
import { BackendServer, type AdminState, type ServerHealth, type ServerStateChange } from './server.js';
import { isServerSet, memberSpec, staticSpec, type ServerSpec, type SetMember } from './server-spec.js';
import { anyServerFree, candidateServers, chooseServer, silentSlots, type LeaseRequest } from './server-choice.js';
import { localSlotCap, type SlotAuthority, type SlotVerdict } from './slot-authority.js';
import { CountedTicket } from '../ticket.js';
import type { QueueNode } from './linked-queue.js';
import type { Waiter } from './acquire-queue.js';

export type { Lease, PrefetchSource } from './lease.js';
export type { LeaseRequest } from './server-choice.js';

export type { AcquireFailureCode, AcquireResult } from './acquire-queue.js';

export interface AcquireHandle {
  cancel(): void;
}

const NOTHING_TO_CANCEL: AcquireHandle = { cancel: () => {} };

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
  private readonly waiters = new AcquireQueue();
  private rate: ConnectRateLimiter;
  /** Servers removed by a reload or a lookup that still carry sessions: DRAINING, dropped when their last session ends. */
  private readonly retired = new Set<BackendServer>();
  /** What lookups last found for each entry that names a set (src/discovery/). */
  private readonly sets = new Map<string, readonly SetMember[]>();
  /** Told when servers join or leave (health checks follow). */
  private readonly serverWatchers = new Set<() => void>();
  private rateTimer: NodeJS.Timeout | undefined;
  private readonly ejections = new PassiveEjections();
  /** Backends that penalise the proxy's own address, held out (src/backend/own-penalty.ts). */
  private readonly ownPenalty: OwnPenaltyWatch;
  /** Backends that throttled a moment ago: full, not down (src/backend/full-holds.ts). */
  private readonly fullHolds = new FullHolds(() => this.serveQueue());
  private serving = false;
  private serveAgain = false;
  /** A server's state changed: the next pass also fails waiters left with no candidate. */
  private sweepPending = false;
  /** Banner prefetch (src/backend/prefetch.ts), when `prefetch.perServer` > 0. */
  private prefetch: PrefetchSource | undefined;
  /** The shared store, when cluster.store is set (src/store/shared-slots.ts). */
  private authority: SlotAuthority | undefined;
  private closed = false;
  /** Runs when a handshake slot is free again; one function for every slot, not a closure per session. */
  private readonly slotFreed = (): void => this.serveQueue();

  /** `now`: the monotonic clock (tests pass their own). */
  constructor(config: PoolConfig, events: ProxyEvents, now: () => number = () => performance.now()) {
    this.ownPenalty = new OwnPenaltyWatch(
      {
        started: (episode) => this.announcePenalty('started', episode.server, episode),
        extended: (episode) => this.announcePenalty('extended', episode.server, episode),
        ended: (server, refusals) => this.announcePenalty('ended', server, { refusals }),
        holdEnded: () => this.serveQueue(),
      },
      now,
    );
    this.name = config.name;
    this.config = config;
    this.events = events;
    this.balancer = createBalancer(config.balance);
    this.rate = new ConnectRateLimiter(config.retry.maxConnectRate);
    this.servers = this.wantedSpecs(config).map((spec) => new BackendServer(config.name, spec));
  }

  /** Entries of this pool that name a set found in DNS. */
  get setEntries(): readonly PoolConfig['servers'][number][] {
    return this.config.servers.filter(isServerSet);
  }

  /**
   * A lookup's answer for a set entry: new members join (after their checks pass, but on
   * the first answer, which stands for the config at start), vanished ones drain.
   */
  setMembers(entry: string, members: readonly SetMember[]): ServerChanges {
    const awaitRise = this.sets.has(entry) && this.config.healthCheck.enabled;
    this.sets.set(entry, members);
    return this.update(this.wantedSpecs(this.config, awaitRise ? entry : undefined), 'dns');
  }

  /** Calls `watcher` whenever servers join or leave; returns the unsubscribe. */
  watchServers(watcher: () => void): () => void {
    this.serverWatchers.add(watcher);
    return () => this.serverWatchers.delete(watcher);
  }

  /** The specs of every server wanted now; new members of `risingEntry` wait for their checks. */
  private wantedSpecs(config: PoolConfig, risingEntry?: string): ServerSpec[] {
    return config.servers.flatMap((entry) => {
      if (!isServerSet(entry)) return [staticSpec(config, entry)];
      return (this.sets.get(entry.name) ?? []).map((member) => memberSpec(config, entry, member, entry.name === risingEntry));
    });
  }

  get settings(): PoolConfig {
    return this.config;
  }

  get queueLength(): number {
    return this.waiters.length;
  }

  /** Grants a lease now, or queues the request; the callback fires once unless cancelled. */
  acquire(request: LeaseRequest, callback: (result: AcquireResult) => void): AcquireHandle {
    if (this.closed) {
      callback({ ok: false, code: 'SHUTDOWN', message: `pool "${this.name}" is closed`, waitMs: 0 });
      return NOTHING_TO_CANCEL;
    }
    const candidates = this.candidates(request);
    if (candidates.length === 0) {
      callback({ ok: false, code: 'NO_BACKEND', message: this.noBackendMessage(request), waitMs: 0 });
      return NOTHING_TO_CANCEL;
    }
    if (this.authority?.mode === 'refuse') {
      callback({ ok: false, code: 'STORE_DOWN', message: `pool "${this.name}": the shared store is down (cluster.onStoreDown: refuse)`, waitMs: 0 });
      return NOTHING_TO_CANCEL;
    }
    // With the store up a slot is granted only once the store agrees: always through the queue.
    if (this.waiters.length === 0 && this.authority?.mode !== 'shared') {
      const server = this.choose(candidates, request);
      if (server && this.rate.tryTake()) {
        callback({ ok: true, lease: this.lease(server, request), waitMs: 0 });
        return NOTHING_TO_CANCEL;
      }
    }
    // A full queue makes room by dropping its oldest client that has still said nothing:
    // a flood of idle sockets must not fill the queue against clients that speak.
    if (this.waiters.length >= this.config.queue.maxLength) this.evictOldestSilent();
    if (this.waiters.length >= this.config.queue.maxLength) {
      const message = `pool "${this.name}": ${this.waiters.length} sessions already wait for a handshake slot (queue.maxLength ${this.config.queue.maxLength})`;
      callback({ ok: false, code: 'QUEUE_FULL', message, waitMs: 0 });
      return NOTHING_TO_CANCEL;
    }
    return this.enqueue(request, callback);
  }

  /** Servers this request may use now: healthy primaries, else healthy backups, else (whenAllDown: try) any not draining. */
  candidates(request: LeaseRequest): BackendServer[] {
    return candidateServers(this.servers, request, this.config.whenAllDown, (server) => this.ownPenalty.isHeldOut(server));
  }

  /** Whether `server` is held out now because it refuses the proxy's own address. */
  isHeldOut(server: BackendServer): boolean {
    return this.ownPenalty.isHeldOut(server);
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
    if (!server.hasFreeSlot) {
      done(undefined);
      return;
    }
    const slot = this.takeSlot(server);
    const authority = this.authority;
    if (authority?.mode !== 'shared' || !(slot instanceof CountedTicket)) {
      done(slot);
      return;
    }
    authority.take(server, 0, (verdict) => {
      if (this.settleSharedSlot(server, slot, verdict) === 'use') done(slot);
      else done(undefined);
    });
  }

  /**
   * Hooks the shared store in (undefined: unhook). With it, every slot is also taken
   * from the store; while it is down, each server is capped at its local share.
   */
  attachSlotAuthority(authority: SlotAuthority | undefined): void {
    this.authority = authority;
    this.slotModeChanged();
  }

  /** The store went up or down: caps follow, and waiters are served (or refused) under the new mode. */
  slotModeChanged(): void {
    this.applySlotMode();
    if (this.authority?.mode === 'refuse') this.waiters.rejectAll('STORE_DOWN', `pool "${this.name}": the shared store is down (cluster.onStoreDown: refuse)`);
    this.sweepPending = true;
    this.serveQueue();
  }

  /** A slot was freed cluster-wide on `address` (undefined: anywhere): servers there may have room again. */
  slotsFreed(address?: string): void {
    let any = false;
    for (const server of this.servers) {
      if (!server.clusterFull || (address !== undefined && server.address !== address)) continue;
      server.clusterFull = false;
      any = true;
    }
    if (any) this.serveQueue();
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

  /** A health check's outcome, for the watch on penalties against the proxy's own address. */
  /**
   * Feeds the penalty watch and the full holds; true when the failure was a throttle (the
   * server is full, not down: neither passive health nor a check counts it).
   */
  reportCheck(server: BackendServer, failure: AttemptFailureCode | undefined, proxyAddress?: string): boolean {
    if (failure === undefined) {
      this.ownPenalty.succeeded(server);
      this.fullHolds.succeeded(server);
      // The handshake's own slot is still held: it counts.
      this.learnCapacity(server, 'succeeded', server.handshakesActive);
      return false;
    }
    this.ownPenalty.failed(server, failure, proxyAddress);
    if (!this.fullHolds.refused(server, failure, this.config.retry)) return false;
    // The refused connection's slot is already given back: it counts too.
    this.learnCapacity(server, 'refused', server.handshakesActive + 1);
    return true;
  }

  /** `maxStartups: auto`: a handshake through or refused teaches the server's limit (learned-capacity.ts). */
  private learnCapacity(server: BackendServer, outcome: 'succeeded' | 'refused', inFlight: number): void {
    const capacity = server.capacity;
    if (!capacity) return;
    const change = outcome === 'succeeded' ? capacity.succeeded(inFlight) : capacity.refused(inFlight);
    if (change === undefined) return;
    this.events.emit('capacity-learned', { pool: this.name, server: server.name, limit: capacity.limit, change, inFlight });
    this.authority?.learned?.(server, capacity.limit);
    this.applySlotMode();
    if (change !== 'lowered') this.serveQueue();
  }

  /** Another replica learnt `limit` for the server at `address` (shared store). */
  adoptCapacity(address: string, limit: number): void {
    for (const server of this.servers) {
      if (server.address !== address || !server.capacity) continue;
      const change = server.capacity.adopt(limit);
      if (change) this.events.emit('capacity-learned', { pool: this.name, server: server.name, limit: server.capacity.limit, change });
    }
    this.applySlotMode();
    this.serveQueue();
  }

  /** Records a session attempt's outcome (undefined = success) for passive health, the penalty watch and the full holds. */
  reportAttempt(server: BackendServer, failure: AttemptFailureCode | undefined, proxyAddress?: string): void {
    if (this.reportCheck(server, failure, proxyAddress)) return;
    if (!recordAttemptOutcome(server, failure, this.config.passiveHealth.consecutiveFailures)) return;
    this.setHealth(server, 'DOWN', `passive:${failure ?? 'unknown'}`);
    // Without active checks nothing would bring it back: eject for one check interval.
    if (!this.config.healthCheck.enabled) {
      this.ejections.eject(server, this.config.healthCheck.interval, (ejected) => this.setHealth(ejected, 'UP', 'passive:expired'));
    }
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
    server.weight = weight;
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
    if (config.retry.maxConnectRate !== this.config.retry.maxConnectRate) this.rate = new ConnectRateLimiter(config.retry.maxConnectRate);
    this.config = config;
    const entries = new Set(config.servers.map((entry) => entry.name));
    for (const entry of this.sets.keys()) if (!entries.has(entry)) this.sets.delete(entry);
    return this.update(this.wantedSpecs(config), 'reload');
  }

  /** Moves to the wanted servers: new ones join, unwanted ones drain (or leave at once with no session). */
  private update(specs: readonly ServerSpec[], cause: 'reload' | 'dns'): ServerChanges {
    const { next, toRetire, gone, toUndrain, changes } = reconcileServers(this.servers, this.retired, specs, this.name);
    for (const server of toUndrain) {
      this.retired.delete(server);
      this.setDraining(server, false, `${cause}:added`);
    }
    for (const server of toRetire) {
      this.retired.add(server);
      this.setDraining(server, true, `${cause}:removed`);
    }
    // Retired servers stay visible (DRAINING) after the live ones until their sessions end.
    this.servers.splice(0, this.servers.length, ...next, ...this.retired);
    for (const server of gone) this.removed(server);
    this.applySlotMode();
    if (changes.added.length + changes.removed.length > 0) for (const watcher of this.serverWatchers) watcher();
    this.sweepPending = true;
    this.serveQueue();
    return changes;
  }

  private removed(server: BackendServer): void {
    this.fullHolds.forget(server);
    this.balancer.forget?.(server);
    this.events.emit('server-removed', { pool: this.name, server: server.name, address: server.address });
  }

  /** Stops timers and rejects queued sessions. Idempotent. */
  close(message = `pool "${this.name}" closed`): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.rateTimer);
    this.rateTimer = undefined;
    this.ejections.clear();
    this.ownPenalty.clear();
    this.fullHolds.clear();
    this.rejectQueued(message);
  }

  private applySlotMode(): void {
    const authority = this.authority;
    const capped = authority !== undefined && authority.mode !== 'shared';
    for (const server of this.servers) {
      server.clusterFull = false;
      server.localCap = capped ? localSlotCap(server, authority.localShare) : undefined;
      if (!authority) server.clusterSlotsInUse = undefined;
    }
  }

  /** A local slot, which with a store also stands for the store's count. */
  private takeSlot(server: BackendServer): Ticket {
    const local = server.takeSlot(this.slotFreed);
    const authority = this.authority;
    if (!authority) return local;
    // Decided here alone (within the local share): counted as a fallback.
    if (authority.mode !== 'shared') this.events.emit('store-fallback', { what: 'slot', reason: 'down' });
    return new CountedTicket(local, () => authority.give(server), authority);
  }

  /**
   * What to do with a slot held locally once the store has answered: `use` it (granted,
   * or no answer and within the local share), or give it back (`wait` for a freed
   * slot, or `refuse` under onStoreDown: refuse).
   */
  private settleSharedSlot(server: BackendServer, slot: CountedTicket, verdict: SlotVerdict): 'use' | 'wait' | 'refuse' {
    if (verdict === 'granted') {
      slot.counted = true;
      return 'use';
    }
    if (verdict === 'unavailable') {
      if (this.authority?.mode === 'refuse') {
        slot.release();
        return 'refuse';
      }
      // No answer in time: decide as if the store were down, for this slot only.
      if (server.handshakesActive <= localSlotCap(server, this.authority?.localShare ?? 1)) return 'use';
    } else {
      server.clusterFull = true;
    }
    slot.release();
    return 'wait';
  }

  /**
   * Grants a waiter a slot the store must agree to: the lease is made now (the local
   * slot is held meanwhile), handed over if the store grants it, and given back if it
   * says full, the waiter left, or the store did not answer and the local share is used up.
   */
  private confirm(node: QueueNode<Waiter>, lease: Lease, slot: CountedTicket, authority: SlotAuthority): void {
    const waiter = node.value;
    waiter.confirming = true;
    authority.take(lease.server, performance.now() - waiter.queuedAt, (verdict) => {
      waiter.confirming = false;
      const decision = this.settleSharedSlot(lease.server, slot, verdict);
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
    this.events.emit('queue-wait', { pool: this.name, waitMs: performance.now() - node.value.queuedAt, granted: true });
    this.waiters.settle(node, { ok: true, lease });
    this.queueLeft();
  }

  /** Someone left the queue: once it is empty, this replica stops holding places in the store's queues. */
  private queueLeft(): void {
    if (this.waiters.length === 0) this.authority?.noWaiters(this.servers);
  }

  private enqueue(request: LeaseRequest, callback: (result: AcquireResult) => void): AcquireHandle {
    const timeoutMs = this.config.queue.timeout;
    const node = this.waiters.push(request, callback, timeoutMs, (waiter, waitMs) => {
      this.events.emit('queue-wait', { pool: this.name, waitMs, granted: false });
      waiter.callback({ ok: false, code: 'QUEUE_TIMEOUT', message: `pool "${this.name}": no handshake slot freed within ${timeoutMs}ms`, waitMs });
      this.queueLeft();
    });
    // Earlier waiters may be unable to use a free slot this request can use (their
    // exclusions), or the connect rate is what held it back: let the queue decide.
    this.serveQueue();
    return {
      cancel: () => {
        this.waiters.cancel(node);
        this.queueLeft();
      },
    };
  }

  private evictOldestSilent(): void {
    const node = this.waiters.oldestSilent();
    if (!node) return;
    const message = `pool "${this.name}": dropped from a full queue (queue.maxLength ${this.config.queue.maxLength}) as its oldest client that had sent nothing`;
    this.waiters.settle(node, { ok: false, code: 'QUEUE_FULL', message });
  }

  private announcePenalty(
    phase: 'started' | 'extended' | 'ended',
    server: BackendServer,
    detail: { readonly holdMs?: number; readonly refusals: number; readonly proxyAddress?: string | undefined; readonly withNotice?: boolean },
  ): void {
    const { holdMs, refusals, proxyAddress, withNotice } = detail;
    this.events.emit('backend-penalty', {
      pool: this.name,
      server: server.name,
      address: server.address,
      phase,
      refusals,
      ...(withNotice === undefined ? {} : { withNotice }),
      ...(holdMs === undefined ? {} : { holdMs }),
      ...(proxyAddress === undefined ? {} : { proxyAddress }),
    });
    // Held out: waiters left with no other server fail now rather than wait on it.
    this.sweepPending = true;
    this.serveQueue();
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
      const server = this.choose(candidates, waiter.request);
      if (!server) continue;
      if (!this.rate.tryTake()) {
        this.scheduleRateRetry();
        return;
      }
      const { lease, slot } = this.leaseWithSlot(server, waiter.request);
      // A new slot needs the store's yes; a prefetched connection's slot already has it.
      if (slot instanceof CountedTicket && !lease.prefetched && this.authority?.mode === 'shared') this.confirm(node, lease, slot, this.authority);
      else this.grant(node, lease);
    }
  }

  private choose(candidates: readonly BackendServer[], request: LeaseRequest): BackendServer | undefined {
    const silent = request.identified?.() === false;
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

  private lease(server: BackendServer, request: LeaseRequest): Lease {
    return this.leaseWithSlot(server, request).lease;
  }

  private leaseWithSlot(server: BackendServer, request: LeaseRequest): { lease: Lease; slot: Ticket } {
    // A prefetched connection brings the handshake slot it holds with it (already counted by the store).
    const prefetched = this.prefetch?.take(server);
    const slot = prefetched?.slot ?? this.takeSlot(server);
    const session = server.takeSession();
    const silent = request.identified?.() === false ? server.takeSilent() : undefined;
    const lease = createLease(server, { slot, session, silent }, prefetched?.success, this);
    return { lease, slot };
  }

  /** A lease let go of everything: a retired server leaves once its last session has. */
  leaseClosed(server: BackendServer): void {
    if (server.activeSessions > 0 || !this.retired.delete(server)) return;
    const index = this.servers.indexOf(server);
    if (index !== -1) this.servers.splice(index, 1);
    this.removed(server);
    for (const watcher of this.serverWatchers) watcher();
  }

  private noBackendMessage(request: LeaseRequest): string {
    if (request.exclude.size > 0) return `pool "${this.name}": no server left to try after ${request.exclude.size} failed`;
    return `pool "${this.name}": no server is UP (whenAllDown: ${this.config.whenAllDown})`;
  }
}
