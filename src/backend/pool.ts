import type { PoolConfig } from '../config/schema.js';
import type { AttemptFailureCode } from '../errors.js';
import type { AttemptSuccess } from './attempt.js';
import type { PrefetchSource } from './prefetch.js';
import type { ProxyEvents } from '../observe/events.js';
import { createBalancer, type Balancer } from './balancer.js';
import { recordAttemptOutcome } from './passive-health.js';
import { ConnectRateLimiter } from './retry-policy.js';
import { formatHostPort } from '../net/address.js';
import { BackendServer, type ServerHealth, type ServerStateChange } from './server.js';

export interface LeaseRequest {
  /** What `source` balancing hashes: the client's address. */
  readonly clientKey: string;
  /** Servers this session must not use (it failed on them for good). */
  readonly exclude: ReadonlySet<BackendServer>;
}

/** A session's hold on a server: one handshake slot plus one active-session count. */
export interface Lease {
  readonly server: BackendServer;
  /** Frees the handshake slot (idempotent); the session count stays until close(). */
  releaseSlot(): void;
  /** Frees everything the lease holds (idempotent). */
  close(): void;
  /** A prefetched connection (banner already verified) that comes with this lease's slot: splice it, do not connect. */
  readonly prefetched?: AttemptSuccess;
}

export type AcquireFailureCode = 'NO_BACKEND' | 'QUEUE_FULL' | 'QUEUE_TIMEOUT' | 'SHUTDOWN';

export type AcquireResult =
  | { readonly ok: true; readonly lease: Lease; readonly waitMs: number }
  | { readonly ok: false; readonly code: AcquireFailureCode; readonly message: string; readonly waitMs: number };

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
  private readonly waiters: Waiter[] = [];
  private rate: ConnectRateLimiter;
  /** Servers removed by a reload that still carry sessions: DRAINING, dropped when their last session ends. */
  private readonly retired = new Set<BackendServer>();
  private rateTimer: NodeJS.Timeout | undefined;
  private readonly passiveTimers = new Map<BackendServer, NodeJS.Timeout>();
  private serving = false;
  private serveAgain = false;
  /** Banner prefetch (src/backend/prefetch.ts), when `prefetch.perServer` > 0. */
  private prefetch: PrefetchSource | undefined;
  private closed = false;

  constructor(config: PoolConfig, events: ProxyEvents) {
    this.name = config.name;
    this.config = config;
    this.events = events;
    this.balancer = createBalancer(config.balance);
    this.rate = new ConnectRateLimiter(config.retry.maxConnectRate);
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
    if (this.closed) {
      callback({ ok: false, code: 'SHUTDOWN', message: `pool "${this.name}" is closed`, waitMs: 0 });
      return { cancel: () => {} };
    }
    const candidates = this.candidates(request);
    if (candidates.length === 0) {
      callback({ ok: false, code: 'NO_BACKEND', message: this.noBackendMessage(request), waitMs: 0 });
      return { cancel: () => {} };
    }
    if (this.waiters.length === 0) {
      const server = this.choose(candidates, request.clientKey);
      if (server && this.rate.tryTake()) {
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
      if (!this.removeWaiter(waiter)) return;
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
    // Earlier waiters may be unable to use a free slot this request can use (their
    // exclusions), or the connect rate is what held it back: let the queue decide.
    this.serveQueue();
    return {
      cancel: () => {
        if (this.removeWaiter(waiter)) clearTimeout(waiter.timer);
      },
    };
  }

  /** Servers this request may use now: healthy primaries, else healthy backups, else (whenAllDown: try) any not draining. */
  candidates(request: LeaseRequest): BackendServer[] {
    const open = this.servers.filter((server) => !request.exclude.has(server) && !server.draining && server.weight > 0);
    const primaries = open.filter((server) => !server.backup && server.health === 'UP');
    if (primaries.length > 0) return primaries;
    const backups = open.filter((server) => server.backup && server.health === 'UP');
    if (backups.length > 0) return backups;
    if (this.config.whenAllDown === 'try') return open;
    return [];
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
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.callback({ ok: false, code: 'SHUTDOWN', message, waitMs: performance.now() - waiter.queuedAt });
    }
  }

  /**
   * Takes a handshake slot for a health check if one is free (a check is an
   * unauthenticated connection too, and counts against sshd's MaxStartups).
   * Returns the release function, or undefined when all slots are in use.
   */
  tryCheckSlot(server: BackendServer): (() => void) | undefined {
    if (!server.hasFreeSlot) return undefined;
    server.handshakesActive += 1;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      server.handshakesActive -= 1;
      this.serveQueue();
    };
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

  /** Records a session attempt's outcome (undefined = success) for passive health. */
  reportAttempt(server: BackendServer, failure: AttemptFailureCode | undefined): void {
    const threshold = this.config.passiveHealth.consecutiveFailures;
    if (!recordAttemptOutcome(server, failure, threshold)) return;
    this.setHealth(server, 'DOWN', `passive:${failure ?? 'unknown'}`);
    // Without active checks nothing would bring it back: eject for one check interval.
    if (!this.config.healthCheck.enabled) {
      clearTimeout(this.passiveTimers.get(server));
      const timer = setTimeout(() => {
        this.passiveTimers.delete(server);
        this.setHealth(server, 'UP', 'passive:expired');
      }, this.config.healthCheck.interval);
      this.passiveTimers.set(server, timer);
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

  /**
   * Applies a reloaded pool config in place (same name). Servers are matched by name:
   * unchanged ones keep their object and so their health state and counters;
   * weight/backup/maxStartups are updated in place; removed ones (and ones whose
   * address changed) go DRAINING: no new sessions, running ones continue, and they
   * leave the list when their last session ends.
   */
  reconfigure(config: PoolConfig): { added: string[]; removed: string[]; changed: string[] } {
    const changes = { added: [] as string[], removed: [] as string[], changed: [] as string[] };
    if (config.balance !== this.config.balance) this.balancer = createBalancer(config.balance);
    if (config.retry.maxConnectRate !== this.config.retry.maxConnectRate) this.rate = new ConnectRateLimiter(config.retry.maxConnectRate);
    this.config = config;
    const kept = new Set<BackendServer>();
    const next: BackendServer[] = [];
    for (const serverConfig of config.servers) {
      const address = formatHostPort(serverConfig.address);
      const existing = this.servers.find((server) => server.name === serverConfig.name && server.address === address && !this.retired.has(server));
      if (!existing) {
        next.push(new BackendServer(config.name, serverConfig, config.handshake.maxStartups));
        changes.added.push(serverConfig.name);
        continue;
      }
      kept.add(existing);
      const maxStartups = serverConfig.maxStartups ?? config.handshake.maxStartups;
      if (existing.weight !== serverConfig.weight || existing.backup !== serverConfig.backup || existing.maxStartups !== maxStartups) {
        changes.changed.push(serverConfig.name);
      }
      existing.weight = serverConfig.weight;
      existing.backup = serverConfig.backup;
      existing.maxStartups = maxStartups;
      if (existing.draining && existing.stateReason === 'reload:removed') this.setDraining(existing, false, 'reload:added');
      next.push(existing);
    }
    for (const server of this.servers) {
      if (kept.has(server) || this.retired.has(server)) continue;
      changes.removed.push(server.name);
      if (server.activeSessions > 0) {
        this.retired.add(server);
        this.setDraining(server, true, 'reload:removed');
      }
    }
    // Retired servers stay visible (DRAINING) after the live ones until their sessions end.
    this.servers.splice(0, this.servers.length, ...next, ...[...this.retired]);
    this.serveQueue();
    return changes;
  }

  /** Stops timers and rejects queued sessions. Idempotent. */
  close(message = `pool "${this.name}" closed`): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.rateTimer);
    this.rateTimer = undefined;
    for (const timer of this.passiveTimers.values()) clearTimeout(timer);
    this.passiveTimers.clear();
    this.rejectQueued(message);
  }

  private announce(server: BackendServer, change: ServerStateChange | undefined): void {
    if (!change) return;
    this.events.emit('server-state', { pool: this.name, server: server.name, ...change });
    // A server became usable: queued sessions may go; one became unusable: some may have no candidate left.
    this.serveQueue();
  }

  private serveOnce(): void {
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
      const server = this.choose(candidates, waiter.request.clientKey);
      if (!server) {
        index += 1;
        continue;
      }
      if (!this.rate.tryTake()) {
        this.scheduleRateRetry();
        return;
      }
      this.waiters.splice(index, 1);
      clearTimeout(waiter.timer);
      const waitMs = performance.now() - waiter.queuedAt;
      this.events.emit('queue-wait', { pool: this.name, waitMs, granted: true });
      waiter.callback({ ok: true, lease: this.lease(server), waitMs });
    }
  }

  /**
   * A server with a free slot, by the balancer. `source` is sticky: it picks among all
   * candidates and waits for that server's slot, so a client keeps its server under load.
   */
  private choose(candidates: readonly BackendServer[], clientKey: string): BackendServer | undefined {
    if (this.balancer.sticky) {
      const server = this.balancer.pick(candidates, clientKey);
      return server && (server.hasFreeSlot || this.prefetchReady(server) > 0) ? server : undefined;
    }
    // Servers with a prefetched banner first: the client gets it at once.
    const prefetched = this.prefetch ? candidates.filter((candidate) => this.prefetchReady(candidate) > 0) : [];
    return this.balancer.pick(
      prefetched.length > 0 ? prefetched : candidates.filter((candidate) => candidate.hasFreeSlot),
      clientKey,
    );
  }

  private scheduleRateRetry(): void {
    if (this.rate.unlimited || this.rateTimer || this.waiters.length === 0 || this.closed) return;
    this.rateTimer = setTimeout(() => {
      this.rateTimer = undefined;
      this.serveQueue();
    }, Math.max(1, this.rate.msUntilNext()));
  }

  private lease(server: BackendServer): Lease {
    // A prefetched connection brings the handshake slot it holds with it.
    const prefetched = this.prefetch?.take(server);
    if (!prefetched) server.handshakesActive += 1;
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
      ...(prefetched ? { prefetched } : {}),
      close: () => {
        if (!open) return;
        open = false;
        server.activeSessions -= 1;
        releaseSlot();
        if (server.activeSessions === 0 && this.retired.delete(server)) {
          const index = this.servers.indexOf(server);
          if (index !== -1) this.servers.splice(index, 1);
        }
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
