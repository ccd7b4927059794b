import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { BackendPool } from '../backend/pool.js';
import type { AdminView } from '../observe/admin.js';
import type { ProxyMetrics } from '../observe/metrics.js';
import { PENALISED_SHOWN, poolReadiness, type ProxyStatus, type Readiness } from '../observe/status.js';
import { VERSION } from '../version.js';
import type { LiveSessionReply } from '../observe/log-identity.js';
import {
  isServerControlResult,
  isSessionLookupResponse,
  isSnapshotResponse,
  type ServerControlRequest,
  type SessionLookupRequest,
  type SnapshotRequest,
  type SnapshotResponse,
} from './messages.js';
import type { ControlOutcome, ControlRequest } from '../proxy/server-control.js';
import { RetiredCounters } from './retired-counters.js';
import { mergeListeners, mergePool, mergeStore, sum } from './status-merge.js';

/** How long /readyz waits for the workers: under kubelet's default probe timeout of 1 s. */
const READINESS_TIMEOUT_MS = 500;

/** How often the primary refreshes every worker's counters between scrapes. */
const COUNTER_REFRESH_MS = 5000;

/** How long a scrape waits for the workers' snapshots; a worker that misses it is left out (and /readyz says so). */
const SNAPSHOT_TIMEOUT_MS = 2000;

export interface WorkerStatus {
  readonly worker: number;
  readonly pid: number;
  readonly uptimeSeconds: number;
  readonly ready: Readiness;
  readonly connections: ProxyStatus['connections'];
  /** Sessions this worker has spliced since it started (all servers). */
  readonly sessions: number;
}

/** /api/status with workers: the proxy as a whole, plus one line per worker. */
export interface ClusterStatus extends ProxyStatus {
  readonly workers: readonly WorkerStatus[];
}

export interface ClusterAdminOptions {
  /** The primary's pools: their health (the primary runs the checks) is the truth. */
  readonly pools: ReadonlyMap<string, BackendPool>;
  /** The primary's own metrics: health checks, state changes, its process. */
  readonly metrics: ProxyMetrics;
  readonly startedAt: number;
  readonly expectedWorkers: () => number;
  readonly stopping: () => boolean;
  /** Applies a control request to the primary's own pools (and its DNS sets), before the workers do. */
  readonly control: (request: ControlRequest) => Promise<ControlOutcome>;
}

/**
 * The admin endpoint's view with workers: one scrape asks every worker for its
 * registry (as JSON) and status over IPC, and answers with them merged. Counters and
 * histograms add up across workers (prom-client's AggregatorRegistry); process metrics
 * carry a `worker` label and stay apart; server state comes from the primary's checks.
 */
export class ClusterAdminView implements AdminView {
  private readonly options: ClusterAdminOptions;
  private nextId = 1;
  private readonly pending = new Map<number, { readonly responses: SnapshotResponse[]; readonly settle: () => void }>();
  private readonly onMessage = (_worker: unknown, message: unknown): void => {
    if (!isSnapshotResponse(message)) return;
    const request = this.pending.get(message.id);
    if (!request) return;
    request.responses.push(message);
    request.settle();
  };

  private readonly retired = new RetiredCounters();
  /** Refreshes every worker's latest counters between scrapes (bounds what a dying worker takes with it). */
  private readonly refreshTimer: NodeJS.Timeout;

  constructor(options: ClusterAdminOptions) {
    this.options = options;
    cluster.on('message', this.onMessage);
    this.refreshTimer = setInterval(() => void this.snapshots(), COUNTER_REFRESH_MS);
    this.refreshTimer.unref();
  }

  close(): void {
    clearInterval(this.refreshTimer);
    cluster.off('message', this.onMessage);
  }

  /** A worker exited: its counters stay in the totals (RetiredCounters). */
  workerExited(workerId: number): void {
    this.retired.retire(workerId);
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    const snapshots = await this.snapshots();
    const own = await this.options.metrics.registry.getMetricsAsJSON();
    const retired = await this.retired.snapshot();
    const registry = AggregatorRegistry.aggregate([own, ...snapshots.map((snapshot) => snapshot.metrics), ...(retired.length > 0 ? [retired] : [])]);
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  /** Answers well within kubelet's default 1 s probe timeout: a worker that misses READINESS_TIMEOUT_MS counts as not ready. */
  async readiness(pool?: string): Promise<Readiness> {
    return this.readinessOf(await this.snapshots(READINESS_TIMEOUT_MS), pool);
  }

  async status(): Promise<ClusterStatus> {
    const snapshots = await this.snapshots();
    const statuses = snapshots.map((snapshot) => snapshot.status);
    const now = Date.now();
    return {
      version: VERSION,
      nodeVersion: process.versions.node,
      pid: process.pid,
      startedAt: new Date(this.options.startedAt).toISOString(),
      uptimeSeconds: Math.round((now - this.options.startedAt) / 1000),
      draining: this.options.stopping() || statuses.some((status) => status.draining),
      ready: this.readinessOf(snapshots),
      connections: {
        active: sum(statuses, (status) => status.connections.active),
        limit: sum(statuses, (status) => status.connections.limit),
        configured: sum(statuses, (status) => status.connections.configured),
        fdLimit: statuses[0]?.connections.fdLimit ?? null,
      },
      listeners: mergeListeners(statuses),
      pools: [...this.options.pools.values()].map((pool) => mergePool(pool, statuses)),
      // Each worker keeps its own table (a shared store is docs/cluster.md's subject): listed together.
      penalties: {
        enabled: statuses.some((status) => status.penalties.enabled),
        sourcesTracked: sum(statuses, (status) => status.penalties.sourcesTracked),
        penalisedCount: sum(statuses, (status) => status.penalties.penalisedCount),
        penalised: statuses
          .flatMap((status) => status.penalties.penalised)
          .sort((a, b) => a.activeForMs - b.activeForMs)
          .slice(0, PENALISED_SHOWN),
      },
      store: mergeStore(statuses),
      workers: snapshots.map((snapshot) => ({
        worker: snapshot.worker,
        pid: snapshot.status.pid,
        uptimeSeconds: snapshot.status.uptimeSeconds,
        ready: snapshot.status.ready,
        connections: snapshot.status.connections,
        sessions: sum(snapshot.status.pools, (pool) => sum(pool.servers, (server) => server.totalSessions ?? 0)),
      })),
    };
  }

  private readinessOf(snapshots: readonly SnapshotResponse[], pool?: string): Readiness {
    if (this.options.stopping()) return { ready: false, reason: 'DRAINING', message: 'the proxy is shutting down' };
    const expected = this.options.expectedWorkers();
    if (snapshots.length < expected) {
      return { ready: false, reason: 'LISTENER_CLOSED', message: `${snapshots.length} of ${expected} workers answered` };
    }
    const notReady = snapshots.find((snapshot) => !snapshot.status.ready.ready);
    if (notReady) return notReady.status.ready;
    return poolReadiness(this.options.pools, pool);
  }

  /** The worker holding a spliced session with this backend end answers with it; the others with nothing. */
  async session(address: string, port: number): Promise<LiveSessionReply | undefined> {
    const id = this.nextId++;
    const request: SessionLookupRequest = { kind: 'ssh-banner-proxy:session-lookup', id, address, port };
    const answers = await askWorkers(request, isSessionLookupResponse, READINESS_TIMEOUT_MS, (answer) => answer.session !== undefined);
    return answers.find((answer) => answer.session !== undefined)?.session;
  }

  /**
   * Applied by the primary (its pools carry the states /api/status shows, and its checks
   * honour maint), then by every worker; answered once, saying how many workers applied it.
   */
  async control(request: ControlRequest): Promise<ControlOutcome & { readonly workers?: { readonly applied: number; readonly of: number } }> {
    const outcome = await this.options.control(request);
    if (!outcome.ok) return outcome;
    const message: ServerControlRequest = { kind: 'ssh-banner-proxy:server-control', id: this.nextId++, request };
    const of = connectedWorkers().length;
    const answers = await askWorkers(message, isServerControlResult, SNAPSHOT_TIMEOUT_MS);
    return { ...outcome, workers: { applied: answers.filter((answer) => answer.outcome.ok).length, of } };
  }

  /** Every connected worker's snapshot, or those that answered within the timeout. */
  private snapshots(timeoutMs = SNAPSHOT_TIMEOUT_MS): Promise<SnapshotResponse[]> {
    const workers = connectedWorkers();
    if (workers.length === 0) return Promise.resolve([]);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const responses: SnapshotResponse[] = [];
      const done = (): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        for (const response of responses) this.retired.remember(response.worker, response.metrics);
        resolve(responses.sort((a, b) => a.worker - b.worker));
      };
      const timer = setTimeout(done, timeoutMs);
      this.pending.set(id, { responses, settle: () => responses.length === workers.length && done() });
      const request: SnapshotRequest = { kind: 'ssh-banner-proxy:snapshot-request', id };
      for (const worker of workers) worker.send(request);
    });
  }
}

/**
 * Sends `request` to every connected worker and collects the answers carrying its id,
 * until every worker has answered, `enough` says one answer settles it, or `timeoutMs`.
 */
function askWorkers<Answer extends { readonly id: number }>(
  request: { readonly id: number },
  isAnswer: (message: unknown) => message is Answer,
  timeoutMs: number,
  enough: (answer: Answer) => boolean = () => false,
): Promise<Answer[]> {
  const workers = connectedWorkers();
  const answers: Answer[] = [];
  if (workers.length === 0) return Promise.resolve(answers);
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      cluster.off('message', onAnswer);
      resolve(answers);
    };
    const onAnswer = (_worker: unknown, message: unknown): void => {
      if (!isAnswer(message) || message.id !== request.id) return;
      answers.push(message);
      if (enough(message) || answers.length === workers.length) done();
    };
    const timer = setTimeout(done, timeoutMs);
    cluster.on('message', onAnswer);
    for (const worker of workers) worker.send(request);
  });
}

function connectedWorkers(): Worker[] {
  return Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker?.isConnected() === true);
}


