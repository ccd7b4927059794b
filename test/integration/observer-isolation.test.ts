import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProxyEventMap } from '../../src/events/bus.js';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { scrape } from '../fixtures/proxy/prometheus.js';
import { startProxy } from '../fixtures/proxy/proxy.js';
import { rawExchange, untilBytes } from '../fixtures/clients/raw-client.js';

const EVENTS: readonly (keyof ProxyEventMap)[] = ['attempt', 'session-spliced', 'session-closed', 'failover', 'connection-rejected', 'queue-wait'];

test('an observer that throws on every event breaks no session, leaks no slot or budget, and is counted and logged once per event', async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const reset = await startFixtureBackend('reset');
  t.after(() => reset.close());
  const proxy = await startProxy({
    servers: [
      { name: 'reset', host: reset.host, port: reset.port, maxStartups: 1 },
      { name: 'echo', host: echo.host, port: echo.port, maxStartups: 1 },
    ],
    pool: { balance: 'roundrobin', handshake: { endsAt: 'splice' } },
    config: { admin: { bind: '127.0.0.1:0' } },
  });
  t.after(() => proxy.stop());
  const events = proxy.runtime.events;
  // Subscribed first, so the metrics and logs observers run after it on every event.
  for (const name of EVENTS) events.prependListener(name, () => {
    throw new Error(`observer failure on ${name}`);
  });

  const send = 'SSH-2.0-ObserverTest_1.0\r\nping';
  for (let round = 0; round < 6; round += 1) {
    const result = await rawExchange({ port: proxy.port, send, until: untilBytes('SSH-2.0-EchoFixture_1.0\r\n'.length + send.length), timeoutMs: 5000 });
    assert.equal(result.outcome, 'matched', `session ${round} got the banner and its echo`);
  }
  const summaries = await proxy.waitForSessions(6, 5000);
  assert.equal(summaries.length, 6, 'the log observer after the throwing one saw every session');
  assert.equal(proxy.runtime.server.activeConnections, 0, 'every connection budget place came back');
  for (const server of proxy.runtime.server.pools.get('main')?.servers ?? []) {
    assert.equal(server.handshakesActive, 0, `${server.name}: no handshake slot leaked`);
    assert.equal(server.activeSessions, 0, `${server.name}: no session count leaked`);
  }
  const metrics = await scrape(proxy.runtime.adminPort);
  assert.equal(metrics.value('sshproxy_sessions_total', { listener: 'ssh', result: 'spliced' }), 6);
  assert.ok((metrics.value('sshproxy_observer_errors_total', {}) ?? 0) >= 6 * 3, 'every caught error is counted');
  const logged = proxy.logs.filter((line) => line.event === 'observer-error');
  assert.deepEqual(new Set(logged.map((line) => line.on)).size, logged.length, 'logged once per event name');
  assert.ok(logged.some((line) => line.on === 'session-closed'));
  const err = logged[0]?.err as { message?: string; stack?: string } | undefined;
  assert.match(err?.message ?? '', /observer failure/);
  assert.ok(err?.stack, 'the error is logged with its stack (pino err serializer)');
});
