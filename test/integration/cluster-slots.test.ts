import assert from 'node:assert/strict';
import type net from 'node:net';
import { Redis } from 'ioredis';
import { after, before, describe, it } from 'node:test';
import { identifiedClient, type IdentifiedClient } from '../fixtures/identified-client.js';
import { startFixtureBackend, type FixtureBackend } from '../fixtures/hostile-backends.js';
import { startProxy, type LogLine, type TestProxy } from '../fixtures/proxy.js';
import { startServeProcess } from '../fixtures/serve-process.js';
import { redisAvailable, startRedis, type RedisHandle } from '../fixtures/redis-server.js';

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

  const replicas = async (count: number, prefix: string, pool: Record<string, unknown>, backend: FixtureBackend, extra: Record<string, unknown> = {}): Promise<TestProxy[]> => {
    const started: TestProxy[] = [];
    for (let index = 0; index < count; index += 1) {
      const proxy = await startProxy({
        servers: [{ name: 'sink', host: backend.host, port: backend.port }],
        pool,
        config: clusterConfig(store, prefix, { replicaId: `r${index}`, ...extra }),
        logLevel: 'info',
      });
      proxies.push(proxy);
      started.push(proxy);
    }
    await Promise.all(started.map((proxy) => proxy.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 10_000)));
    return started;
  };

  it('two replicas with maxStartups 2 each: the backend never sees more than 2 handshakes, and every client gets through', async () => {
    const backend = await startFixtureBackend('ssh-sink');
    backends.push(backend);
    const [a, b] = await replicas(2, 'two:', { handshake: { maxStartups: 2 }, queue: { timeout: '20s' } }, backend);
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
    const doomed = await startServeProcess({
      listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
      pools: [{ name: 'main', healthCheck: { enabled: false }, ...pool, servers: [{ name: 'sink', address: `127.0.0.1:${backend.port}` }] }],
      ...clusterConfig(store, 'kill:', { replicaId: 'doomed' }),
    });
    try {
      await doomed.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 10_000, 'the doomed replica shares');
      const [survivor] = await replicas(1, 'kill:', pool, backend);
      assert.ok(survivor);
      // The doomed replica takes both slots, then a client of the survivor queues.
      const held = [await identifiedClient(doomed.port('ssh'), 'held_0', sockets), await identifiedClient(doomed.port('ssh'), 'held_1', sockets)];
      for (const client of held) assert.equal(await client.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
      const waiter = await identifiedClient(survivor.port, 'waiter', sockets);
      let waiterServed = false;
      void waiter.firstLine.then(() => (waiterServed = true));
      // It stays queued while the doomed replica renews its holdings.
      await survivor.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 1000);
      await new Promise((resolve) => setTimeout(resolve, 1500));
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
});
