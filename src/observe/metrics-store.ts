import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { BackendPool } from '../backend/pool.js';
import { subscribe, type ProxyEvents } from '../events/bus.js';
import type { SharedBudget } from '../proxy/shared-budget.js';
import { STORE_BUCKETS_SECONDS } from './buckets.js';

/** What the store metrics read: the store (if configured), the pools and the events. */
export interface StoreMetricsSource {
  readonly store: SharedBudget | undefined;
  readonly pools: ReadonlyMap<string, BackendPool>;
  readonly events: ProxyEvents;
}

const STORE_OPS = ['slot-take', 'slot-give', 'source-admit', 'penalty-charge', 'renew'] as const;

/**
 * The shared store's metrics (cluster.store, docs/cluster.md): round trips, state,
 * transitions, local fallbacks, reclaimed leases, and the slots held cluster-wide as
 * this replica last saw them. Registered only with a store. Returns the unsubscribers.
 */
export function registerStoreMetrics(registry: Registry, source: StoreMetricsSource): (() => void)[] {
  const store = source.store;
  if (!store) return [];
  const roundTrip = new Histogram({
    name: 'sshproxy_store_roundtrip_seconds',
    help: 'Round trip of calls to the shared store that answered in time, by operation (slot-take is the time added to take a slot).',
    labelNames: ['op'] as const,
    buckets: STORE_BUCKETS_SECONDS,
    registers: [registry],
  });
  const failedCalls = new Counter({
    name: 'sshproxy_store_call_failures_total',
    help: 'Calls to the shared store that missed cluster.acquireTimeout (outcome="timeout") or failed (outcome="error"), by operation.',
    labelNames: ['op', 'outcome'] as const,
    registers: [registry],
  });
  const transitions = new Counter({
    name: 'sshproxy_store_transitions_total',
    help: 'Shared store state changes, by new state (up, down) and reason (restored, disconnected, unreachable, slow).',
    labelNames: ['to', 'reason'] as const,
    registers: [registry],
  });
  const fallbacks = new Counter({
    name: 'sshproxy_store_fallbacks_total',
    help: 'Decisions made locally that the shared store should have made (slot, source, penalty), by reason (down, timeout, error).',
    labelNames: ['what', 'reason'] as const,
    registers: [registry],
  });
  const expired = new Counter({
    name: 'sshproxy_store_leases_expired_total',
    help: 'Handshake slots and source counts of replicas that stopped renewing (killed, partitioned, frozen), reclaimed by this replica.',
    registers: [registry],
  });
  new Gauge({
    name: 'sshproxy_store_up',
    help: '1 while the shared store is up and limits are shared; 0 while this replica decides alone (cluster.onStoreDown).',
    registers: [registry],
    aggregator: 'min',
    collect() {
      this.set(store.up ? 1 : 0);
    },
  });
  new Gauge({
    name: 'sshproxy_cluster_handshakes_active',
    help: 'Handshake slots held on this server by all replicas, as the shared store last told this one.',
    labelNames: ['pool', 'server'] as const,
    registers: [registry],
    aggregator: 'max',
    collect() {
      this.reset();
      for (const pool of source.pools.values()) {
        for (const server of pool.servers) if (server.clusterSlotsInUse !== undefined) this.set({ pool: pool.name, server: server.name }, server.clusterSlotsInUse);
      }
    },
  });
  for (const op of STORE_OPS) {
    roundTrip.zero({ op });
    failedCalls.inc({ op, outcome: 'timeout' }, 0);
  }
  for (const what of ['slot', 'source', 'penalty']) fallbacks.inc({ what, reason: 'down' }, 0);
  expired.inc(0);
  return [
    subscribe(source.events, 'store-call', ({ op, ms, outcome }) => {
      if (outcome === 'ok') roundTrip.observe({ op }, ms / 1000);
      else failedCalls.inc({ op, outcome });
    }),
    subscribe(source.events, 'store-state', ({ to, reason }) => transitions.inc({ to, reason })),
    subscribe(source.events, 'store-fallback', ({ what, reason }) => fallbacks.inc({ what, reason })),
    subscribe(source.events, 'store-leases-expired', ({ count }) => expired.inc(count)),
  ];
}
