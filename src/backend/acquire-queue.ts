import type { Lease } from './lease.js';
import { LinkedQueue, type QueueNode } from './linked-queue.js';
import type { LeaseRequest } from './server-choice.js';

export type AcquireFailureCode = 'NO_BACKEND' | 'QUEUE_FULL' | 'QUEUE_TIMEOUT' | 'STORE_DOWN' | 'SHUTDOWN';

export type AcquireResult =
  | { readonly ok: true; readonly lease: Lease; readonly waitMs: number }
  | { readonly ok: false; readonly code: AcquireFailureCode; readonly message: string; readonly waitMs: number };

/** What settling a waiter gives it, before its wait time is added. */
export type Settlement = { ok: true; lease: Lease } | { ok: false; code: AcquireFailureCode; message: string };

export interface Waiter {
  readonly request: LeaseRequest;
  readonly callback: (result: AcquireResult) => void;
  readonly queuedAt: number;
  timer: NodeJS.Timeout | undefined;
  /** Holds a local slot while the shared store is asked for it (src/backend/slot-authority.ts). */
  confirming: boolean;
  /** Whether the client has sent its identification (its session says so when it does). */
  identified: boolean;
}

/**
 * The sessions of one pool waiting for a handshake slot, oldest first, each with its
 * queue timeout. Every way out (granted, failed, timed out, cancelled, evicted, shut
 * down) clears the waiter's timer and calls back at most once.
 */
export class AcquireQueue {
  private readonly waiters = new LinkedQueue<Waiter>();
  /** The pool's monotonic clock: wait times are read from it. */
  private readonly now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.now = now;
  }

  get length(): number {
    return this.waiters.length;
  }

  /** Queues a request; `onTimeout` runs if it is still queued after `timeoutMs`. Returns its place. */
  push(request: LeaseRequest, callback: (result: AcquireResult) => void, timeoutMs: number, onTimeout: (waiter: Waiter, waitMs: number) => void): QueueNode<Waiter> {
    const waiter: Waiter = { request, callback, queuedAt: this.now(), timer: undefined, confirming: false, identified: request.identified !== false };
    const node = this.waiters.push(waiter);
    waiter.timer = setTimeout(() => {
      if (this.waiters.remove(node)) onTimeout(waiter, this.now() - waiter.queuedAt);
    }, timeoutMs);
    return node;
  }

  /** Leaves the queue without a callback (the session cancelled). */
  cancel(node: QueueNode<Waiter>): void {
    if (this.waiters.remove(node)) clearTimeout(node.value.timer);
  }

  /** Takes the waiter out and calls it back with `result`; returns its wait. */
  settle(node: QueueNode<Waiter>, result: Settlement): number {
    const waiter = node.value;
    this.waiters.remove(node);
    clearTimeout(waiter.timer);
    const waitMs = this.now() - waiter.queuedAt;
    waiter.callback({ ...result, waitMs });
    return waitMs;
  }

  nodes(): Generator<QueueNode<Waiter>> {
    return this.waiters.nodes();
  }

  /** The oldest waiter whose client has sent nothing yet, if any. */
  oldestSilent(): QueueNode<Waiter> | undefined {
    for (const node of this.waiters.nodes()) if (!node.value.identified) return node;
    return undefined;
  }

  /** Fails every waiter (shutdown). */
  rejectAll(code: AcquireFailureCode, message: string): void {
    for (let node = this.waiters.first; node; node = this.waiters.first) this.settle(node, { ok: false, code, message });
  }
}
