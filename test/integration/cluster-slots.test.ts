import assert from 'node:assert/strict';
import type net from 'node:net';
import { Redis } from 'ioredis';
import type { BackendServer } from '../../src/backend/server.js';
import { waitFor } from '../fixtures/wait.js';
import { after, before, describe, it } from 'node:test';
import { identifiedClient, type IdentifiedClient } from '../fixtures/clients/identified-client.js';
import { startFixtureBackend, type FixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { startProxy, type LogLine, type TestProxy } from '../fixtures/proxy/proxy.js';
import { startServeProcess, type ServeProcess } from '../fixtures/proxy/serve-process.js';
import { redisAvailable, startRedis, type RedisHandle } from '../fixtures/backends/redis-server.js';

const SKIP = redisAvailable() ? false : 'neither valkey-server nor redis-server is installed';

/** The store's per-replica slot counts for the sink backend, read with a plain client. */
async function clusterHoldings(url: string, prefix: string, port: number): Promise<Record<string, string>> {
  const client = new Redis(url, { lazyConnect: true });
  try {
    await client.connect();
    return await client.hgetall(`${prefix}slots:127.0.0.1:${port}`);
  } finally {
    client.disconnect();
  }
}

/** The replica's second 'store up' line: it shared again after an outage. */
function secondUp(proxy: TestProxy): Promise<LogLine> {
  let ups = 0;
  return proxy.waitForLog((line) => line.event === 'store-state' && line.to === 'up' && ++ups === 2, 15_000);
}

function clusterConfig(store: RedisHandle, prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { cluster: { store: store.url, prefix, leaseTtl: '1s', ...extra } };
}

describe('handshake slots shared by replicas through a real Valkey/Redis', { skip: SKIP }, () => {
  let store: RedisHandle;
  const backends: FixtureBackend[] = [];
  const proxies: TestProxy[] = [];
  const sockets: net.Socket[] = [];
  before(async () => {
    store = await startRedis();
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all(proxies.map((proxy) => proxy.stop()));
    await Promise.all(backends.map((backend) => backend.close()));
    await store?.stop();
  });

  /** Replicas named by `ids` (each must be unique in the store). */
  const replicas = async (ids: readonly string[], prefix: string, pool: Record<string, unknown>, backend: FixtureBackend, extra: Record<string, unknown> = {}): Promise<TestProxy[]> => {
    const started: TestProxy[] = [];
    for (const replicaId of ids) {
      const proxy = await startProxy({
        servers: [{ name: 'sink', host: backend.host, port: backend.port }],
        pool,
        config: clusterConfig(store, prefix, { replicaId, ...extra }),
        logLevel: 'info',
      });
      proxies.push(proxy);
      started.push(proxy);
    }
    await Promise.all(started.map((proxy) => proxy.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 10_000)));
    return started;
  };

  /** A replica as a real process (to be killed or frozen), sharing once it resolves. */
  const replicaProcess = async (replicaId: string, prefix: string, pool: Record<string, unknown>, backend: FixtureBackend): Promise<ServeProcess> => {
    const replica = await startServeProcess({
      listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
      pools: [{ name: 'main', healthCheck: { enabled: false }, ...pool, servers: [{ name: 'sink', address: `127.0.0.1:${backend.port}` }] }],
      ...clusterConfig(store, prefix, { replicaId }),
    });
    try {
      await replica.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 10_000, `${replicaId} shares`);
    } catch (error) {
      await replica.kill();
      throw error;
    }
    return replica;
  };

  it('two replicas with maxStartups 2 each: the backend never sees more than 2 handshakes, and every client gets through', async () => {
    const backend = await startFixtureBackend('ssh-sink');
    backends.push(backend);
    const [a, b] = await replicas(['r0', 'r1'], 'two:', { handshake: { maxStartups: 2 }, queue: { timeout: '20s' } }, backend);
    assert.ok(a && b);
    const clients: IdentifiedClient[] = [];
    for (let index = 0; index < 10; index += 1) clients.push(await identifiedClient((index % 2 === 0 ? a : b).port, `client_${index}`, sockets));
    await backend.waitForConnections(2, 5000);
    // Each client lets its slot go 30 ms after its banner: the rest get theirs in turn.
    await Promise.all(
      clients.map(async (client) => {
        assert.equal(await client.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
        setTimeout(() => client.socket.destroy(), 30);
      }),
    );
    await backend.waitForClosed(10, 10_000);
    assert.equal(backend.connections, 10);
    assert.equal(backend.maxConcurrent, 2, 'two replicas together kept to one maxStartups');
  });

  it('forged slot counts are not trusted: negative, non-numeric and an owner whose heartbeat has no TTL are ignored; a huge count is capped at the limit', async () => {
    const backend = await startFixtureBackend('ssh-sink');
    backends.push(backend);
    const prefix = 'forged:';
    const slots = `${prefix}slots:127.0.0.1:${backend.port}`;
    const writer = new Redis(store.url, { lazyConnect: true });
    await writer.connect();
    try {
      // Someone with write access to the store: a huge count under a fake replica with a heartbeat of no TTL, and junk.
      await writer.hset(slots, 'evil', '999999999999', 'negative', '-5', 'junk', 'abc');
      await writer.set(`${prefix}alive:evil`, '1');
      await writer.set(`${prefix}alive:negative`, '1', 'PX', 60_000);
      await writer.set(`${prefix}alive:junk`, '1', 'PX', 60_000);
      const [replica] = await replicas(['forged-r0'], prefix, { handshake: { maxStartups: 2 }, queue: { timeout: '3s' } }, backend);
      assert.ok(replica);
      const client = await identifiedClient(replica.port, 'after_forgery', sockets);
      assert.equal(await client.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n', 'the slot was granted: the forged entries did not count');
      const left = await writer.hgetall(slots);
      assert.equal(left.negative, undefined, 'a negative count is deleted');
      assert.equal(left.junk, undefined, 'a non-numeric count is deleted');
      client.socket.destroy();
    } finally {
      writer.disconnect();
    }
  });

  it('without the store the same two replicas let 4 handshakes through (the problem this solves)', async () => {
    const backend = await startFixtureBackend('ssh-sink');
    backends.push(backend);
    const pool = { handshake: { maxStartups: 2 } };
    const local = [
      await startProxy({ servers: [{ name: 'sink', host: backend.host, port: backend.port }], pool, logLevel: 'warn' }),
      await startProxy({ servers: [{ name: 'sink', host: backend.host, port: backend.port }], pool, logLevel: 'warn' }),
    ];
    proxies.push(...local);
    const clients: IdentifiedClient[] = [];
    for (let index = 0; index < 4; index += 1) clients.push(await identifiedClient((local[index % 2] as TestProxy).port, `client_${index}`, sockets));
    await Promise.all(clients.map((client) => client.firstLine));
    assert.equal(backend.maxConcurrent, 4);
    for (const client of clients) client.socket.destroy();
  });

  it('a replica SIGKILLed while it holds slots: they are free again within leaseTtl, and the waiter elsewhere gets its banner', async () => {
    const backend = await startFixtureBackend('ssh-sink');
    backends.push(backend);
    const pool = { handshake: { maxStartups: 2 }, queue: { timeout: '20s' } };
    const doomed = await replicaProcess('doomed', 'kill:', pool, backend);
    try {
      const [survivor] = await replicas(['survivor'], 'kill:', pool, backend);
      assert.ok(survivor);
      // The doomed replica takes both slots, then a client of the survivor queues.
      const held = [await identifiedClient(doomed.port('ssh'), 'held_0', sockets), await identifiedClient(doomed.port('ssh'), 'held_1', sockets)];
      for (const client of held) assert.equal(await client.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
      const waiter = await identifiedClient(survivor.port, 'waiter', sockets);
      let waiterServed = false;
      void waiter.firstLine.then(() => (waiterServed = true));
      // It stays queued while the doomed replica renews its holdings: four of the survivor's
      // own heartbeats (leaseTtl / 3 apart) span more than leaseTtl.
      await new Promise<void>((resolve) => {
        let renewals = 0;
        const onCall = ({ op }: { op: string }): void => {
          if (op !== 'renew' || ++renewals < 4) return;
          survivor.runtime.events.off('store-call', onCall);
          resolve();
        };
        survivor.runtime.events.on('store-call', onCall);
      });
      assert.equal(waiterServed, false, 'the slots are still held by a live replica');
      doomed.child.kill('SIGKILL');
      assert.equal(await waiter.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
      // Freed by expiry, with no operator action: the survivor reclaimed the dead replica's two slots.
      const reclaimed = await survivor.waitForLog((line) => line.event === 'store-leases-expired', 5000);
      assert.ok(Number(reclaimed.count) >= 2, JSON.stringify(reclaimed));
      assert.equal(backend.maxConcurrent, 2);
    } finally {
      await doomed.kill();
    }
  });

  it('the store stops mid-way: sessions go on under local limits (localShare), the fallback is logged; started again, the replicas share again by themselves', async () => {
    const own = await startRedis();
    try {
      const backend = await startFixtureBackend('ssh-sink');
      backends.push(backend);
      const started: TestProxy[] = [];
      for (const replicaId of ['d0', 'd1']) {
        const proxy = await startProxy({
          servers: [{ name: 'sink', host: backend.host, port: backend.port }],
          pool: { handshake: { maxStartups: 4 }, queue: { timeout: '20s' } },
          config: { cluster: { store: own.url, prefix: 'down:', leaseTtl: '1s', localShare: 0.5, replicaId } },
          logLevel: 'info',
        });
        proxies.push(proxy);
        started.push(proxy);
      }
      const [a, b] = started as [TestProxy, TestProxy];
      await Promise.all(started.map((proxy) => proxy.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 10_000)));
      const before = await identifiedClient(a.port, 'before', sockets);
      assert.equal(await before.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
      await own.stop();
      await Promise.all(started.map((proxy) => proxy.waitForLog((line) => line.event === 'store-state' && line.to === 'down', 10_000)));
      // Down: each replica alone may hold localShare × 4 = 2; a third client of one replica waits.
      const during = [await identifiedClient(b.port, 'during_0', sockets), await identifiedClient(b.port, 'during_1', sockets)];
      for (const client of during) assert.equal(await client.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
      const third = await identifiedClient(b.port, 'during_2', sockets);
      let thirdServed = false;
      void third.firstLine.then(() => (thirdServed = true));
      await backend.waitForConnections(3, 5000);
      assert.equal(thirdServed, false, 'the local share is 2 on this replica');
      during[0]?.socket.destroy();
      assert.equal(await third.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
      // One on a, at most two on b at once: the third reached the backend only after one left.
      assert.ok(backend.maxConcurrent <= 3, `the backend saw ${backend.maxConcurrent} at once`);
      // Started again, empty: both replicas restore their holdings and share again.
      await own.restart();
      await Promise.all(started.map((proxy) => secondUp(proxy)));
      const restored = await clusterHoldings(own.url, 'down:', backend.port);
      // a holds "before"; b holds during_1 and during_2.
      assert.deepEqual(restored, { d0: '1', d1: '2' });
      const sessions = [...a.sessions(), ...b.sessions()];
      assert.equal(sessions.filter((session) => session.spliced !== true).length, 0, 'no session failed because of the store');
    } finally {
      await own.stop();
    }
  });

  it('without localShare, the share kept while the store is down follows the replicas: three sharing, each keeps to a third', async () => {
    const own = await startRedis();
    try {
      const backend = await startFixtureBackend('ssh-sink');
      backends.push(backend);
      const started: TestProxy[] = [];
      for (const replicaId of ['n0', 'n1', 'n2']) {
        const proxy = await startProxy({
          servers: [{ name: 'sink', host: backend.host, port: backend.port }],
          pool: { handshake: { maxStartups: 6 }, queue: { timeout: '20s' } },
          config: { cluster: { store: own.url, prefix: 'share:', leaseTtl: '1s', replicaId } },
          logLevel: 'info',
        });
        proxies.push(proxy);
        started.push(proxy);
      }
      // Each has seen all three at a heartbeat: 1/3 of each limit alone.
      const seen = await Promise.all(started.map((proxy) => proxy.waitForLog((line) => line.event === 'store-replicas' && line.replicas === 3, 10_000)));
      assert.deepEqual(seen.map((line) => line.fallbackShare), [0.333, 0.333, 0.333]);
      const b = started[1] as TestProxy;
      await own.stop();
      await b.waitForLog((line) => line.event === 'store-state' && line.to === 'down', 10_000);
      // 6 × 1/3 = 2 on this replica (the fixed 0.5 of before gave 3, and 9 for three replicas).
      const during = [await identifiedClient(b.port, 'share_0', sockets), await identifiedClient(b.port, 'share_1', sockets)];
      for (const client of during) assert.equal(await client.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
      const third = await identifiedClient(b.port, 'share_2', sockets);
      let thirdServed = false;
      void third.firstLine.then(() => (thirdServed = true));
      await backend.waitForConnections(2, 5000);
      assert.equal(backend.maxConcurrent, 2);
      assert.equal(thirdServed, false, 'a third of 6 is 2 on this replica');
      during[0]?.socket.destroy();
      assert.equal(await third.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
    } finally {
      await own.stop();
    }
  });

  it('a frozen store: each take is decided locally past acquireTimeout, three misses mark it down (slow); thawed, it is shared again', async () => {
    const own = await startRedis();
    try {
      const backend = await startFixtureBackend('ssh-sink');
      backends.push(backend);
      const proxy = await startProxy({
        servers: [{ name: 'sink', host: backend.host, port: backend.port }],
        pool: { handshake: { maxStartups: 4 }, queue: { timeout: '20s' } },
        config: { cluster: { store: own.url, prefix: 'slow:', leaseTtl: '3s', acquireTimeout: '100ms', replicaId: 'slow' } },
        logLevel: 'info',
      });
      proxies.push(proxy);
      await proxy.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 10_000);
      own.pause();
      // No client waits on the frozen store past the deadline: each is decided locally, within 4 × localShare 0.5 = 2.
      const clients = [await identifiedClient(proxy.port, 'slow_0', sockets), await identifiedClient(proxy.port, 'slow_1', sockets)];
      for (const client of clients) assert.equal(await client.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
      const down = await proxy.waitForLog((line) => line.event === 'store-state' && line.to === 'down', 10_000);
      assert.equal(down.reason, 'slow');
      const fallbacks = await proxy.runtime.metrics.scrape();
      assert.match(fallbacks, /sshproxy_store_call_failures_total\{op="slot-take",outcome="timeout"\} [1-9]/);
      own.resume();
      const up = await secondUp(proxy);
      assert.equal(up.reason, 'restored');
      // The slots taken while it was frozen are in the store now (asserted at the restore).
      assert.deepEqual(await clusterHoldings(own.url, 'slow:', backend.port), { slow: '2' });
    } finally {
      await own.stop();
    }
  });

  it('prefetched connections take their slots from the store: another replica waits while they are held', async () => {
    const backend = await startFixtureBackend('ssh-sink');
    backends.push(backend);
    const [prefetching] = await replicas(['r0'], 'pre:', { handshake: { maxStartups: 2 }, prefetch: { perServer: 2, maxAge: '30s' } }, backend);
    assert.ok(prefetching);
    // Both ready connections hold a slot, in the store too (polled: the store emits nothing).
    const pool = prefetching.runtime.server.pools.get('main');
    const ready = (): number => pool?.prefetchReady(pool.servers[0] as BackendServer) ?? 0;
    await waitFor(async () => ready() === 2 && (await clusterHoldings(store.url, 'pre:', backend.port)).r0 === '2', { timeoutMs: 10_000, description: 'two prefetched connections, their slots in the store' });
    const [other] = await replicas(['r1'], 'pre:', { handshake: { maxStartups: 2 }, queue: { timeout: '20s' } }, backend);
    assert.ok(other);
    const waiter = await identifiedClient(other.port, 'waiter', sockets);
    let served = false;
    void waiter.firstLine.then(() => (served = true));
    // The prefetching replica's own client takes a ready connection (its slot comes along) and lets it go.
    const local = await identifiedClient(prefetching.port, 'local', sockets);
    assert.equal(await local.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
    assert.equal(served, false, 'both slots are still held through the prefetching replica');
    local.socket.destroy();
    assert.equal(await waiter.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
    // The freed slot went to the waiter, not to the prefetch refill (it asks with no wait): still 2 in all.
    assert.deepEqual(await clusterHoldings(store.url, 'pre:', backend.port), { r0: '1', r1: '1' });
  });

  it('a store that is not there at start: sessions are served under local limits, and it is shared once the store comes up', async () => {
    const backend = await startFixtureBackend('ssh-sink');
    backends.push(backend);
    const late = await startRedis();
    await late.stop();
    const proxy = await startProxy({
      servers: [{ name: 'sink', host: backend.host, port: backend.port }],
      pool: { handshake: { maxStartups: 2 } },
      config: { cluster: { store: late.url, prefix: 'late:', leaseTtl: '1s', replicaId: 'late' } },
      logLevel: 'info',
    });
    proxies.push(proxy);
    try {
      const client = await identifiedClient(proxy.port, 'early', sockets);
      assert.equal(await client.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
      assert.match(await proxy.runtime.metrics.scrape(), /sshproxy_store_up 0/);
      await late.restart();
      await proxy.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 15_000);
      // The session started alone is in the store now (asserted by the restore).
      assert.deepEqual(await clusterHoldings(late.url, 'late:', backend.port), { late: '1' });
      client.socket.destroy();
      // A reload cannot move the store: it says so, and keeps the one it has.
      const config = proxy.runtime.config;
      await proxy.runtime.reload({ ...config, cluster: { ...(config.cluster as NonNullable<typeof config.cluster>), prefix: 'moved:' } });
      const reloaded = await proxy.waitForLog((line) => line.event === 'config-reload', 5000);
      assert.deepEqual(reloaded.needRestart, ['cluster']);
    } finally {
      await late.stop();
    }
  });

  it('onStoreDown: refuse: with no store, a client is refused with STORE_DOWN before any backend is reached', async () => {
    const backend = await startFixtureBackend('ssh-sink');
    backends.push(backend);
    const gone = await startRedis();
    await gone.stop();
    const proxy = await startProxy({
      servers: [{ name: 'sink', host: backend.host, port: backend.port }],
      config: { cluster: { store: gone.url, prefix: 'refuse:', onStoreDown: 'refuse', replicaId: 'refuser' } },
      logLevel: 'info',
    });
    proxies.push(proxy);
    const client = await identifiedClient(proxy.port, 'refused', sockets);
    assert.equal(await client.firstLine, '');
    const [session] = await proxy.waitForSessions(1, 5000);
    assert.equal(session?.reason, 'STORE_DOWN');
    assert.equal(backend.connections, 0);
  });

  it('a replica frozen (SIGSTOP) while it holds slots: they stop counting within leaseTtl; thawed, it asserts what it still holds', async () => {
    const backend = await startFixtureBackend('ssh-sink');
    backends.push(backend);
    const pool = { handshake: { maxStartups: 2 }, queue: { timeout: '20s' } };
    const frozen = await replicaProcess('frozen', 'freeze:', pool, backend);
    try {
      const [awake] = await replicas(['awake'], 'freeze:', pool, backend);
      assert.ok(awake);
      const held = await identifiedClient(frozen.port('ssh'), 'held', sockets);
      assert.equal(await held.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
      const second = await identifiedClient(frozen.port('ssh'), 'second', sockets);
      assert.equal(await second.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
      frozen.signal('SIGSTOP');
      // Its heartbeat stops: the awake replica's waiter gets a slot once the frozen one's lease expires.
      const waiter = await identifiedClient(awake.port, 'waiter', sockets);
      assert.equal(await waiter.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
      assert.deepEqual(await clusterHoldings(store.url, 'freeze:', backend.port), { awake: '1' });
      frozen.signal('SIGCONT');
      // Thawed, its next heartbeat puts back the two handshakes it still has open (an overcount
      // on the safe side, until they end): nothing is lost, and it shares again.
      await waitFor(async () => (await clusterHoldings(store.url, 'freeze:', backend.port)).frozen === '2', { timeoutMs: 10_000, description: 'the thawed replica to assert its holdings' });
    } finally {
      frozen.signal('SIGCONT');
      await frozen.kill();
    }
  });
});
