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

export function isStateSentMessage(message: unknown): message is StateSentMessage {
  return hasKind(message, 'ssh-banner-proxy:state-sent');
}

export function isWorkerAttachedMessage(message: unknown): message is WorkerAttachedMessage {
  return hasKind(message, 'ssh-banner-proxy:worker-attached');
}

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

function hasKind(message: unknown, kind: string): boolean {
  return typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === kind;
}

export function isServerControlRequest(message: unknown): message is ServerControlRequest {
  return hasKind(message, 'ssh-banner-proxy:server-control');
}

export function isServerControlResult(message: unknown): message is ServerControlResult {
  return hasKind(message, 'ssh-banner-proxy:server-control-result');
}

export function isServerSetMessage(message: unknown): message is ServerSetMessage {
  return hasKind(message, 'ssh-banner-proxy:server-set');
}

export function isServerHealthMessage(message: unknown): message is ServerHealthMessage {
  return hasKind(message, 'ssh-banner-proxy:server-health');
}

export function isSnapshotRequest(message: unknown): message is SnapshotRequest {
  return hasKind(message, 'ssh-banner-proxy:snapshot-request');
}

export function isSnapshotResponse(message: unknown): message is SnapshotResponse {
  return hasKind(message, 'ssh-banner-proxy:snapshot');
}

export function isConfigReloadRequest(message: unknown): message is ConfigReloadRequest {
  return hasKind(message, 'ssh-banner-proxy:config-reload');
}

export function isConfigReloadResult(message: unknown): message is ConfigReloadResult {
  return hasKind(message, 'ssh-banner-proxy:config-reload-result');
}

/** `workers: auto` is one per core the process may use. */
export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

export function isSessionLookupRequest(message: unknown): message is SessionLookupRequest {
  return hasKind(message, 'ssh-banner-proxy:session-lookup');
}

export function isSessionLookupResponse(message: unknown): message is SessionLookupResponse {
  return hasKind(message, 'ssh-banner-proxy:session-lookup-result');
}
