import type { Socket } from 'node:net';
import type { TimeoutsConfig } from '../config/schema.js';
import { subscribe, type ProxyEvents } from '../observe/events.js';
import { SshPacketReader } from '../protocol/ssh-packets.js';
import { attemptBackend, type AttemptHandle, type AttemptSuccess } from './attempt.js';
import type { BackendPool } from './pool.js';
import type { BackendServer } from './server.js';

/** What the pool asks of prefetched connections (see `BackendPool.attachPrefetch`). */
export interface PrefetchSource {
  /** Prefetched connections ready on this server now. */
  available(server: BackendServer): number;
  /**
   * Hands over the oldest ready connection, or undefined (a miss). The handshake slot
   * it held moves with it to the lease: the pool must not take another one.
   */
  take(server: BackendServer): AttemptSuccess | undefined;
}

/** Sent before closing a connection we will not use, so sshd logs a plain disconnect. */
export const PREFETCH_IDENTIFICATION = Buffer.from('SSH-2.0-ssh-banner-proxy_prefetch\r\n', 'latin1');

/** Why a ready connection was retired (closed by us) or discarded (unusable). */
export type PrefetchRetireReason = 'MAX_AGE' | 'SHUTDOWN' | 'SERVER_UNUSABLE' | 'SURPLUS';
export type PrefetchDiscardReason = 'BACKEND_CLOSED' | 'BACKEND_RESET' | 'INVALID_DATA' | 'TOO_MUCH_DATA';

/** Bytes a server may send after its identification while the connection waits (a KEXINIT is ~1-2 KiB). */
const MAX_IDLE_BYTES = 64 * 1024;
/** After our identification and FIN, how long sshd gets to close its side before we reset. */
const CLOSE_WAIT_MS = 2000;
const BACKOFF_MIN_MS = 500;
/** Coalescing delay between a take/retire/discard and the refill it causes. */
const REFILL_DELAY_MS = 20;
const BACKOFF_MAX_MS = 30_000;

export interface PrefetchOptions {
  /** Connect and banner timeouts for prefetch attempts (the sessions' own, read at each attempt). */
  readonly timeouts: () => Pick<TimeoutsConfig, 'connect' | 'banner'>;
  /** Background refill period (a slot may free up without an event we see). Default 500 ms. */
  readonly tickMs?: number;
  readonly random?: () => number;
}

interface ReadyConnection {
  readonly server: BackendServer;
  readonly socket: Socket;
  readonly success: AttemptSuccess;
  /** Bytes received after the attempt finished, in order. */
  readonly idleChunks: Buffer[];
  idleBytes: number;
  readonly reader: SshPacketReader;
  /** performance.now() when the TCP connect started: the backend's view of the connection's age. */
  readonly openedAt: number;
  retireTimer: NodeJS.Timeout | undefined;
  readonly releaseSlot: () => void;
  readonly detach: () => void;
}

interface OpeningConnection {
  readonly server: BackendServer;
  attempt: AttemptHandle | undefined;
  readonly releaseSlot: () => void;
}

/**
 * Banner prefetch for one pool (`pools[].prefetch: { perServer, maxAge }`): keeps
 * `perServer` backend connections open on every UP server, their identification
 * received and verified, so a new client is spliced at once to a real, byte-exact
 * banner whatever the server's banner latency.
 *
 * - Each connection holds one of the server's handshake slots (the pool's own
 *   accounting, `tryCheckSlot`); a lease that takes it adopts that slot.
 * - It is retired before `maxAge` (identification sent, then FIN), with jitter so
 *   connections opened together do not all close together.
 * - While it waits it is read: bytes after the identification are kept byte-exact
 *   (some servers send KEXINIT at once) if they frame as SSH packets; a close, a
 *   reset, a DISCONNECT or anything else discards it.
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
  private readonly closing = new Set<{ socket: Socket; timer: NodeJS.Timeout; done: () => void }>();
  private readonly failures = new Map<BackendServer, { count: number; until: number }>();
  private tickTimer: NodeJS.Timeout | undefined;
  private refillPending: NodeJS.Timeout | undefined;
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
    clearTimeout(this.refillPending);
    this.refillPending = undefined;
    for (const opening of [...this.opening]) {
      opening.attempt?.cancel();
      this.opening.delete(opening);
      opening.releaseSlot();
    }
    for (const list of this.ready.values()) for (const connection of [...list]) this.retire(connection, 'SHUTDOWN');
    this.ready.clear();
  }

  /** Resolves when every retired connection is closed (tests, graceful stop). */
  get closingCount(): number {
    return this.closing.size;
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

  take(server: BackendServer): AttemptSuccess | undefined {
    const list = this.ready.get(server);
    while (list && list.length > 0) {
      const connection = list.shift() as ReadyConnection;
      if (connection.socket.destroyed || connection.socket.readableEnded) {
        this.discard(connection, 'BACKEND_CLOSED', false);
        continue;
      }
      connection.detach();
      clearTimeout(connection.retireTimer);
      connection.socket.pause();
      // A fresh placeholder until the session's splice attaches its own listeners.
      const guard = (): void => {};
      connection.socket.on('error', guard);
      this.emit(server, 'used', { ageMs: performance.now() - connection.openedAt });
      this.events.emit('prefetch', { pool: this.pool.name, server: server.name, outcome: 'hit' });
      this.refillSoon();
      const { success } = connection;
      const received = connection.idleBytes === 0 ? success.received : Buffer.concat([success.received, ...connection.idleChunks]);
      return { ...success, received, releaseErrorGuard: () => connection.socket.off('error', guard) };
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
   * Refill shortly, not in the current call stack (take() runs inside the pool's
   * lease()): the takes of a burst are coalesced into one refill pass, which does
   * not compete with the splices it follows.
   */
  private refillSoon(): void {
    if (!this.running || this.refillPending) return;
    this.refillPending = setTimeout(() => {
      this.refillPending = undefined;
      this.refill();
    }, REFILL_DELAY_MS);
  }

  private wanted(server: BackendServer, candidates: readonly BackendServer[]): boolean {
    return this.perServer > 0 && server.health === 'UP' && !server.draining && server.weight > 0 && candidates.includes(server);
  }

  private refill(): void {
    if (!this.running) return;
    const candidates = this.pool.candidates({ clientKey: '', exclude: new Set() });
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
      const failure = this.failures.get(server);
      if (failure && failure.until > now) continue;
      let have = this.available(server) + this.openingOn(server);
      while (have < perServer) {
        const releaseSlot = this.pool.tryCheckSlot(server);
        if (!releaseSlot) break;
        this.open(server, releaseSlot);
        have += 1;
      }
    }
  }

  private openingOn(server: BackendServer): number {
    let count = 0;
    for (const opening of this.opening) if (opening.server === server) count += 1;
    return count;
  }

  private open(server: BackendServer, releaseSlot: () => void): void {
    const { connect, banner } = this.options.timeouts();
    const openedAt = performance.now();
    const opening: OpeningConnection = { server, attempt: undefined, releaseSlot };
    this.opening.add(opening);
    opening.attempt = attemptBackend({ host: server.host, port: server.port, connectTimeoutMs: connect, bannerTimeoutMs: banner }, (outcome) => {
      opening.attempt = undefined;
      this.opening.delete(opening);
      if (!outcome.ok) {
        releaseSlot();
        this.failed(server);
        this.emit(server, 'failed', { reason: outcome.code });
        return;
      }
      this.adopt(server, outcome, openedAt, releaseSlot);
    });
  }

  private adopt(server: BackendServer, success: AttemptSuccess, openedAt: number, releaseSlot: () => void): void {
    const socket = success.socket;
    const connection: ReadyConnection = {
      server,
      socket,
      success,
      idleChunks: [],
      idleBytes: 0,
      reader: new SshPacketReader(),
      openedAt,
      retireTimer: undefined,
      releaseSlot,
      detach: () => {
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('close', onClose);
        socket.off('error', onError);
      },
    };
    const onData = (chunk: Buffer): void => {
      connection.idleChunks.push(chunk);
      connection.idleBytes += chunk.length;
      if (connection.idleBytes > MAX_IDLE_BYTES) {
        this.discard(connection, 'TOO_MUCH_DATA', true);
        return;
      }
      const read = connection.reader.push(chunk);
      // SSH_MSG_DISCONNECT (1): the server gave up on us.
      if (read.state === 'error' || read.payloads.some((payload) => payload[0] === 1)) this.discard(connection, 'INVALID_DATA', true);
    };
    const onEnd = (): void => this.discard(connection, 'BACKEND_CLOSED', true);
    const onClose = (): void => this.discard(connection, 'BACKEND_CLOSED', true);
    const onError = (error: NodeJS.ErrnoException): void => {
      this.discard(connection, error.code === 'ECONNRESET' ? 'BACKEND_RESET' : 'BACKEND_CLOSED', true);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    socket.on('error', onError);
    success.releaseErrorGuard();
    // Bytes after the identification that came with it: validate them too.
    const rest = success.received.subarray(success.identEndOffset);
    if (rest.length > 0) {
      const read = connection.reader.push(rest);
      if (read.state === 'error' || read.payloads.some((payload) => payload[0] === 1)) {
        this.discard(connection, 'INVALID_DATA', true);
        return;
      }
    }
    this.failures.delete(server);
    const lifetimeMs = this.lifetimeMs();
    const remainingMs = openedAt + lifetimeMs - performance.now();
    if (!this.running || remainingMs <= 0 || !this.wanted(server, this.pool.candidates({ clientKey: '', exclude: new Set() }))) {
      this.emit(server, 'opened', { ageMs: performance.now() - openedAt });
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
    socket.resume();
    // After it is in the list: observers waiting for "N ready" see it.
    this.emit(server, 'opened', { ageMs: performance.now() - openedAt });
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
    connection.releaseSlot();
    if (backoff) this.failed(connection.server);
    this.emit(connection.server, 'discarded', { reason, ageMs: performance.now() - connection.openedAt });
    this.refillSoon();
  }

  /** Ours to close: identify, FIN, and free the slot once sshd has closed its side. */
  private retire(connection: ReadyConnection, reason: PrefetchRetireReason): void {
    connection.detach();
    clearTimeout(connection.retireTimer);
    this.remove(connection);
    const { socket } = connection;
    this.emit(connection.server, 'retired', { reason, ageMs: performance.now() - connection.openedAt });
    let finished = false;
    const entry = {
      socket,
      timer: setTimeout(() => done(), CLOSE_WAIT_MS),
      done: (): void => done(),
    };
    const done = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(entry.timer);
      this.closing.delete(entry);
      socket.destroy();
      connection.releaseSlot();
    };
    this.closing.add(entry);
    socket.on('error', () => done());
    socket.once('close', done);
    socket.resume();
    socket.end(PREFETCH_IDENTIFICATION);
  }

  private failed(server: BackendServer): void {
    const count = (this.failures.get(server)?.count ?? 0) + 1;
    const delayMs = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (count - 1));
    this.failures.set(server, { count, until: performance.now() + delayMs });
  }

  private emit(
    server: BackendServer,
    outcome: 'opened' | 'failed' | 'used' | 'retired' | 'discarded',
    detail: { readonly reason?: string; readonly ageMs?: number },
  ): void {
    this.events.emit('prefetch', { pool: this.pool.name, server: server.name, outcome, ...detail });
  }
}
