import type { AttemptFailureCode, ReasonCode } from '../errors.js';

/**
 * The contract between the proxy core and its observers: what each event carries.
 * Both sides depend on this file; it depends on neither.
 */

export type ServerState = 'UP' | 'DOWN' | 'DRAINING' | 'MAINT';

// How a handshake slot was released and how authentication ended: the judge's verdicts, defined beside it.
import type { AuthOutcome, SlotRelease } from '../protocol/handshake-judge.js';
export type { AuthOutcome, SlotRelease };

/** What a source is charged for; the names are sshd's (`grace-exceeded` for LoginGraceTime). */
export type PenaltyKind = 'authfail' | 'noauth' | 'grace-exceeded';

/** What a reload changed, by name (logged, and carried by the 'config-reload' event). */
export interface ReloadChanges {
  listeners: { added: string[]; removed: string[]; updated: string[] };
  pools: { added: string[]; removed: string[] };
  servers: Record<string, { added: string[]; removed: string[]; changed: string[] }>;
}

/** One backend attempt within a session. */
export interface AttemptRecord {
  readonly server: string;
  readonly address: string;
  readonly result: 'ok' | AttemptFailureCode;
  readonly message?: string;
  /** The OS error behind a failure (ECONNREFUSED, EMFILE, ...), when there was one. */
  readonly errno?: string;
  readonly connectMs?: number;
  readonly bannerMs?: number;
  /** From the identification to the server's KEXINIT (verify: kexinit). */
  readonly kexinitMs?: number;
  readonly elapsedMs: number;
  /** A prefetched connection (banner verified earlier): this client waited for neither connect nor banner. */
  readonly prefetched?: boolean;
  /**
   * The backend connection's own end: sshd logs it as `from <localAddress> port <localPort>`
   * (docs/operations.md, joining the logs). Absent when no TCP connection was made.
   */
  readonly localAddress?: string;
  readonly localPort?: number;
  /** The address connected to: a host-name server's resolved address. */
  readonly remoteAddress?: string;
}

/** The one summary a session emits when it closes. */
export interface SessionSummary {
  readonly id: number;
  readonly listener: string;
  readonly pool: string;
  readonly client: string;
  readonly clientPort: number | undefined;
  readonly phase: string;
  readonly spliced: boolean;
  readonly server: string | undefined;
  readonly serverIdentification: string | undefined;
  readonly clientIdentification: string | undefined;
  readonly attempts: readonly AttemptRecord[];
  /** Spliced sessions: the backend connection's own address and port, as sshd logs them (`from A port P`). */
  readonly backendLocalAddress?: string;
  readonly backendLocalPort?: number;
  /** Milliseconds spent in each phase (src/proxy/session-state.ts); a phase entered twice adds up. */
  readonly phaseMs: { readonly [phase: string]: number | undefined };
  /** Time spent `queued` for a handshake slot (phaseMs.queued). */
  readonly queueWaitMs: number;
  /** Most client bytes held before the splice (bounded by limits.clientBufferBytes plus one read). */
  readonly clientBufferPeakBytes: number;
  readonly bannerMs: number | undefined;
  readonly setupMs: number | undefined;
  readonly bytesClientToServer: number;
  readonly bytesServerToClient: number;
  readonly durationMs: number;
  /** `spliced` sessions end with a close code; failed setups with their failure code. */
  readonly reason: ReasonCode;
  readonly message?: string;
  /** RFC 4253 lines sent to the client while it waited (listeners[].keepalive); 0 when none. */
  readonly keepaliveLines?: number;
  /** The client's setup budget came from this `listeners[].deadlines` pattern. */
  readonly deadlinePattern?: string;
  /** Spliced sessions: how the handshake slot was released (src/proxy/handshake-tracker.ts, SlotRelease). */
  readonly slotRelease?: SlotRelease;
  /**
   * How authentication ended, as the proxy saw it (AuthOutcome: ok, authfail, noauth,
   * grace-exceeded, unknown), and whether it was charged to the client's source.
   */
  readonly authOutcome?: AuthOutcome;
  readonly penaltyCharged?: boolean;
}

export interface ProxyEventMap {
  'session-spliced': [{ readonly listener: string; readonly pool: string; readonly server: string; readonly setupMs: number }];
  'session-closed': [SessionSummary];
  attempt: [{ readonly listener: string; readonly pool: string; readonly sessionId: number } & AttemptRecord];
  failover: [{ readonly pool: string; readonly from: string; readonly reason: AttemptFailureCode }];
  /** A source turned penalised by a session's outcome: refused (PENALIZED) for `remainingMs`. */
  'source-penalised': [{ readonly listener: string; readonly client: string; readonly key: string; readonly kind: PenaltyKind; readonly remainingMs: number; readonly charges: number }];
  /**
   * A backend refuses the proxy's own address (sshd PerSourcePenalties): `started` (held out
   * for `holdMs`), `extended` (refused again after a hold-out), `ended` (a banner again).
   */
  'backend-penalty': [
    {
      readonly pool: string;
      readonly server: string;
      readonly address: string;
      readonly phase: 'started' | 'extended' | 'ended';
      readonly refusals: number;
      /** Some refusal carried sshd's "Not allowed at this time": a penalty is likely; else closes or resets alone. */
      readonly withNotice?: boolean;
      readonly holdMs?: number;
      readonly proxyAddress?: string;
    },
  ];
  /**
   * source: transparent: a connect from a client's address timed out while health checks
   * from the proxy's own address pass: the return route is missing. Told once per server.
   */
  'transparent-unrouted': [{ readonly pool: string; readonly server: string; readonly address: string; readonly client: string }];
  'connection-rejected': [{ readonly listener: string; readonly reason: ReasonCode; readonly client: string; readonly message?: string }];
  'accept-error': [{ readonly listener: string; readonly error: NodeJS.ErrnoException }];
  'listener-open': [{ readonly listener: string; readonly address: string; readonly fd?: number }];
  'listener-closed': [{ readonly listener: string }];
  'server-state': [
    {
      readonly pool: string;
      readonly server: string;
      readonly from: ServerState;
      readonly to: ServerState;
      readonly reason: string;
    },
  ];
  /** A server left its pool for good (a reload or a lookup removed it, and its last session ended): its metric series go. */
  'server-removed': [{ readonly pool: string; readonly server: string; readonly address: string }];
  /**
   * A set's lookup (src/discovery/): `ok` with the members found, `nx` (NXDOMAIN or an empty
   * answer) or `failed` (SERVFAIL, timeout, refused...); `kept` when the last good set stays (hold).
   */
  'dns-lookup': [
    {
      readonly pool: string;
      readonly entry: string;
      readonly name: string;
      readonly outcome: 'ok' | 'nx' | 'failed';
      readonly members: number;
      readonly ms: number;
      readonly code?: string;
      readonly message?: string;
      readonly kept?: boolean;
      /** Members left out past maxServers. */
      readonly leftOut?: number;
    },
  ];
  /** A set's members changed: who joined, who left. */
  'dns-change': [{ readonly pool: string; readonly entry: string; readonly added: readonly string[]; readonly removed: readonly string[] }];
  /** `maxStartups: auto` moved a server's learnt limit. */
  'capacity-learned': [{ readonly pool: string; readonly server: string; readonly limit: number; readonly change: 'raised' | 'probed' | 'lowered' | 'adopted'; readonly inFlight?: number }];
  'health-check': [
    {
      readonly pool: string;
      readonly server: string;
      readonly ok: boolean;
      readonly code?: AttemptFailureCode;
      readonly message?: string;
      readonly bannerMs?: number;
      readonly identification?: string;
    },
  ];
  /** A config reload: applied ('ok'), rejected as invalid (old config kept), or failed to apply (old config kept). */
  'config-reload': [
    {
      readonly outcome: 'ok' | 'invalid' | 'failed';
      readonly source: string;
      readonly message?: string;
      readonly changes?: ReloadChanges;
    },
  ];
  'queue-wait': [{ readonly pool: string; readonly waitMs: number; readonly granted: boolean }];
  /**
   * Banner prefetch: a connection opened (identification verified), failed to open,
   * was used by a session, retired by us or discarded as unusable; and per session
   * that took a lease, a hit or a miss.
   */
  prefetch: [
    {
      readonly pool: string;
      readonly server: string;
      readonly outcome: 'opened' | 'failed' | 'used' | 'retired' | 'discarded' | 'hit' | 'miss';
      readonly reason?: string;
      readonly ageMs?: number;
    },
  ];
  /** The shared store (cluster.store) changed state: `up` (shared limits) or `down` (cluster.onStoreDown decides). */
  'store-state': [{ readonly replica: string; readonly from: string; readonly to: string; readonly reason: string; readonly error?: Error }];
  /** One call to the shared store: its round trip, or that it missed the deadline or failed. */
  'store-call': [{ readonly op: string; readonly ms: number; readonly outcome: 'ok' | 'timeout' | 'error' }];
  /** A decision the shared store should have made was made locally (store down, past the deadline, error). */
  'store-fallback': [{ readonly what: 'slot' | 'source' | 'penalty'; readonly reason: 'down' | 'timeout' | 'error' }];
  /** A penalty published through the shared store (by any replica's charge) is now refused here too. */
  'penalty-shared': [{ readonly key: string; readonly kind: PenaltyKind; readonly remainingMs: number; readonly charges: number }];
  /** Holdings of replicas that stopped renewing (killed, partitioned, frozen) were reclaimed by this one. */
  'store-leases-expired': [{ readonly count: number }];
  /** The replicas sharing the store changed (at a heartbeat): the share each keeps to alone if it goes down. */
  'store-replicas': [{ readonly replica: string; readonly replicas: number; readonly fallbackShare: number }];
  /** A keepalive line was written to a waiting client (`line` counts from 1). */
  'keepalive-line': [{ readonly listener: string; readonly pool: string; readonly sessionId: number; readonly line: number }];
}
