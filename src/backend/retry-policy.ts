import type { AttemptFailureCode } from '../errors.js';

/**
 * Failures that say "busy or flapping, try again" rather than "wrong or dead":
 * sshd past MaxStartups closes or resets before (or instead of) its identification.
 * The client has seen nothing yet, so the session may retry the same server or the next.
 */
const TRANSIENT_CODES: ReadonlySet<AttemptFailureCode> = new Set(['THROTTLED', 'BACKEND_RESET', 'BACKEND_CLOSED']);

export function isTransientFailure(code: AttemptFailureCode): boolean {
  return TRANSIENT_CODES.has(code);
}

export interface BackoffSettings {
  /** Base backoff (ms) before the first retry. */
  readonly backoff: number;
  /** Cap (ms). */
  readonly maxBackoff: number;
}

/**
 * Exponential backoff with "equal jitter": for the n-th retry (0-based) a delay in
 * [d/2, d] where d = min(maxBackoff, backoff * 2^n). Jitter keeps retrying clients
 * from arriving in lockstep; the lower bound keeps them from hammering.
 */
export function backoffDelayMs(retryIndex: number, settings: BackoffSettings, random: () => number = Math.random): number {
  const ceiling = Math.min(settings.maxBackoff, settings.backoff * 2 ** Math.max(0, retryIndex));
  return ceiling / 2 + random() * (ceiling / 2);
}

/**
 * Token bucket for backend connection attempts of one pool (retries included):
 * `ratePerSecond` tokens per second, bursts up to one second's worth. 0 = unlimited.
 */
export class ConnectRateLimiter {
  private readonly ratePerSecond: number;
  private tokens: number;
  private refilledAt: number;
  private readonly now: () => number;

  constructor(ratePerSecond: number, now: () => number = () => performance.now()) {
    this.ratePerSecond = ratePerSecond;
    this.now = now;
    this.tokens = Math.max(1, ratePerSecond);
    this.refilledAt = now();
  }

  get unlimited(): boolean {
    return this.ratePerSecond <= 0;
  }

  /** Takes a token if one is available. */
  tryTake(): boolean {
    if (this.unlimited) return true;
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until a token will be available (0 if one is now). */
  msUntilNext(): number {
    if (this.unlimited) return 0;
    this.refill();
    if (this.tokens >= 1) return 0;
    return Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSecond);
  }

  private refill(): void {
    const now = this.now();
    const capacity = Math.max(1, this.ratePerSecond);
    this.tokens = Math.min(capacity, this.tokens + ((now - this.refilledAt) * this.ratePerSecond) / 1000);
    this.refilledAt = now;
  }
}

export interface AttemptPlanInput<S> {
  /** Attempts made so far in this session. */
  readonly attempts: number;
  /** Servers that failed for good (silent, refused, not SSH, ...): never again in this session. */
  readonly hardFailed: ReadonlySet<S>;
  /** Servers that failed transiently (throttled, reset or closed before the banner). */
  readonly transientFailed: ReadonlySet<S>;
  /** Pool `retries`: further servers after the first. */
  readonly retries: number;
  /** Pool `retry.maxAttempts`: all attempts, retries of the same server included. */
  readonly maxAttempts: number;
  /** Same-server retry rounds already taken (for the backoff exponent). */
  readonly backoffRounds: number;
  readonly backoff: BackoffSettings;
  /** Whether the pool has a candidate outside `exclude` right now. */
  readonly hasCandidate: (exclude: ReadonlySet<S>) => boolean;
  readonly random?: () => number;
}

export type AttemptPlan<S> =
  | { readonly kind: 'exhausted'; readonly message: string }
  /** Go now, to a server not tried yet. */
  | { readonly kind: 'next'; readonly exclude: ReadonlySet<S> }
  /** Wait `delayMs`, then retry any transiently failed server (or a new one that turned up). */
  | { readonly kind: 'retry'; readonly exclude: ReadonlySet<S>; readonly delayMs: number };

/**
 * What a session does after a failed attempt (or before its first): fail over to an
 * untried server at once while `retries` allows; when no untried server is left and
 * some failures were transient, retry those after a jittered backoff; never more than
 * `maxAttempts` in all.
 */
export function planNextAttempt<S>(input: AttemptPlanInput<S>): AttemptPlan<S> {
  if (input.attempts >= input.maxAttempts) {
    return { kind: 'exhausted', message: `${input.attempts} backend attempts failed (retry.maxAttempts ${input.maxAttempts})` };
  }
  const tried = new Set<S>([...input.hardFailed, ...input.transientFailed]);
  if (input.hasCandidate(tried)) {
    if (tried.size <= input.retries) return { kind: 'next', exclude: tried };
    return { kind: 'exhausted', message: `${input.attempts} backend attempts failed on ${tried.size} servers (retries ${input.retries})` };
  }
  if (input.transientFailed.size > 0) {
    return { kind: 'retry', exclude: input.hardFailed, delayMs: backoffDelayMs(input.backoffRounds, input.backoff, input.random) };
  }
  if (input.attempts === 0) return { kind: 'next', exclude: tried };
  return { kind: 'exhausted', message: `${input.attempts} backend attempts failed; no server left to try` };
}
