import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { scrape } from '../fixtures/proxy/prometheus.js';
import { startProxy } from '../fixtures/proxy/proxy.js';
import { untilEvent } from '../fixtures/proxy/proxy-wait.js';
import { rawExchange, untilBytes } from '../fixtures/clients/raw-client.js';

const ECHO_IDENT = 'SSH-2.0-EchoFixture_1.0\r\n';
const CLIENT_IDENT = 'SSH-2.0-MetricsTest_1.0\r\n';
const ADMIN = { admin: { bind: '127.0.0.1:0' } };

test('configured listeners, pools and servers have zeroed series before any traffic, and no addresses in labels', async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const proxy = await startProxy({ servers: [{ name: 'echo', host: echo.host, port: echo.port }], config: ADMIN });
  t.after(() => proxy.stop());

  const metrics = await scrape(proxy.runtime.adminPort);
  const server = { pool: 'main', server: 'echo' };
  assert.equal(metrics.value('sshproxy_sessions_total', { listener: 'ssh', result: 'spliced' }), 0);
  assert.equal(metrics.value('sshproxy_attempts_total', { ...server, result: 'ok' }), 0);
  assert.equal(metrics.value('sshproxy_failovers_total', { pool: 'main' }), 0);
  assert.equal(metrics.value('sshproxy_banner_latency_seconds_count', { ...server, source: 'session' }), 0);
  assert.equal(metrics.value('sshproxy_banner_latency_seconds_count', { ...server, source: 'check' }), 0);
  assert.equal(metrics.value('sshproxy_backend_connect_seconds_count', server), 0);
  assert.equal(metrics.value('sshproxy_session_setup_seconds_count', { listener: 'ssh' }), 0);
  assert.equal(metrics.value('sshproxy_queue_wait_seconds_count', { pool: 'main' }), 0);
  assert.equal(metrics.value('sshproxy_server_up', server), 1);
  assert.equal(metrics.value('sshproxy_server_sessions_active', server), 0);
  assert.equal(metrics.value('sshproxy_server_handshakes_active', server), 0);
  assert.equal(metrics.value('sshproxy_server_state_changes_total', server), 0);
  assert.equal(metrics.value('sshproxy_sessions_active', { listener: 'ssh' }), 0);
  assert.equal(metrics.value('sshproxy_queue_length', { pool: 'main' }), 0);
  assert.equal(metrics.value('sshproxy_bytes_total', { listener: 'ssh', direction: 'client_to_server' }), 0);
  assert.equal(metrics.value('sshproxy_bytes_total', { listener: 'ssh', direction: 'server_to_client' }), 0);
  assert.equal(metrics.value('sshproxy_connections_rejected_total', { listener: 'ssh', reason: 'LIMIT_REACHED' }), 0);
  assert.equal(metrics.value('sshproxy_accept_errors_total', { listener: 'ssh' }), 0);
  const build = metrics.find('sshproxy_build_info');
  assert.equal(build.length, 1);
  assert.equal(build[0]?.labels.node_version, process.versions.node);
  assert.match(build[0]?.labels.version ?? '', /^\d+\.\d+\.\d+/);
  // Default Node metrics come from the proxy's own registry.
  assert.ok(metrics.find('process_cpu_user_seconds_total').length === 1);
  assert.ok(metrics.find('nodejs_eventloop_lag_seconds').length === 1);
  // Banner buckets span 1 ms to beyond paramiko's 15 s.
  const les = metrics.find('sshproxy_banner_latency_seconds_bucket', { ...server, source: 'session' }).map((s) => s.labels.le);
  for (const le of ['0.001', '5', '15', '+Inf']) assert.ok(les.includes(le), `bucket le=${le} in ${les.join(',')}`);
  // Bounded labels: no addresses anywhere in the exposition.
  assert.doesNotMatch(metrics.text, /127\.0\.0\.1/);
});

test('exact counters, histogram counts and bytes after sessions through a failing and an echoing backend', async (t) => {
  const reset = await startFixtureBackend('reset');
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => reset.close());
  t.after(() => echo.close());
  const proxy = await startProxy({
    servers: [
      { name: 'reset', host: reset.host, port: reset.port },
      { name: 'echo', host: echo.host, port: echo.port },
    ],
    pool: { retries: 1, passiveHealth: { consecutiveFailures: 0 } },
    config: ADMIN,
  });
  t.after(() => proxy.stop());

  const sessions = 6;
  const payload = 'x'.repeat(1000);
  for (let index = 0; index < sessions; index += 1) {
    const sent = CLIENT_IDENT + payload;
    const expected = ECHO_IDENT.length + sent.length;
    const result = await rawExchange({ port: proxy.port, send: sent, until: untilBytes(expected), timeoutMs: 5_000 });
    assert.equal(result.outcome, 'matched');
    assert.equal(result.data.length, expected);
  }
  await untilEvent(proxy, 'session-closed', () => proxy.sessions().length === sessions, 5_000);
  const lines = proxy.sessions();
  assert.equal(lines.length, sessions);

  const metrics = await scrape(proxy.runtime.adminPort);
  const failed = reset.connections;
  assert.ok(failed >= 1, 'round robin sent at least one session to the resetting server first');
  assert.equal(metrics.value('sshproxy_sessions_total', { listener: 'ssh', result: 'spliced' }), sessions);
  assert.equal(metrics.value('sshproxy_attempts_total', { pool: 'main', server: 'echo', result: 'ok' }), sessions);
  assert.equal(metrics.sum('sshproxy_attempts_total', { pool: 'main', server: 'reset' }), failed);
  assert.equal(metrics.value('sshproxy_attempts_total', { pool: 'main', server: 'reset', result: 'ok' }), 0);
  const resetCodes = metrics.find('sshproxy_attempts_total', { server: 'reset' }).filter((s) => s.labels.result !== 'ok');
  assert.ok(resetCodes.every((s) => ['BACKEND_RESET', 'BACKEND_CLOSED'].includes(s.labels.result ?? '')), JSON.stringify(resetCodes));
  assert.equal(metrics.value('sshproxy_failovers_total', { pool: 'main' }), failed);
  assert.equal(metrics.value('sshproxy_banner_latency_seconds_count', { pool: 'main', server: 'echo', source: 'session' }), sessions);
  assert.equal(metrics.value('sshproxy_banner_latency_seconds_count', { pool: 'main', server: 'reset', source: 'session' }), 0);
  assert.equal(metrics.value('sshproxy_backend_connect_seconds_count', { pool: 'main', server: 'echo' }), sessions);
  // A reset can beat the 'connect' event: only attempts that saw the connection complete have a connect time.
  const resetConnected = proxy.logs.filter((l) => l.event === 'attempt' && l.server === 'reset' && typeof l.connectMs === 'number').length;
  assert.equal(metrics.value('sshproxy_backend_connect_seconds_count', { pool: 'main', server: 'reset' }), resetConnected);
  assert.equal(metrics.value('sshproxy_session_setup_seconds_count', { listener: 'ssh' }), sessions);
  // A loopback banner arrives well under a second: every observation is in the 1 s bucket.
  assert.equal(metrics.value('sshproxy_banner_latency_seconds_bucket', { pool: 'main', server: 'echo', source: 'session', le: '1' }), sessions);
  const c2s = (CLIENT_IDENT.length + payload.length) * sessions;
  const s2c = (ECHO_IDENT.length + CLIENT_IDENT.length + payload.length) * sessions;
  assert.equal(metrics.value('sshproxy_bytes_total', { listener: 'ssh', direction: 'client_to_server' }), c2s);
  assert.equal(metrics.value('sshproxy_bytes_total', { listener: 'ssh', direction: 'server_to_client' }), s2c);
  assert.equal(metrics.value('sshproxy_sessions_active', { listener: 'ssh' }), 0);
  assert.equal(metrics.value('sshproxy_server_sessions_active', { pool: 'main', server: 'echo' }), 0);
  assert.equal(metrics.value('sshproxy_server_handshakes_active', { pool: 'main', server: 'echo' }), 0);

  // The access log agrees with the counters, and carries queue wait.
  for (const line of lines) {
    assert.equal(line.spliced, true);
    assert.equal(typeof line.queueWaitMs, 'number');
  }
  assert.equal(lines.reduce((sum, line) => sum + Number(line.bytesIn), 0), c2s);
  assert.equal(lines.reduce((sum, line) => sum + Number(line.bytesOut), 0), s2c);
});

test('sessions that never splice are counted by reason code', async (t) => {
  const throttle = await startFixtureBackend('throttle');
  t.after(() => throttle.close());
  const proxy = await startProxy({
    servers: [{ name: 'throttled', host: throttle.host, port: throttle.port }],
    pool: { retries: 0, passiveHealth: { consecutiveFailures: 0 }, retry: { backoff: 10, maxBackoff: 20 } },
    config: ADMIN,
  });
  t.after(() => proxy.stop());

  const sessions = 3;
  for (let index = 0; index < sessions; index += 1) {
    const result = await rawExchange({ port: proxy.port, send: CLIENT_IDENT, timeoutMs: 10_000 });
    assert.equal(result.data.length, 0, 'the client never sees the throttling message');
  }
  await untilEvent(proxy, 'session-closed', () => proxy.sessions().length === sessions, 5_000);
  // The retry policy may retry a throttled server: every attempt reached the backend and is in the summaries.
  const attempts = proxy.sessions().reduce((sum, line) => sum + (line.attempts as unknown[]).length, 0);
  assert.equal(attempts, throttle.connections);
  const metrics = await scrape(proxy.runtime.adminPort);
  const failures = metrics.find('sshproxy_sessions_total', { listener: 'ssh' }).filter((s) => s.value > 0);
  assert.deepEqual(
    failures.map((s) => [s.labels.result, s.value]),
    [[proxy.sessions()[0]?.reason, sessions]],
  );
  assert.equal(metrics.value('sshproxy_sessions_total', { listener: 'ssh', result: 'spliced' }), 0);
  assert.equal(metrics.value('sshproxy_attempts_total', { pool: 'main', server: 'throttled', result: 'THROTTLED' }), attempts);
  assert.equal(metrics.value('sshproxy_banner_latency_seconds_count', { pool: 'main', server: 'throttled', source: 'session' }), 0);
  assert.equal(metrics.value('sshproxy_session_setup_seconds_count', { listener: 'ssh' }), 0);
  assert.equal(metrics.value('sshproxy_bytes_total', { listener: 'ssh', direction: 'server_to_client' }), 0);
});

test('bytes of a session still open are counted at each scrape, and the close adds only the rest', async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const proxy = await startProxy({ servers: [{ name: 'echo', host: echo.host, port: echo.port }], config: ADMIN });
  t.after(() => proxy.stop());

  const client = net.connect({ host: '127.0.0.1', port: proxy.port });
  client.on('error', () => undefined);
  t.after(() => client.destroy());
  let received = 0;
  const waitForReceived = (total: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`received ${received} of ${total} bytes`)), 5_000);
      const check = (): void => {
        if (received < total) return;
        clearTimeout(timer);
        client.off('data', onData);
        resolve();
      };
      const onData = (chunk: Buffer): void => {
        received += chunk.length;
        check();
      };
      client.on('data', onData);
      check();
    });
  const bytes = async (): Promise<[number | undefined, number | undefined]> => {
    const metrics = await scrape(proxy.runtime.adminPort);
    return [
      metrics.value('sshproxy_bytes_total', { listener: 'ssh', direction: 'client_to_server' }),
      metrics.value('sshproxy_bytes_total', { listener: 'ssh', direction: 'server_to_client' }),
    ];
  };

  const first = CLIENT_IDENT + 'a'.repeat(5_000);
  client.write(first);
  await waitForReceived(ECHO_IDENT.length + first.length);
  assert.deepEqual(await bytes(), [first.length, ECHO_IDENT.length + first.length]);
  assert.deepEqual(await bytes(), [first.length, ECHO_IDENT.length + first.length], 'a second scrape adds nothing');

  const second = 'b'.repeat(70_000);
  client.write(second);
  await waitForReceived(ECHO_IDENT.length + first.length + second.length);
  assert.deepEqual(await bytes(), [first.length + second.length, ECHO_IDENT.length + first.length + second.length]);

  const third = 'c'.repeat(1_234);
  client.write(third);
  await waitForReceived(ECHO_IDENT.length + first.length + second.length + third.length);
  client.end();
  await untilEvent(proxy, 'session-closed', () => proxy.sessions().length === 1, 5_000);
  const [summary] = proxy.sessions();
  const c2s = first.length + second.length + third.length;
  assert.equal(summary?.bytesIn, c2s);
  assert.deepEqual(await bytes(), [c2s, ECHO_IDENT.length + c2s], 'counted once in total: scrapes plus close');
});
