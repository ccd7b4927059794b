import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';

/** `up`: shared limits; `connecting`/`down`: each replica falls back (cluster.onStoreDown). */
export type StoreState = 'connecting' | 'up' | 'down';

export interface StoreConnectionOptions {
  /** redis://[user:password@]host:port/db or rediss:// */
  readonly url: string;
  /** Overrides a password in the URL (from the environment, never the config file). */
  readonly password?: string | undefined;
  /** Past this a call is answered `timeout` (the caller decides locally); its late reply goes to `onLate`. */
  readonly deadlineMs: number;
  /** Shown in CLIENT LIST. */
  readonly connectionName: string;
}

/** What the connection tells its owner. */
export interface StoreConnectionHooks {
  /** Connected (again): restore, then call `markUp`. (Back from slow: the owner's heartbeat, answered while down, restores.) */
  connected(): void;
  stateChanged(from: StoreState, to: StoreState, reason: string, error?: Error): void;
  message(text: string): void;
  roundTrip(op: string, ms: number, outcome: 'ok' | 'timeout' | 'error'): void;
}

export type CallResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: 'down' | 'timeout' | 'error'; readonly error?: Error };

/** A server-side script, sent once per connection and then called by its SHA-1. */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

export function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Consecutive calls past the deadline that make the store count as down ("slow"). */
const SLOW_AFTER_TIMEOUTS = 3;
/** Reconnect backoff: 100 ms doubling to 2 s, with jitter so replicas do not reconnect in step. */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(2000, 100 * 2 ** Math.min(attempt - 1, 5));
  return Math.round(base * (0.75 + 0.5 * random()));
}

/**
 * One replica's connection to Valkey/Redis (ioredis), plus a subscriber connection for
 * the events channel. It never throws into the proxy and never queues commands while
 * disconnected: a call is answered at once (`down`), or by its deadline (`timeout`), so
 * the caller can decide locally. ioredis reconnects with backoff by itself.
 */
export class StoreConnection {
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly hooks: StoreConnectionHooks;
  private readonly deadlineMs: number;
  private current: StoreState = 'connecting';
  private slowCalls = 0;
  private closed = false;

  constructor(options: StoreConnectionOptions, channel: string, hooks: StoreConnectionHooks) {
    this.hooks = hooks;
    this.deadlineMs = options.deadlineMs;
    const common = {
      lazyConnect: true,
      connectTimeout: 2000,
      retryStrategy: (attempt: number) => reconnectDelayMs(attempt),
      maxRetriesPerRequest: 0,
      connectionName: options.connectionName,
      ...(options.password === undefined ? {} : { password: options.password }),
    };
    // No offline queue: a command while disconnected fails at once instead of waiting.
    this.client = new Redis(options.url, { ...common, enableOfflineQueue: false, enableAutoPipelining: true });
    // Resubscribed by hand on every 'ready': ioredis' own autoResubscribe issues SUBSCRIBE with no
    // handler, and with maxRetriesPerRequest 0 a store that drops the connection during it
    // rejected that promise unhandled, which ends a Node process.
    this.subscriber = new Redis(options.url, { ...common, enableOfflineQueue: true, autoResubscribe: false });
    this.client.on('error', () => {});
    this.subscriber.on('error', () => {});
    this.subscriber.on('ready', () => void this.subscriber.subscribe(channel).catch(() => {}));
    this.client.on('ready', () => {
      this.slowCalls = 0;
      this.hooks.connected();
    });
    this.client.on('close', () => this.markDown('disconnected'));
    this.subscriber.on('message', (_channel: string, text: string) => this.hooks.message(text));
  }

  get state(): StoreState {
    return this.current;
  }

  /** Starts connecting (and reconnecting); never rejects. */
  start(): void {
    this.client.connect().catch((error: unknown) => this.markDown('unreachable', asError(error)));
    this.subscriber.connect().catch(() => {});
  }

  /** The owner restored its holdings: shared limits apply again. */
  markUp(): void {
    this.transition('up', 'restored');
  }

  /** Runs a script under the deadline. A reply that comes after it goes to `onLate`. */
  run<T>(op: string, code: Script, keys: readonly string[], args: readonly (string | number)[], onLate?: (value: T) => void): Promise<CallResult<T>> {
    if (this.client.status !== 'ready' || this.closed) return Promise.resolve({ ok: false, reason: 'down' });
    const startedAt = performance.now();
    return new Promise((resolve) => {
      let answered = false;
      const timer = setTimeout(() => {
        // Timers run before I/O in an event-loop turn: after a stall (GC, a busy CPU) the reply
        // may be waiting in the socket. Let this turn's I/O be read before calling it late.
        setImmediate(() => {
          if (answered) return;
          answered = true;
          this.hooks.roundTrip(op, performance.now() - startedAt, 'timeout');
          this.slowCalls += 1;
          if (this.slowCalls >= SLOW_AFTER_TIMEOUTS) this.markDown('slow');
          resolve({ ok: false, reason: 'timeout' });
        });
      }, this.deadlineMs);
      this.evalScript(code, keys, args).then(
        (value) => {
          const ms = performance.now() - startedAt;
          if (answered) {
            onLate?.(value as T);
            return;
          }
          answered = true;
          clearTimeout(timer);
          this.hooks.roundTrip(op, ms, 'ok');
          this.slowCalls = 0;
          resolve({ ok: true, value: value as T });
        },
        (error: unknown) => {
          if (answered) return;
          answered = true;
          clearTimeout(timer);
          this.hooks.roundTrip(op, performance.now() - startedAt, 'error');
          resolve({ ok: false, reason: this.client.status === 'ready' ? 'error' : 'down', error: asError(error) });
        },
      );
    });
  }

  /** Closes both connections (shutdown). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.client.quit(), this.subscriber.quit()]);
    this.client.disconnect();
    this.subscriber.disconnect();
  }

  private async evalScript(code: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await this.client.evalsha(code.sha, keys.length, ...keys, ...args);
    } catch (error) {
      // A restarted (or flushed) store has forgotten the script: send it once more.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.client.eval(code.source, keys.length, ...keys, ...args);
    }
  }

  private markDown(reason: string, error?: Error): void {
    if (this.closed) return;
    this.transition('down', reason, error);
  }

  private transition(to: StoreState, reason: string, error?: Error): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.hooks.stateChanged(from, to, reason, error);
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
