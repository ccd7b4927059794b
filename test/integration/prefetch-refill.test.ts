// Banner prefetch under steady back-to-back load: each take must be refilled at once, or
// the pool runs dry between clients and most sessions take the slow path after all.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { startProxy } from '../fixtures/proxy/proxy.js';
import { readFirstLine } from '../fixtures/clients/raw-client.js';
import { waitFor } from '../fixtures/wait.js';

const CLIENTS = 100;

test('prefetch keeps up with clients arriving one after another: the refill follows each take in the same turn, not after a timer', { timeout: 30_000 }, async (t) => {
  const backend = await startFixtureBackend('ssh-echo');
  t.after(() => backend.close());
  const proxy = await startProxy({
    servers: [{ name: 'echo', host: backend.host, port: backend.port }],
    pool: { prefetch: { perServer: 2 }, handshake: { endsAt: 'splice' } },
  });
  t.after(() => proxy.stop());
  const pool = proxy.runtime.server.pools.get('main');
  const server = pool?.servers[0];
  assert.ok(pool && server);
  await waitFor(() => pool.prefetchReady(server) === 2, { timeoutMs: 5000, description: 'two prefetched connections ready' });

  const outcomes = { hit: 0, miss: 0 };
  proxy.runtime.events.on('prefetch', (event) => {
    if (event.outcome === 'hit' || event.outcome === 'miss') outcomes[event.outcome] += 1;
  });
  for (let client = 0; client < CLIENTS; client += 1) {
    const line = await readFirstLine(proxy.host, proxy.port, 5000);
    assert.match(line, /^SSH-2\.0-/);
  }
  assert.equal(outcomes.hit + outcomes.miss, CLIENTS);
  // With a 20 ms refill timer, two connections served about one client in ten here.
  assert.ok(outcomes.hit >= CLIENTS * 0.6, `${outcomes.hit} of ${CLIENTS} clients got a prefetched connection`);
});
