import type { Socket } from 'node:net';
import { awaitServerKexInit } from '../backend/kexinit-wait.js';
import { attemptBackend, connectionEndpoints, type AttemptFailure, type AttemptOptions, type AttemptOutcome, type AttemptSuccess, type AttemptHandle } from '../backend/attempt.js';
import type { AcquireResult, BackendPool, Lease } from '../backend/pool.js';
import { fewProxySlotsInUse } from '../backend/own-penalty.js';
import { isTransientFailure, planNextAttempt } from '../backend/retry-policy.js';
import type { BackendServer } from '../backend/server.js';
import type { KeepaliveConfig, TimeoutsConfig } from '../config/schema.js';
import type { ReasonCode, SessionFailureCode } from '../errors.js';
import type { AttemptRecord, ProxyEvents } from '../events/bus.js';
import { transparentSockets } from '../net/transparent-socket.js';
import { encodeProxyHeader, type ProxyEndpoints } from '../protocol/proxy-protocol-encode.js';
import type { Ticket } from '../ticket.js';
import { ClientBuffer } from './client-buffer.js';
import { SetupDeadline, type DeadlineRule } from './client-deadline.js';
import type { LiveSession, LiveSessions } from './live-sessions.js';
import { HandshakeTracker, trackerOptionsFor, type AuthOutcome } from './handshake-tracker.js';
import { ClientKeepalive } from './keepalive.js';
import { ABANDON_CHARGED_WITHIN_MS, chargeableOutcome } from './penalties.js';
import { clientSilence as processSilence, type SilenceWatch } from './client-silence.js';
import { canTransition, PhaseClock, type SessionPhase, type SessionState } from './session-state.js';
import { Splice, type SpliceOptions, type SpliceResult } from './splice.js';

export type { SessionPhase } from './session-state.js';

export interface SessionContext {
  readonly listener: string;
  readonly pool: BackendPool;
  readonly timeouts: TimeoutsConfig;
  /** Built once per listener (spliceOptionsFor), shared by its sessions. */
  readonly splice: SpliceOptions;
  readonly clientBufferBytes: number;
  readonly events: ProxyEvents;
  /** RFC 4253 lines to keep matching clients waiting (listeners[].keepalive). */
  readonly keepalive?: KeepaliveConfig;
  /** Setup budgets by client identification (listeners[].deadlines). */
  readonly deadlines?: readonly DeadlineRule[];
  /** How backends are tried (tests inject fakes; default `attemptBackend`). */
  readonly attempt?: (options: AttemptOptions, callback: (outcome: AttemptOutcome) => void) => AttemptHandle;
  /** The clock phases are timed with (tests inject a fake; default performance.now). */
  readonly now?: () => number;
  /** Spliced sessions by their backend connection's own end (the admin lookup); shared by the process's listeners. */
  readonly live?: LiveSessions;
  /** Spliced clients yet to identify, swept once for the process (default: the process's watch). */
  readonly silence?: SilenceWatch;
}

/** How a closed session leaves its listener: what its source is charged for, if anything. */
export interface ClosedSession {
  readonly chargeable: AuthOutcome | undefined;
}

/** What is known of one connection at accept; the context above is its listener's, shared. */
export interface AcceptedConnection {
  /** performance.now() at accept (before any PROXY header): the `accepted` phase starts there. */
  readonly at?: number;
  /** The client's port as the PROXY protocol header gave it (undefined: the socket's). */
  readonly clientPort?: number | undefined;
}

let nextSessionId = 1;

const performanceNow = (): number => performance.now();
const NO_RULES: readonly DeadlineRule[] = [];
const NO_SERVERS: ReadonlySet<BackendServer> = new Set();

/**
 * The client socket's session, for the listeners below: module functions shared by
 * every session instead of two closures per session (an idle proxy holds thousands).
 */
const kSession = Symbol('session');
interface SessionSocket extends Socket {
  [kSession]?: Session | undefined;
}

function onClientErrorBeforeSplice(this: SessionSocket, error: NodeJS.ErrnoException): void {
  this[kSession]?.clientFailedBeforeSplice(error);
}

function onClientCloseBeforeSplice(this: SessionSocket): void {
  this[kSession]?.clientClosedBeforeSplice();
}

/** How long a session's backend may stay silent before it is sent the client's identification. */
const IDENTIFY_AFTER_SILENCE_MS = 250;
/**
 * verify: kexinit, a banner that came before the client's line: how long the banner is held
 * for that line. OpenSSH, paramiko and ssh2 send it at once (a loaded machine may deliver it
 * a little after a fast backend's banner); a client that waits for the banner (PuTTY) is
 * spliced at the banner after this.
 */
const CLIENT_LINE_WAIT_MS = 250;

/** `chunks` less their first `bytes` bytes (already sent to the backend). */
function withoutPrefix(chunks: readonly Buffer[], bytes: number): readonly Buffer[] {
  if (bytes === 0) return chunks;
  const rest: Buffer[] = [];
  let skip = bytes;
  for (const chunk of chunks) {
    if (skip >= chunk.length) {
      skip -= chunk.length;
      continue;
    }
    rest.push(skip > 0 ? chunk.subarray(skip) : chunk);
    skip = 0;
  }
  return rest;
}

/**
 * One client connection as an explicit state machine (src/proxy/session-state.ts):
 * `accepted → admitted → queued → connecting → awaiting-banner → spliced → closed`,
 * with failover back to `queued` (or `backoff`) while the client has seen nothing.
 * `transition()` checks every move, releases what the old phase owned and times it.
 * `close()` is idempotent; the session frees everything it holds, then emits exactly
 * one summary.
 */
export class Session {
  readonly id = nextSessionId++;
  private state: SessionState = { phase: 'accepted' };
  private readonly client: Socket;
  /** The client's address (from the PROXY header when there is one): what limits and penalties count. */
  readonly clientAddress: string;
  /** Set when the session ends: what its client is charged for (penalties), if anything. */
  private readonly context: SessionContext;
  /** The connection budget and per-source counts the listener took for this client. */
  private readonly admission: Ticket;
  private readonly onClosed: (session: Session, closed: ClosedSession) => void;
  private readonly clock: PhaseClock;
  private readonly now: () => number;
  private readonly acceptedAt: number;
  private readonly clientPort: number | undefined;
  private readonly buffer: ClientBuffer;
  /** Until the splice (or the end); then only the pattern that chose its budget is kept. */
  private deadline: SetupDeadline | undefined;
  private deadlinePattern: string | undefined;
  private keepalive: ClientKeepalive | undefined;
  /** Replaced, not pushed to: a pushed-to array reserves 17 slots, and most sessions make one attempt. */
  private attempts: readonly AttemptRecord[] = [];
  /** Servers that failed for good in this session: never tried again. Made on the first failure. */
  private hardFailed: Set<BackendServer> | undefined;
  /** Servers that throttled, reset or closed before the banner: may be retried after a backoff. */
  private transientlyFailed: Set<BackendServer> | undefined;
  private backoffRounds = 0;
  /** This session in the live index, while spliced. */
  private live: LiveSession | undefined;
  private serverIdentification: string | undefined;
  /** The client's identification when it came after the splice (it waited for the banner). */
  private lateClientIdentification: string | undefined;
  /** A verified banner waits for the client's line (verify: kexinit); called when it comes. */
  private lineAwaited: (() => void) | undefined;

  constructor(client: Socket, clientAddress: string, context: SessionContext, admission: Ticket, onClosed: (session: Session, closed: ClosedSession) => void, accepted: AcceptedConnection = {}) {
    this.client = client;
    this.clientAddress = clientAddress;
    this.context = context;
    this.admission = admission;
    this.onClosed = onClosed;
    this.now = context.now ?? performanceNow;
    this.acceptedAt = accepted.at ?? this.now();
    this.clientPort = accepted.clientPort;
    this.clock = new PhaseClock(this.now, this.acceptedAt);
    this.buffer = new ClientBuffer(client, context.clientBufferBytes, {
      end: () => this.fail('CLIENT_CLOSED', 'client sent FIN before a backend was ready'),
      identified: () => this.onClientIdentified(),
    });
    this.deadline = new SetupDeadline(context.deadlines ?? NO_RULES, context.timeouts.setup, ({ budgetMs, pattern }) => {
      const whose = pattern === undefined ? 'the setup budget' : `the setup budget for clients matching "${pattern}"`;
      this.fail('SETUP_TIMEOUT', `no backend identification within ${whose} of ${budgetMs}ms`);
    }, this.now);
  }

  get phase(): SessionPhase {
    return this.state.phase;
  }

  /** The watch on spliced clients yet to identify (the context's, or the process's). */
  private get silence(): SilenceWatch {
    return this.context.silence ?? processSilence;
  }

  get isSpliced(): boolean {
    return this.state.phase === 'spliced';
  }

  /**
   * Bytes spliced so far each way, read from the sockets' own counters (nothing is
   * counted per chunk); undefined before the splice. Metrics read it at scrape time.
   */
  get bytesSoFar(): { readonly clientToServer: number; readonly serverToClient: number } | undefined {
    const state = this.state;
    if (state.phase !== 'spliced') return undefined;
    return { clientToServer: state.splice.backend.bytesWritten, serverToClient: this.client.bytesWritten };
  }

  /** Admission passed: buffer the client and queue for a backend. `initialBytes`: client bytes read with a PROXY header. */
  start(initialBytes?: Buffer): void {
    this.transition({ phase: 'admitted' });
    this.client.setNoDelay(true);
    (this.client as SessionSocket)[kSession] = this;
    this.client.on('error', onClientErrorBeforeSplice);
    this.client.on('close', onClientCloseBeforeSplice);
    // The deadline first: bytes read with a PROXY header may hold the identification already.
    this.deadline?.start();
    this.buffer.start(initialBytes);
    if (this.state.phase === 'closed') return;
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

  /** Ends the session now, whatever its phase (idempotent): the proxy stops, or its drain ran out. */
  close(reason: 'SHUTDOWN' | 'DRAIN_TIMEOUT', message?: string): void {
    const state = this.state;
    if (state.phase === 'closed') return;
    if (state.phase === 'spliced') {
      state.splice.close(reason);
      return;
    }
    this.fail(reason, message);
  }

  /**
   * The one way to change phase: checks the move against SESSION_TRANSITIONS, records
   * the time spent in the old phase, and releases what it owned that the new one does
   * not take over (queue place, backoff timer, attempt, lease).
   */
  private transition(next: SessionState): void {
    const previous = this.state;
    if (!canTransition(previous.phase, next.phase)) {
      throw new Error(`session ${this.id}: no transition from ${previous.phase} to ${next.phase}`);
    }
    this.clock.leave(previous.phase);
    this.state = next;
    switch (previous.phase) {
      case 'queued':
        previous.acquire?.cancel();
        break;
      case 'backoff':
        clearTimeout(previous.timer);
        break;
      case 'connecting':
      case 'awaiting-banner':
        // connecting → awaiting-banner keeps the attempt and the lease; the splice keeps the lease.
        if (next.phase === 'awaiting-banner') break;
        previous.attempt.cancel();
        if (next.phase !== 'spliced') previous.lease.close();
        break;
      case 'spliced':
        if (previous.watchingSilence) this.silence.unwatch(this.client);
        previous.tracker.stop();
        previous.lease.close();
        break;
      default:
        break;
    }
  }

  /** The client socket failed before the splice (called by the socket's listener). */
  clientFailedBeforeSplice(error: NodeJS.ErrnoException): void {
    this.fail(error.code === 'ECONNRESET' ? 'CLIENT_RESET' : 'CLIENT_CLOSED', `client: ${error.message}`);
  }

  /** The client socket closed before the splice (called by the socket's listener). */
  clientClosedBeforeSplice(): void {
    this.fail('CLIENT_CLOSED', 'client closed before a backend was ready');
  }

  /**
   * The client buffer found the identification (before the splice): picks the client's
   * deadline, and lifts the silent-client limit (handshake.silentShare) from its queue
   * place or its lease.
   */
  private onClientIdentified(): void {
    this.deadline?.identify(this.buffer.identification);
    const state = this.state;
    if (state.phase === 'queued') state.acquire?.identified();
    else if (state.phase === 'connecting' || state.phase === 'awaiting-banner') state.lease.identified();
    this.lineAwaited?.();
  }

  /** Plans the next attempt: at once (queued), after a backoff, or none (closed). */
  private queueForBackend(after?: { readonly server: string; readonly reason: AttemptFailure['code'] }): void {
    const pool = this.context.pool;
    const plan = planNextAttempt({
      attempts: this.attempts.length,
      hardFailed: this.hardFailed ?? NO_SERVERS,
      transientFailed: this.transientlyFailed ?? NO_SERVERS,
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
      this.transition({ phase: 'backoff', timer: setTimeout(() => this.acquireBackend(plan.exclude), plan.delayMs) });
      return;
    }
    this.acquireBackend(plan.exclude);
  }

  private acquireBackend(exclude: ReadonlySet<BackendServer>): void {
    const pool = this.context.pool;
    const request = { clientKey: this.clientAddress, exclude, identified: this.buffer.identification !== undefined };
    const now = pool.tryAcquire(request);
    if (now === undefined) {
      // A closure only for a request that waits: the usual grant needs none.
      this.transition({ phase: 'queued', acquire: pool.enqueue(request, (result) => this.acquired(result)) });
      return;
    }
    this.transition({ phase: 'queued', acquire: undefined });
    this.acquired(now);
  }

  /** The pool's answer: a lease to connect with, or why there is none. (Leaving `queued` cancels a queue place.) */
  private acquired(result: AcquireResult): void {
    if (this.state.phase !== 'queued') return;
    if (!result.ok) {
      const code = result.code === 'NO_BACKEND' && this.attempts.length > 0 ? 'BACKENDS_EXHAUSTED' : result.code;
      this.fail(code, result.message);
      return;
    }
    this.connect(result.lease);
  }

  private connect(lease: Lease): void {
    if (lease.prefetched) {
      // A prefetched connection has not been sent the client's line yet: verified now, if asked.
      this.verified(lease, lease.prefetched, undefined);
      return;
    }
    const { server } = lease;
    const { timeouts } = this.context;
    const attempt = this.context.attempt ?? attemptBackend;
    // The state holds the attempt before it starts: an attempt may settle at once.
    const started: { handle?: AttemptHandle } = {};
    const current: AttemptHandle = { cancel: () => started.handle?.cancel() };
    this.transition({ phase: 'connecting', lease, attempt: current });
    started.handle = attempt(
      {
        host: server.host,
        port: server.port,
        connectTimeoutMs: timeouts.connect,
        bannerTimeoutMs: timeouts.banner,
        // Server→client reads land in a reused buffer (src/net/reused-reads.ts).
        reuseReads: true,
        // A backend silent for a moment gets the client's identification line early (RFC 4253
        // lets both sides send at once): an HTTP or TLS server answers it and is recognised
        // as NOT_SSH at once, instead of after the whole banner timeout. The splice then
        // does not send those bytes again (success.sentBytes).
        sendOnConnect: () => this.buffer.identificationBytes(),
        sendAfterSilenceMs: IDENTIFY_AFTER_SILENCE_MS,
        sendOnSuccess: false,
        ...this.transparentSource(),
        ...(server.sendProxy === undefined ? {} : { preamble: encodeProxyHeader(server.sendProxy, this.proxyEndpoints()) }),
        onConnected: () => {
          if (this.state.phase === 'connecting') this.transition({ phase: 'awaiting-banner', lease, attempt: current });
        },
      },
      (outcome) => {
        if (outcome.ok) this.verified(lease, outcome, started);
        else this.failOver(lease, outcome);
      },
    );
  }

  /** What a PROXY header to the backend says: the client, and the address it connected to. */
  private proxyEndpoints(): ProxyEndpoints {
    return {
      source: { address: this.clientAddress, port: this.clientPort ?? this.client.remotePort ?? 0 },
      destination: { address: this.client.localAddress ?? '0.0.0.0', port: this.client.localPort ?? 0 },
    };
  }

  /** pools[].source: transparent: connect from the client's address (the bindings were loaded at start). */
  private transparentSource(): Pick<AttemptOptions, 'transparent'> {
    const sockets = this.context.pool.settings.source === 'transparent' ? transparentSockets() : undefined;
    return sockets === undefined ? {} : { transparent: { sockets, clientAddress: this.clientAddress } };
  }

  /**
   * With `verify: kexinit`, the server's KEXINIT must follow its identification (and share
   * algorithms with the client's, when that is buffered) before the splice; the server is
   * sent the client's line for it. A banner that came before the client's line waits
   * CLIENT_LINE_WAIT_MS for it; a client that sends none by then (it waits for the banner)
   * cannot be verified past the banner and is spliced at the banner.
   */
  private verified(lease: Lease, success: AttemptSuccess, attempt: { handle?: AttemptHandle } | undefined): void {
    const prefetched = attempt === undefined;
    if (this.context.pool.settings.verify !== 'kexinit') {
      this.spliceTo(lease, success, prefetched);
      return;
    }
    // The session's state already cancels `attempt`'s handle; a prefetched connection gets one now.
    const holder = attempt ?? this.awaitingPrefetched(lease);
    if (this.buffer.identificationBytes() !== undefined) {
      this.verifyKexInit(lease, success, holder, prefetched);
      return;
    }
    // Settled once: by the line, by the timer, or by a cancel (which, like an attempt's, is a no-op afterwards).
    const settle = (next: (() => void) | undefined): void => {
      if (this.lineAwaited !== wait) return;
      clearTimeout(timer);
      this.lineAwaited = undefined;
      next?.();
    };
    const wait = (): void => settle(() => this.verifyKexInit(lease, success, holder, prefetched));
    const timer = setTimeout(() => settle(() => this.spliceTo(lease, success, prefetched)), CLIENT_LINE_WAIT_MS);
    this.lineAwaited = wait;
    holder.handle = { cancel: () => settle(() => success.socket.destroy()) };
  }

  private verifyKexInit(lease: Lease, success: AttemptSuccess, holder: { handle?: AttemptHandle }, prefetched: boolean): void {
    const line = this.buffer.identificationBytes();
    const clientKexInit = this.buffer.kexinit();
    holder.handle = awaitServerKexInit(
      success,
      {
        host: lease.server.host,
        port: lease.server.port,
        timeoutMs: this.context.timeouts.banner,
        ...(success.sentBytes === 0 && line !== undefined ? { send: line } : {}),
        ...(clientKexInit === undefined ? {} : { clientKexInit }),
      },
      (outcome) => {
        if (outcome.ok) this.spliceTo(lease, outcome, prefetched);
        else this.failOver(lease, outcome);
      },
    );
  }

  /** A prefetched connection is connected and identified already: only its KEXINIT is awaited. */
  private awaitingPrefetched(lease: Lease): { handle?: AttemptHandle } {
    const holder: { handle?: AttemptHandle } = {};
    const current: AttemptHandle = { cancel: () => holder.handle?.cancel() };
    this.transition({ phase: 'connecting', lease, attempt: current });
    this.transition({ phase: 'awaiting-banner', lease, attempt: current });
    return holder;
  }

  /**
   * With source: transparent, failures that are the client's address, not the server, when
   * the server's health checks (from the proxy's own address) pass: a connect that times out
   * (no return route), and a refusal before the banner (a close, a reset or sshd's "Not allowed
   * at this time": the server refuses this client, as sshd's PerSourcePenalties do) while the
   * proxy's own slots there are mostly free. Neither is held against the server.
   */
  private attributedToSource(server: BackendServer, failure: AttemptFailure): AttemptFailure {
    if (this.transparentSource().transparent === undefined || server.lastCheck?.ok !== true) return failure;
    if (failure.code === 'CONNECT_TIMEOUT') {
      if (!unroutedServers.has(server)) {
        unroutedServers.add(server);
        this.context.events.emit('transparent-unrouted', { pool: this.context.pool.name, server: server.name, address: server.address, client: this.clientAddress });
      }
      return { ...failure, code: 'SOURCE_UNUSABLE', message: `${failure.message}: from the client's address ${this.clientAddress}, while checks from the proxy's pass (no return route)` };
    }
    // sshd 10 writes "Not allowed at this time" for a penalised source and for MaxStartups alike:
    // with the proxy's own slots for this server mostly free, it is this client that is refused.
    const refusal = failure.code === 'THROTTLED' || failure.code === 'BACKEND_CLOSED' || failure.code === 'BACKEND_RESET';
    // The failed attempt still holds its slot here (the lease goes in failOver, after this).
    if (refusal && fewProxySlotsInUse(server, 1)) {
      return { ...failure, code: 'SOURCE_REFUSED', message: `${failure.message}: the server refuses the client's address ${this.clientAddress} (its checks pass; e.g. sshd PerSourcePenalties)` };
    }
    return failure;
  }

  private failOver(lease: Lease, attemptFailure: AttemptFailure): void {
    const failure = this.attributedToSource(lease.server, attemptFailure);
    if (isTransientFailure(failure.code)) (this.transientlyFailed ??= new Set()).add(lease.server);
    else (this.hardFailed ??= new Set()).add(lease.server);
    // The lease goes first: the next attempt may want this very slot.
    lease.close();
    this.context.pool.reportAttempt(lease.server, failure.code, failure.localAddress);
    this.record(lease.server, failure, false);
    this.queueForBackend({ server: lease.server.name, reason: failure.code });
  }

  private spliceTo(lease: Lease, success: AttemptSuccess, prefetched: boolean): void {
    const backend = success.socket;
    this.endDeadline();
    // Keepalive lines already written stay ahead of the backend's own bytes.
    this.keepalive?.stop();
    // What the client must see, byte-exact: pre-lines, identification, anything after.
    // First of all: the client's wait ends here, and the bookkeeping below is not on it.
    this.client.write(success.received);
    this.context.pool.reportAttempt(lease.server, undefined);
    this.client.off('error', onClientErrorBeforeSplice);
    this.client.off('close', onClientCloseBeforeSplice);
    (this.client as SessionSocket)[kSession] = undefined;
    const clientChunks = this.buffer.stop();
    const splice = new Splice(this.client, backend, this.context.splice, this);
    const tracker = new HandshakeTracker(trackerOptionsFor(this.context.pool.settings.handshake, lease.server), this);
    const spliced: SessionState & { phase: 'spliced' } = { phase: 'spliced', lease, splice, tracker, watchingSilence: false };
    this.transition(spliced);
    // Some clients wait for the banner before they identify; none may stay silent for good.
    if (this.buffer.identification === undefined) {
      spliced.watchingSilence = true;
      // Until its whole SSH- line is in (clientIdentified, from the handshake watch): one byte is not an answer.
      this.silence.watch(this.client, this.context.timeouts.clientIdentification, () => splice.close('CLIENT_SILENT'));
    }
    this.record(lease.server, success, prefetched);
    this.enterLiveIndex(lease.server);
    // The server's usual line, as one string shared by its sessions rather than a copy each.
    const identification = success.identification.line;
    this.serverIdentification = identification === lease.server.lastIdentification ? lease.server.lastIdentification : identification;
    for (const chunk of withoutPrefix(clientChunks, success.sentBytes)) backend.write(chunk);
    splice.start();
    success.releaseErrorGuard();
    tracker.start(this.client, backend, success.received.subarray(success.identEndOffset), clientChunks, this.buffer.identification !== undefined);
    this.context.events.emit('session-spliced', { listener: this.context.listener, pool: this.context.pool.name, server: lease.server.name, setupMs: this.clock.setupMs });
  }

  /** Findable by the backend connection's own end (sshd's `from A port P`) while spliced. */
  private enterLiveIndex(server: BackendServer): void {
    const index = this.context.live;
    const last = this.attempts.at(-1);
    if (index === undefined || last?.localAddress === undefined || last.localPort === undefined) return;
    this.live = {
      sessionId: this.id,
      listener: this.context.listener,
      pool: this.context.pool.name,
      server: server.name,
      client: this.clientAddress,
      clientPort: this.clientPort ?? this.client.remotePort,
      backendLocalAddress: last.localAddress,
      backendLocalPort: last.localPort,
      splicedAtMs: Date.now(),
    };
    index.add(this.live);
  }

  /** The setup is over: the deadline goes (a spliced session would keep it for its whole life), its one fact stays. */
  private endDeadline(): void {
    if (this.deadline === undefined) return;
    this.deadline.clear();
    this.deadlinePattern = this.deadline.budget.pattern;
    this.deadline = undefined;
  }

  /** Called by the session's splice when both sides are gone. */
  spliceEnded(result: SpliceResult): void {
    this.finish(result.reason, undefined, result.bytesClientToServer, result.bytesServerToClient);
  }

  /**
   * Called by the handshake watch when the client's identification line has ended after
   * the splice: it is logged, and a client that waited for the banner has now answered
   * (its slot leaves the silent share). A line that is not `SSH-…` is no answer.
   */
  clientIdentified(line: string | undefined): void {
    if (line === undefined) return;
    this.lateClientIdentification = line;
    const state = this.state;
    if (state.phase !== 'spliced' || !state.watchingSilence) return;
    state.watchingSilence = false;
    this.silence.unwatch(this.client);
    state.lease.identified();
  }

  /** Called by the session's handshake watch when the handshake is over: the slot goes back. */
  handshakeEnded(): void {
    const state = this.state;
    if (state.phase !== 'spliced') return;
    state.lease.releaseSlot();
    // Keepalive is for sessions that last: set once the handshake is over, so the
    // connect-banner-close traffic of scanners and checks pays no setsockopt calls.
    setTcpKeepalive(this.client, this.context.timeouts.tcpKeepalive);
    setTcpKeepalive(state.splice.backend, this.context.timeouts.tcpKeepalive);
  }

  /**
   * One attempt for the summary and the 'attempt' event. Connect and banner times come
   * from the phase clock; a prefetched connection took neither for this client.
   */
  private record(server: BackendServer, outcome: AttemptSuccess | AttemptFailure, prefetched: boolean): void {
    let record: AttemptRecord;
    if (outcome.ok) {
      // The banner stint includes the wait for the server's KEXINIT (verify: kexinit), told apart here.
      const kexinitMs = outcome.kexinitMs;
      const waitedMs = this.clock.lastStint('awaiting-banner') ?? 0;
      const connectMs = prefetched ? 0 : (this.clock.lastStint('connecting') ?? 0);
      const bannerMs = prefetched ? 0 : Math.max(0, waitedMs - (kexinitMs ?? 0));
      const verified = kexinitMs === undefined ? {} : { kexinitMs };
      const endpoints = connectionEndpoints(outcome.socket);
      record = prefetched
        ? { server: server.name, address: server.address, result: 'ok', connectMs, bannerMs, ...verified, elapsedMs: kexinitMs ?? 0, prefetched, ...endpoints }
        : { server: server.name, address: server.address, result: 'ok', connectMs, bannerMs, ...verified, elapsedMs: connectMs + waitedMs, ...endpoints };
    } else {
      const failure: { -readonly [K in keyof AttemptRecord]: AttemptRecord[K] } = {
        server: server.name,
        address: server.address,
        result: outcome.code,
        message: outcome.message,
        elapsedMs: outcome.elapsedMs,
      };
      if (outcome.errno !== undefined) failure.errno = outcome.errno;
      if (outcome.connectMs !== undefined) failure.connectMs = outcome.connectMs;
      if (outcome.localAddress !== undefined) failure.localAddress = outcome.localAddress;
      if (outcome.localPort !== undefined) failure.localPort = outcome.localPort;
      if (outcome.remoteAddress !== undefined) failure.remoteAddress = outcome.remoteAddress;
      record = failure;
    }
    // concat, not a spread: a spread array reserves 17 slots, and the session keeps it.
    this.attempts = this.attempts.concat(record);
    this.context.events.emit('attempt', { listener: this.context.listener, pool: this.context.pool.name, sessionId: this.id, ...record });
  }

  /** Ends a session that never reached the splice. */
  private fail(code: SessionFailureCode, message?: string): void {
    if (this.state.phase === 'closed' || this.state.phase === 'spliced') return;
    this.keepalive?.stop();
    this.buffer.stop();
    this.client.off('close', onClientCloseBeforeSplice);
    this.client.destroy();
    this.finish(code, message, 0, 0);
  }

  /** Before the splice: whether the client left without the proxy having made it wait (see chargeableOutcome). */
  private leftOfItsOwnAccord(): boolean {
    // A failed attempt means the proxy failed over (or backed off): the wait was the backends' doing.
    // A queue wait or a slow banner past the window is the proxy's; a short one is not a wait at all.
    return this.attempts.length === 0 && this.now() - this.acceptedAt <= ABANDON_CHARGED_WITHIN_MS;
  }

  /** Releases everything first (phase resources, admission, the listener's set), then tells observers. */
  private finish(reason: ReasonCode, message: string | undefined, bytesClientToServer: number, bytesServerToClient: number): void {
    const state = this.state;
    const phase = state.phase;
    if (phase === 'closed') return;
    const spliced = phase === 'spliced';
    // A handshake still running when the session ends: say which side went.
    if (state.phase === 'spliced') state.tracker.stop(reason.startsWith('SERVER_') ? 'server-gone' : 'client-gone');
    const slotRelease = state.phase === 'spliced' ? state.tracker.released : undefined;
    const authOutcome = state.phase === 'spliced' ? state.tracker.outcome : phase === 'queued' || phase === 'backoff' ? undefined : 'noauth';
    const charged = chargeableOutcome(authOutcome, reason, spliced, !spliced && this.leftOfItsOwnAccord());
    this.transition({ phase: 'closed', reason });
    if (this.live !== undefined) this.context.live?.remove(this.live);
    this.live = undefined;
    this.endDeadline();
    this.admission.release();
    this.onClosed(this, { chargeable: charged });
    const timings = this.clock.timings;
    const lastAttempt = this.attempts.at(-1);
    this.context.events.emit('session-closed', {
      id: this.id,
      listener: this.context.listener,
      pool: this.context.pool.name,
      client: this.clientAddress,
      clientPort: this.clientPort ?? this.client.remotePort,
      phase,
      spliced,
      server: spliced ? lastAttempt?.server : undefined,
      serverIdentification: this.serverIdentification,
      clientIdentification: this.buffer.identification ?? this.lateClientIdentification,
      attempts: this.attempts,
      ...(spliced && lastAttempt?.localPort !== undefined ? { backendLocalAddress: lastAttempt.localAddress, backendLocalPort: lastAttempt.localPort } : {}),
      phaseMs: timings,
      queueWaitMs: timings.queued ?? 0,
      clientBufferPeakBytes: this.buffer.peakBytes,
      bannerMs: spliced ? lastAttempt?.bannerMs : undefined,
      setupMs: spliced ? this.clock.setupMs : undefined,
      bytesClientToServer,
      bytesServerToClient,
      durationMs: this.now() - this.acceptedAt,
      reason,
      ...(message === undefined ? {} : { message }),
      keepaliveLines: this.keepalive?.linesSent ?? 0,
      ...(slotRelease === undefined ? {} : { slotRelease }),
      ...(authOutcome === undefined ? {} : { authOutcome, penaltyCharged: charged !== undefined }),
      ...(this.deadlinePattern === undefined ? {} : { deadlinePattern: this.deadlinePattern }),
    });
  }
}

/** Servers whose missing return route was logged (once each). */
const unroutedServers = new WeakSet<BackendServer>();

/**
 * Without keepalive a vanished client (link down, NAT timeout, a closed laptop) stays
 * ESTABLISHED here for good, and the proxy answers sshd's own keepalives for it.
 */
function setTcpKeepalive(socket: Socket, idleMs: number): void {
  if (idleMs > 0) socket.setKeepAlive(true, idleMs);
}
