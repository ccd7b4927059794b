/**
 * reusePort: with workers on a Node that has SO_REUSEPORT listeners (22.12+ on Linux),
 * each worker binds its own socket on the fixed port and the kernel spreads connections;
 * `reusePort: off` keeps the one shared socket. Both are seen from outside with `ss`.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { reusePortSupported } from '../../src/net/reuse-port.js';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { httpRequest } from '../fixtures/proxy/prometheus.js';
import { rawExchange } from '../fixtures/clients/raw-client.js';
import { runProcess } from '../fixtures/run-process.js';
import { startServeProcess } from '../fixtures/proxy/serve-process.js';
import { freePort, waitFor } from '../fixtures/wait.js';

const SS = '/usr/bin/ss';
const CLIENT_IDENT = 'SSH-2.0-ReusePortTest_1.0\r\n';

test('reusePortSupported: Node 22.12+ / 23.1+ on Linux', () => {
  assert.equal(reusePortSupported('20.20.2', 'linux'), false);
  assert.equal(reusePortSupported('22.11.0', 'linux'), false);
  assert.equal(reusePortSupported('22.12.0', 'linux'), true);
  assert.equal(reusePortSupported('23.0.0', 'linux'), false);
  assert.equal(reusePortSupported('24.1.0', 'linux'), true);
  assert.equal(reusePortSupported('24.1.0', 'darwin'), false);
});

async function listeningSockets(port: number): Promise<number> {
  const listed = await runProcess(SS, ['-Hltn', `sport = :${port}`], { timeoutMs: 5000 });
  return listed.stdout.split('\n').filter((line) => line.trim() !== '').length;
}

for (const setting of ['auto', 'off'] as const) {
  const skip = !existsSync(SS) ? 'iproute2 (ss) is not installed' : setting === 'auto' && !reusePortSupported() ? `Node ${process.versions.node} has no reusePort` : false;
  test(`workers: 2, reusePort ${setting}: ${setting === 'auto' ? 'two listening sockets, connections on both workers' : 'one shared socket'}`, { skip, timeout: 120_000 }, async (t) => {
    const echo = await startFixtureBackend('ssh-echo');
    t.after(() => echo.close());
    const port = await freePort();
    const proxy = await startServeProcess(
      {
        workers: 2,
        reusePort: setting,
        admin: { bind: '127.0.0.1:0' },
        log: { level: 'info' },
        listeners: [{ name: 'ssh', bind: `127.0.0.1:${port}`, pool: 'main' }],
        pools: [{ name: 'main', servers: [{ name: 'echo', address: `127.0.0.1:${echo.port}` }], healthCheck: { interval: '500ms' } }],
      },
      { startTimeoutMs: 60_000 },
    );
    t.after(() => proxy.kill());
    await proxy.waitForLog((line) => line.event === 'admin-listening', 30_000, 'admin endpoint');
    await waitFor(async () => (await httpRequest(proxy.adminPort as number, '/readyz')).status === 200, { timeoutMs: 30_000, intervalMs: 200, description: '/readyz 200' });
    assert.equal(await listeningSockets(port), setting === 'auto' ? 2 : 1);
    const sessions = await Promise.all(
      Array.from({ length: 40 }, () => rawExchange({ port, send: CLIENT_IDENT, until: (data) => data.includes(CLIENT_IDENT), timeoutMs: 10_000 })),
    );
    assert.ok(sessions.every((session) => session.outcome === 'matched'));
    if (setting === 'auto') {
      const status = JSON.parse((await httpRequest(proxy.adminPort as number, '/api/status')).body) as { workers: { sessions: number }[] };
      // 40 connections hashed over two sockets: both get some (all on one: 2^-39).
      assert.ok(status.workers.every((worker) => worker.sessions > 0), JSON.stringify(status.workers));
    }
  });
}
