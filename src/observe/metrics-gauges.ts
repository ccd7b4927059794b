import { Counter, Gauge, type Registry } from 'prom-client';
import { VERSION } from '../version.js';
import type { BackendPool } from '../backend/pool.js';
import type { BackendServer } from '../backend/server.js';
import type { MetricsSource } from './metrics.js';

/** Gauges read from the live proxy at scrape time (nothing is counted on the data path). */
export function registerStateGauges(registry: Registry, proxy: MetricsSource): void {
  new Gauge({
    name: 'sshproxy_build_info',
    help: 'Always 1; labels carry the proxy and Node.js versions.',
    labelNames: ['version', 'node_version'] as const,
    registers: [registry],
    aggregator: 'first',
  }).set({ version: VERSION, node_version: process.versions.node }, 1);
  new Gauge({
    name: 'sshproxy_sessions_active',
    help: 'Client sessions open right now (in setup or spliced).',
    labelNames: ['listener'] as const,
    registers: [registry],
    collect() {
      this.reset();
      // A listener removed by a reload counts until its last session ends.
      for (const listener of proxy.allListeners()) this.inc({ listener: listener.name }, listener.sessions.size);
    },
  });
  new Gauge({
    name: 'sshproxy_queue_length',
    help: 'Sessions waiting for a handshake slot right now.',
    labelNames: ['pool'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const pool of proxy.pools.values()) this.set({ pool: pool.name }, pool.queueLength);
    },
  });
  const perServer = (name: string, help: string, read: (server: BackendServer, pool: BackendPool) => number, aggregator: 'sum' | 'min' | 'max' = 'sum'): void => {
    new Gauge({
      name,
      help,
      labelNames: ['pool', 'server'] as const,
      registers: [registry],
      // Across cluster workers: counts add up, a state is the same everywhere (min: DOWN anywhere shows).
      aggregator,
      collect() {
        this.reset();
        for (const pool of proxy.pools.values()) {
          for (const server of pool.servers) this.set({ pool: pool.name, server: server.name }, read(server, pool));
        }
      },
    });
  };
  perServer('sshproxy_server_sessions_active', 'Sessions using this server right now (in setup or spliced).', (s) => s.activeSessions);
  perServer('sshproxy_server_handshakes_active', 'Sessions holding a handshake slot on this server (in their SSH handshake).', (s) => s.handshakesActive);
  // Health alone: a server drained by a reload is not down, and must not page.
  perServer('sshproxy_server_up', '1 while the server is healthy (UP, or DRAINING but healthy), 0 when DOWN.', (s) => (s.health === 'UP' ? 1 : 0), 'min');
  perServer(
    'sshproxy_server_penalising_proxy',
    "1 while the server is held out because it refuses the proxy's own address (sshd PerSourcePenalties), else 0.",
    (s, pool) => (pool.isHeldOut(s) ? 1 : 0),
    'max',
  );
  perServer('sshproxy_server_draining', '1 while the server takes no new sessions (removed by a reload or a lookup, or drained by an operator), else 0.', (s) => (s.state === 'DRAINING' ? 1 : 0), 'max');
  perServer('sshproxy_server_maintenance', "1 while an operator has the server in maintenance (admin API 'maint'), else 0.", (s) => (s.admin === 'maint' ? 1 : 0), 'max');
  perServer('sshproxy_server_handshake_limit', 'Handshake slots allowed on this server at once: maxStartups, or what `auto` learnt.', (s) => s.maxStartups);
  new Gauge({
    name: 'sshproxy_prefetch_ready',
    help: 'Prefetched connections ready on this server now (banner verified, waiting for a client).',
    labelNames: ['pool', 'server'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const pool of proxy.pools.values()) {
        if (!pool.settings.prefetch) continue;
        for (const server of pool.servers) this.set({ pool: pool.name, server: server.name }, pool.prefetchReady(server));
      }
    },
  });
  new Gauge({
    name: 'sshproxy_sources_penalised',
    help: 'Client sources refused right now for their penalties (PENALIZED).',
    registers: [registry],
    collect() {
      this.set(proxy.penalties.penalisedCount());
    },
  });
  new Counter({
    name: 'sshproxy_observer_errors_total',
    help: 'Exceptions thrown by event observers (logs, metrics) and caught by the event bus; the data path never sees them.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(proxy.events.observerErrors);
    },
  });
}
