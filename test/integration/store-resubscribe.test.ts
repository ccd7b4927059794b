/**
 * The store connection's subscriber resubscribes after a reconnect without leaving a
 * promise unhandled: a store that drops the connection in the middle of SUBSCRIBE must not
 * end the process (ioredis' own autoResubscribe did, with maxRetriesPerRequest 0).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { StoreConnection } from '../../src/store/store-connection.js';
import { redisAvailable, startRedis } from '../fixtures/backends/redis-server.js';
import { waitFor } from '../fixtures/wait.js';

const SKIP = redisAvailable() ? false : 'neither valkey-server nor redis-server is installed';

test('a store that cuts SUBSCRIBE twice: no unhandled rejection, and the subscription works in the end', { skip: SKIP, timeout: 60_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  // In front of the store: the first two connections that send SUBSCRIBE are cut right there.
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const front = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: redis.port });
    sockets.add(client).add(upstream);
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('data', (chunk: Buffer) => {
      if (cuts < 2 && /subscribe/i.test(chunk.toString('latin1'))) {
        cuts += 1;
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
  });
  front.listen(0, '127.0.0.1');
  await new Promise((resolve) => front.once('listening', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    front.close();
  });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.after(() => process.off('unhandledRejection', onUnhandled));

  const messages: string[] = [];
  const port = (front.address() as net.AddressInfo).port;
  const connection = new StoreConnection({ url: `redis://127.0.0.1:${port}/0`, deadlineMs: 1000, connectionName: 'resubscribe-test' }, 'sbp-test-channel', {
    connected: () => connection.markUp(),
    stateChanged: () => {},
    message: (text) => messages.push(text),
    roundTrip: () => {},
  });
  t.after(() => connection.close());
  connection.start();
  const publisher = new Redis(redis.url, { lazyConnect: true });
  await publisher.connect();
  t.after(() => publisher.disconnect());
  await waitFor(
    async () => {
      await publisher.publish('sbp-test-channel', 'hello');
      return messages.includes('hello');
    },
    { timeoutMs: 20_000, intervalMs: 200, description: 'the subscription to work after two cuts' },
  );
  assert.equal(cuts, 2, 'SUBSCRIBE was cut twice, the second time on a reconnect');
  assert.deepEqual(unhandled, [], 'nothing was left unhandled');
});
