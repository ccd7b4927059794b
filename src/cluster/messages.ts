import { availableParallelism } from 'node:os';
import type { ServerHealth } from '../backend/server.js';
import type { SetMember } from '../backend/server-spec.js';
import type { ControlOutcome, ControlRequest } from '../proxy/server-control.js';
import type { Config } from '../config/schema.js';
import type { ReloadChanges } from '../events/contract.js';
import type { ProxyStatus } from '../observe/status.js';
import type { LiveSessionReply } from '../observe/log-identity.js';

/**
 * What the primary tells workers. Health checks run once, in the primary; each
 * verdict is broadcast so every worker's pools route around the same DOWN servers.
 */
export interface ServerHealthMessage {
  readonly kind: 'ssh-banner-proxy:server-health';
  readonly pool: string;
  readonly server: string;
  readonly health: ServerHealth;
  readonly reason: string;
}

/**
 * DNS sets are looked up once, in the primary (src/discovery/); each change is sent to
 * every worker, so all of them have the same servers, named alike, for the verdicts.
 */
export interface ServerSetMessage {
  readonly kind: 'ssh-banner-proxy:server-set';
  readonly pool: string;
  readonly entry: string;
  readonly members: readonly SetMember[];
}

/** A worker is listening for the primary's messages: it is sent the sets and verdicts in force. */
export interface WorkerAttachedMessage {
  readonly kind: 'ssh-banner-proxy:worker-attached';
}

/** Sent after the sets and verdicts a `worker-attached` asked for: the worker may listen. */
export interface StateSentMessage {
  readonly kind: 'ssh-banner-proxy:state-sent';
}

export const isStateSentMessage = isKind<StateSentMessage>('ssh-banner-proxy:state-sent');

export const isWorkerAttachedMessage = isKind<WorkerAttachedMessage>('ssh-banner-proxy:worker-attached');

/** The primary's admin endpoint asks every worker for its metrics and status. */
export interface SnapshotRequest {
  readonly kind: 'ssh-banner-proxy:snapshot-request';
  readonly id: number;
}

/** A worker's answer: its registry as JSON (prom-client `getMetricsAsJSON`) and its status. */
export interface SnapshotResponse {
  readonly kind: 'ssh-banner-proxy:snapshot';
  readonly id: number;
  readonly worker: number;
  readonly metrics: readonly object[];
  readonly status: ProxyStatus;
}

/** GET /api/session with workers: which worker has a spliced session whose backend connection has this end. */
export interface SessionLookupRequest {
  readonly kind: 'ssh-banner-proxy:session-lookup';
  readonly id: number;
  readonly address: string;
  readonly port: number;
}

export interface SessionLookupResponse {
  readonly kind: 'ssh-banner-proxy:session-lookup-result';
  readonly id: number;
  readonly worker: number;
  readonly session: LiveSessionReply | undefined;
}

/** An operator's change (admin API): every worker applies it to its pools and answers. */
export interface ServerControlRequest {
  readonly kind: 'ssh-banner-proxy:server-control';
  readonly id: number;
  readonly request: ControlRequest;
}

export interface ServerControlResult {
  readonly kind: 'ssh-banner-proxy:server-control-result';
  readonly id: number;
  readonly worker: number;
  readonly outcome: ControlOutcome;
}

/**
 * Hot reload: the primary validated `config` (the whole file, CLI overrides applied);
 * each worker applies its share of it (handshake slots over `workers`) and answers.
 */
export interface ConfigReloadRequest {
  readonly kind: 'ssh-banner-proxy:config-reload';
  readonly id: number;
  readonly source: string;
  readonly config: Config;
  readonly workers: number;
}

/** A worker's answer to a reload: applied (with what changed) or not (why; its old config stays). */
export interface ConfigReloadResult {
  readonly kind: 'ssh-banner-proxy:config-reload-result';
  readonly id: number;
  readonly worker: number;
  readonly ok: boolean;
  readonly message?: string;
  readonly changes?: ReloadChanges;
}

/** A type guard for one kind of message (every message names its kind). */
function isKind<Message extends { readonly kind: string }>(kind: Message['kind']): (message: unknown) => message is Message {
  return (message: unknown): message is Message => typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === kind;
}

export const isServerControlRequest = isKind<ServerControlRequest>('ssh-banner-proxy:server-control');

export const isServerControlResult = isKind<ServerControlResult>('ssh-banner-proxy:server-control-result');

export const isServerSetMessage = isKind<ServerSetMessage>('ssh-banner-proxy:server-set');

export const isServerHealthMessage = isKind<ServerHealthMessage>('ssh-banner-proxy:server-health');

export const isSnapshotRequest = isKind<SnapshotRequest>('ssh-banner-proxy:snapshot-request');

export const isSnapshotResponse = isKind<SnapshotResponse>('ssh-banner-proxy:snapshot');

export const isConfigReloadRequest = isKind<ConfigReloadRequest>('ssh-banner-proxy:config-reload');

export const isConfigReloadResult = isKind<ConfigReloadResult>('ssh-banner-proxy:config-reload-result');

/** `workers: auto` is one per core the process may use. */
export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

export const isSessionLookupRequest = isKind<SessionLookupRequest>('ssh-banner-proxy:session-lookup');

export const isSessionLookupResponse = isKind<SessionLookupResponse>('ssh-banner-proxy:session-lookup-result');
