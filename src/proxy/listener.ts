import { createServer, isIP, type Server, type Socket } from 'node:net';
import type { BackendPool } from '../backend/pool.js';
import type { ListenerConfig, LimitsConfig, TimeoutsConfig } from '../config/schema.js';
import type { ReasonCode } from '../errors.js';
import { formatHostPort, normaliseAddress } from '../net/address.js';
import type { ProxyEvents } from '../events/bus.js';
import { Acl } from './acl.js';
import { readProxyHeader, type ProxyHeaderReading } from './proxy-header-reader.js';
import type { LiveSessions } from './live-sessions.js';
import { Session, type ClosedSession, type SessionContext } from './session.js';
import { spliceOptionsFor } from './splice.js';
import { bothTickets, type Ticket } from '../ticket.js';
import type { ConnectionBudget } from './connection-budget.js';

export { ConnectionBudget } from './connection-budget.js';
import type { SourcePenalties } from './penalties.js';
import type { SourceAdmission } from './source-admission.js';
import type { PenaltyCharger } from './penalty-charger.js';
import type { SourceVerdict } from './source-limits.js';
import { closePolitely } from '../net/polite-close.js';

/** A client connection that got through accept, with what the admission steps need. */
interface Arrival {
  readonly socket: Socket;
  /** The client's address: the PROXY header's source, or the peer's. */
  readonly client: string;
  readonly clientPort: number | undefined;
  /** Bytes read after a PROXY header, for the session. */
  readonly initialBytes: Buffer | undefined;
  /** Its place in the process-wide connection budget. */
  readonly place: Ticket;
  readonly acceptedAt: number;
}

/** What sshd writes when it drops a connection (MaxStartups, penalties): clients print it. */
const NOT_ALLOWED_LINE = Buffer.from('Not allowed at this time\r\n');
/** A refused client has this long to read the line and close before it is reset. */
const REFUSAL_LINGER_MS = 1000;

export interface ListenerDeps {
  readonly pool: BackendPool;
  readonly timeouts: TimeoutsConfig;
  readonly limits: LimitsConfig;
  readonly events: ProxyEvents;
  readonly budget: ConnectionBudget;
  /** Per-client limits, shared by all listeners of the process (and across replicas with a store). */
  readonly sources: SourceAdmission;
  /** Per-source penalties, shared by all listeners of the process: refused at accept from this table. */
  readonly penalties: SourcePenalties;
  /** Where a finished session's outcome is charged: this table, or the shared store. */
  readonly charger: PenaltyCharger;
  /** Bind with SO_REUSEPORT (a cluster worker with its own accept queue; src/net/reuse-port.ts). */
  readonly reusePort?: boolean;
  /** A listening socket systemd passed (socket activation, src/systemd/listen-fds.ts): used instead of binding. */
  readonly inheritedFd?: number;
  /** Spliced sessions by their backend connection's own end, shared by the process's listeners (the admin lookup). */
  readonly live?: LiveSessions;
}

/** One listening socket: accept, admit (ACL, limits), and start a session per client. */
export class Listener {
  readonly name: string;
  config: ListenerConfig;
  readonly sessions = new Set<Session>();
  /** The context every session of this listener shares (one object, not one per session); made again by update(). */
  private sessionContext: SessionContext;
  private deps: ListenerDeps;
  private acl: Acl;
  /** Load balancers allowed to send a PROXY header (undefined: PROXY protocol off). */
  private trusted: Acl | undefined;
  /** Connections still sending their PROXY header, with the budget place each holds. */
  private readonly pendingHeaders = new Map<Socket, { readonly reading: ProxyHeaderReading; readonly place: Ticket }>();
  private readonly server: Server;
  private boundAddress: string | undefined;
  /** Shutdown began: a client admitted after that (the shared store answered late) is not started. */
  private shuttingDown = false;

  constructor(config: ListenerConfig, deps: ListenerDeps) {
    this.name = config.name;
    this.config = config;
    this.deps = deps;
    this.sessionContext = sessionContextFor(config, deps);
    this.acl = new Acl(config.acl);
    this.trusted = trustedPeers(config);
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
    this.server.on('error', (error: NodeJS.ErrnoException) => {
      // Accept errors (EMFILE, ENFILE, ...) arrive here once listening; never fatal.
      if (this.server.listening) this.deps.events.emit('accept-error', { listener: this.name, error });
    });
  }

  /**
   * Hot reload with the same bind address: the socket stays open and the next
   * connection gets the new ACL, PROXY protocol, pool, timeouts and limits.
   * Sessions already running keep what they started with.
   */
  update(config: ListenerConfig, deps: ListenerDeps): void {
    this.config = config;
    this.deps = deps;
    this.sessionContext = sessionContextFor(config, deps);
    this.acl = new Acl(config.acl);
    this.trusted = trustedPeers(config);
  }

  get address(): string | undefined {
    return this.boundAddress;
  }

  /** The port actually bound (useful with port 0). */
  get port(): number | undefined {
    const address = this.server.address();
    return address !== null && typeof address === 'object' ? address.port : undefined;
  }

  /** Whether this listener runs on a socket systemd passed (a reload keeps it whatever its bind says). */
  get inherited(): boolean {
    return this.deps.inheritedFd !== undefined;
  }

  private inheritedAddress(fd: number): string {
    const address = this.server.address();
    return address !== null && typeof address === 'object' ? formatHostPort({ host: address.address, port: address.port }) : `fd ${fd}`;
  }

  get listening(): boolean {
    return this.server.listening;
  }

  open(): Promise<void> {
    const { host, port } = this.config.bind;
    const fd = this.deps.inheritedFd;
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        const where = fd === undefined ? `on ${formatHostPort(this.config.bind)}` : `on the socket systemd passed (fd ${fd})`;
        reject(new Error(`listener "${this.name}": cannot listen ${where}: ${error.message}`, { cause: error }));
      };
      this.server.once('error', onError);
      const onListening = (): void => {
        this.server.off('error', onError);
        this.boundAddress = fd === undefined ? formatHostPort({ host, port: this.port ?? port }) : this.inheritedAddress(fd);
        this.deps.events.emit('listener-open', { listener: this.name, address: this.boundAddress, ...(fd === undefined ? {} : { fd }) });
        resolve();
      };
      if (fd !== undefined) {
        // Socket activation: the socket is bound and listening already; connections queued in
        // its backlog while the proxy (re)started are accepted now.
        this.server.listen({ fd, backlog: 4096 }, onListening);
        return;
      }
      // Port 0 must stay one shared socket: each worker would get a port of its own.
      const ownSocket = this.deps.reusePort === true && port !== 0 ? { exclusive: true, reusePort: true } : {};
      this.server.listen({ host, port, backlog: 4096, ...ownSocket }, onListening);
    });
  }

  /**
   * Stops accepting; sessions already running continue. Resolves once the port is
   * released (not when the last connection ends: server.close()'s callback would
   * wait for that, and the drain timer must start at once).
   */
  stopAccepting(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    this.server.close();
    this.deps.events.emit('listener-closed', { listener: this.name });
    return Promise.resolve();
  }

  /** Connections still sending their PROXY header: a removed listener stays tracked until they are done. */
  get pendingCount(): number {
    return this.pendingHeaders.size;
  }

  /** Drops connections still sending their PROXY header (shutdown). */
  abortPendingHeaders(): void {
    this.shuttingDown = true;
    for (const [socket, { reading, place }] of this.pendingHeaders) {
      reading.cancel();
      place.release();
      this.reject(socket, 'SHUTDOWN', normaliseAddress(socket.remoteAddress) ?? 'unknown', 'proxy is shutting down');
    }
    this.pendingHeaders.clear();
  }

  private accept(socket: Socket): void {
    const acceptedAt = performance.now();
    socket.on('error', ignoreEarlyError);
    const peer = normaliseAddress(socket.remoteAddress) ?? 'unknown';
    const proxyProtocol = this.config.proxyProtocol;
    if (this.trusted && proxyProtocol && proxyProtocol.accept !== 'off') {
      // The header is required from trusted peers, and nobody else may connect: never guess.
      if (!this.trusted.check(socket.remoteAddress).allowed) {
        this.reject(socket, 'PROXY_UNTRUSTED', peer, `${peer} is not in proxyProtocol.trusted`);
        return;
      }
      const place = this.reservePlace(socket, peer);
      if (!place) return;
      const reading = readProxyHeader(socket, proxyProtocol.accept, proxyProtocol.timeout, (outcome) => {
        this.pendingHeaders.delete(socket);
        if (!outcome.ok) {
          place.release();
          this.reject(socket, outcome.code, peer, outcome.message);
          return;
        }
        const { header } = outcome;
        // LOCAL (v2) and UNKNOWN (v1): the load balancer's own connection, e.g. a health check.
        const fromHeader = header.command === 'PROXY' ? normaliseAddress(header.sourceAddress) : undefined;
        const client = fromHeader ?? peer;
        const clientPort = fromHeader === undefined ? socket.remotePort : header.sourcePort;
        this.admit({ socket, client, clientPort, initialBytes: outcome.rest, place, acceptedAt });
      });
      this.pendingHeaders.set(socket, { reading, place });
      return;
    }
    const place = this.reservePlace(socket, peer);
    if (!place) return;
    this.admit({ socket, client: peer, clientPort: socket.remotePort, initialBytes: undefined, place, acceptedAt });
  }

  /** Takes a place in the process-wide connection budget, or rejects. */
  private reservePlace(socket: Socket, client: string): Ticket | undefined {
    const place = this.deps.budget.take();
    if (!place) this.reject(socket, 'LIMIT_REACHED', client);
    return place;
  }

  /**
   * ACL and per-source limits on the client's address (from the PROXY header when
   * there is one), then a session, which owns `place` from then on.
   */
  private admit(arrival: Arrival): void {
    const { socket, client, place } = arrival;
    const verdict = this.acl.check(client);
    if (!verdict.allowed) {
      place.release();
      this.reject(socket, 'ACL_DENIED', client, verdict.reason);
      return;
    }
    const penalty = this.deps.penalties.check(client);
    if (penalty) {
      this.refuse(socket, client, `${penalty.key} is penalised for ${Math.ceil(penalty.remainingMs / 1000)}s more (last: ${penalty.kind})`, place);
      return;
    }
    const now = this.deps.sources.tryAdmit(client);
    if (now !== undefined) {
      this.admitted(arrival, now);
      return;
    }
    // The shared store answers after one round trip; the client's bytes wait in the socket.
    this.deps.sources.admitLater(client, (source) => {
      // The client may have gone, or shutdown begun, meanwhile (a listener removed by a
      // reload still serves the PROXY headers it was reading: not a shutdown).
      if (source.ok && (socket.destroyed || this.shuttingDown)) {
        source.release();
        place.release();
        this.reject(socket, socket.destroyed ? 'CLIENT_CLOSED' : 'SHUTDOWN', client);
        return;
      }
      this.admitted(arrival, source);
    });
  }

  private admitted({ socket, client, clientPort, initialBytes, place, acceptedAt }: Arrival, source: SourceVerdict): void {
    if (!source.ok) {
      place.release();
      this.reject(socket, source.code, client, source.message);
      return;
    }
    const session = new Session(socket, client, this.sessionContext, bothTickets(place, source), this.sessionClosed, { at: acceptedAt, clientPort });
    this.sessions.add(session);
    socket.off('error', ignoreEarlyError);
    session.start(initialBytes);
    // The PROXY header reader left the socket paused; the client buffer pauses it
    // again itself if the bytes after the header already fill it.
    if (initialBytes !== undefined && initialBytes.length < this.deps.limits.clientBufferBytes) socket.resume();
  }

  /** One function for all of this listener's sessions (not a closure per session). */
  private readonly sessionClosed = (session: Session, closed: ClosedSession): void => {
    this.sessions.delete(session);
    this.charge(session.clientAddress, closed);
  };

  /** A finished session's outcome counts against its source (sshd's PerSourcePenalties, on the real address). */
  private charge(client: string, closed: ClosedSession): void {
    // No address (reset before it could be read): nothing to charge. One shared key would
    // let such connections penalise each other, and no real source.
    if (isIP(client) === 0) return;
    void this.deps.charger.charge(client, closed.chargeable, (activation) => this.deps.events.emit('source-penalised', { listener: this.name, client, ...activation }));
  }

  /**
   * PENALIZED: the line sshd would write, then FIN; the client's bytes are read and
   * dropped so it sees the line rather than a reset, and it is reset only if it lingers
   * past a second.
   */
  private refuse(socket: Socket, client: string, message: string, place: Ticket): void {
    this.deps.events.emit('connection-rejected', { listener: this.name, reason: 'PENALIZED', client, message });
    socket.off('error', ignoreEarlyError);
    // The place is held until the socket is gone: a flood from a penalised source lingers
    // within limits.maxConnections, never past the descriptor limit.
    closePolitely(socket, { send: NOT_ALLOWED_LINE, waitMs: REFUSAL_LINGER_MS }, () => place.release());
  }

  private reject(socket: Socket, reason: ReasonCode, client: string, message?: string): void {
    this.deps.events.emit('connection-rejected', { listener: this.name, reason, client, ...(message === undefined ? {} : { message }) });
    socket.destroy();
  }
}

function ignoreEarlyError(): void {}

function sessionContextFor(config: ListenerConfig, deps: ListenerDeps): SessionContext {
  const { keepalive, deadlines } = config;
  return {
    listener: config.name,
    pool: deps.pool,
    timeouts: deps.timeouts,
    splice: spliceOptionsFor(deps.timeouts),
    clientBufferBytes: deps.limits.clientBufferBytes,
    events: deps.events,
    ...(deps.live === undefined ? {} : { live: deps.live }),
    ...(keepalive === undefined ? {} : { keepalive }),
    ...(deadlines === undefined ? {} : { deadlines }),
  };
}

function trustedPeers(config: ListenerConfig): Acl | undefined {
  const proxyProtocol = config.proxyProtocol;
  return proxyProtocol && proxyProtocol.accept !== 'off' ? new Acl({ allow: proxyProtocol.trusted, deny: [] }) : undefined;
}
