/**
 * A client the proxy kept waiting (queued for a slot, or a slow banner) that gives up is not
 * charged: overload must not turn into a lock-out of the overloaded clients' host. A client
 * that leaves at once of its own accord (a port check) is charged `noauth`, as at sshd.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { startProxy } from '../fixtures/proxy/proxy.js';
import { waitForEvent } from '../fixtures/wait.js';

test('queued and kept-waiting clients that give up are not charged; a port check is', async (t) => {
  // A banner that takes 3 s: a client that gives up before it was kept waiting by the backend.
  const backend = await startFixtureBackend('slow-banner', { delayMs: 3000 });
  t.after(() => backend.close());
  const proxy = await startProxy({
    servers: [{ name: 'slow', host: backend.host, port: backend.port, maxStartups: 1 }],
    pool: { queue: { timeout: '10s' } },
    config: { penalties: {} },
    logLevel: 'info',
  });
  t.after(() => proxy.stop());

  // First client holds the one slot (awaiting the slow banner); the second is queued behind it.
  const holder = net.connect({ host: proxy.host, port: proxy.port });
  holder.on('error', () => {});
  await waitForEvent(holder, 'connect', 5_000);
  await backend.waitForConnections(1, 5_000);
  const queued = net.connect({ host: proxy.host, port: proxy.port });
  queued.on('error', () => {});
  await waitForEvent(queued, 'connect', 5_000);
  // Both give up after 1.5 s of nothing (the holder waited on the banner, the other in the queue).
  setTimeout(() => {
    holder.destroy();
    queued.destroy();
  }, 1500);
  const [first, second] = await proxy.waitForSessions(2, 10_000);
  for (const session of [first, second]) {
    assert.equal(session?.reason, 'CLIENT_CLOSED');
    assert.notEqual(session?.penaltyCharged, true, JSON.stringify(session));
  }

  // A port check: connect and close at once.
  const check = net.connect({ host: proxy.host, port: proxy.port });
  check.on('error', () => {});
  await waitForEvent(check, 'connect', 5_000);
  check.destroy();
  const sessions = await proxy.waitForSessions(3, 10_000);
  assert.equal(sessions[2]?.penaltyCharged, true, JSON.stringify(sessions[2]));
  assert.equal(sessions[2]?.auth, 'noauth');
});
