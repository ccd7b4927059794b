import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { httpRequest } from '../fixtures/proxy/prometheus.js';
import { startProxy } from '../fixtures/proxy/proxy.js';

const ADMIN = { admin: { bind: '127.0.0.1:0' } };

test('admin endpoints: health, status JSON, HTML, 404, 405, HEAD', async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const proxy = await startProxy({
    servers: [
      { name: 'echo', host: echo.host, port: echo.port, weight: 3, maxStartups: 4 },
      { name: 'spare', host: echo.host, port: echo.port, backup: true },
    ],
    config: ADMIN,
  });
  t.after(() => proxy.stop());
  const port = proxy.runtime.adminPort ?? 0;
  assert.ok(port > 0);
  await proxy.waitForLog((line) => line.event === 'admin-listening', 1_000);

  const health = await httpRequest(port, '/healthz');
  assert.equal(health.status, 200);
  assert.deepEqual(JSON.parse(health.body), { status: 'ok' });

  const metrics = await httpRequest(port, '/metrics');
  assert.equal(metrics.status, 200);
  assert.match(String(metrics.headers['content-type']), /^text\/plain; version=0\.0\.4/);

  const status = await httpRequest(port, '/api/status');
  assert.equal(status.status, 200);
  assert.match(String(status.headers['content-type']), /^application\/json/);
  const body = JSON.parse(status.body) as {
    ready: { ready: boolean };
    draining: boolean;
    listeners: { name: string; address: string; pool: string; listening: boolean; activeSessions: number }[];
    pools: {
      name: string;
      balance: string;
      serversUp: number;
      queueLength: number;
      servers: {
        name: string;
        address: string;
        state: string;
        weight: number;
        backup: boolean;
        activeSessions: number;
        handshakeSlots: { used: number; limit: number };
        lastCheck: unknown;
        lastBannerMs: unknown;
        identification: unknown;
        lastStateChange: string;
      }[];
    }[];
  };
  assert.equal(body.ready.ready, true);
  assert.equal(body.draining, false);
  assert.deepEqual(body.listeners, [{ name: 'ssh', address: `127.0.0.1:${proxy.port}`, pool: 'main', listening: true, activeSessions: 0 }]);
  assert.equal(body.pools.length, 1);
  const pool = body.pools[0];
  assert.equal(pool?.name, 'main');
  assert.equal(pool.serversUp, 2);
  assert.equal(pool.queueLength, 0);
  assert.deepEqual(
    pool.servers.map((s) => [s.name, s.address, s.state, s.weight, s.backup, s.handshakeSlots.used, s.handshakeSlots.limit]),
    [
      ['echo', `127.0.0.1:${echo.port}`, 'UP', 3, false, 0, 4],
      ['spare', `127.0.0.1:${echo.port}`, 'UP', 1, true, 0, 8],
    ],
  );
  for (const server of pool.servers) {
    assert.ok(!Number.isNaN(Date.parse(server.lastStateChange)));
    assert.equal(server.lastCheck, null, 'health checks are off: no check yet');
  }

  const page = await httpRequest(port, '/');
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.match(page.body, /data-server="echo"/);
  assert.match(page.body, /data-server="spare"/);
  assert.doesNotMatch(page.body, /<script|https?:\/\/(?!127)/, 'no scripts, no external assets');

  const missing = await httpRequest(port, '/admin/reload');
  assert.equal(missing.status, 404);
  assert.equal((JSON.parse(missing.body) as { error: string }).error, 'NOT_FOUND');

  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    const refused = await httpRequest(port, '/api/status', { method });
    assert.equal(refused.status, 405, method);
    assert.equal(refused.headers.allow, 'GET, HEAD');
  }

  const head = await httpRequest(port, '/metrics', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.ok(Number(head.headers['content-length']) > 1000, 'HEAD reports the length GET would send');

  const query = await httpRequest(port, '/healthz?verbose=1');
  assert.equal(query.status, 200);
});

test('a non-loopback admin bind logs a warning', async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const proxy = await startProxy({
    servers: [{ name: 'echo', host: echo.host, port: echo.port }],
    config: { admin: { bind: '0.0.0.0:0' } },
  });
  t.after(() => proxy.stop());
  const warning = await proxy.waitForLog((line) => line.event === 'admin-exposed', 1_000);
  assert.equal(warning.level, 40);
  assert.equal(warning.bind, '0.0.0.0:0');
  // Reached over loopback only.
  assert.equal((await httpRequest(proxy.runtime.adminPort ?? 0, '/healthz')).status, 200);
});

test('a loopback admin bind logs no warning, and no admin config means no admin listener', async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const withAdmin = await startProxy({ servers: [{ name: 'echo', host: echo.host, port: echo.port }], config: ADMIN });
  t.after(() => withAdmin.stop());
  assert.equal(withAdmin.logs.filter((line) => line.event === 'admin-exposed').length, 0);
  const without = await startProxy({ servers: [{ name: 'echo', host: echo.host, port: echo.port }] });
  t.after(() => without.stop());
  assert.equal(without.runtime.adminPort, undefined);
});

test('a port already taken fails start with the admin address in the message, and leaves no listener open', async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const first = await startProxy({ servers: [{ name: 'echo', host: echo.host, port: echo.port }], config: ADMIN });
  t.after(() => first.stop());
  const taken = first.runtime.adminPort ?? 0;
  await assert.rejects(
    startProxy({ servers: [{ name: 'echo', host: echo.host, port: echo.port }], config: { admin: { bind: `127.0.0.1:${taken}` } } }),
    (error: Error) => error.message.includes(`admin: cannot listen on 127.0.0.1:${taken}`),
  );
});
