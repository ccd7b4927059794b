import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ProxyServer } from '../proxy/proxy-server.js';
import { subscribe, type ProxyEventMap, type ProxyEvents } from '../events/bus.js';
import { BANNER_BUCKETS_SECONDS, CONNECT_BUCKETS_SECONDS, WAIT_BUCKETS_SECONDS } from './buckets.js';
import { registerStateGauges } from './metrics-gauges.js';
import { registerFleetMetrics } from './metrics-fleet.js';
import { registerStoreMetrics } from './metrics-store.js';

export { BANNER_BUCKETS_SECONDS, CONNECT_BUCKETS_SECONDS, WAIT_BUCKETS_SECONDS } from './buckets.js';
import { precreateSeries } from './metrics-precreate.js';

/** Counts kept per server for the status page (sessions handed to it, failed attempts). */
export interface ServerTotals {
  sessions: number;
  failedAttempts: number;
  /** Banner latency of the last successful session attempt. */
  lastSessionBannerMs: number | undefined;
}

/** What the metrics read: a ProxyServer, or (cluster primary) its pools alone. */
export type MetricsSource = Pick<ProxyServer, 'listeners' | 'allListeners' | 'pools' | 'events' | 'penalties' | 'store'>;

export interface ProxyMetricsOptions {
  readonly defaultMetrics?: boolean;
  /** Labels on the process_* / nodejs_* metrics (a cluster worker's `worker` label keeps them apart when aggregated). */
  readonly processLabels?: Readonly<Record<string, string>>;
  /** Count health checks and server state changes here (default true; cluster workers leave them to the primary). */
  readonly healthEvents?: boolean;
}

/** Every sshproxy_* metric, in a registry of the proxy's own. */
export class ProxyMetrics {
  readonly registry = new Registry();
  private readonly proxy: MetricsSource;
  private readonly totals = new Map<string, ServerTotals>();
  private readonly subscriptions: (() => void)[] = [];

  readonly bannerLatency = new Histogram({
    name: 'sshproxy_banner_latency_seconds',
    help: 'Backend TCP connect to a complete SSH identification line, for sessions and health checks.',
    labelNames: ['pool', 'server', 'source'] as const,
    buckets: BANNER_BUCKETS_SECONDS,
    registers: [this.registry],
  });
  readonly backendConnect = new Histogram({
    name: 'sshproxy_backend_connect_seconds',
    help: 'Time to establish the TCP connection to a backend (session attempts).',
    labelNames: ['pool', 'server'] as const,
    buckets: CONNECT_BUCKETS_SECONDS,
    registers: [this.registry],
  });
  readonly sessionSetup = new Histogram({
    name: 'sshproxy_session_setup_seconds',
    help: 'Client accept to splice: how long a client waited before seeing the backend banner.',
    labelNames: ['listener'] as const,
    buckets: WAIT_BUCKETS_SECONDS,
    registers: [this.registry],
  });
  readonly sessions = new Counter({
    name: 'sshproxy_sessions_total',
    help: 'Client sessions by outcome: result="spliced", or the reason code the session failed with before splice.',
    labelNames: ['listener', 'result'] as const,
    registers: [this.registry],
  });
  readonly sessionEnds = new Counter({
    name: 'sshproxy_session_ends_total',
    help: 'How spliced sessions ended: SERVER_RESET, SERVER_CLOSED, CLIENT_CLOSED, IDLE_TIMEOUT, FIN_TIMEOUT, *_WRITE_STALL, *_LOST, SHUTDOWN, DRAIN_TIMEOUT.',
    labelNames: ['listener', 'reason'] as const,
    registers: [this.registry],
  });
  readonly slotReleases = new Counter({
    name: 'sshproxy_slot_releases_total',
    help: 'How spliced sessions released their handshake slot: auth, newkeys, grace, maxHold, unreadable, splice, client-gone, server-gone.',
    labelNames: ['pool', 'how'] as const,
    registers: [this.registry],
  });
  readonly authOutcomes = new Counter({
    name: 'sshproxy_auth_outcomes_total',
    help: 'How sessions ended authentication, as the proxy saw it: ok, authfail, noauth, grace-exceeded, unknown (docs/penalties.md).',
    labelNames: ['pool', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly penaltiesCharged = new Counter({
    name: 'sshproxy_penalties_charged_total',
    help: 'Penalties charged to client sources, by kind (authfail, noauth, grace-exceeded); exempt sources are not charged.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly penaltiesActivated = new Counter({
    name: 'sshproxy_penalties_activated_total',
    help: 'Client sources that became penalised (refused with PENALIZED until their penalty decays), by the kind of the charge that tipped them.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly backendPenaltyEpisodes = new Counter({
    name: 'sshproxy_backend_penalty_episodes_total',
    help: "Episodes in which a backend refused the proxy's own address (likely sshd PerSourcePenalties; exempt the proxy with PerSourcePenaltyExemptList).",
    labelNames: ['pool', 'server'] as const,
    registers: [this.registry],
  });
  readonly attempts = new Counter({
    name: 'sshproxy_attempts_total',
    help: 'Backend attempts made for sessions: result="ok" or the attempt failure code.',
    labelNames: ['pool', 'server', 'result'] as const,
    registers: [this.registry],
  });
  readonly failovers = new Counter({
    name: 'sshproxy_failovers_total',
    help: 'Sessions moved on to another backend after a failed attempt (before the client saw a byte).',
    labelNames: ['pool'] as const,
    registers: [this.registry],
  });
  readonly queueWait = new Histogram({
    name: 'sshproxy_queue_wait_seconds',
    help: 'Time sessions spent queued for a handshake slot (only sessions that had to queue).',
    labelNames: ['pool'] as const,
    buckets: WAIT_BUCKETS_SECONDS,
    registers: [this.registry],
  });
  readonly checkFailures = new Counter({
    name: 'sshproxy_server_check_failures_total',
    help: 'Failed health checks by reason code.',
    labelNames: ['pool', 'server', 'reason'] as const,
    registers: [this.registry],
  });
  readonly stateChanges = new Counter({
    name: 'sshproxy_server_state_changes_total',
    help: 'Server state transitions (UP, DOWN, DRAINING).',
    labelNames: ['pool', 'server'] as const,
    registers: [this.registry],
  });
  /** Bytes already counted for sessions still open (by session id), so close adds only the rest. */
  private readonly countedBytes = new Map<number, { clientToServer: number; serverToClient: number }>();
  readonly bytes = new Counter({
    name: 'sshproxy_bytes_total',
    help: 'Bytes spliced each way; open sessions are counted at each scrape, the rest when they close.',
    labelNames: ['listener', 'direction'] as const,
    registers: [this.registry],
    collect: () => this.countOpenSessionBytes(),
  });
  readonly rejected = new Counter({
    name: 'sshproxy_connections_rejected_total',
    help: 'Client connections closed at accept, by reason code (ACL_DENIED, LIMIT_REACHED, ...).',
    labelNames: ['listener', 'reason'] as const,
    registers: [this.registry],
  });
  readonly configReloads = new Counter({
    name: 'sshproxy_config_reloads_total',
    help: 'Config reloads (SIGHUP, --watch) by outcome: ok, invalid (rejected, old config kept), failed (could not apply, old config kept).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly acceptErrors = new Counter({
    name: 'sshproxy_accept_errors_total',
    help: 'Errors accepting connections (EMFILE, ENFILE, ...); never fatal.',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });
  readonly keepaliveLines = new Counter({
    name: 'sshproxy_keepalive_lines_total',
    help: 'RFC 4253 keepalive lines written to clients waiting for a backend banner (listeners[].keepalive).',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });
  readonly keepaliveSessions = new Counter({
    name: 'sshproxy_keepalive_sessions_total',
    help: 'Sessions that got keepalive lines, by outcome: result="rescued" when spliced after them, else the reason code they failed with.',
    labelNames: ['listener', 'result'] as const,
    registers: [this.registry],
  });
  readonly prefetchSessions = new Counter({
    name: 'sshproxy_prefetch_sessions_total',
    help: 'Leases in pools with banner prefetch: result="hit" (spliced to a prefetched connection at once) or "miss" (connected).',
    labelNames: ['pool', 'result'] as const,
    registers: [this.registry],
  });
  readonly prefetchConnections = new Counter({
    name: 'sshproxy_prefetch_connections_total',
    help: 'Prefetched backend connections by outcome: opened (banner verified), failed (to open), used (by a session), retired (closed by us before maxAge), discarded (closed by the server or invalid).',
    labelNames: ['pool', 'server', 'outcome'] as const,
    registers: [this.registry],
  });

  constructor(proxy: MetricsSource, options: ProxyMetricsOptions = {}) {
    this.proxy = proxy;
    if (options.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, ...(options.processLabels ? { labels: { ...options.processLabels } } : {}) });
    }
    registerStateGauges(this.registry, proxy);
    this.subscriptions.push(...registerStoreMetrics(this.registry, proxy));
    this.subscriptions.push(...registerFleetMetrics(this.registry, proxy, (pool, server) => this.totals.delete(`${pool}\u0000${server}`)));
    precreateSeries(this, proxy);
    this.subscribe(proxy.events, options.healthEvents ?? true);
  }

  /** Prometheus text exposition. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Sessions handed to and failed attempts on one server since start. */
  serverTotals(pool: string, server: string): ServerTotals {
    return this.totalsFor(pool, server);
  }

  /** Unsubscribes from events (idempotent). */
  close(): void {
    for (const unsubscribe of this.subscriptions.splice(0)) unsubscribe();
  }

  private subscribe(events: ProxyEvents, healthEvents: boolean): void {
    const on = <K extends keyof ProxyEventMap>(name: K, handler: (...args: ProxyEventMap[K]) => void): void => {
      this.subscriptions.push(subscribe(events, name, handler));
    };
    on('session-spliced', ({ listener, pool, server, setupMs }) => {
      this.sessions.inc({ listener, result: 'spliced' });
      this.sessionSetup.observe({ listener }, setupMs / 1000);
      this.totalsFor(pool, server).sessions += 1;
    });
    on('session-closed', (summary) => {
      if (summary.authOutcome !== undefined) this.authOutcomes.inc({ pool: summary.pool, outcome: summary.authOutcome });
      if (summary.penaltyCharged === true && summary.authOutcome !== undefined) this.penaltiesCharged.inc({ kind: summary.authOutcome });
      if (!summary.spliced) {
        this.sessions.inc({ listener: summary.listener, result: summary.reason });
        return;
      }
      this.sessionEnds.inc({ listener: summary.listener, reason: summary.reason });
      if (summary.slotRelease !== undefined) this.slotReleases.inc({ pool: summary.pool, how: summary.slotRelease });
      // Nothing on the per-chunk path: the sockets count, we read their totals at scrape and at close.
      const counted = this.countedBytes.get(summary.id);
      this.countedBytes.delete(summary.id);
      this.addBytes(
        summary.listener,
        summary.bytesClientToServer - (counted?.clientToServer ?? 0),
        summary.bytesServerToClient - (counted?.serverToClient ?? 0),
      );
    });
    on('attempt', (attempt) => {
      const labels = { pool: attempt.pool, server: attempt.server };
      this.attempts.inc({ ...labels, result: attempt.result });
      if (attempt.connectMs !== undefined) this.backendConnect.observe(labels, attempt.connectMs / 1000);
      if (attempt.result === 'ok' && attempt.bannerMs !== undefined) {
        this.bannerLatency.observe({ ...labels, source: 'session' }, attempt.bannerMs / 1000);
        this.totalsFor(attempt.pool, attempt.server).lastSessionBannerMs = attempt.bannerMs;
      }
      if (attempt.result !== 'ok') this.totalsFor(attempt.pool, attempt.server).failedAttempts += 1;
    });
    on('failover', ({ pool }) => this.failovers.inc({ pool }));
    on('queue-wait', ({ pool, waitMs }) => this.queueWait.observe({ pool }, waitMs / 1000));
    if (healthEvents) on('health-check', (check) => {
      const labels = { pool: check.pool, server: check.server };
      if (check.ok && check.bannerMs !== undefined) this.bannerLatency.observe({ ...labels, source: 'check' }, check.bannerMs / 1000);
      if (!check.ok) this.checkFailures.inc({ ...labels, reason: check.code ?? 'UNKNOWN' });
    });
    if (healthEvents) on('server-state', ({ pool, server }) => this.stateChanges.inc({ pool, server }));
    on('connection-rejected', ({ listener, reason }) => this.rejected.inc({ listener, reason }));
    on('source-penalised', ({ kind }) => this.penaltiesActivated.inc({ kind }));
    on('backend-penalty', ({ pool, server, phase }) => {
      if (phase === 'started') this.backendPenaltyEpisodes.inc({ pool, server });
    });
    on('accept-error', ({ listener }) => this.acceptErrors.inc({ listener }));
    on('config-reload', ({ outcome }) => this.configReloads.inc({ outcome }));
    on('keepalive-line', ({ listener }) => this.keepaliveLines.inc({ listener }));
    on('session-closed', ({ listener, spliced, reason, keepaliveLines }) => {
      if ((keepaliveLines ?? 0) > 0) this.keepaliveSessions.inc({ listener, result: spliced ? 'rescued' : reason });
    });
    on('prefetch', ({ pool, server, outcome }) => {
      if (outcome === 'hit' || outcome === 'miss') this.prefetchSessions.inc({ pool, result: outcome });
      else this.prefetchConnections.inc({ pool, server, outcome });
    });
  }

  /** At scrape time: adds what open sessions moved since the last scrape. */
  private countOpenSessionBytes(): void {
    for (const listener of this.proxy.allListeners()) {
      for (const session of listener.sessions) {
        const now = session.bytesSoFar;
        if (!now) continue;
        const counted = this.countedBytes.get(session.id) ?? { clientToServer: 0, serverToClient: 0 };
        this.addBytes(listener.name, now.clientToServer - counted.clientToServer, now.serverToClient - counted.serverToClient);
        this.countedBytes.set(session.id, { clientToServer: now.clientToServer, serverToClient: now.serverToClient });
      }
    }
  }

  private addBytes(listener: string, clientToServer: number, serverToClient: number): void {
    if (clientToServer > 0) this.bytes.inc({ listener, direction: 'client_to_server' }, clientToServer);
    if (serverToClient > 0) this.bytes.inc({ listener, direction: 'server_to_client' }, serverToClient);
  }

  private totalsFor(pool: string, server: string): ServerTotals {
    const key = `${pool}\u0000${server}`;
    let totals = this.totals.get(key);
    if (!totals) {
      totals = { sessions: 0, failedAttempts: 0, lastSessionBannerMs: undefined };
      this.totals.set(key, totals);
    }
    return totals;
  }
}
