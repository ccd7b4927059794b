import type { Socket } from 'node:net';
import { attemptBackend, type AttemptFailure, type AttemptHandle, type AttemptSuccess } from '../backend/attempt.js';
import type { AcquireHandle, BackendPool, Lease } from '../backend/pool.js';
import { isTransientFailure, planNextAttempt } from '../backend/retry-policy.js';
import type { BackendServer } from '../backend/server.js';
import type { KeepaliveConfig, TimeoutsConfig } from '../config/schema.js';
import type { ReasonCode, SessionFailureCode } from '../errors.js';
import type { AttemptRecord, ProxyEvents } from '../events/bus.js';
import { ClientBuffer } from './client-buffer.js';
import { SetupDeadline, type DeadlineRule } from './client-deadline.js';
import { ClientKeepalive } from './keepalive.js';
import { HandshakeTracker } from './handshake-tracker.js';
import { Splice } from './splice.js';

export type SessionPhase = 'accepted' | 'queued' | 'connecting' | 'spliced' | 'closed';

export interface SessionContext {
  readonly listener: string;
  readonly pool: BackendPool;
  readonly timeouts: TimeoutsConfig;
  readonly clientBufferBytes: number;
  readonly events: ProxyEvents;
  /** The client's port as the PROXY protocol header gave it (else the socket's). */
  readonly clientPort?: number;
  /** RFC 4253 lines to keep matching clients waiting (listeners[].keepalive). */
  readonly keepalive?: KeepaliveConfig;
  /** Setup budgets by client identification (listeners[].deadlines). */
  readonly deadlines?: readonly DeadlineRule[];
}

let nextSessionId = 1;

/**
 * One client connection, phase by phase: queue for a handshake slot, connect,
 * await a valid identification, fail over while the client has seen nothing,
 * then splice. `close()` is idempotent and emits exactly one summary.
 */
export class Session {
  readonly id = nextSessionId++;
  phase: SessionPhase = 'accepted';
  private readonly client: Socket;
  private readonly clientAddress: string;
  private readonly context: SessionContext;
  private readonly acceptedAt = performance.now();
  private readonly buffer: ClientBuffer;
  private readonly attempts: AttemptRecord[] = [];
  private readonly failed = new Set<BackendServer>();
  /** Servers that throttled, reset or closed before the banner: may be retried after a backoff. */
  private readonly throttled = new Set<BackendServer>();
  private backoffRounds = 0;
  private backoffTimer: NodeJS.Timeout | undefined;
  private readonly onClosed: (session: Session) => void;
  private acquire: AcquireHandle | undefined;
  private attempt: AttemptHandle | undefined;
  private lease: Lease | undefined;
  private splice: Splice | undefined;
  private backendSocket: Socket | undefined;
  private tracker: HandshakeTracker | undefined;
  private readonly deadline: SetupDeadline;
  private keepalive: ClientKeepalive | undefined;
  private queueWaitMs = 0;
  private bannerMs: number | undefined;
  private setupMs: number | undefined;
  private serverIdentification: string | undefined;

  constructor(client: Socket, clientAddress: string, context: SessionContext, onClosed: (session: Session) => void) {
    this.client = client;
    this.clientAddress = clientAddress;
    this.context = context;
    this.onClosed = onClosed;
    this.buffer = new ClientBuffer(client, context.clientBufferBytes);
    this.deadline = new SetupDeadline(context.deadlines ?? [], context.timeouts.setup, ({ budgetMs, pattern }) => {
      const whose = pattern === undefined ? 'the setup budget' : `the setup budget for clients matching "${pattern}"`;
      this.fail('SETUP_TIMEOUT', `no backend identification within ${whose} of ${budgetMs}ms`);
    });
  }

  /**
   * Bytes spliced so far each way, read from the sockets' own counters (nothing is
   * counted per chunk); undefined before the splice. Metrics read it at scrape time.
   */
  get bytesSoFar(): { readonly clientToServer: number; readonly serverToClient: number } | undefined {
    if (!this.backendSocket) return undefined;
    return { clientToServer: this.backendSocket.bytesWritten, serverToClient: this.client.bytesWritten };
  }

  get isSpliced(): boolean {
    return this.phase === 'spliced';
  }

  /** `initialBytes`: client bytes already read (after a PROXY protocol header). */
  start(initialBytes?: Buffer): void {
    this.client.setNoDelay(true);
    this.client.on('error', this.onClientErrorBeforeSplice);
    this.client.on('close', this.onClientCloseBeforeSplice);
    this.buffer.start(initialBytes);
    this.deadline.start();
    this.deadline.identify(this.buffer.identification);
    if (this.buffer.identification === undefined && (this.context.deadlines?.length ?? 0) > 0) this.client.on('data', this.onClientDataBeforeSplice);
    if (this.context.keepalive) {
      this.keepalive = new ClientKeepalive(this.context.keepalive, () => this.buffer.identification, (line, count) => {
        // Lines before the identification are not part of the key exchange: failover stays allowed.
        this.client.write(line);
        this.context.events.emit('keepalive-line', { listener: this.context.listener, pool: this.context.pool.name, sessionId: this.id, line: count });
      });
      this.keepalive.start();
    }
    this.queueForBackend();
  }

  /** Ends the session now, whatever its phase. */
  close(reason: ReasonCode, message?: string): void {
    if (this.phase === 'closed') return;
    if (this.splice) {
      this.splice.close(reason === 'SHUTDOWN' || reason === 'DRAIN_TIMEOUT' ? reason : 'SHUTDOWN');
      return;
    }
    this.fail(reason as SessionFailureCode, message);
  }

  private readonly onClientErrorBeforeSplice = (error: NodeJS.ErrnoException): void => {
    this.fail(error.code === 'ECONNRESET' ? 'CLIENT_RESET' : 'CLIENT_CLOSED', `client: ${error.message}`);
  };

  private readonly onClientCloseBeforeSplice = (): void => {
    this.fail('CLIENT_CLOSED', 'client closed before a backend was ready');
  };

  /** After the client buffer's own listener: picks the client's deadline once its identification is in. */
  private readonly onClientDataBeforeSplice = (): void => {
    if (this.buffer.identification === undefined) return;
    this.client.off('data', this.onClientDataBeforeSplice);
    this.deadline.identify(this.buffer.identification);
  };

  /** `after`: the attempt that just failed; it counts as a failover only if another attempt follows. */
  private queueForBackend(after?: { readonly server: string; readonly reason: AttemptFailure['code'] }): void {
    this.phase = 'queued';
    const pool = this.context.pool;
    const plan = planNextAttempt({
      attempts: this.attempts.length,
      hardFailed: this.failed,
      transientFailed: this.throttled,
      retries: pool.settings.retries,
      maxAttempts: pool.settings.retry.maxAttempts,
      backoffRounds: this.backoffRounds,
      backoff: pool.settings.retry,
      hasCandidate: (exclude) => pool.candidates({ clientKey: this.clientAddress, exclude }).length > 0,
    });
    if (plan.kind === 'exhausted') {
      this.fail('BACKENDS_EXHAUSTED', plan.message);
      return;
    }
    if (after) this.context.events.emit('failover', { pool: pool.name, from: after.server, reason: after.reason });
    if (plan.kind === 'retry') {
      this.backoffRounds += 1;
      this.backoffTimer = setTimeout(() => {
        this.backoffTimer = undefined;
        this.acquireBackend(plan.exclude);
      }, plan.delayMs);
      return;
    }
    this.acquireBackend(plan.exclude);
  }

  private acquireBackend(exclude: ReadonlySet<BackendServer>): void {
    const pool = this.context.pool;
    let settled = false;
    const handle = pool.acquire({ clientKey: this.clientAddress, exclude }, (result) => {
      settled = true;
      this.acquire = undefined;
      this.queueWaitMs += result.waitMs;
      if (!result.ok) {
        const code = result.code === 'NO_BACKEND' && this.attempts.length > 0 ? 'BACKENDS_EXHAUSTED' : result.code;
        this.fail(code, result.message);
        return;
      }
      this.connect(result.lease);
    });
    // The pool answers synchronously when a slot is free: keep the handle only while
    // queued (a stale one kept its callback, and so the whole closure, for the session's life).
    if (!settled) this.acquire = handle;
  }

  private connect(lease: Lease): void {
    this.phase = 'connecting';
    this.lease = lease;
    if (lease.prefetched) {
      this.spliceTo(lease.prefetched);
      return;
    }
    const { server } = lease;
    const { timeouts } = this.context;
    this.attempt = attemptBackend(
      // reuseReads: server→client reads land in a reused buffer (src/proxy/reused-reads.ts).
      { host: server.host, port: server.port, connectTimeoutMs: timeouts.connect, bannerTimeoutMs: timeouts.banner, reuseReads: true },
      (outcome) => {
        this.attempt = undefined;
        if (outcome.ok) this.spliceTo(outcome);
        else this.failOver(outcome);
      },
    );
  }

  private failOver(failure: AttemptFailure): void {
    const lease = this.lease as Lease;
    this.lease = undefined;
    lease.close();
    if (isTransientFailure(failure.code)) this.throttled.add(lease.server);
    else this.failed.add(lease.server);
    this.context.pool.reportAttempt(lease.server, failure.code);
    this.record(lease.server, failure);
    this.queueForBackend({ server: lease.server.name, reason: failure.code });
  }

  private spliceTo(success: AttemptSuccess): void {
    const lease = this.lease as Lease;
    const backend = success.socket;
    this.clearSetupTimer();
    this.context.pool.reportAttempt(lease.server, undefined);
    this.record(lease.server, success);
    this.bannerMs = success.bannerMs;
    this.serverIdentification = success.identification.line;
    this.setupMs = performance.now() - this.acceptedAt;
    this.phase = 'spliced';

    this.client.off('error', this.onClientErrorBeforeSplice);
    this.client.off('close', this.onClientCloseBeforeSplice);
    this.client.off('data', this.onClientDataBeforeSplice);
    // Keepalive lines already written stay ahead of the backend's own bytes.
    this.keepalive?.stop();
    const clientChunks = this.buffer.stop();
    const splice = new Splice(
      this.client,
      backend,
      { idleTimeoutMs: this.context.timeouts.clientIdle, finTimeoutMs: this.context.timeouts.fin },
      (result) => {
        this.tracker?.stop();
        this.finish(result.reason, undefined, result.bytesClientToServer, result.bytesServerToClient);
      },
    );
    this.splice = splice;
    this.backendSocket = backend;
    // What the client must see, byte-exact: pre-lines, identification, anything after.
    this.client.write(success.received);
    for (const chunk of clientChunks) backend.write(chunk);
    splice.start(this.buffer.clientEnded);
    success.releaseErrorGuard();

    const handshake = this.context.pool.settings.handshake;
    this.tracker = new HandshakeTracker(
      { endsAt: handshake.endsAt, graceMs: handshake.grace, maxHoldMs: handshake.maxHold, authFlights: handshake.authFlights },
      () => lease.releaseSlot(),
    );
    this.tracker.start(this.client, backend, success.received.subarray(success.identEndOffset), clientChunks);
    this.context.events.emit('session-spliced', {
      listener: this.context.listener,
      pool: this.context.pool.name,
      server: lease.server.name,
      setupMs: this.setupMs,
    });
  }

  private record(server: BackendServer, outcome: AttemptSuccess | AttemptFailure): void {
    const record: AttemptRecord = outcome.ok
      ? { server: server.name, address: server.address, result: 'ok', connectMs: outcome.connectMs, bannerMs: outcome.bannerMs, elapsedMs: outcome.connectMs + outcome.bannerMs }
      : {
          server: server.name,
          address: server.address,
          result: outcome.code,
          message: outcome.message,
          ...(outcome.connectMs === undefined ? {} : { connectMs: outcome.connectMs }),
          elapsedMs: outcome.elapsedMs,
        };
    this.attempts.push(record);
    this.context.events.emit('attempt', { listener: this.context.listener, pool: this.context.pool.name, sessionId: this.id, ...record });
  }

  /** Ends a session that never reached the splice. */
  private fail(code: SessionFailureCode, message?: string): void {
    if (this.phase === 'closed' || this.phase === 'spliced') return;
    this.acquire?.cancel();
    this.attempt?.cancel();
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    this.acquire = undefined;
    this.attempt = undefined;
    this.keepalive?.stop();
    this.buffer.stop();
    this.client.off('close', this.onClientCloseBeforeSplice);
    this.client.off('data', this.onClientDataBeforeSplice);
    this.client.destroy();
    this.finish(code, message, 0, 0);
  }

  private finish(reason: ReasonCode, message: string | undefined, bytesClientToServer: number, bytesServerToClient: number): void {
    const spliced = this.phase === 'spliced';
    const phase = this.phase;
    this.phase = 'closed';
    this.clearSetupTimer();
    this.lease?.close();
    this.lease = undefined;
    this.context.events.emit('session-closed', {
      id: this.id,
      listener: this.context.listener,
      pool: this.context.pool.name,
      client: this.clientAddress,
      clientPort: this.context.clientPort ?? this.client.remotePort,
      phase,
      spliced,
      server: spliced ? this.attempts.at(-1)?.server : undefined,
      serverIdentification: this.serverIdentification,
      clientIdentification: this.buffer.identification,
      attempts: this.attempts,
      queueWaitMs: this.queueWaitMs,
      clientBufferPeakBytes: this.buffer.peakBytes,
      bannerMs: this.bannerMs,
      setupMs: this.setupMs,
      bytesClientToServer,
      bytesServerToClient,
      durationMs: performance.now() - this.acceptedAt,
      reason,
      ...(message === undefined ? {} : { message }),
      keepaliveLines: this.keepalive?.linesSent ?? 0,
      ...(this.deadline.budget.pattern === undefined ? {} : { deadlinePattern: this.deadline.budget.pattern }),
    });
    this.onClosed(this);
  }

  private clearSetupTimer(): void {
    this.deadline.clear();
  }
}
