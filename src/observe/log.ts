import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import { subscribe, type ProxyEventMap, type ProxyEvents } from '../events/bus.js';
import { formatHostPort } from '../net/address.js';
import { logIdentity, sessionLogId, type LogIdentity } from './log-identity.js';

export interface LogOptions {
  readonly level: string;
  readonly pretty: boolean;
  /** `pino` (default) or `ecs` field names. */
  readonly format?: 'pino' | 'ecs';
  /** Level as its name ("info") instead of pino's number (30). */
  readonly levelNames?: boolean;
}

const SERVICE = 'ssh-banner-proxy';
/** The ECS version the `ecs` format follows. */
const ECS_VERSION = '8.11.0';

/**
 * The one logger setup of every command: pino JSON to stdout (or `destination`), ISO
 * time, the service and who wrote the line (replica, worker) on every line;
 * pino-pretty only when asked for.
 */
export function createLogger(options: LogOptions, identity: LogIdentity = logIdentity(undefined), destination?: pino.DestinationStream): Logger {
  const settings = loggerSettings(options, identity);
  if (destination) return pino(settings, destination);
  if (options.pretty) {
    // pino-pretty is a dev dependency: a production install may not have it; fall back to JSON.
    // Colour only on a terminal: a file or a pipe gets no ANSI codes.
    if (prettyAvailable()) return pino({ ...settings, transport: { target: 'pino-pretty', options: { colorize: process.stdout.isTTY === true } } });
    const logger = pino(settings);
    logger.warn({ event: 'log-pretty-unavailable' }, 'log.pretty is set but pino-pretty is not installed (npm install pino-pretty); logging JSON');
    return logger;
  }
  return pino(settings);
}

function loggerSettings(options: LogOptions, identity: LogIdentity): pino.LoggerOptions {
  if (options.format === 'ecs') {
    return {
      level: options.level,
      messageKey: 'message',
      errorKey: 'error',
      base: { 'ecs.version': ECS_VERSION, 'service.name': SERVICE, 'service.node.name': identity.replica, ...(identity.worker === undefined ? {} : { 'process.thread.name': `worker-${identity.worker}` }) },
      timestamp: () => `,"@timestamp":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ 'log.level': label }), log: ecsFields },
    };
  }
  return {
    level: options.level,
    base: { service: SERVICE, ...identity },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(options.levelNames === true ? { formatters: { level: (label: string) => ({ level: label }) } } : {}),
  };
}

/**
 * ECS names for our own fields: `event` (a string here) is ECS's `event.action`, an error is
 * `error.type` / `error.message` / `error.stack_trace`, the client is `client.ip` / `client.port`.
 */
function ecsFields(fields: Record<string, unknown>): Record<string, unknown> {
  const { event, err, error, client, clientPort, ...rest } = fields;
  // The raw Error (formatters run before pino's serializers): its class is `name`.
  const failure = (err ?? error) as { type?: unknown; name?: unknown; message?: unknown; stack?: unknown; code?: unknown } | undefined;
  return {
    ...rest,
    ...(event === undefined ? {} : { 'event.action': event }),
    ...(typeof client === 'string' ? { 'client.ip': client } : {}),
    ...(clientPort === undefined ? {} : { 'client.port': clientPort }),
    ...(failure && typeof failure === 'object'
      ? { 'error.type': failure.type ?? failure.name, 'error.message': failure.message, 'error.stack_trace': failure.stack, ...(failure.code === undefined ? {} : { 'error.code': failure.code }) }
      : {}),
  };
}

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

const round = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : Math.round(ms * 100) / 100);

/** One line per session at info (warn when setup failed), attempts at debug, server changes at info/warn. */
export function logEvents(events: ProxyEvents, logger: Logger): () => void {
  const subscriptions: (() => void)[] = [];
  const on = <K extends keyof ProxyEventMap>(name: K, handler: (...args: ProxyEventMap[K]) => void): void => {
    subscriptions.push(subscribe(events, name, handler));
  };

  on('session-closed', (summary) => {
    // Per-session work: build nothing when the level is off (log.level warn drops spliced sessions).
    if (!logger.isLevelEnabled(summary.spliced ? 'info' : 'warn')) return;
    const line = {
      event: 'session',
      session: sessionLogId(summary.id),
      listener: summary.listener,
      pool: summary.pool,
      client: summary.client,
      clientPort: summary.clientPort,
      server: summary.server,
      spliced: summary.spliced,
      phase: summary.phase,
      reason: summary.reason,
      message: summary.message,
      attempts: summary.attempts.map((attempt) => ({
        server: attempt.server,
        result: attempt.result,
        ms: round(attempt.elapsedMs),
        // verify: kexinit: how long the server took from its identification to its KEXINIT.
        kexinitMs: round(attempt.kexinitMs),
        // The cause of a failed attempt: the OS error (ECONNREFUSED, EHOSTUNREACH, ...) and what it meant.
        errno: attempt.errno,
        cause: attempt.result === 'ok' ? undefined : attempt.message,
        // The backend connection's two ends: sshd logs `from <local> port <localPort>`.
        local: attempt.localPort === undefined ? undefined : formatHostPort({ host: attempt.localAddress ?? '', port: attempt.localPort }),
        remote: attempt.remoteAddress,
      })),
      // The join to sshd's `Accepted … from A port P` line (docs/operations.md).
      backendLocalAddress: summary.backendLocalAddress,
      backendLocalPort: summary.backendLocalPort,
      queueWaitMs: round(summary.queueWaitMs),
      clientBufferPeak: summary.clientBufferPeakBytes,
      bannerMs: round(summary.bannerMs),
      setupMs: round(summary.setupMs),
      bytesIn: summary.bytesClientToServer,
      bytesOut: summary.bytesServerToClient,
      durationMs: round(summary.durationMs),
      serverIdent: summary.serverIdentification,
      clientIdent: summary.clientIdentification,
      keepaliveLines: summary.keepaliveLines === 0 ? undefined : summary.keepaliveLines,
      deadline: summary.deadlinePattern,
      slotRelease: summary.slotRelease,
      auth: summary.authOutcome,
      penaltyCharged: summary.penaltyCharged === true ? true : undefined,
    };
    if (summary.spliced) logger.info(line, 'session closed');
    else logger.warn(line, 'session failed before splice');
  });
  on('attempt', (attempt) => {
    if (!logger.isLevelEnabled('debug')) return;
    logger.debug({ event: 'attempt', ...attempt, sessionId: sessionLogId(attempt.sessionId), elapsedMs: round(attempt.elapsedMs) }, 'backend attempt');
  });
  on('prefetch', (prefetch) => {
    logger.debug({ event: 'prefetch', ...prefetch, ageMs: round(prefetch.ageMs) }, 'banner prefetch');
  });
  on('connection-rejected', (rejection) => {
    if (!logger.isLevelEnabled('info')) return;
    logger.info({ event: 'rejected', ...rejection }, 'connection rejected');
  });
  on('backend-penalty', (penalty) => {
    const where = `${penalty.pool}/${penalty.server} (${penalty.address})`;
    const own = penalty.proxyAddress === undefined ? "the proxy's own address" : `the proxy's own address ${penalty.proxyAddress}`;
    const exempt = penalty.proxyAddress ?? '<the proxy address>';
    const held = `Held out for ${Math.round((penalty.holdMs ?? 0) / 1000)}s`;
    if (penalty.phase === 'started' && penalty.withNotice === true) {
      logger.warn(
        { event: 'backend-penalty', ...penalty, hint: `PerSourcePenaltyExemptList ${exempt}` },
        `${where} refuses ${own} with "Not allowed at this time" while the proxy holds few handshakes there: likely sshd PerSourcePenalties (every client behind the proxy shares that address). ${held}. Fix: add "PerSourcePenaltyExemptList ${exempt}" to its sshd_config (the proxy applies penalties per client itself)`,
      );
    } else if (penalty.phase === 'started') {
      // No sshd line came: a penalty would have said so (OpenSSH 9.8+ always writes it).
      logger.warn(
        { event: 'backend-penalty', ...penalty },
        `${where} closes or resets every connection from ${own} at accept, with no SSH line, while the proxy holds few handshakes there: TCP wrappers (hosts.deny), a firewall, or a service that is not sshd. ${held}`,
      );
    } else if (penalty.phase === 'ended') {
      logger.info({ event: 'backend-penalty', ...penalty }, `${where} answers the proxy again after ${penalty.refusals} refusals`);
    } else {
      logger.debug({ event: 'backend-penalty', ...penalty }, `${where} still refuses the proxy: held out for ${Math.round((penalty.holdMs ?? 0) / 1000)}s`);
    }
  });
  on('transparent-unrouted', (unrouted) => {
    logger.warn(
      { event: 'transparent-unrouted', ...unrouted },
      `${unrouted.pool}/${unrouted.server} (${unrouted.address}): connects from client addresses time out while health checks from the proxy's own address pass: the replies to clients do not come back to the proxy (the return route is missing: ssh-banner-proxy transparent setup, docs/identity.md). Such attempts count as SOURCE_UNUSABLE, not against the server`,
    );
  });
  on('store-state', ({ replica, from, to, reason, error }) => {
    const fields = { event: 'store-state', replica, from, to, reason, ...(error ? { err: error } : {}) };
    if (to === 'up') logger.info(fields, `shared store up (${reason}): limits are shared across replicas`);
    else if (from !== 'connecting' || reason !== 'disconnected') logger.warn(fields, `shared store ${to} (${reason}): limits are this replica's own until it is back (cluster.onStoreDown)`);
  });
  on('store-replicas', ({ replica, replicas, fallbackShare }) => {
    const share = Math.round(fallbackShare * 1000) / 1000;
    logger.info({ event: 'store-replicas', replica, replicas, fallbackShare: share }, `${replicas} replica(s) share the store: while it is down, this one keeps to ${share} of each limit`);
  });
  on('store-leases-expired', ({ count }) => {
    logger.info({ event: 'store-leases-expired', count }, `reclaimed ${count} slot(s) or source count(s) of replicas that stopped renewing`);
  });
  on('source-penalised', (penalty) => {
    logger.warn({ event: 'source-penalised', ...penalty, remainingMs: round(penalty.remainingMs) }, `source ${penalty.key} penalised: refused (PENALIZED) for ${Math.ceil(penalty.remainingMs / 1000)}s`);
  });
  on('accept-error', ({ listener, error }) => {
    logger.error({ event: 'accept-error', listener, code: error.code, err: error }, 'accept failed');
  });
  on('listener-open', (open) => logger.info({ event: 'listening', ...open }, 'listening'));
  on('listener-closed', (closed) => logger.info({ event: 'listener-closed', ...closed }, 'listener closed: no new connections'));
  on('health-check', (check) => {
    logger.debug({ event: 'health-check', ...check, bannerMs: round(check.bannerMs) }, 'health check');
  });
  on('server-state', (change) => {
    const level = change.to === 'UP' || change.reason.startsWith('admin:') || change.reason.startsWith('dns:') ? 'info' : 'warn';
    logger[level]({ event: 'server-state', ...change }, `server ${change.pool}/${change.server} is ${change.to}`);
  });
  on('server-removed', (removed) => logger.info({ event: 'server-removed', ...removed }, `server ${removed.pool}/${removed.server} left the pool`));
  on('dns-lookup', (lookup) => {
    const ms = round(lookup.ms);
    if (lookup.outcome === 'ok') {
      if (lookup.leftOut === undefined) logger.debug({ event: 'dns-lookup', ...lookup, ms }, 'dns lookup');
      else logger.warn({ event: 'dns-lookup', ...lookup, ms }, `${lookup.name}: ${lookup.leftOut} more servers than maxServers; left out`);
      return;
    }
    const what = lookup.kept === true ? 'the last good set is kept' : 'the set is empty: its servers drain';
    logger.warn({ event: 'dns-lookup', ...lookup, ms }, `lookup of ${lookup.name} for ${lookup.pool}/${lookup.entry}: ${lookup.code ?? lookup.outcome}; ${what}`);
  });
  on('dns-change', (change) => logger.info({ event: 'dns-change', ...change }, `${change.pool}/${change.entry}: ${change.added.length} added, ${change.removed.length} removed`));
  on('capacity-learned', (learned) => logger.info({ event: 'capacity-learned', ...learned }, `server ${learned.pool}/${learned.server}: handshake limit ${learned.change} to ${learned.limit}`));
  return () => {
    for (const unsubscribe of subscriptions.splice(0)) unsubscribe();
  };
}
