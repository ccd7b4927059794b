import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { ProxyEvents } from './observe/events.js';
import { createLogger, logEvents } from './observe/log.js';
import { ProxyServer } from './proxy/proxy-server.js';

export interface RuntimeOptions {
  /** Defaults to a pino logger built from `config.log`. */
  readonly logger?: Logger;
}

/**
 * Everything `serve` runs, composed: the data plane, its observers, and (as they
 * are added) health checks and the admin endpoint. Tests start it in-process.
 */
export class ProxyRuntime {
  readonly config: Config;
  readonly events = new ProxyEvents();
  readonly logger: Logger;
  readonly server: ProxyServer;
  private readonly detachers: (() => void)[] = [];
  private stopping: Promise<void> | undefined;

  constructor(config: Config, options: RuntimeOptions = {}) {
    this.config = config;
    this.logger = options.logger ?? createLogger(config.log);
    this.server = new ProxyServer(config, this.events);
    this.detachers.push(logEvents(this.events, this.logger));
  }

  async start(): Promise<void> {
    this.logger.info(
      {
        event: 'config',
        listeners: this.config.listeners.map((listener) => ({ name: listener.name, pool: listener.pool })),
        pools: this.config.pools.map((pool) => ({ name: pool.name, balance: pool.balance, servers: pool.servers.length })),
      },
      'starting',
    );
    await this.server.start();
  }

  /** Port a listener actually bound (port 0 in tests). */
  port(listenerName: string): number {
    const port = this.server.listener(listenerName)?.port;
    if (port === undefined) throw new Error(`listener "${listenerName}" is not listening`);
    return port;
  }

  /** Graceful: idempotent, resolves when all sessions are gone. */
  stop(drainMs?: number): Promise<void> {
    this.stopping ??= this.server.stop(drainMs).finally(() => {
      for (const detach of this.detachers.splice(0)) detach();
    });
    return this.stopping;
  }
}
