import { hostname } from 'node:os';
import { redactedUrl } from '../config/redact.js';
import type { ClusterConfig } from '../config/schema.js';
import type { BackendPool } from '../backend/pool.js';
import type { SharedBudget, SharedBudgetStatus } from '../proxy/shared-budget.js';
import type { ProxyEvents } from '../events/bus.js';
import type { SourcePenalties } from '../proxy/penalties.js';
import type { SourceLimits } from '../proxy/source-limits.js';
import { storeKeys, type StoreKeys } from './keys.js';
import { LEAVE, RENEW } from './scripts.js';
import { SharedPenalties } from './shared-penalties.js';
import { SharedSlots } from './shared-slots.js';
import { SharedSources } from './shared-sources.js';
import { script, StoreConnection, type CallResult, type Script } from './store-connection.js';
import { countKeyTtlMs, type StoreContext } from './store-context.js';

const RENEW_SCRIPT = script(RENEW);
const LEAVE_SCRIPT = script(LEAVE);
/** Penalised sources loaded when a replica connects, at most. */
const PENALTIES_LOADED_MAX = 10_000;

export interface ClusterStoreDeps {
  readonly settings: ClusterConfig;
  readonly events: ProxyEvents;
  /** Per-source limits and penalties to share (a process that runs only health checks has none). */
  readonly sourceLimits?: SourceLimits;
  readonly penalties?: SourcePenalties;
  readonly env?: NodeJS.ProcessEnv;
}

/** What /api/status shows of the store. */
export type StoreStatus = SharedBudgetStatus;

/** Before a replica has seen how many share the store: the share it keeps to alone. */
const UNSEEN_FALLBACK_SHARE = 0.5;

/**
 * This replica's part in a cluster that shares one budget in Valkey/Redis (docs/cluster.md):
 * the connection, the heartbeat that renews its holdings (every leaseTtl / 3, asserting
 * them as absolute counts, which also restores them into a restarted store), and the
 * shared slots, per-source limits and penalties built on it.
 */
export class ClusterStore implements StoreContext, SharedBudget {
  readonly replica: string;
  readonly keys: StoreKeys;
  readonly settings: ClusterConfig;
  readonly events: ProxyEvents;
  readonly slots: SharedSlots;
  readonly sources: SharedSources | undefined;
  readonly penalties: SharedPenalties | undefined;
  private currentEpoch = 0;
  private readonly connection: StoreConnection;
  private heartbeat: NodeJS.Timeout | undefined;
  private restoring = false;
  private changedAt = Date.now();
  private lastReason: string | undefined;
  /** Replicas sharing the store at the last heartbeat (this one included); 0 before any. */
  private liveReplicas = 0;

  constructor(deps: ClusterStoreDeps) {
    const { settings, events } = deps;
    this.settings = settings;
    this.events = events;
    this.replica = settings.replicaId ?? `${hostname()}-${process.pid}`;
    this.keys = storeKeys(settings.prefix);
    this.slots = new SharedSlots(this);
    this.sources = deps.sourceLimits ? new SharedSources(this, deps.sourceLimits) : undefined;
    this.penalties = deps.penalties ? new SharedPenalties(this, deps.penalties) : undefined;
    const password = (deps.env ?? process.env)[settings.passwordEnv];
    this.connection = new StoreConnection(
      { url: settings.store, password: password === '' ? undefined : password, deadlineMs: settings.acquireTimeout, connectionName: `ssh-banner-proxy:${this.replica}` },
      this.keys.channel,
      {
        connected: () => void this.restore(),
        stateChanged: (from, to, reason, error) => {
          this.changedAt = Date.now();
          this.lastReason = reason;
          events.emit('store-state', { replica: this.replica, from, to, reason, ...(error ? { error } : {}) });
          if (from === 'up' || to === 'up') this.slots.modeChanged();
        },
        message: (text) => this.onMessage(text),
        roundTrip: (op, ms, outcome) => events.emit('store-call', { op, ms, outcome }),
      },
    );
  }

  get up(): boolean {
    return this.connection.state === 'up';
  }

  get epoch(): number {
    return this.currentEpoch;
  }

  /**
   * The share of each limit this replica keeps to alone while the store is down: `localShare`
   * when set, else 1 / the replicas it last saw sharing the store (0.5 before it ever saw it).
   */
  get fallbackShare(): number {
    return this.settings.localShare ?? (this.liveReplicas > 0 ? 1 / this.liveReplicas : UNSEEN_FALLBACK_SHARE);
  }

  status(): StoreStatus {
    return {
      replica: this.replica,
      store: redactedUrl(this.settings.store),
      state: this.connection.state,
      since: this.changedAt,
      reason: this.lastReason,
      onStoreDown: this.settings.onStoreDown,
      replicas: this.liveReplicas,
      fallbackShare: this.fallbackShare,
    };
  }

  /** Each pool takes its handshake slots from the store while it is up. */
  attach(pool: BackendPool): void {
    this.slots.attach(pool);
  }

  /** Connects in the background; until the store answers, limits are local (onStoreDown). */
  start(): void {
    this.connection.start();
    this.heartbeat = setInterval(() => void this.heartbeatTick(), Math.max(100, Math.floor(this.settings.leaseTtl / 3)));
    this.heartbeat.unref();
  }

  run<T>(op: string, code: Script, keys: readonly string[], args: readonly (string | number)[], onLate?: (value: T) => void): Promise<CallResult<T>> {
    return this.connection.run(op, code, keys, args, onLate);
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    this.slots.close();
    if (this.up) await this.run('leave', LEAVE_SCRIPT, [this.keys.alive(this.replica), this.keys.replicas], [this.replica]);
    await this.connection.close();
  }

  /** (Re)connected, or answering in time again: give the store this replica's holdings, then share. */
  private async restore(): Promise<void> {
    if (this.restoring) return;
    this.restoring = true;
    try {
      if (!(await this.renew())) return;
      if (this.penalties && !(await this.penalties.load(PENALTIES_LOADED_MAX))) return;
      this.connection.markUp();
    } finally {
      this.restoring = false;
    }
  }

  private async heartbeatTick(): Promise<void> {
    // A restore renews by itself.
    if (this.restoring) return;
    const renewed = await this.renew();
    // Answering, yet not sharing: back from slow, or a restore was cut short (the connection
    // dropped and came back while it ran). Restore now: the one way back besides 'ready'.
    if (renewed && !this.up && !this.restoring) await this.restore();
  }

  /** The heartbeat: liveness, and every count this replica holds, as absolute numbers. */
  private async renew(): Promise<boolean> {
    const slotHoldings = [...this.slots.holdings()];
    const pairs: (string | number)[] = [];
    for (const [address, count] of slotHoldings) pairs.push(this.keys.slots(address), count);
    if (this.sources) for (const [key, count] of this.sources.holdings()) pairs.push(key, count);
    // From now on every count held is in the store: released, it is given back.
    this.currentEpoch += 1;
    const args = [this.keys.prefix, this.replica, this.settings.leaseTtl, countKeyTtlMs(this.settings), ...pairs];
    const result = await this.run<number[]>('renew', RENEW_SCRIPT, [this.keys.alive(this.replica), this.keys.replicas], args);
    if (!result.ok) return false;
    slotHoldings.forEach(([address], index) => this.slots.seen(address, result.value[index] ?? 0));
    const expired = result.value[result.value.length - 2] ?? 0;
    if (expired > 0) this.events.emit('store-leases-expired', { count: expired });
    const replicas = result.value[result.value.length - 1] ?? 0;
    if (replicas !== this.liveReplicas && replicas > 0) {
      this.liveReplicas = replicas;
      this.events.emit('store-replicas', { replica: this.replica, replicas, fallbackShare: this.fallbackShare });
    }
    return true;
  }

  private onMessage(text: string): void {
    const fields = text.split(' ');
    if (fields[0] === 'f' && fields[1] !== undefined) this.slots.freed(fields[1]);
    else if (fields[0] === 'p') this.penalties?.published(fields.slice(1));
    else if (fields[0] === 'c') this.slots.learnedElsewhere(fields.slice(1));
  }
}

export { redactedUrl } from '../config/redact.js';
