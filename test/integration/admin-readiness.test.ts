import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { httpRequest, scrape } from '../fixtures/proxy/prometheus.js';
import { startProxy } from '../fixtures/proxy/proxy.js';
import { untilEvent } from '../fixtures/proxy/proxy-wait.js';
import { freePort } from '../fixtures/wait.js';

const ADMIN = { admin: { bind: '127.0.0.1:0' } };
const FAST_CHECKS = { healthCheck: { enabled: true, interval: 100, timeout: 500, rise: 1, fall: 1, jitter: 0 } };

interface ReadyBody {
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
}

async function readyz(port: number | undefined, query = ''): Promise<{ status: number; body: ReadyBody }> {
  const result = await httpRequest(port ?? 0, `/readyz${query}`);
  return { status: result.status, body: JSON.parse(result.body) as ReadyBody };
}

test('/readyz stays 200 while every backend is down (the proxy still accepts and queues); /readyz?pool=NAME is 503 NO_SERVER_UP', async (t) => {
  const deadPort = await freePort();
  const proxy = await startProxy({
    servers: [{ name: 'dead', host: '127.0.0.1', port: deadPort }],
    pool: FAST_CHECKS,
    config: ADMIN,
  });
  t.after(() => proxy.stop());
  const dead = proxy.runtime.server.pools.get('main')?.servers[0];
  await untilEvent(proxy, 'server-state', () => dead?.state === 'DOWN', 3_000);

  assert.equal((await readyz(proxy.runtime.adminPort)).status, 200, 'replicas do not all leave the Service when backends blink');
  const ready = await readyz(proxy.runtime.adminPort, '?pool=main');
  assert.equal(ready.status, 503);
  assert.equal(ready.body.reason, 'NO_SERVER_UP');
  assert.match(ready.body.message ?? '', /main/);
  const unknown = await readyz(proxy.runtime.adminPort, '?pool=nope');
  assert.equal(unknown.status, 503, 'an unknown pool is not ready');
  assert.equal(unknown.body.reason, 'UNKNOWN_POOL');
  assert.equal(unknown.body.message, 'no pool named "nope" (pools: main)');
  assert.equal((await httpRequest(proxy.runtime.adminPort ?? 0, '/healthz')).status, 200, 'alive, just not ready');
});

test('readiness flips when all servers go down; check metrics count every check', async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const proxy = await startProxy({
    servers: [{ name: 'echo', host: echo.host, port: echo.port }],
    pool: FAST_CHECKS,
    config: ADMIN,
  });
  t.after(() => proxy.stop());
  const server = proxy.runtime.server.pools.get('main')?.servers[0];
  await untilEvent(proxy, 'health-check', () => server?.lastCheck?.ok === true, 3_000);

  assert.equal((await readyz(proxy.runtime.adminPort, '?pool=main')).status, 200);

  await echo.close();
  await untilEvent(proxy, 'server-state', () => server?.state === 'DOWN', 3_000);
  const down = await readyz(proxy.runtime.adminPort, '?pool=main');
  assert.equal(down.status, 503);
  assert.equal(down.body.reason, 'NO_SERVER_UP');
  assert.equal((await readyz(proxy.runtime.adminPort)).status, 200);

  // Freeze the checkers so the counters and the logged checks stop moving, then compare exactly.
  for (const checker of proxy.runtime.healthCheckers) checker.stop();
  const checks = { ok: 0, failed: new Map<string, number>() };
  for (const line of proxy.logs.filter((l) => l.event === 'health-check')) {
    if (line.ok === true) checks.ok += 1;
    else checks.failed.set(String(line.code), (checks.failed.get(String(line.code)) ?? 0) + 1);
  }
  const metrics = await scrape(proxy.runtime.adminPort);
  const labels = { pool: 'main', server: 'echo' };
  assert.equal(metrics.value('sshproxy_server_up', labels), 0);
  assert.equal(metrics.value('sshproxy_server_state_changes_total', labels), 1);
  assert.ok(checks.ok >= 1);
  assert.equal(metrics.value('sshproxy_banner_latency_seconds_count', { ...labels, source: 'check' }), checks.ok);
  assert.equal(metrics.value('sshproxy_banner_latency_seconds_count', { ...labels, source: 'session' }), 0);
  assert.ok(checks.failed.size >= 1);
  for (const [reason, count] of checks.failed) {
    assert.equal(metrics.value('sshproxy_server_check_failures_total', { ...labels, reason }), count, reason);
  }
  assert.equal(metrics.sum('sshproxy_server_check_failures_total', labels), [...checks.failed.values()].reduce((a, b) => a + b, 0));

  const status = JSON.parse((await httpRequest(proxy.runtime.adminPort ?? 0, '/api/status')).body) as {
    ready: { ready: boolean; reason?: string };
    pools: { serversUp: number; servers: { state: string; stateReason: string; lastCheck: { ok: boolean; code: string }; identification: string; lastBannerMs: number }[] }[];
  };
  assert.equal(status.ready.ready, true, 'ready: the proxy accepts and queues');
  const row = status.pools[0]?.servers[0];
  assert.equal(status.pools[0]?.serversUp, 0);
  assert.equal(row?.state, 'DOWN');
  assert.match(row.stateReason, /^check:/);
  assert.equal(row.lastCheck.ok, false);
  assert.equal(row.identification, 'SSH-2.0-EchoFixture_1.0', 'the last identification seen stays visible');
  assert.equal(typeof row.lastBannerMs, 'number');
});

test('/readyz is 503 DRAINING during a graceful stop while /metrics still answers', async (t) => {
  const sink = await startFixtureBackend('ssh-sink');
  t.after(() => sink.close());
  const proxy = await startProxy({ servers: [{ name: 'sink', host: sink.host, port: sink.port }], config: ADMIN });
  t.after(() => proxy.stop());

  const client = net.connect({ host: '127.0.0.1', port: proxy.port });
  client.on('error', () => undefined);
  t.after(() => client.destroy());
  await untilEvent(proxy, 'session-spliced', () => proxy.runtime.metrics.serverTotals('main', 'sink').sessions === 1, 3_000);
  assert.equal((await readyz(proxy.runtime.adminPort)).status, 200);

  const adminPort = proxy.runtime.adminPort;
  const stopped = proxy.runtime.stop(10_000);
  const draining = await readyz(adminPort);
  assert.equal(draining.status, 503);
  assert.equal(draining.body.reason, 'DRAINING');
  const metrics = await scrape(adminPort);
  assert.equal(metrics.value('sshproxy_sessions_active', { listener: 'ssh' }), 1, 'the spliced session is still draining');

  client.destroy();
  await stopped;
  await assert.rejects(httpRequest(adminPort ?? 0, '/healthz', { timeoutMs: 1_000 }), /ECONNREFUSED/, 'admin closes after the drain');
});
