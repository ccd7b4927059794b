import type { PoolConfig } from '../config/schema.js';
import type { ProxyEvents } from '../observe/events.js';
import { createBalancer, type Balancer } from './balancer.js';
import { BackendServer } from './server.js';

export interface LeaseRequest {
  /** What `source` balancing hashes: the client's address. */
  readonly clientKey: string;
  /** Servers this session already failed on; never tried twice. */
  readonly exclude: ReadonlySet<BackendServer>;
}

/** A session's hold on a server: one handshake slot plus one active-session count. */
export interface Lease {
  readonly server: BackendServer;
  /** Frees the handshake slot (idempotent); the session count stays until close(). */
  releaseSlot(): void;
  /** Frees everything the lease holds (idempotent). */
  close(): void;
}

export type AcquireResult =
  | { readonly ok: true; readonly lease: Lease; readonly waitMs: number }
  | { readonly ok: false; readonly code: 'NO_BACKEND' | 'QUEUE_FULL' | 'QUEUE_TIMEOUT'; readonly message: string; readonly waitMs: number };

export interface AcquireHandle {
  cancel(): void;
}

interface Waiter {
  readonly request: LeaseRequest;
  readonly callback: (result: AcquireResult) => void;
  readonly queuedAt: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Backend servers of one pool: picks a server by balance and health, and hands out
 * handshake slots so no server has more than `maxStartups` sessions in their SSH
 * handshake at once. Sessions that find no free slot wait in a FIFO queue.
 */
export class BackendPool {
  readonly name: string;
  readonly servers: BackendServer[];
  private config: PoolConfig;
  private readonly balancer: Balancer;
  private readonly events: ProxyEvents;
  private readonly waiters: Waiter[] = [];

  constructor(config: PoolConfig, events: ProxyEvents) {
    this.name = config.name;
    this.config = config;
    this.events = events;
    this.balancer = createBalancer(config.balance);
    this.servers = config.servers.map((server) => new BackendServer(config.name, server, config.handshake.maxStartups));
  }

  get settings(): PoolConfig {
    return this.config;
  }

  get queueLength(): number {
    return this.waiters.length;
  }

  /** Grants a lease now, or queues the request; the callback fires once unless cancelled. */
  acquire(request: LeaseRequest, callback: (result: AcquireResult) => void): AcquireHandle {
    const candidates = this.candidates(request);
    if (candidates.length === 0) {
      callback({ ok: false, code: 'NO_BACKEND', message: this.noBackendMessage(request), waitMs: 0 });
      return { cancel: () => {} };
    }
    if (this.waiters.length === 0) {
      const server = this.balancer.pick(candidates.filter((candidate) => candidate.hasFreeSlot), request.clientKey);
      if (server) {
        callback({ ok: true, lease: this.lease(server), waitMs: 0 });
        return { cancel: () => {} };
      }
    }
    if (this.waiters.length >= this.config.queue.maxLength) {
      callback({
        ok: false,
        code: 'QUEUE_FULL',
        message: `pool "${this.name}": ${this.waiters.length} sessions already wait for a handshake slot (queue.maxLength ${this.config.queue.maxLength})`,
        waitMs: 0,
      });
      return { cancel: () => {} };
    }
    const waiter: Waiter = { request, callback, queuedAt: performance.now(), timer: undefined };
    const timeoutMs = this.config.queue.timeout;
    waiter.timer = setTimeout(() => {
      this.removeWaiter(waiter);
      const waitMs = performance.now() - waiter.queuedAt;
      this.events.emit('queue-wait', { pool: this.name, waitMs, granted: false });
      callback({
        ok: false,
        code: 'QUEUE_TIMEOUT',
        message: `pool "${this.name}": no handshake slot freed within ${timeoutMs}ms`,
        waitMs,
      });
    }, timeoutMs);
    this.waiters.push(waiter);
    return {
      cancel: () => {
        if (this.removeWaiter(waiter)) clearTimeout(waiter.timer);
      },
    };
  }

  /** Servers this request may use now: healthy primaries, else healthy backups, else (whenAllDown: try) any not draining. */
  candidates(request: LeaseRequest): BackendServer[] {
    const open = this.servers.filter((server) => !request.exclude.has(server) && server.state !== 'DRAINING' && server.weight > 0);
    const primaries = open.filter((server) => !server.backup && server.state === 'UP');
    if (primaries.length > 0) return primaries;
    const backups = open.filter((server) => server.backup && server.state === 'UP');
    if (backups.length > 0) return backups;
    if (this.config.whenAllDown === 'try') return open;
    return [];
  }

  /** Serves queued sessions after a slot was freed or a server came back. */
  serveQueue(): void {
    for (let index = 0; index < this.waiters.length; ) {
      const waiter = this.waiters[index] as Waiter;
      const candidates = this.candidates(waiter.request);
      if (candidates.length === 0) {
        this.waiters.splice(index, 1);
        clearTimeout(waiter.timer);
        const waitMs = performance.now() - waiter.queuedAt;
        waiter.callback({ ok: false, code: 'NO_BACKEND', message: this.noBackendMessage(waiter.request), waitMs });
        continue;
      }
      const server = this.balancer.pick(candidates.filter((candidate) => candidate.hasFreeSlot), waiter.request.clientKey);
      if (!server) {
        index += 1;
        continue;
      }
      this.waiters.splice(index, 1);
      clearTimeout(waiter.timer);
      const waitMs = performance.now() - waiter.queuedAt;
      this.events.emit('queue-wait', { pool: this.name, waitMs, granted: true });
      waiter.callback({ ok: true, lease: this.lease(server), waitMs });
    }
  }

  /** Rejects every queued session (shutdown). */
  rejectQueued(message: string): void {
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.callback({ ok: false, code: 'NO_BACKEND', message, waitMs: performance.now() - waiter.queuedAt });
    }
  }

  private lease(server: BackendServer): Lease {
    server.handshakesActive += 1;
    server.activeSessions += 1;
    let slotHeld = true;
    let open = true;
    const releaseSlot = (): void => {
      if (!slotHeld) return;
      slotHeld = false;
      server.handshakesActive -= 1;
      this.serveQueue();
    };
    return {
      server,
      releaseSlot,
      close: () => {
        if (!open) return;
        open = false;
        server.activeSessions -= 1;
        releaseSlot();
      },
    };
  }

  private removeWaiter(waiter: Waiter): boolean {
    const index = this.waiters.indexOf(waiter);
    if (index === -1) return false;
    this.waiters.splice(index, 1);
    return true;
  }

  private noBackendMessage(request: LeaseRequest): string {
    if (request.exclude.size > 0) return `pool "${this.name}": no server left to try after ${request.exclude.size} failed`;
    return `pool "${this.name}": no server is UP (whenAllDown: ${this.config.whenAllDown})`;
  }
}
