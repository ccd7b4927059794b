import { Counter, Gauge, type Registry } from 'prom-client';
import type { BackendPool } from '../backend/pool.js';
import { subscribe, type ProxyEvents } from '../events/bus.js';

export interface FleetMetricsSource {
  readonly pools: ReadonlyMap<string, BackendPool>;
  readonly events: ProxyEvents;
}

/**
 * Metrics of a changing fleet: DNS lookups and set sizes, moves of learnt handshake
 * limits, and the removal of a server's series when it leaves for good, so labels stay
 * bounded while addresses churn. (Per-server gauges are in metrics-gauges.ts.)
 */
export function registerFleetMetrics(registry: Registry, source: FleetMetricsSource, forgetServer: (pool: string, server: string) => void): (() => void)[] {
  const lookups = new Counter({
    name: 'sshproxy_dns_lookups_total',
    help: 'Lookups of DNS server sets by outcome: ok, nx (NXDOMAIN or an empty answer), failed (SERVFAIL, timeout, refused).',
    labelNames: ['pool', 'entry', 'outcome'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'sshproxy_dns_set_servers',
    help: "Servers of a DNS set that take new sessions (found by the last good lookup, not drained).",
    labelNames: ['pool', 'entry'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const pool of source.pools.values()) {
        for (const entry of pool.setEntries) this.set({ pool: pool.name, entry: entry.name }, pool.servers.filter((server) => server.entry === entry.name && !server.draining).length);
      }
    },
  });
  const capacityChanges = new Counter({
    name: 'sshproxy_server_capacity_changes_total',
    help: 'Moves of a learnt handshake limit (maxStartups: auto): raised, probed, lowered, adopted (from another replica).',
    labelNames: ['pool', 'server', 'change'] as const,
    registers: [registry],
  });
  return [
    subscribe(source.events, 'dns-lookup', ({ pool, entry, outcome }) => lookups.inc({ pool, entry, outcome })),
    subscribe(source.events, 'capacity-learned', ({ pool, server, change }) => capacityChanges.inc({ pool, server, change })),
    subscribe(source.events, 'server-removed', ({ pool, server }) => {
      void removeServerSeries(registry, pool, server);
      forgetServer(pool, server);
    }),
  ];
}

/** Drops every series labelled with this pool and server, from every metric that has them. */
export async function removeServerSeries(registry: Registry, pool: string, server: string): Promise<void> {
  for (const { name } of registry.getMetricsAsArray()) {
    const metric = registry.getSingleMetric(name);
    if (!metric || !('remove' in metric)) continue;
    const { values } = await metric.get();
    const seen = new Set<string>();
    for (const { labels } of values) {
      if (labels['pool'] !== pool || labels['server'] !== server) continue;
      // A histogram's series are one label set with `le` per bucket.
      const { le: _le, ...own } = labels;
      const key = JSON.stringify(own);
      if (seen.has(key)) continue;
      seen.add(key);
      metric.remove(own);
    }
  }
}
