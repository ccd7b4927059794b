import type { DnsConfig } from '../config/schema.js';
import type { SetMember } from '../backend/server-spec.js';
import type { DnsLookups, LookupAnswer, SetTarget } from './lookup.js';

/** What one lookup did, for logs and metrics. */
export interface LookupReport {
  readonly answer: LookupAnswer;
  readonly ms: number;
  /** The last good set stays (a failed or empty answer within its hold). */
  readonly kept: boolean;
  /** Members left out past maxServers. */
  readonly leftOut: number;
}

export interface SetRefresherOptions {
  readonly target: SetTarget;
  readonly maxServers: number;
  readonly settings: DnsConfig;
  readonly lookups: DnsLookups;
  /** The set's members changed (the first lookup always reports, even an empty set). */
  readonly apply: (members: readonly SetMember[]) => void;
  readonly report: (report: LookupReport) => void;
  readonly now?: () => number;
}

/**
 * Keeps one set up to date: looks it up, then again after the answer's TTL (within
 * dns.refresh), and hands changes to the pool. A failed lookup (SERVFAIL, timeout,
 * refused) keeps the last good set for dns.hold, counted from the last good answer;
 * NXDOMAIN or an empty answer keeps it for dns.holdNx, counted from the first such
 * answer (a Service being recreated). Past its hold the set empties: its servers drain.
 * After a failure the next try comes sooner: dns.refresh.min, doubling to max.
 */
export class SetRefresher {
  private readonly options: SetRefresherOptions;
  private readonly now: () => number;
  private current: readonly SetMember[] | undefined;
  private lastGoodAt = 0;
  private nxSince: number | undefined;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(options: SetRefresherOptions) {
    this.options = options;
    this.now = options.now ?? (() => performance.now());
  }

  /** The first lookup; resolves once its answer is applied (the set may be empty). */
  start(): Promise<void> {
    return this.refreshNow();
  }

  /** Looks up now (a lookup in flight is joined), then on schedule again. */
  refreshNow(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.running ??= this.refresh().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async refresh(): Promise<void> {
    const startedAt = this.now();
    const answer = await this.options.lookups.lookup(this.options.target);
    if (this.stopped) return;
    const ms = this.now() - startedAt;
    const { refresh } = this.options.settings;
    if (answer.kind === 'ok') {
      const members = answer.members.slice(0, this.options.maxServers);
      this.options.report({ answer, ms, kept: false, leftOut: answer.members.length - members.length });
      this.lastGoodAt = this.now();
      this.nxSince = undefined;
      this.failures = 0;
      this.set(members);
      this.schedule(Math.min(Math.max(answer.ttlMs ?? refresh.max, refresh.min), refresh.max));
      return;
    }
    this.failures += 1;
    const kept = this.current !== undefined && this.current.length > 0 && !this.holdOver(answer);
    this.options.report({ answer, ms, kept, leftOut: 0 });
    if (!kept) this.set([]);
    this.schedule(Math.min(refresh.min * 2 ** Math.min(this.failures - 1, 16), refresh.max));
  }

  /** Whether the hold for this kind of bad answer is over (it starts the clock for NXDOMAIN). */
  private holdOver(answer: LookupAnswer): boolean {
    const { hold, holdNx } = this.options.settings;
    const now = this.now();
    if (answer.kind === 'nx') {
      this.nxSince ??= now;
      return now - this.nxSince >= holdNx;
    }
    return now - this.lastGoodAt >= hold;
  }

  private set(members: readonly SetMember[]): void {
    const unchanged = this.current !== undefined && sameMembers(this.current, members);
    this.current = members;
    if (!unchanged) this.options.apply(members);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.refreshNow();
    }, delayMs);
    // A lookup schedule alone must not keep a stopping process alive.
    this.timer.unref();
  }
}

function sameMembers(a: readonly SetMember[], b: readonly SetMember[]): boolean {
  return a.length === b.length && a.every((member, index) => member.label === b[index]?.label && member.address === b[index]?.address && member.port === b[index]?.port);
}
