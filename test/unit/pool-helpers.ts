/** Builds a BackendPool from a minimal config, for unit tests (no sockets involved). */
import { BackendPool } from '../../src/backend/pool.js';
import { validateConfig } from '../../src/config/load.js';
import { ProxyEvents } from '../../src/events/bus.js';

export interface PoolServerSpec {
  readonly name: string;
  readonly weight?: number;
  readonly backup?: boolean;
  readonly maxStartups?: number;
}

export function makePool(servers: readonly PoolServerSpec[], pool: Record<string, unknown> = {}, now?: () => number): { pool: BackendPool; events: ProxyEvents } {
  const config = validateConfig(
    {
      listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
      pools: [
        {
          name: 'main',
          healthCheck: { enabled: false },
          ...pool,
          servers: servers.map((server, index) => ({ ...server, address: `127.0.0.1:${20000 + index}` })),
        },
      ],
    },
    'test',
  );
  const events = new ProxyEvents();
  return { pool: new BackendPool(config.pools[0] as NonNullable<(typeof config.pools)[0]>, events, now), events };
}
