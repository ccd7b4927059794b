import { SPLICED_CLOSE_CODES, type SessionFailureCode } from '../errors.js';
import type { AuthOutcome, PenaltyKind, SlotRelease } from '../events/contract.js';

/** What a counter and a histogram offer here (prom-client's, seen structurally: no import circle with metrics.ts). */
interface Counted {
  inc(labels: Record<string, string>, value: number): void;
}
interface Zeroed {
  zero(labels: Record<string, string>): void;
}

/** The series pre-created at 0. */
export interface PrecreatedMetrics {
  readonly sessions: Counted;
  readonly sessionEnds: Counted;
  readonly sessionSetup: Zeroed;
  readonly bytes: Counted;
  readonly rejected: Counted;
  readonly acceptErrors: Counted;
  readonly keepaliveLines: Counted;
  readonly keepaliveSessions: Counted;
  readonly configReloads: Counted;
  readonly penaltiesCharged: Counted;
  readonly penaltiesActivated: Counted;
  readonly failovers: Counted;
  readonly slotReleases: Counted;
  readonly authOutcomes: Counted;
  readonly queueWait: Zeroed;
  readonly bannerLatency: Zeroed;
  readonly backendConnect: Zeroed;
  readonly attempts: Counted;
  readonly stateChanges: Counted;
  readonly backendPenaltyEpisodes: Counted;
}

/** The configured names the series are made for. */
export interface ConfiguredNames {
  readonly listeners: readonly { readonly name: string }[];
  readonly pools: ReadonlyMap<string, { readonly name: string; readonly servers: readonly { readonly name: string }[] }>;
}

const SLOT_RELEASES: readonly SlotRelease[] = ['auth', 'newkeys', 'grace', 'maxHold', 'unreadable', 'splice', 'client-gone', 'server-gone'];
const AUTH_OUTCOMES: readonly AuthOutcome[] = ['ok', 'authfail', 'noauth', 'grace-exceeded', 'unknown'];
const PENALTY_KINDS: readonly PenaltyKind[] = ['authfail', 'noauth', 'grace-exceeded'];

/** The ways a session fails before the splice that alerts watch, pre-created at 0. */
const PRECREATED_FAILURES: readonly SessionFailureCode[] = ['NO_BACKEND', 'BACKENDS_EXHAUSTED', 'QUEUE_TIMEOUT', 'QUEUE_FULL', 'SETUP_TIMEOUT', 'CLIENT_CLOSED', 'CLIENT_RESET'];

/** Zero series for every configured listener, pool and server, so dashboards show 0 rather than gaps. */
export function precreateSeries(metrics: PrecreatedMetrics, proxy: ConfiguredNames): void {
  for (const listener of proxy.listeners) {
    const name = listener.name;
    metrics.sessions.inc({ listener: name, result: 'spliced' }, 0);
    // Alerts take increase() of failures and ends: a series that appears on first use reads as 0 there.
    for (const result of PRECREATED_FAILURES) metrics.sessions.inc({ listener: name, result }, 0);
    for (const reason of SPLICED_CLOSE_CODES) metrics.sessionEnds.inc({ listener: name, reason }, 0);
    metrics.sessionSetup.zero({ listener: name });
    metrics.bytes.inc({ listener: name, direction: 'client_to_server' }, 0);
    metrics.bytes.inc({ listener: name, direction: 'server_to_client' }, 0);
    metrics.rejected.inc({ listener: name, reason: 'ACL_DENIED' }, 0);
    metrics.rejected.inc({ listener: name, reason: 'LIMIT_REACHED' }, 0);
    metrics.rejected.inc({ listener: name, reason: 'PENALIZED' }, 0);
    metrics.acceptErrors.inc({ listener: name }, 0);
    metrics.keepaliveLines.inc({ listener: name }, 0);
    metrics.keepaliveSessions.inc({ listener: name, result: 'rescued' }, 0);
  }
  for (const outcome of ['ok', 'invalid', 'failed']) metrics.configReloads.inc({ outcome }, 0);
  for (const kind of PENALTY_KINDS) {
    metrics.penaltiesCharged.inc({ kind }, 0);
    metrics.penaltiesActivated.inc({ kind }, 0);
  }
  for (const pool of proxy.pools.values()) {
    metrics.failovers.inc({ pool: pool.name }, 0);
    for (const how of SLOT_RELEASES) metrics.slotReleases.inc({ pool: pool.name, how }, 0);
    for (const outcome of AUTH_OUTCOMES) metrics.authOutcomes.inc({ pool: pool.name, outcome }, 0);
    metrics.queueWait.zero({ pool: pool.name });
    for (const server of pool.servers) {
      const labels = { pool: pool.name, server: server.name };
      metrics.bannerLatency.zero({ ...labels, source: 'session' });
      metrics.bannerLatency.zero({ ...labels, source: 'check' });
      metrics.backendConnect.zero(labels);
      metrics.attempts.inc({ ...labels, result: 'ok' }, 0);
      metrics.stateChanges.inc(labels, 0);
      metrics.backendPenaltyEpisodes.inc(labels, 0);
    }
  }
}
