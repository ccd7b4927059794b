import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSsh } from '../fixtures/clients/clients.js';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { httpRequest, scrape } from '../fixtures/proxy/prometheus.js';
import { rawExchange } from '../fixtures/clients/raw-client.js';
import { startServeProcess } from '../fixtures/proxy/serve-process.js';
import { waitFor } from '../fixtures/wait.js';
import { sshdAvailable, startSshd } from '../fixtures/sshd/sshd.js';

const CLIENT_IDENT = 'SSH-2.0-WorkersTest_1.0\r\n';

interface StatusBody {
  readonly pid: number;
  readonly ready: { readonly ready: boolean };
  readonly workers: readonly { readonly worker: number; readonly pid: number; readonly sessions: number }[];
  readonly pools: readonly { readonly name: string; readonly servers: readonly { readonly state: string; readonly totalSessions: number | null; readonly handshakeSlots: { readonly limit: number } }[] }[];
}

test('workers: 2 serves sessions from both workers, and one scrape of the primary shows them all', { skip: sshdAvailable() ? false : 'openssh-server is not installed', timeout: 120_000 }, async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const sshd = await startSshd();
  t.after(() => sshd.stop());
  const proxy = await startServeProcess(
    {
      workers: 2,
      admin: { bind: '127.0.0.1:0' },
      log: { level: 'info' },
      listeners: [
        { name: 'fixture', bind: '127.0.0.1:0', pool: 'fixture' },
        { name: 'sshd', bind: '127.0.0.1:0', pool: 'sshd' },
      ],
      pools: [
        { name: 'fixture', servers: [{ name: 'echo', address: `127.0.0.1:${echo.port}` }], handshake: { maxStartups: 8 }, healthCheck: { interval: '500ms' } },
        { name: 'sshd', servers: [{ name: 'sshd', address: `127.0.0.1:${sshd.port}` }], healthCheck: { interval: '500ms' } },
      ],
    },
    { startTimeoutMs: 60_000 },
  );
  t.after(() => proxy.kill());
  await proxy.waitForLog((line) => line.event === 'admin-listening', 30_000, 'admin endpoint');
  const adminPort = proxy.adminPort as number;

  // Ready once both workers answer and the primary's checks see both servers UP.
  await waitFor(async () => (await httpRequest(adminPort, '/readyz')).status === 200, { timeoutMs: 30_000, intervalMs: 200, description: '/readyz 200' });

  const status = async (): Promise<StatusBody> => JSON.parse((await httpRequest(adminPort, '/api/status')).body) as StatusBody;
  // The kernel picks the worker for each connection: keep making sessions (bounded)
  // until both workers have served some.
  let fixtureSessions = 0;
  for (let round = 0; round < 20; round += 1) {
    const batch = await Promise.all(
      Array.from({ length: 10 }, () =>
        rawExchange({ port: proxy.port('fixture'), send: CLIENT_IDENT, until: (data) => data.includes(CLIENT_IDENT), timeoutMs: 10_000 }),
      ),
    );
    for (const result of batch) assert.equal(result.outcome, 'matched', `echo through the proxy: ${result.outcome} ${String(result.error)}`);
    fixtureSessions += batch.length;
    const workers = (await status()).workers;
    if (workers.length === 2 && workers.every((worker) => worker.sessions > 0)) break;
  }
  const sshSessions = 2;
  const heldSessions = 1;
  for (let index = 0; index < sshSessions; index += 1) {
    const result = await runSsh({ ...sshd, port: proxy.port('sshd'), command: 'echo ok', timeoutMs: 20_000 });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'ok\n');
  }

  // The join to sshd's log with workers: the primary asks both, and the holder answers.
  const accepted = /Accepted publickey for \S+ from (\S+) port (\d+)/g;
  const seen = [...(await sshd.readLog()).matchAll(accepted)].length;
  const held = runSsh({ ...sshd, port: proxy.port('sshd'), command: 'sleep 2', timeoutMs: 20_000 });
  await sshd.waitForLog(new RegExp(`(?:${accepted.source}[^]*){${seen + 1}}`), 15_000);
  const [, address = '', port = ''] = [...(await sshd.readLog()).matchAll(accepted)][seen] ?? [];
  const lookup = await httpRequest(adminPort, `/api/session?address=${address}&port=${port}`);
  assert.equal(lookup.status, 200, lookup.body);
  assert.equal((JSON.parse(lookup.body) as { backendLocalPort: number }).backendLocalPort, Number(port));
  assert.equal((await held).code, 0);
  // ssh may exit before the worker has closed its session: once its line is logged, it is gone.
  await proxy.waitForLog((line) => line.event === 'session' && line.backendLocalPort === Number(port), 10_000, 'the held session ended');
  assert.equal((await httpRequest(adminPort, `/api/session?address=${address}&port=${port}`)).status, 404, 'every worker said no');

  const body = await status();
  assert.equal(body.workers.length, 2);
  const pids = new Set(body.workers.map((worker) => worker.pid));
  assert.equal(pids.size, 2, 'two worker processes');
  assert.ok(!pids.has(body.pid), 'the primary serves admin, workers serve sessions');
  for (const worker of body.workers) assert.ok(worker.sessions > 0, `worker ${worker.worker} (pid ${worker.pid}) served no session in ${fixtureSessions}`);
  assert.equal(body.workers.reduce((total, worker) => total + worker.sessions, 0), fixtureSessions + sshSessions + heldSessions);
  const fixturePool = body.pools.find((pool) => pool.name === 'fixture');
  assert.equal(fixturePool?.servers[0]?.state, 'UP');
  assert.equal(fixturePool?.servers[0]?.totalSessions, fixtureSessions);
  // Each worker holds its share of the handshake slots: together, the configured 8.
  assert.equal(fixturePool?.servers[0]?.handshakeSlots.limit, 8);

  // One scrape of the primary: every worker's sessions counted once.
  const metrics = await scrape(adminPort);
  assert.equal(metrics.value('sshproxy_sessions_total', { listener: 'fixture', result: 'spliced' }), fixtureSessions);
  assert.equal(metrics.value('sshproxy_sessions_total', { listener: 'sshd', result: 'spliced' }), sshSessions + heldSessions);
  assert.equal(metrics.value('sshproxy_attempts_total', { pool: 'fixture', server: 'echo', result: 'ok' }), fixtureSessions);
  // A server's state is the same in every worker, not added up.
  assert.equal(metrics.value('sshproxy_server_up', { pool: 'sshd', server: 'sshd' }), 1);
  assert.equal(metrics.find('sshproxy_build_info').length, 1);
  // Health checks run once, in the primary: checks counted there and only there.
  assert.ok((metrics.value('sshproxy_banner_latency_seconds_count', { pool: 'sshd', server: 'sshd', source: 'check' }) ?? 0) > 0);
  // Per-process metrics keep a worker label: the primary and both workers.
  const workersSeen = metrics.find('process_cpu_user_seconds_total').map((sample) => sample.labels.worker).sort();
  assert.deepEqual(workersSeen, ['1', '2', 'primary']);

  proxy.signal('SIGTERM');
  const { code } = await proxy.exited;
  assert.equal(code, 0);
});
