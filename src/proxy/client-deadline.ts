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

interface CompiledRule {
  readonly patterns: ClientPatterns;
  readonly setup: number;
}

const performanceNow = (): number => performance.now();

/** Rules are a listener's, shared by its sessions: compiled once, not per session. */
const compiledRules = new WeakMap<readonly DeadlineRule[], readonly CompiledRule[]>();
function compiled(rules: readonly DeadlineRule[]): readonly CompiledRule[] {
  let found = compiledRules.get(rules);
  if (found === undefined) {
    found = rules.map((rule) => ({ patterns: new ClientPatterns(rule.clients), setup: rule.setup }));
    compiledRules.set(rules, found);
  }
  return found;
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
  private readonly rules: readonly CompiledRule[];
  private readonly defaultMs: number;
  /** Dropped once the deadline is over: a spliced session keeps no callback. */
  private onExpire: ((expiry: DeadlineExpiry) => void) | undefined;
  private readonly now: () => number;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private identified = false;
  private done = false;
  /** Set when a rule matched; until then the budget is `defaultMs`. */
  private matched: DeadlineExpiry | undefined;

  constructor(rules: readonly DeadlineRule[], defaultMs: number, onExpire: (expiry: DeadlineExpiry) => void, now: () => number = performanceNow) {
    this.now = now;
    this.rules = compiled(rules);
    this.defaultMs = defaultMs;
    this.onExpire = onExpire;
  }

  /** The budget in force now. */
  get budget(): DeadlineExpiry {
    return this.matched ?? { budgetMs: this.defaultMs, pattern: undefined };
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
      this.matched = { budgetMs: rule.setup, pattern };
      this.arm(Math.max(0, rule.setup - (this.now() - this.startedAt)));
      return;
    }
  }

  /** The session spliced or ended. Idempotent. */
  clear(): void {
    this.done = true;
    this.onExpire = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.done) return;
      const onExpire = this.onExpire;
      const budget = this.budget;
      this.clear();
      onExpire?.(budget);
    }, delayMs);
  }
}
