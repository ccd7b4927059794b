// A changing fleet with `workers: 2` (issue 26): the primary looks the DNS set up once and
// sends it to every worker, and an operator's drain through the admin API is applied by
// every worker and answered once.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { dnsmasqSkip, startDnsmasq } from '../fixtures/backends/dnsmasq.js';
import { httpRequest } from '../fixtures/proxy/prometheus.js';
import { rawExchange } from '../fixtures/clients/raw-client.js';
import { startServeProcess } from '../fixtures/proxy/serve-process.js';
import { sshdAvailable, startSshd } from '../fixtures/sshd/sshd.js';
import { freePort, waitFor } from '../fixtures/wait.js';

const CLIENT_IDENT = 'SSH-2.0-WorkersFleetTest_1.0\r\n';

interface StatusBody {
  readonly workers: readonly { readonly sessions: number }[];
  readonly pools: readonly { readonly servers: readonly { readonly name: string; readonly state: string; readonly totalSessions: number | null }[] }[];
}

test('workers: 2 share the primary\'s DNS set, and a drain reaches both', { skip: dnsmasqSkip() || (sshdAvailable() ? false : 'OpenSSH server is not installed'), timeout: 120_000 }, async (t) => {
  const port = await freePort();
  const sshds = [await startSshd({ listenAddress: '127.0.0.1', port }), await startSshd({ listenAddress: '127.0.0.2', port })];
  t.after(async () => {
    for (const sshd of sshds) await sshd.stop();
  });
  const dns = await startDnsmasq({ hosts: { 'fleet.test': ['127.0.0.1', '127.0.0.2'] } });
  t.after(() => dns.close());
  const dir = await mkdtemp(path.join(tmpdir(), 'sbp-fleet-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'token'), 'fleet-token\n');
  const proxy = await startServeProcess(
    {
      workers: 2,
      admin: { bind: '127.0.0.1:0', tokenFile: path.join(dir, 'token') },
      log: { level: 'info' },
      dns: { resolvers: [dns.resolver], timeout: '500ms', attempts: 1 },
      listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
      pools: [{ name: 'main', verify: 'kexinit', healthCheck: { interval: '500ms' }, servers: [{ name: 'fleet', address: `fleet.test:${port}` }] }],
    },
    { startTimeoutMs: 60_000 },
  );
  t.after(() => proxy.kill());
  await proxy.waitForLog((line) => line.event === 'admin-listening', 30_000, 'admin endpoint');
  const adminPort = proxy.adminPort as number;
  await waitFor(async () => (await httpRequest(adminPort, '/readyz')).status === 200, { timeoutMs: 30_000, intervalMs: 200, description: 'ready' });
  const status = async (): Promise<StatusBody> => JSON.parse((await httpRequest(adminPort, '/api/status')).body) as StatusBody;
  assert.deepEqual((await status()).pools[0]?.servers.map((server) => server.name), ['fleet/127.0.0.1', 'fleet/127.0.0.2']);

  const sessions = async (count: number): Promise<void> => {
    const batch = await Promise.all(Array.from({ length: count }, () => rawExchange({ port: proxy.port('ssh'), send: CLIENT_IDENT, until: (data) => data.includes('SSH-2.0-OpenSSH'), timeoutMs: 10_000 })));
    for (const result of batch) assert.equal(result.outcome, 'matched', `an sshd banner through the proxy: ${result.outcome}`);
  };
  // Both workers serve sessions to the set's servers (the kernel picks the worker: bounded rounds).
  for (let round = 0; round < 20; round += 1) {
    await sessions(10);
    if ((await status()).workers.every((worker) => worker.sessions > 0)) break;
  }
  assert.ok((await status()).workers.every((worker) => worker.sessions > 0), 'both workers served');

  const drain = await httpRequest(adminPort, '/api/server/state', {
    method: 'POST',
    headers: { Authorization: 'Bearer fleet-token', 'Content-Type': 'application/json' },
    body: JSON.stringify({ pool: 'main', server: 'fleet/127.0.0.1', state: 'drain' }),
  });
  assert.equal(drain.status, 200, drain.body);
  assert.deepEqual(JSON.parse(drain.body).workers, { applied: 2, of: 2 });
  const before = (await status()).pools[0]?.servers.find((server) => server.name === 'fleet/127.0.0.1')?.totalSessions ?? 0;
  await sessions(20);
  const after = await status();
  assert.equal(after.pools[0]?.servers.find((server) => server.name === 'fleet/127.0.0.1')?.state, 'DRAINING');
  assert.equal(after.pools[0]?.servers.find((server) => server.name === 'fleet/127.0.0.1')?.totalSessions ?? 0, before, 'no worker sent a new session to the drained server');
});
