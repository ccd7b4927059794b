import type { Ticket } from '../ticket.js';
import { attemptBackend, type AttemptHandle, type AttemptOutcome } from './attempt.js';
import { encodeProxyHeader } from '../protocol/proxy-protocol-encode.js';
import { awaitServerKexInit } from './kexinit-wait.js';
import type { ProxyEvents } from '../events/bus.js';
import { closePolitely, type PoliteClose } from '../net/polite-close.js';
import type { BackendPool } from './pool.js';
import type { BackendServer } from './server.js';

/** What a check sends first, so sshd logs a normal pre-auth close instead of "did not receive identification string". */
export const CHECK_IDENTIFICATION = Buffer.from('SSH-2.0-ssh-banner-proxy_check\r\n');

/** How long a finished check waits for sshd to close its side before destroying the socket. */
const CLOSE_WAIT_MS = 1000;

export interface HealthCheckerOptions {
  /** Injected for tests; defaults to Math.random. */
  readonly random?: () => number;
}

interface ServerLoop {
  timer: NodeJS.Timeout | undefined;
}

/** One check connection, from slot taken to socket gone. */
interface CheckInFlight {
  attempt: AttemptHandle | undefined;
  closing: PoliteClose | undefined;
  /** Frees the slot and forgets the check (idempotent). */
  readonly done: () => void;
}

/**
 * Active banner checks for every server of one pool: connect, send our own
 * identification, read the server's, close. `fall` consecutive failures mark a
 * server DOWN, `rise` consecutive successes mark it UP again. Each server runs its
 * own timer, shifted by `jitter` so checks of many servers do not align.
 *
 * A check holds one of the server's handshake slots while its connection is open:
 * sshd counts it against MaxStartups like any unauthenticated connection. When every
 * slot is busy the check is skipped for this round (sessions in their handshake are
 * evidence enough, and passive health watches them).
 */
export class HealthChecker {
  private readonly pool: BackendPool;
  private readonly events: ProxyEvents;
  private readonly random: () => number;
  private readonly loops = new Map<BackendServer, ServerLoop>();
  private readonly inflight = new Set<CheckInFlight>();
  private running = false;
  private unwatch: (() => void) | undefined;

  constructor(pool: BackendPool, events: ProxyEvents, options: HealthCheckerOptions = {}) {
    this.pool = pool;
    this.events = events;
    this.random = options.random ?? Math.random;
  }

  get active(): boolean {
    return this.running;
  }

  /** Starts checking; the first check of each server comes within `interval * jitter`. No-op when checks are disabled. */
  start(): void {
    const settings = this.pool.settings.healthCheck;
    if (this.running || !settings.enabled) return;
    this.running = true;
    this.follow(() => this.random() * settings.interval * settings.jitter);
    this.unwatch = this.pool.watchServers(() => this.follow(() => 0));
  }

  /** Checks every server of the pool: a new one (a lookup found it) after `firstDelayMs`; one gone stops. */
  private follow(firstDelayMs: () => number): void {
    const servers = new Set(this.pool.servers);
    for (const [server, loop] of this.loops) {
      if (servers.has(server)) continue;
      clearTimeout(loop.timer);
      this.loops.delete(server);
    }
    for (const server of servers) {
      if (this.loops.has(server)) continue;
      const loop: ServerLoop = { timer: undefined };
      this.loops.set(server, loop);
      this.schedule(server, loop, firstDelayMs());
    }
  }

  /** Cancels timers and checks in flight, frees their slots. Idempotent. */
  stop(): void {
    this.running = false;
    this.unwatch?.();
    this.unwatch = undefined;
    for (const loop of this.loops.values()) clearTimeout(loop.timer);
    this.loops.clear();
    for (const check of [...this.inflight]) {
      check.attempt?.cancel();
      check.closing?.abort();
      check.done();
    }
  }

  /** The next delay: `interval` shifted by up to ±`jitter` of it. */
  nextDelayMs(): number {
    const { interval, jitter } = this.pool.settings.healthCheck;
    return interval * (1 + jitter * (2 * this.random() - 1));
  }

  private schedule(server: BackendServer, loop: ServerLoop, delayMs: number): void {
    if (!this.running) return;
    loop.timer = setTimeout(() => {
      loop.timer = undefined;
      this.check(server, loop);
    }, delayMs);
  }

  private check(server: BackendServer, loop: ServerLoop): void {
    // In maintenance (an operator's `maint`): not checked until it is ready again.
    if (server.admin === 'maint') {
      this.schedule(server, loop, this.nextDelayMs());
      return;
    }
    // With a shared store the slot comes once the store agrees; the checker may have stopped by then.
    this.pool.takeCheckSlot(server, (slot) => {
      if (slot && (!this.running || this.loops.get(server) !== loop)) slot.release();
      else if (!slot) this.schedule(server, loop, this.nextDelayMs());
      else this.run(server, loop, slot);
    });
  }

  private run(server: BackendServer, loop: ServerLoop, slot: Ticket): void {
    const check: CheckInFlight = {
      attempt: undefined,
      closing: undefined,
      done: () => {
        check.closing = undefined;
        this.inflight.delete(check);
        slot.release();
      },
    };
    this.inflight.add(check);
    const { timeout } = this.pool.settings.healthCheck;
    const checked = (outcome: AttemptOutcome): void => {
      check.attempt = undefined;
      this.closeCheck(check, outcome);
      // The server left the pool meanwhile (a lookup or a reload): nothing to record, nothing to schedule.
      if (this.loops.get(server) !== loop) return;
      this.record(server, outcome);
      this.schedule(server, loop, this.nextDelayMs());
    };
    check.attempt = attemptBackend(
      {
        host: server.host,
        port: server.port,
        connectTimeoutMs: timeout,
        bannerTimeoutMs: timeout,
        sendOnConnect: CHECK_IDENTIFICATION,
        // A check has no client: the proxy's own connection (v2 LOCAL, v1 UNKNOWN).
        ...(server.sendProxy === undefined ? {} : { preamble: encodeProxyHeader(server.sendProxy, undefined) }),
      },
      (outcome) => {
        // verify: kexinit: a server that identifies and then fails is not UP (sshd sent its KEXINIT on reading our line).
        if (outcome.ok && this.pool.settings.verify === 'kexinit') check.attempt = awaitServerKexInit(outcome, { host: server.host, port: server.port, timeoutMs: timeout }, checked);
        else checked(outcome);
      },
    );
  }

  /**
   * Ends the check connection politely (FIN, then read until sshd closes) and frees the
   * slot when the connection is gone: until then sshd still counts it as a startup.
   */
  private closeCheck(check: CheckInFlight, outcome: AttemptOutcome): void {
    if (!outcome.ok) {
      check.done();
      return;
    }
    check.closing = closePolitely(outcome.socket, { waitMs: CLOSE_WAIT_MS }, check.done);
    outcome.releaseErrorGuard();
  }

  private record(server: BackendServer, outcome: AttemptOutcome): void {
    const at = Date.now();
    if (outcome.ok) {
      this.events.emit('health-check', {
        pool: this.pool.name,
        server: server.name,
        ok: true,
        bannerMs: outcome.bannerMs,
        identification: outcome.identification.line,
      });
      this.pool.reportCheck(server, { ok: true, at, bannerMs: outcome.bannerMs, identification: outcome.identification.line });
      return;
    }
    this.events.emit('health-check', {
      pool: this.pool.name,
      server: server.name,
      ok: false,
      code: outcome.code,
      message: outcome.message,
    });
    this.pool.reportCheck(server, { ok: false, at, code: outcome.code, message: outcome.message }, outcome.localAddress);
  }
}
