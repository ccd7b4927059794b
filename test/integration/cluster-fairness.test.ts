import assert from 'node:assert/strict';
import { once } from 'node:events';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { identifiedClient } from '../fixtures/clients/identified-client.js';
import { startFixtureBackend, type FixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { startProxy, type TestProxy } from '../fixtures/proxy/proxy.js';
import { redisAvailable, startRedis, type RedisHandle } from '../fixtures/backends/redis-server.js';

const SKIP = redisAvailable() ? false : 'neither valkey-server nor redis-server is installed';

describe('fairness across replicas sharing one slot', { skip: SKIP }, () => {
  let store: RedisHandle;
  let backend: FixtureBackend;
  const proxies: TestProxy[] = [];
  const sockets: net.Socket[] = [];
  before(async () => {
    store = await startRedis();
    backend = await startFixtureBackend('ssh-sink');
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all(proxies.map((proxy) => proxy.stop()));
    await backend?.close();
    await store?.stop();
  });

  it('waiters queued on two replicas get the slot in the order they arrived, not by replica', async () => {
    for (const replicaId of ['f0', 'f1']) {
      const proxy = await startProxy({
        servers: [{ name: 'sink', host: backend.host, port: backend.port }],
        pool: { handshake: { maxStartups: 1 }, queue: { timeout: '20s' } },
        config: { cluster: { store: store.url, prefix: 'fair:', leaseTtl: '2s', replicaId } },
        logLevel: 'info',
      });
      proxies.push(proxy);
    }
    await Promise.all(proxies.map((proxy) => proxy.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 10_000)));
    const [a, b] = proxies as [TestProxy, TestProxy];
    const open = async (port: number, name: string): Promise<{ socket: net.Socket; banner: Promise<string> }> => {
      const client = await identifiedClient(port, name, sockets);
      return { socket: client.socket, banner: client.firstLine.then(() => name) };
    };
    const holder = await open(a.port, 'holder');
    await holder.banner;
    // Six waiters, alternating replicas; each is refused by the store (which records its
    // wait) before the next arrives.
    const names = ['w0', 'w1', 'w2', 'w3', 'w4', 'w5'];
    const waiting = new Map<string, { socket: net.Socket; banner: Promise<string> }>();
    for (const [index, name] of names.entries()) {
      const replica = index % 2 === 0 ? a : b;
      const asked = once(replica.runtime.events, 'store-call');
      waiting.set(name, await open(replica.port, name));
      await asked;
    }
    // Each lets go once it has its banner; whoever gets the slot next must be the oldest waiter.
    const order = ['holder'];
    holder.socket.destroy();
    while (waiting.size > 0) {
      const next = await Promise.race([...waiting.values()].map((waiter) => waiter.banner));
      order.push(next);
      waiting.get(next)?.socket.destroy();
      waiting.delete(next);
    }
    assert.deepEqual(order, ['holder', ...names]);
    assert.equal(backend.maxConcurrent, 1);
  });
});
