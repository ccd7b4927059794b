import { createServer, type Server, type Socket } from 'node:net';
import type { BackendPool } from '../backend/pool.js';
import type { ListenerConfig, LimitsConfig, TimeoutsConfig } from '../config/schema.js';
import type { ReasonCode } from '../errors.js';
import { formatHostPort, normaliseAddress } from '../net/address.js';
import type { ProxyEvents } from '../observe/events.js';
import { Acl } from './acl.js';
import { Session } from './session.js';

/** Shared across listeners: the process-wide connection limit. */
export class ConnectionBudget {
  active = 0;
  constructor(readonly max: number) {}
}

export interface ListenerDeps {
  readonly pool: BackendPool;
  readonly timeouts: TimeoutsConfig;
  readonly limits: LimitsConfig;
  readonly events: ProxyEvents;
  readonly budget: ConnectionBudget;
}

/** One listening socket: accept, admit (ACL, limits), and start a session per client. */
export class Listener {
  readonly name: string;
  readonly config: ListenerConfig;
  readonly sessions = new Set<Session>();
  private readonly deps: ListenerDeps;
  private readonly acl: Acl;
  private readonly server: Server;
  private boundAddress: string | undefined;

  constructor(config: ListenerConfig, deps: ListenerDeps) {
    this.name = config.name;
    this.config = config;
    this.deps = deps;
    this.acl = new Acl(config.acl);
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
    this.server.on('error', (error: NodeJS.ErrnoException) => {
      // Accept errors (EMFILE, ENFILE, ...) arrive here once listening; never fatal.
      if (this.server.listening) this.deps.events.emit('accept-error', { listener: this.name, error });
    });
  }

  get address(): string | undefined {
    return this.boundAddress;
  }

  /** The port actually bound (useful with port 0). */
  get port(): number | undefined {
    const address = this.server.address();
    return address !== null && typeof address === 'object' ? address.port : undefined;
  }

  get listening(): boolean {
    return this.server.listening;
  }

  open(): Promise<void> {
    const { host, port } = this.config.bind;
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        reject(new Error(`listener "${this.name}": cannot listen on ${formatHostPort(this.config.bind)}: ${error.message}`, { cause: error }));
      };
      this.server.once('error', onError);
      this.server.listen({ host, port, backlog: 4096 }, () => {
        this.server.off('error', onError);
        this.boundAddress = formatHostPort({ host, port: this.port ?? port });
        this.deps.events.emit('listener-open', { listener: this.name, address: this.boundAddress });
        resolve();
      });
    });
  }

  /** Stops accepting; sessions already running continue. */
  stopAccepting(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.deps.events.emit('listener-closed', { listener: this.name });
    });
  }

  private accept(socket: Socket): void {
    socket.on('error', ignoreEarlyError);
    const client = normaliseAddress(socket.remoteAddress) ?? 'unknown';
    const verdict = this.acl.check(socket.remoteAddress);
    if (!verdict.allowed) {
      this.reject(socket, 'ACL_DENIED', client);
      return;
    }
    const { budget } = this.deps;
    if (budget.active >= budget.max) {
      this.reject(socket, 'LIMIT_REACHED', client);
      return;
    }
    budget.active += 1;
    const session = new Session(
      socket,
      client,
      {
        listener: this.name,
        pool: this.deps.pool,
        timeouts: this.deps.timeouts,
        clientBufferBytes: this.deps.limits.clientBufferBytes,
        events: this.deps.events,
      },
      (closed) => {
        budget.active -= 1;
        this.sessions.delete(closed);
      },
    );
    this.sessions.add(session);
    socket.off('error', ignoreEarlyError);
    session.start();
  }

  private reject(socket: Socket, reason: ReasonCode, client: string): void {
    this.deps.events.emit('connection-rejected', { listener: this.name, reason, client });
    socket.destroy();
  }
}

function ignoreEarlyError(): void {}
