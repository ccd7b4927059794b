import type { LiveSession } from '../proxy/live-sessions.js';
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * Who writes a log line, on every line: the replica (cluster.replicaId, else the host
 * name: the pod's name in Kubernetes) and, under `workers`, the worker. Session ids
 * carry a tag drawn once per process, so ids from replicas, workers and restarts never
 * collide in one index: `3f9a0c1e-17` is the 17th session of one process.
 */
export const PROCESS_TAG = randomBytes(4).toString('hex');

export function sessionLogId(id: number): string {
  return `${PROCESS_TAG}-${id}`;
}

export interface LogIdentity {
  readonly replica: string;
  readonly worker?: number;
}

export function logIdentity(replicaId: string | undefined): LogIdentity {
  const replica = replicaId ?? process.env.HOSTNAME ?? hostname();
  const worker = cluster.isWorker ? cluster.worker?.id : undefined;
  return worker === undefined ? { replica } : { replica, worker };
}

/** A live session as the admin lookup answers: with the id its log line will carry (`session`). */
export type LiveSessionReply = Omit<LiveSession, 'splicedAtMs'> & { readonly session: string; readonly splicedAt: string };

/** Made in the process that holds the session (a worker's tag differs from the primary's). */
export function liveSessionReply(live: LiveSession | undefined): LiveSessionReply | undefined {
  if (live === undefined) return undefined;
  const { splicedAtMs, ...rest } = live;
  return { session: sessionLogId(live.sessionId), ...rest, splicedAt: new Date(splicedAtMs).toISOString() };
}
