import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSsh, sshClientAvailable } from '../fixtures/clients/clients.js';
import { httpRequest, scrape } from '../fixtures/proxy/prometheus.js';
import { startProxy } from '../fixtures/proxy/proxy.js';
import { untilEvent } from '../fixtures/proxy/proxy-wait.js';
import { startSshd, sshdAvailable } from '../fixtures/sshd/sshd.js';

test('metrics after real OpenSSH sessions through the proxy', { skip: !sshdAvailable() || !sshClientAvailable() }, async (t) => {
  const sshd = await startSshd();
  t.after(() => sshd.stop());
  const proxy = await startProxy({
    servers: [{ name: 'sshd', host: sshd.host, port: sshd.port }],
    config: { admin: { bind: '127.0.0.1:0' } },
  });
  t.after(() => proxy.stop());

  const sessions = 3;
  for (let index = 0; index < sessions; index += 1) {
    const result = await runSsh({ ...sshd, port: proxy.port, command: `echo metrics-${index}`, timeoutMs: 45_000 });
    assert.equal(result.code, 0, `ssh exit ${String(result.code)} (timed out: ${String(result.timedOut)}): ${result.stderr}`);
    assert.equal(result.stdout.trim(), `metrics-${index}`);
  }
  await untilEvent(proxy, 'session-closed', () => proxy.sessions().length === sessions, 10_000);
  const lines = proxy.sessions();

  const metrics = await scrape(proxy.runtime.adminPort);
  const server = { pool: 'main', server: 'sshd' };
  assert.equal(metrics.value('sshproxy_sessions_total', { listener: 'ssh', result: 'spliced' }), sessions);
  assert.equal(metrics.value('sshproxy_attempts_total', { ...server, result: 'ok' }), sessions);
  assert.equal(metrics.sum('sshproxy_attempts_total', server), sessions, 'no failed attempt against a healthy sshd');
  assert.equal(metrics.value('sshproxy_failovers_total', { pool: 'main' }), 0);
  assert.equal(metrics.value('sshproxy_banner_latency_seconds_count', { ...server, source: 'session' }), sessions);
  assert.equal(metrics.value('sshproxy_backend_connect_seconds_count', server), sessions);
  assert.equal(metrics.value('sshproxy_session_setup_seconds_count', { listener: 'ssh' }), sessions);
  assert.equal(metrics.value('sshproxy_sessions_active', { listener: 'ssh' }), 0);
  assert.equal(metrics.value('sshproxy_server_sessions_active', server), 0);
  assert.equal(metrics.value('sshproxy_server_handshakes_active', server), 0);

  // Banner latency sum matches what the session summaries logged (ms → s).
  const bannerSum = metrics.value('sshproxy_banner_latency_seconds_sum', { ...server, source: 'session' }) ?? NaN;
  const loggedBannerMs = lines.reduce((sum, line) => sum + Number(line.bannerMs), 0);
  assert.ok(Math.abs(bannerSum * 1000 - loggedBannerMs) < 0.05 * sessions, `${bannerSum}s vs ${loggedBannerMs}ms logged`);

  // Bytes: exactly what the summaries report, and a real SSH exchange's worth each way.
  const c2s = metrics.value('sshproxy_bytes_total', { listener: 'ssh', direction: 'client_to_server' }) ?? 0;
  const s2c = metrics.value('sshproxy_bytes_total', { listener: 'ssh', direction: 'server_to_client' }) ?? 0;
  assert.equal(c2s, lines.reduce((sum, line) => sum + Number(line.bytesIn), 0));
  assert.equal(s2c, lines.reduce((sum, line) => sum + Number(line.bytesOut), 0));
  assert.ok(c2s > 1000 * sessions && s2c > 1000 * sessions, `c2s ${c2s} s2c ${s2c}`);

  const status = (await fetchJson(proxy.runtime.adminPort, '/api/status')) as {
    pools: { servers: { name: string; totalSessions: number; lastSessionBannerMs: number | null }[] }[];
  };
  const row = status.pools[0]?.servers[0];
  assert.equal(row?.name, 'sshd');
  assert.equal(row.totalSessions, sessions);
  assert.equal(typeof row.lastSessionBannerMs, 'number');
});

async function fetchJson(port: number | undefined, path: string): Promise<unknown> {
  const result = await httpRequest(port ?? 0, path);
  assert.equal(result.status, 200);
  return JSON.parse(result.body) as unknown;
}
