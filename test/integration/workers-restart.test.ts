// Worker deaths: counters stay monotonic, a crashed worker is replaced (with a backoff
// when it keeps dying at start), and a sibling's crash never stops the healthy worker.
import assert from 'node:assert/strict';
import { MIN_HEALTHY_UPTIME_MS } from '../../src/cluster/restart-policy.js';
import { test } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { httpRequest, scrape } from '../fixtures/proxy/prometheus.js';
import { rawExchange } from '../fixtures/clients/raw-client.js';
import { startServeProcess } from '../fixtures/proxy/serve-process.js';
import { waitFor } from '../fixtures/wait.js';

const CLIENT_IDENT = 'SSH-2.0-RestartTest_1.0\r\n';

interface StatusBody {
  readonly workers: readonly { readonly worker: number; readonly pid: number }[];
}

test('workers: a killed worker is replaced; two deaths in quick succession do not stop the proxy; sessions_total never goes backwards', { timeout: 120_000 }, async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const proxy = await startServeProcess(
    {
      workers: 2,
      admin: { bind: '127.0.0.1:0' },
      log: { level: 'info' },
      listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
      pools: [{ name: 'main', healthCheck: { interval: '500ms' }, handshake: { endsAt: 'splice' }, servers: [{ name: 'echo', address: `127.0.0.1:${echo.port}` }] }],
    },
    { startTimeoutMs: 60_000 },
  );
  t.after(() => proxy.kill());
  await proxy.waitForLog((line) => line.event === 'admin-listening', 30_000, 'admin endpoint');
  const adminPort = proxy.adminPort as number;
  const workers = async (): Promise<StatusBody['workers']> => (JSON.parse((await httpRequest(adminPort, '/api/status')).body) as StatusBody).workers;
  await waitFor(async () => (await workers()).length === 2, { timeoutMs: 30_000, description: 'both workers answer' });
  const spliced = async (): Promise<number> => (await scrape(adminPort)).value('sshproxy_sessions_total', { listener: 'ssh', result: 'spliced' }) ?? 0;
  const session = async (): Promise<void> => {
    const result = await rawExchange({ port: proxy.port('ssh'), send: CLIENT_IDENT, until: (data) => data.includes(CLIENT_IDENT), timeoutMs: 10_000 });
    assert.equal(result.outcome, 'matched', `a session through the proxy: ${result.outcome}`);
  };

  for (let index = 0; index < 20; index += 1) await session();
  const before = await spliced();
  assert.equal(before, 20);

  // Kill both workers, one right after the other (well inside 5 s): the proxy stays up.
  const [first, second] = await workers();
  assert.ok(first && second);
  process.kill(first.pid, 'SIGKILL');
  process.kill(second.pid, 'SIGKILL');
  await proxy.waitForLog((line) => line.event === 'worker-exit' && line.pid === second.pid, 10_000, 'the second worker exit');
  await waitFor(async () => {
    const now = await workers();
    return now.length === 2 && now.every((worker) => worker.pid !== first.pid && worker.pid !== second.pid);
  }, { timeoutMs: 30_000, description: 'two new workers' });
  assert.equal(proxy.child.exitCode, null, 'the primary is still running');
  assert.ok((await spliced()) >= before, 'sessions_total kept what the dead workers counted');

  // A replacement dies right after its start (what a crash loop looks like): it is
  // replaced after a backoff, and its healthy sibling is not stopped.
  const [fresh, sibling] = await workers();
  assert.ok(fresh && sibling);
  process.kill(fresh.pid, 'SIGKILL');
  const quick = await proxy.waitForLog((line) => line.event === 'worker-exit' && line.pid === fresh.pid, 10_000, 'the quick exit');
  assert.equal(quick.action, 'restart');
  // On a loaded machine a worker can take longer than MIN_HEALTHY_UPTIME_MS to come up and be
  // killed: then it ran long enough to count as healthy, and is replaced at once.
  if (Number(quick.uptimeMs) < MIN_HEALTHY_UPTIME_MS) assert.ok(Number(quick.delayMs) > 0, 'a failed start is replaced after a backoff');
  else assert.equal(quick.delayMs, 0, `ran ${String(quick.uptimeMs)} ms: replaced at once`);
  await waitFor(async () => (await workers()).length === 2, { timeoutMs: 30_000, description: 'the replacement' });
  assert.ok((await workers()).some((worker) => worker.pid === sibling.pid), 'the sibling kept running');
  assert.equal(proxy.child.exitCode, null);

  for (let index = 0; index < 10; index += 1) await session();
  assert.ok((await spliced()) >= before + 10, 'and counts on from there');
  const exits = proxy.logs.filter((line) => line.event === 'worker-exit');
  assert.equal(exits.length, 3);
  assert.ok(exits.every((line) => line.action === 'restart'), 'each dead worker was replaced');
});
