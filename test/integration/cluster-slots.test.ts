import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startFixtureBackend, type FixtureBackend } from '../fixtures/hostile-backends.js';
import { startProxy, type TestProxy } from '../fixtures/proxy.js';
import { redisAvailable, startRedis, type RedisHandle } from '../fixtures/redis-server.js';

const SKIP = redisAvailable() ? false : 'neither valkey-server nor redis-server is installed';

interface HeldClient {
  readonly socket: net.Socket;
  /** Resolves with the first line the client got (its banner), or '' if it was closed first. */
  readonly banner: Promise<string>;
}

/** A client that identifies and then holds its handshake slot (ssh-sink never answers KEXINIT). */
async function holdingClient(port: number, name: string, sockets: net.Socket[]): Promise<HeldClient> {
  const socket = net.connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write(`SSH-2.0-${name}\r\n`);
  const banner = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n') + 1));
    });
    socket.on('close', () => resolve(text));
  });
  return { socket, banner };
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
    const clients: HeldClient[] = [];
    for (let index = 0; index < 10; index += 1) clients.push(await holdingClient((index % 2 === 0 ? a : b).port, `client_${index}`, sockets));
    await backend.waitForConnections(2, 5000);
    // Each client lets its slot go 30 ms after its banner: the rest get theirs in turn.
    await Promise.all(
      clients.map(async (client) => {
        assert.equal(await client.banner, 'SSH-2.0-SinkFixture_1.0\r\n');
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
    const clients: HeldClient[] = [];
    for (let index = 0; index < 4; index += 1) clients.push(await holdingClient((local[index % 2] as TestProxy).port, `client_${index}`, sockets));
    await Promise.all(clients.map((client) => client.banner));
    assert.equal(backend.maxConcurrent, 4);
    for (const client of clients) client.socket.destroy();
  });
});
