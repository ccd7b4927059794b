import type { PoolConfig } from '../config/schema.js';
import type { ProxyEvents } from '../events/bus.js';
import { CountedTicket, type Ticket } from '../ticket.js';
import { AcquireQueue, type AcquireResult, type Waiter } from './acquire-queue.js';
import type { Lease } from './lease.js';
import type { QueueNode } from './linked-queue.js';
import { ConnectRateLimiter } from './retry-policy.js';
import type { BackendServer } from './server.js';
import { anyServerFree, type LeaseRequest } from './server-choice.js';
import type { SlotAuthority } from './slot-authority.js';
import type { SlotGate } from './slot-gate.js';

/** A request waiting in the queue: the session cancels it, or says its client has identified. */
export interface QueuedAcquire {
  cancel(): void;
  /** The client sent its identification: it may now use more than the silent share of slots. */
  identified(): void;
}

/** What the dispatcher asks of its pool: who may be used, and a lease on one of them. */
export interface DispatchPool {
  readonly name: string;
  readonly servers: readonly BackendServer[];
  settings(): PoolConfig;
  candidates(request: LeaseRequest): BackendServer[];
  /** The balancer's pick among `candidates` with a free slot (or a prefetched connection); `silent`: within the silent share. */
  choose(candidates: readonly BackendServer[], request: LeaseRequest, silent: boolean): BackendServer | undefined;
  /** A lease on `server`, with the slot it holds (a new one, or a prefetched connection's). */
  lease(server: BackendServer, silentClient: boolean): { lease: Lease; slot: Ticket };
  prefetchReady(server: BackendServer): number;
  noBackendMessage(request: LeaseRequest): string;
}

/**
 * Who gets the next handshake slot: sessions that found none wait in a FIFO queue
 * (acquire-queue.ts) and take the first slot freed on any server they may use. Backend
 * connects are paced by `retry.maxConnectRate` (retries included), so retries never
 * amplify a storm. With the shared store up, a slot is granted only once the store agrees.
 */
export class SlotDispatcher {
  private readonly pool: DispatchPool;
  private readonly events: ProxyEvents;
  private readonly gate: SlotGate;
  private readonly waiters: AcquireQueue;
  private readonly now: () => number;
  private rate: ConnectRateLimiter;
  private rateTimer: NodeJS.Timeout | undefined;
  private serving = false;
  private serveAgain = false;
  private serveScheduled = false;
  /** A server's state changed: the next pass also fails waiters left with no candidate. */
  private sweepPending = false;
  private closed = false;

  constructor(pool: DispatchPool, events: ProxyEvents, gate: SlotGate, now: () => number) {
    this.pool = pool;
    this.events = events;
    this.gate = gate;
    this.now = now;
    this.waiters = new AcquireQueue(now);
    this.rate = new ConnectRateLimiter(pool.settings().retry.maxConnectRate, now);
  }

  get length(): number {
    return this.waiters.length;
  }

  /** A reload changed `retry.maxConnectRate`: the limiter starts afresh. */
  setConnectRate(maxConnectRate: number): void {
    this.rate = new ConnectRateLimiter(maxConnectRate, this.now);
  }

  /**
   * For a request with `candidates`: a lease now, QUEUE_FULL now, or undefined (it must
   * wait: `enqueue`). Never calls anything back.
   */
  tryNow(request: LeaseRequest, candidates: readonly BackendServer[]): AcquireResult | undefined {
    const silent = request.identified === false;
    // With the store up a slot is granted only once the store agrees: always through the queue.
    if (this.waiters.length === 0 && !this.gate.confirms) {
      const server = this.pool.choose(candidates, request, silent);
      if (server && this.rate.tryTake()) return { ok: true, lease: this.pool.lease(server, silent).lease, waitMs: 0 };
    }
    const { maxLength } = this.pool.settings().queue;
    // A full queue makes room by dropping its oldest client that has still said nothing:
    // a flood of idle sockets must not fill the queue against clients that speak.
    if (this.waiters.length >= maxLength) this.evictOldestSilent();
    if (this.waiters.length >= maxLength) {
      const message = `pool "${this.pool.name}": ${this.waiters.length} sessions already wait for a handshake slot (queue.maxLength ${maxLength})`;
      return { ok: false, code: 'QUEUE_FULL', message, waitMs: 0 };
    }
    return undefined;
  }

  /** Queues a request `tryNow` left waiting; `callback` fires once, on a later turn, unless it is cancelled first. */
  enqueue(request: LeaseRequest, callback: (result: AcquireResult) => void): QueuedAcquire {
    const timeoutMs = this.pool.settings().queue.timeout;
    const node = this.waiters.push(request, callback, timeoutMs, (waiter, waitMs) => {
      this.events.emit('queue-wait', { pool: this.pool.name, waitMs, granted: false });
      waiter.callback({ ok: false, code: 'QUEUE_TIMEOUT', message: `pool "${this.pool.name}": no handshake slot freed within ${timeoutMs}ms`, waitMs });
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
        this.serve();
      },
    };
  }

  /** Serves queued sessions, oldest first, after a slot was freed, a server came back or a rate token is due. */
  serve(): void {
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

  /** A server's state changed: serve, and fail the waiters it left with no candidate. */
  sweep(): void {
    this.sweepPending = true;
    this.serve();
  }

  rejectAll(code: 'SHUTDOWN' | 'STORE_DOWN', message: string): void {
    this.waiters.rejectAll(code, message);
  }

  close(message: string): void {
    this.closed = true;
    clearTimeout(this.rateTimer);
    this.rateTimer = undefined;
    this.rejectAll('SHUTDOWN', message);
  }

  /** Serves the queue once the current turn's work is done (coalesced). */
  private serveSoon(): void {
    if (this.serveScheduled) return;
    this.serveScheduled = true;
    queueMicrotask(() => {
      this.serveScheduled = false;
      this.serve();
    });
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
    const pool = this.pool;
    const prefetchReady = (server: BackendServer): number => pool.prefetchReady(server);
    for (const node of this.waiters.nodes()) {
      const waiter = node.value;
      if (waiter.confirming) continue;
      const candidates = pool.candidates(waiter.request);
      if (candidates.length === 0) {
        this.waiters.settle(node, { ok: false, code: 'NO_BACKEND', message: pool.noBackendMessage(waiter.request) });
        continue;
      }
      if (!anyServerFree(pool.servers, prefetchReady)) {
        if (sweep) continue;
        return;
      }
      const server = pool.choose(candidates, waiter.request, !waiter.identified);
      if (!server) continue;
      if (!this.rate.tryTake()) {
        this.scheduleRateRetry();
        return;
      }
      const { lease, slot } = pool.lease(server, !waiter.identified);
      // A new slot needs the store's yes; a prefetched connection's slot already has it.
      const store = this.gate.store;
      if (slot instanceof CountedTicket && !lease.prefetched && store?.mode === 'shared') this.confirm(node, lease, slot, store);
      else this.grant(node, lease);
    }
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
        if (decision === 'refuse' && node.queued) this.waiters.settle(node, { ok: false, code: 'STORE_DOWN', message: `pool "${this.pool.name}": the shared store did not answer (cluster.onStoreDown: refuse)` });
        this.serve();
        return;
      }
      this.grant(node, lease);
    });
  }

  private grant(node: QueueNode<Waiter>, lease: Lease): void {
    // Emitted before the callback: a granted session may splice (and emit) at once.
    this.events.emit('queue-wait', { pool: this.pool.name, waitMs: this.now() - node.value.queuedAt, granted: true });
    this.waiters.settle(node, { ok: true, lease });
    this.queueLeft();
  }

  /** Someone left the queue: once it is empty, this replica stops holding places in the store's queues. */
  private queueLeft(): void {
    if (this.waiters.length === 0) this.gate.store?.noWaiters(this.pool.servers);
  }

  private evictOldestSilent(): void {
    const node = this.waiters.oldestSilent();
    if (!node) return;
    const message = `pool "${this.pool.name}": dropped from a full queue (queue.maxLength ${this.pool.settings().queue.maxLength}) as its oldest client that had sent nothing`;
    this.waiters.settle(node, { ok: false, code: 'QUEUE_FULL', message });
  }

  private scheduleRateRetry(): void {
    if (this.rate.unlimited || this.rateTimer || this.waiters.length === 0 || this.closed) return;
    this.rateTimer = setTimeout(() => {
      this.rateTimer = undefined;
      this.serve();
    }, Math.max(1, this.rate.msUntilNext()));
  }
}
