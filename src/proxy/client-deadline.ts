import { ClientPatterns } from './client-pattern.js';

/** One `listeners[].deadlines` entry: clients matching `clients` get `setup` ms to be spliced. */
export interface DeadlineRule {
  readonly clients: readonly string[];
  readonly setup: number;
}

/** Why a session ran out of time: the listener-wide budget or a client rule. */
export interface DeadlineExpiry {
  readonly budgetMs: number;
  /** The pattern that chose the budget (undefined: `timeouts.setup`). */
  readonly pattern: string | undefined;
}

/**
 * The whole pre-splice budget of one session (queueing, attempts, failover),
 * chosen by the client's own identification: e.g. give paramiko clients 14 s, so the
 * proxy gives up (and the client gets a clean close) before paramiko's 15 s banner
 * timeout fires, instead of after it.
 *
 * `start()` arms `defaultMs` (0 = none). When the identification arrives, the first
 * rule whose patterns match replaces it, counted from `start()`; a budget already
 * spent expires at once.
 */
export class SetupDeadline {
  private readonly rules: readonly { readonly patterns: ClientPatterns; readonly setup: number }[];
  private readonly defaultMs: number;
  private readonly onExpire: (expiry: DeadlineExpiry) => void;
  private readonly now: () => number;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private identified = false;
  private done = false;
  private current: DeadlineExpiry;

  constructor(rules: readonly DeadlineRule[], defaultMs: number, onExpire: (expiry: DeadlineExpiry) => void, now: () => number = () => performance.now()) {
    this.now = now;
    this.rules = rules.map((rule) => ({ patterns: new ClientPatterns(rule.clients), setup: rule.setup }));
    this.defaultMs = defaultMs;
    this.onExpire = onExpire;
    this.current = { budgetMs: defaultMs, pattern: undefined };
  }

  /** The budget in force now. */
  get budget(): DeadlineExpiry {
    return this.current;
  }

  start(): void {
    this.startedAt = this.now();
    if (this.defaultMs > 0) this.arm(this.defaultMs);
  }

  /** The client's identification is known: apply the first matching rule (once). */
  identify(identification: string | undefined): void {
    if (identification === undefined || this.identified || this.done) return;
    this.identified = true;
    for (const rule of this.rules) {
      const pattern = rule.patterns.match(identification);
      if (pattern === undefined) continue;
      this.current = { budgetMs: rule.setup, pattern };
      this.arm(Math.max(0, rule.setup - (this.now() - this.startedAt)));
      return;
    }
  }

  /** The session spliced or ended. Idempotent. */
  clear(): void {
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.done) return;
      this.done = true;
      this.onExpire(this.current);
    }, delayMs);
  }
}
