import assert from 'node:assert/strict';
import type net from 'node:net';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { identifiedClient } from '../fixtures/clients/identified-client.js';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { httpRequest } from '../fixtures/proxy/prometheus.js';
import { redisAvailable, startRedis } from '../fixtures/backends/redis-server.js';
import { startServeProcess } from '../fixtures/proxy/serve-process.js';
import { waitFor } from '../fixtures/wait.js';

interface StatusBody {
  readonly ready: { readonly ready: boolean };
  readonly store: { readonly state: string; readonly url: string; readonly onStoreDown: string } | null;
  readonly pools: readonly { readonly servers: readonly { readonly handshakeSlots: { readonly used: number; readonly limit: number; readonly cluster: number | null } }[] }[];
}

test('workers: 2 with a store: each worker takes from the whole limit through the store, /api/status shows it, /readyz stays ready while it is down', { skip: redisAvailable() ? false : 'no valkey-server or redis-server', timeout: 120_000 }, async (t) => {
  const store = await startRedis();
  t.after(() => store.stop());
  const backend = await startFixtureBackend('ssh-sink');
  t.after(() => backend.close());
  const proxy = await startServeProcess(
    {
      workers: 2,
      admin: { bind: '127.0.0.1:0' },
      log: { level: 'info' },
      listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
      pools: [{ name: 'main', servers: [{ name: 'sink', address: `127.0.0.1:${backend.port}` }], handshake: { maxStartups: 3 }, healthCheck: { interval: '300ms' }, queue: { timeout: '20s' } }],
      cluster: { store: store.url, prefix: 'wk:', leaseTtl: '2s', replicaId: 'bastion' },
    },
    { startTimeoutMs: 60_000 },
  );
  t.after(() => proxy.kill());
  await proxy.waitForLog((line) => line.event === 'admin-listening', 30_000, 'admin endpoint');
  const adminPort = proxy.adminPort as number;
  const status = async (): Promise<StatusBody> => JSON.parse((await httpRequest(adminPort, '/api/status')).body) as StatusBody;
  await waitFor(async () => (await status()).store?.state === 'up', { timeoutMs: 30_000, description: 'every worker shares through the store' });

  // Three replicas in the store: the primary (health checks) and each worker.
  const reader = new Redis(store.url);
  t.after(() => reader.disconnect());
  const alive = (await reader.keys('wk:alive:*')).sort();
  assert.deepEqual(alive, ['wk:alive:bastion-primary', 'wk:alive:bastion-w1', 'wk:alive:bastion-w2']);

  // Not a fixed split (3 / 2 = 1 each): each worker may use all 3, and together they keep to 3.
  const body = await status();
  assert.equal(body.pools[0]?.servers[0]?.handshakeSlots.limit, 3);
  const sockets: net.Socket[] = [];
  t.after(() => {
    for (const socket of sockets) socket.destroy();
  });
  const clients = new Map<number, { socket: net.Socket; banner: Promise<number> }>();
  for (let index = 0; index < 8; index += 1) {
    const client = await identifiedClient(proxy.port('ssh'), `worker_client_${index}`, sockets);
    clients.set(index, { socket: client.socket, banner: client.firstLine.then(() => index) });
  }
  /** The next client to get its banner (it leaves the waiting set; its socket stays open). */
  const nextServed = async (): Promise<net.Socket> => {
    const served = await Promise.race([...clients.values()].map((client) => client.banner));
    const socket = clients.get(served)?.socket;
    clients.delete(served);
    assert.ok(socket);
    return socket;
  };
  // Hold the first three served: three handshakes at once over two workers, so at least one
  // worker held two, more than a fixed split (3 / 2 = 1 each) would allow.
  const held: net.Socket[] = [];
  for (let count = 0; count < 3; count += 1) held.push(await nextServed());
  assert.ok(backend.maxConcurrent <= 3, `the backend saw ${backend.maxConcurrent} at once`);
  for (const socket of held) socket.destroy();
  // Then release each as it gets its banner (across workers the order is only roughly FIFO):
  // every client is served, never more than 3 at once.
  while (clients.size > 0) (await nextServed()).destroy();
  assert.ok(backend.maxConcurrent <= 3, `the backend saw ${backend.maxConcurrent} at once`);

  // The store goes away: still ready, and the status says so.
  await store.stop();
  await waitFor(async () => (await status()).store?.state === 'down', { timeoutMs: 30_000, description: 'the store shows down' });
  const down = await status();
  assert.equal(down.ready.ready, true);
  assert.equal((await httpRequest(adminPort, '/readyz')).status, 200);
  assert.equal(down.store?.onStoreDown, 'local');
  const page = (await httpRequest(adminPort, '/')).body;
  assert.match(page, /store <span class="pill down">STORE DOWN<\/span>/);
});
