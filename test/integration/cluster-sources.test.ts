import assert from 'node:assert/strict';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { ProxyEvents } from '../../src/events/bus.js';
import { SourcePenalties } from '../../src/proxy/penalties.js';
import { SourceLimits } from '../../src/proxy/source-limits.js';
import { ClusterStore } from '../../src/store/cluster-store.js';
import { identifiedClient } from '../fixtures/clients/identified-client.js';
import { startFixtureBackend, type FixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { startProxy, type TestProxy } from '../fixtures/proxy/proxy.js';
import { redisAvailable, startRedis, type RedisHandle } from '../fixtures/backends/redis-server.js';

const SKIP = redisAvailable() ? false : 'neither valkey-server nor redis-server is installed';

/** Connects and says what happened first: the backend's banner, or the close. */
async function connectOnce(port: number, sockets: net.Socket[]): Promise<'banner' | 'closed'> {
  const { firstLine } = await identifiedClient(port, 'source_test', sockets);
  return (await firstLine) === '' ? 'closed' : 'banner';
}

function storeFor(url: string, prefix: string, replicaId: string, events = new ProxyEvents(), penaltySettings: Record<string, unknown> = {}): { store: ClusterStore; penalties: SourcePenalties; events: ProxyEvents } {
  const config = validateConfig(
    {
      listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
      pools: [{ name: 'main', servers: [{ name: 'a', address: '127.0.0.1:22' }] }],
      cluster: { store: url, prefix, leaseTtl: '1s', replicaId },
      penalties: penaltySettings,
    },
    'test',
  );
  const penalties = new SourcePenalties(config.penalties);
  const store = new ClusterStore({ settings: config.cluster as NonNullable<typeof config.cluster>, events, sourceLimits: new SourceLimits(config.limits), penalties });
  return { store, penalties, events };
}

async function whenUp(store: ClusterStore, events: ProxyEvents): Promise<void> {
  if (store.up) return;
  await new Promise<void>((resolve) => {
    const onState = ({ to }: { to: string }): void => {
      if (to !== 'up') return;
      events.off('store-state', onState);
      resolve();
    };
    events.on('store-state', onState);
  });
}

describe('per-source limits and penalties shared by replicas through a real Valkey/Redis', { skip: SKIP }, () => {
  let redis: RedisHandle;
  const backends: FixtureBackend[] = [];
  const proxies: TestProxy[] = [];
  const sockets: net.Socket[] = [];
  const stores: ClusterStore[] = [];
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all(proxies.map((proxy) => proxy.stop()));
    await Promise.all(stores.map((store) => store.close()));
    await Promise.all(backends.map((backend) => backend.close()));
    await redis?.stop();
  });

  it('one client address over three replicas with perSourceConnections 2 gets 2 sessions in all, not 6', async () => {
    const backend = await startFixtureBackend('ssh-sink');
    backends.push(backend);
    const replicas: TestProxy[] = [];
    for (const replicaId of ['s0', 's1', 's2']) {
      const proxy = await startProxy({
        servers: [{ name: 'sink', host: backend.host, port: backend.port }],
        config: { limits: { perSourceConnections: 2 }, cluster: { store: redis.url, prefix: 'src:', leaseTtl: '1s', replicaId } },
        logLevel: 'info',
      });
      proxies.push(proxy);
      replicas.push(proxy);
    }
    await Promise.all(replicas.map((proxy) => proxy.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 10_000)));
    const outcomes: ('banner' | 'closed')[] = [];
    // Two connections to each replica, one after the other, all held open.
    for (const proxy of [...replicas, ...replicas]) outcomes.push(await connectOnce(proxy.port, sockets));
    assert.equal(outcomes.filter((outcome) => outcome === 'banner').length, 2, outcomes.join(','));
    const rejected = replicas.flatMap((proxy) => proxy.logs.filter((line) => line.event === 'rejected' && line.reason === 'PER_SOURCE_LIMIT'));
    assert.equal(rejected.length, 4);
    assert.match(String(rejected[0]?.message), /across replicas \(limit 2\)/);
    // One closes: the source may open one more, on any replica.
    sockets[0]?.destroy();
    await backend.waitForClosed(1, 5000);
    let again: 'banner' | 'closed' = 'closed';
    for (let tries = 0; tries < 20 && again === 'closed'; tries += 1) again = await connectOnce((replicas[2] as TestProxy).port, sockets);
    assert.equal(again, 'banner');
  });

  it('a source charged on one replica is refused by another: one penalty, counted once across replicas', async () => {
    const a = storeFor(redis.url, 'pen:', 'p0');
    const b = storeFor(redis.url, 'pen:', 'p1');
    stores.push(a.store, b.store);
    a.store.start();
    b.store.start();
    await Promise.all([whenUp(a.store, a.events), whenUp(b.store, b.events)]);
    const activations: string[] = [];
    const charger = a.store.penalties;
    const other = b.store.penalties;
    assert.ok(charger && other);
    // sshd's defaults: authfail 5s each, refused past 15s: the 4th failure tips it, split over both replicas.
    const shared = once(a.events, 'penalty-shared');
    for (const [index, replica] of [charger, other, charger, other].entries()) {
      await replica.charge('192.0.2.7', 'authfail', (activation) => activations.push(`${index}:${activation.key}`));
    }
    // The replica that tipped it refuses it at once; the other learns it from the store's message.
    assert.ok(b.penalties.check('192.0.2.7'));
    const [{ key }] = (await shared) as [{ key: string }];
    assert.equal(key, '192.0.2.7');
    assert.deepEqual(activations, ['3:192.0.2.7']);
    assert.ok(a.penalties.check('192.0.2.7'), 'the replica that did not tip it refuses it too');
    assert.equal(a.penalties.check('192.0.2.8'), undefined);
    // A replica that joins later loads it.
    const late = storeFor(redis.url, 'pen:', 'p2');
    stores.push(late.store);
    late.store.start();
    await whenUp(late.store, late.events);
    assert.ok(late.penalties.check('192.0.2.7'));
  });

  it('the store\'s index of penalised sources keeps only those still refused, however many sources come and go', async (t) => {
    // Each charge (authfail, 5 s) is capped at max 2 s and passes min: every source is penalised at once.
    // (At max 300 ms, 250 charges on a loaded machine outlasted the first penalties: 229 of 250 in the index.)
    const replica = storeFor(redis.url, 'churn:', 'c0', new ProxyEvents(), { min: '100ms', max: '2s' });
    stores.push(replica.store);
    replica.store.start();
    await whenUp(replica.store, replica.events);
    const charger = replica.store.penalties;
    assert.ok(charger);
    for (let index = 0; index < 250; index += 1) await charger.charge(`198.51.100.${index}`, 'authfail', () => {});
    const client = new Redis(redis.url);
    // A client left connecting after a failed assertion would keep the file's process alive.
    t.after(() => client.disconnect());
    assert.equal(await client.zcard('churn:penalised'), 250);
    // Time is what is tested: every penalty runs out (no event marks it).
    await delay(2100);
    await charger.charge('203.0.113.1', 'authfail', () => {});
    assert.equal(await client.zcard('churn:penalised'), 1, 'the 250 expired sources left the index at the next penalty');
  });
});
