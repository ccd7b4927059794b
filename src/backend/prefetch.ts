import type { TimeoutsConfig } from '../config/schema.js';
import { subscribe, type ProxyEvents } from '../events/bus.js';
import type { Ticket } from '../ticket.js';
import { attemptBackend, type AttemptHandle, type AttemptSuccess } from './attempt.js';
import type { PrefetchedConnection, PrefetchSource } from './lease.js';
import { closePolitely } from '../net/polite-close.js';
import type { BackendPool } from './pool.js';
import { ReadyConnection, type PrefetchDiscardReason } from './prefetch-connection.js';
import type { BackendServer } from './server.js';

export type { PrefetchDiscardReason } from './prefetch-connection.js';

/** Sent before closing a connection we will not use, so sshd logs a plain disconnect. */
export const PREFETCH_IDENTIFICATION = Buffer.from('SSH-2.0-ssh-banner-proxy_prefetch\r\n', 'latin1');

/** Why a ready connection was retired (closed by us). */
export type PrefetchRetireReason = 'MAX_AGE' | 'SHUTDOWN' | 'SERVER_UNUSABLE' | 'SURPLUS';

/** After our identification and FIN, how long sshd gets to close its side before we reset. */
const CLOSE_WAIT_MS = 2000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;

export interface PrefetchOptions {
  /** Connect and banner timeouts for prefetch attempts (the sessions' own, read at each attempt). */
  readonly timeouts: () => Pick<TimeoutsConfig, 'connect' | 'banner'>;
  /** Background refill period (a slot may free up without an event we see). Default 500 ms. */
  readonly tickMs?: number;
  readonly random?: () => number;
}

interface OpeningConnection {
  readonly server: BackendServer;
  attempt: AttemptHandle | undefined;
  readonly slot: Ticket;
}

/**
 * Banner prefetch for one pool (`pools[].prefetch: { perServer, maxAge }`): keeps
 * `perServer` backend connections open on every UP server, their identification
 * received and verified (`ReadyConnection`), so a new client is spliced at once to a
 * real, byte-exact banner whatever the server's banner latency.
 *
 * - Each connection holds one of the server's handshake slots; a lease that takes it adopts that slot.
 * - It is retired before `maxAge` (identification sent, then FIN), with jitter so
 *   connections opened together do not all close together.
 * - Refills only UP servers that are candidates, never while sessions are queued
 *   for a slot, with a backoff per server after failures.
 */
export class BannerPrefetcher implements PrefetchSource {
  private readonly pool: BackendPool;
  private readonly events: ProxyEvents;
  private readonly options: PrefetchOptions;
  private readonly random: () => number;
  private readonly ready = new Map<BackendServer, ReadyConnection[]>();
  private readonly opening = new Set<OpeningConnection>();
  /** Slots asked of the shared store and not answered yet, per server. */
  private readonly askingSlots = new Map<BackendServer, number>();
  private readonly failures = new Map<BackendServer, { count: number; until: number }>();
  private tickTimer: NodeJS.Timeout | undefined;
  private refillPending: NodeJS.Immediate | undefined;
  private unsubscribe: (() => void) | undefined;
  private running = false;

  constructor(pool: BackendPool, events: ProxyEvents, options: PrefetchOptions) {
    this.pool = pool;
    this.events = events;
    this.options = options;
    this.random = options.random ?? Math.random;
  }

  get perServer(): number {
    return this.pool.settings.prefetch?.perServer ?? 0;
  }

  get maxAgeMs(): number {
    return this.pool.settings.prefetch?.maxAge ?? 0;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.pool.attachPrefetch(this);
    this.unsubscribe = subscribe(this.events, 'server-state', ({ pool }) => {
      if (pool === this.pool.name) this.refillSoon();
    });
    this.tick();
  }

  /** Stops refilling, cancels attempts, retires every ready connection. Idempotent. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.pool.attachPrefetch(undefined);
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
    clearImmediate(this.refillPending);
    this.refillPending = undefined;
    for (const opening of [...this.opening]) {
      opening.attempt?.cancel();
      this.opening.delete(opening);
      opening.slot.release();
    }
    for (const list of this.ready.values()) for (const connection of [...list]) this.retire(connection, 'SHUTDOWN');
    this.ready.clear();
  }

  available(server: BackendServer): number {
    return this.ready.get(server)?.length ?? 0;
  }

  /** Ready connections across the pool. */
  get readyCount(): number {
    let count = 0;
    for (const list of this.ready.values()) count += list.length;
    return count;
  }

  take(server: BackendServer): PrefetchedConnection | undefined {
    const list = this.ready.get(server);
    for (let connection = list?.shift(); connection; connection = list?.shift()) {
      if (!connection.usable) {
        this.discard(connection, 'BACKEND_CLOSED', false);
        continue;
      }
      const success = connection.handOver();
      this.emit(server, 'used', { ageMs: connection.ageMs });
      this.events.emit('prefetch', { pool: this.pool.name, server: server.name, outcome: 'hit' });
      this.refillSoon();
      return { success, slot: connection.slot };
    }
    if (this.perServer > 0) this.events.emit('prefetch', { pool: this.pool.name, server: server.name, outcome: 'miss' });
    return undefined;
  }

  private tick(): void {
    this.refill();
    if (!this.running) return;
    this.tickTimer = setTimeout(() => this.tick(), this.options.tickMs ?? 500);
  }

  /**
   * Refill once this turn of the event loop has handled its I/O, not in the current
   * call stack (take() runs inside the pool's lease()): the takes of a burst read in one
   * turn are coalesced into one refill pass, after the splices they made. Not a timer: a
   * 20 ms one emptied a pool of four under 2,000 conn/s (about one take in ten was a hit).
   */
  private refillSoon(): void {
    if (!this.running || this.refillPending) return;
    this.refillPending = setImmediate(() => {
      this.refillPending = undefined;
      this.refill();
    });
  }

  private wanted(server: BackendServer, candidates: readonly BackendServer[]): boolean {
    return this.perServer > 0 && server.health === 'UP' && server.takesNewSessions && candidates.includes(server);
  }

  private currentCandidates(): BackendServer[] {
    return this.pool.candidates({ clientKey: '', exclude: new Set() });
  }

  private refill(): void {
    if (!this.running) return;
    const candidates = this.currentCandidates();
    const perServer = this.perServer;
    // Servers gone from the pool (reload) or no longer usable: retire what they hold.
    for (const [server, list] of this.ready) {
      if (this.wanted(server, candidates)) {
        while (list.length > perServer) this.retire(list[0] as ReadyConnection, 'SURPLUS');
        continue;
      }
      for (const connection of [...list]) this.retire(connection, 'SERVER_UNUSABLE');
      this.ready.delete(server);
    }
    // Sessions waiting for a slot come first.
    if (this.pool.queueLength > 0) return;
    const now = performance.now();
    for (const server of this.pool.servers) {
      if (!this.wanted(server, candidates)) continue;
      if ((this.failures.get(server)?.until ?? 0) > now) continue;
      for (let have = this.available(server) + this.openingOn(server); have < perServer; have += 1) {
        let granted = true;
        this.askingSlots.set(server, (this.askingSlots.get(server) ?? 0) + 1);
        // With a shared store the answer comes later: counted as opening meanwhile.
        this.pool.takeCheckSlot(server, (slot) => {
          this.askingSlots.set(server, (this.askingSlots.get(server) ?? 1) - 1);
          granted = slot !== undefined;
          if (!slot) return;
          if (this.running) this.open(server, slot);
          else slot.release();
        });
        if (!granted) break;
      }
    }
  }

  private openingOn(server: BackendServer): number {
    let count = this.askingSlots.get(server) ?? 0;
    for (const opening of this.opening) if (opening.server === server) count += 1;
    return count;
  }

  private open(server: BackendServer, slot: Ticket): void {
    const { connect, banner } = this.options.timeouts();
    const openedAt = performance.now();
    const opening: OpeningConnection = { server, attempt: undefined, slot };
    this.opening.add(opening);
    opening.attempt = attemptBackend({ host: server.host, port: server.port, connectTimeoutMs: connect, bannerTimeoutMs: banner }, (outcome) => {
      opening.attempt = undefined;
      this.opening.delete(opening);
      if (!outcome.ok) {
        slot.release();
        this.failed(server);
        this.emit(server, 'failed', { reason: outcome.code });
        return;
      }
      this.adopt(server, outcome, openedAt, slot);
    });
  }

  private adopt(server: BackendServer, success: AttemptSuccess, openedAt: number, slot: Ticket): void {
    const connection = new ReadyConnection(server, success, slot, openedAt, (unusable, reason) => this.discard(unusable, reason, true));
    if (!connection.watch()) {
      this.discard(connection, 'INVALID_DATA', true);
      return;
    }
    this.failures.delete(server);
    const remainingMs = openedAt + this.lifetimeMs() - performance.now();
    if (!this.running || remainingMs <= 0 || !this.wanted(server, this.currentCandidates())) {
      this.emit(server, 'opened', { ageMs: connection.ageMs });
      this.retire(connection, !this.running ? 'SHUTDOWN' : remainingMs <= 0 ? 'MAX_AGE' : 'SERVER_UNUSABLE');
      return;
    }
    connection.retireTimer = setTimeout(() => {
      this.remove(connection);
      this.retire(connection, 'MAX_AGE');
      this.refillSoon();
    }, remainingMs);
    const list = this.ready.get(server) ?? [];
    list.push(connection);
    this.ready.set(server, list);
    // After it is in the list: observers waiting for "N ready" see it.
    this.emit(server, 'opened', { ageMs: connection.ageMs });
    // A session may be queued for exactly this server.
    this.pool.serveQueue();
  }

  /**
   * How long a connection may live, counted from its connect: `maxAge` less a margin
   * (so it is gone before maxAge as the backend sees it), less up to 20 % jitter.
   */
  private lifetimeMs(): number {
    const maxAge = this.maxAgeMs;
    const margin = Math.min(1000, maxAge * 0.1);
    return maxAge - margin - this.random() * maxAge * 0.2;
  }

  private remove(connection: ReadyConnection): void {
    const list = this.ready.get(connection.server);
    const index = list?.indexOf(connection) ?? -1;
    if (list && index !== -1) list.splice(index, 1);
  }

  /** Unusable (closed, reset, invalid): never handed to a client. */
  private discard(connection: ReadyConnection, reason: PrefetchDiscardReason, backoff: boolean): void {
    connection.detach();
    clearTimeout(connection.retireTimer);
    this.remove(connection);
    connection.socket.on('error', () => {});
    connection.socket.destroy();
    connection.slot.release();
    if (backoff) this.failed(connection.server);
    this.emit(connection.server, 'discarded', { reason, ageMs: connection.ageMs });
    this.refillSoon();
  }

  /** Ours to close: identify, FIN, and free the slot once sshd has closed its side. */
  private retire(connection: ReadyConnection, reason: PrefetchRetireReason): void {
    connection.detach();
    clearTimeout(connection.retireTimer);
    this.remove(connection);
    this.emit(connection.server, 'retired', { reason, ageMs: connection.ageMs });
    closePolitely(connection.socket, { send: PREFETCH_IDENTIFICATION, waitMs: CLOSE_WAIT_MS }, () => connection.slot.release());
  }

  private failed(server: BackendServer): void {
    const count = (this.failures.get(server)?.count ?? 0) + 1;
    const delayMs = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (count - 1));
    this.failures.set(server, { count, until: performance.now() + delayMs });
  }

  private emit(server: BackendServer, outcome: 'opened' | 'failed' | 'used' | 'retired' | 'discarded', detail: { readonly reason?: string; readonly ageMs?: number }): void {
    this.events.emit('prefetch', { pool: this.pool.name, server: server.name, outcome, ...detail });
  }
}
