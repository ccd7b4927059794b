// Hot reload with `workers: 2`: SIGHUP to the primary, sessions held open and clients
// connecting in a loop across it; an invalid config rejected once; the new server
// set, listener and handshake-slot shares in /api/status; a worker forked after the
// reload runs the config in force (not the file on disk); a reload that cannot be
// applied (a port taken) fails with the reason and changes nothing.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { clientLoop, type ClientLoop } from '../fixtures/clients/client-loop.js';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { httpRequest, scrape } from '../fixtures/proxy/prometheus.js';
import { rawExchange } from '../fixtures/clients/raw-client.js';
import { startServeProcess, type ServeProcess } from '../fixtures/proxy/serve-process.js';
import { waitFor, waitUntilEvent } from '../fixtures/wait.js';

const CLIENT_IDENT = 'SSH-2.0-WorkersReloadTest_1.0\r\n';

interface StatusBody {
  readonly workers: readonly { readonly worker: number; readonly pid: number; readonly uptimeSeconds: number; readonly sessions: number }[];
  readonly listeners: readonly { readonly name: string; readonly listening: boolean }[];
  readonly pools: readonly {
    readonly name: string;
    readonly servers: readonly { readonly name: string; readonly state: string; readonly weight: number; readonly handshakeSlots: { readonly limit: number } }[];
  }[];
}

function config(servers: readonly { name: string; port: number; weight?: number }[], listeners: readonly string[], maxStartups: number): { listeners: { name: string; bind: string; pool: string }[]; [key: string]: unknown } {
  return {
    workers: 2,
    admin: { bind: '127.0.0.1:0' },
    log: { level: 'info' },
    timeouts: { drain: '5s' },
    listeners: listeners.map((name) => ({ name, bind: '127.0.0.1:0', pool: 'main' })),
    pools: [
      {
        name: 'main',
        handshake: { maxStartups },
        healthCheck: { interval: '500ms', rise: 1 },
        servers: servers.map((server) => ({ name: server.name, address: `127.0.0.1:${server.port}`, weight: server.weight ?? 1 })),
      },
    ],
  };
}

/** A client session held open: identification exchanged, then echoes checked on demand. */
async function holdSession(port: number): Promise<{ readonly banner: string; echo: (text: string) => Promise<boolean>; close: () => void }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  let received = '';
  const changed = new EventEmitter();
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
    changed.emit('change');
  });
  socket.on('close', () => changed.emit('change'));
  socket.write(CLIENT_IDENT);
  await waitUntilEvent(changed, 'change', () => received.includes(CLIENT_IDENT) || socket.destroyed, 10_000, 'held session echo');
  assert.ok(received.includes(CLIENT_IDENT), 'held session: identification echoed');
  const banner = received.slice(0, received.indexOf('\r\n'));
  return {
    banner,
    echo: async (text) => {
      const before = received.length;
      socket.write(text);
      await waitUntilEvent(changed, 'change', () => received.slice(before).includes(text) || socket.destroyed, 10_000, 'echo');
      return received.slice(before).includes(text);
    },
    close: () => socket.destroy(),
  };
}

/** Echo clients connecting in a loop until stopped; bounded in count and time. */
function echoClientLoop(port: () => number, maxIterations: number, maxMs: number): ClientLoop {
  return clientLoop(
    async () => {
      const result = await rawExchange({ port: port(), send: CLIENT_IDENT, until: (data) => data.includes(CLIENT_IDENT), timeoutMs: 10_000 });
      if (result.outcome === 'matched') return 'ok';
      if (result.error?.code === 'ECONNREFUSED') return 'refused';
      return `${result.outcome}:${result.error?.code ?? ''}`;
    },
    maxIterations,
    maxMs,
  );
}

const reloads = (proxy: ServeProcess, outcome: string): number => proxy.logs.filter((line) => line.event === 'config-reload' && line.outcome === outcome).length;

test('workers: 2, SIGHUP: held sessions and looping clients survive, invalid config rejected once, new config everywhere', { timeout: 120_000 }, async (t) => {
  const echoA = await startFixtureBackend('ssh-echo', { identification: 'SSH-2.0-EchoA_1.0' });
  t.after(() => echoA.close());
  const echoB = await startFixtureBackend('ssh-echo', { identification: 'SSH-2.0-EchoB_1.0' });
  t.after(() => echoB.close());
  const proxy = await startServeProcess(config([{ name: 'a', port: echoA.port }, { name: 'b', port: echoB.port }], ['main'], 8), { startTimeoutMs: 60_000 });
  t.after(() => proxy.kill());
  await proxy.waitForLog((line) => line.event === 'admin-listening', 30_000, 'admin endpoint');
  const adminPort = proxy.adminPort as number;
  const status = async (): Promise<StatusBody> => JSON.parse((await httpRequest(adminPort, '/api/status')).body) as StatusBody;
  await waitFor(async () => (await httpRequest(adminPort, '/readyz')).status === 200, { timeoutMs: 30_000, description: 'readyz 200' });
  // Both workers have their listener open (each logs it; the sockets are shared).
  await waitFor(() => proxy.logs.filter((line) => line.event === 'listening' && line.listener === 'main').length === 2, { timeoutMs: 30_000, description: 'two workers listening' });
  const mainPort = proxy.port('main');

  // Sessions held open, some on b (the server the reload removes).
  const held: Awaited<ReturnType<typeof holdSession>>[] = [];
  for (let index = 0; index < 8; index += 1) held.push(await holdSession(mainPort));
  t.after(() => {
    for (const session of held) session.close();
  });
  const onB = held.filter((session) => session.banner.startsWith('SSH-2.0-EchoB'));
  assert.ok(onB.length > 0, `some held sessions on b: ${held.map((session) => session.banner).join(', ')}`);

  const loop = echoClientLoop(() => mainPort, 2000, 60_000);
  const progressed = (more: number): Promise<void> => {
    const target = loop.stats.ok + loop.stats.refused + loop.stats.failed.length + more;
    return waitUntilEvent(loop.progress, 'tick', () => loop.stats.ok + loop.stats.refused + loop.stats.failed.length >= target, 30_000, `${more} more clients`);
  };
  await progressed(30);

  // 1. Remove b, reweight a, add a listener, change the handshake slots (7: 3 per worker of the 2 running).
  // `workers: 3` needs a restart: logged, the rest applied with the 2 workers running.
  await proxy.writeConfig({ ...config([{ name: 'a', port: echoA.port, weight: 3 }], ['main', 'extra'], 7), workers: 3 });
  proxy.signal('SIGHUP');
  const ok = await proxy.waitForLog((line) => line.event === 'config-reload' && line.outcome === 'ok', 15_000, 'reload ok');
  assert.equal(ok.workers, 2, 'applied in both workers');
  assert.deepEqual(ok.needRestart, ['workers']);
  await waitFor(() => proxy.logs.filter((line) => line.event === 'listening' && line.listener === 'extra').length === 2, { timeoutMs: 10_000, description: 'extra open in both workers' });
  // Both workers share one socket for the new listener (node:cluster hands out the primary's handle).
  const extraPorts = new Set(proxy.logs.filter((line) => line.event === 'listening' && line.listener === 'extra').map((line) => String(line.address)));
  assert.equal(extraPorts.size, 1, `one address for extra: ${[...extraPorts].join(', ')}`);
  await progressed(30);
  const bConnectionsAfterReload = echoB.connections;
  for (let index = 0; index < 10; index += 1) {
    const viaExtra = await rawExchange({ port: proxy.port('extra'), send: CLIENT_IDENT, until: (data) => data.includes(CLIENT_IDENT), timeoutMs: 10_000 });
    assert.equal(viaExtra.outcome, 'matched', 'extra listener serves');
    assert.ok(viaExtra.data.toString('latin1').startsWith('SSH-2.0-EchoA'), 'only a is left');
  }
  await progressed(30);
  assert.equal(echoB.connections, bConnectionsAfterReload, 'no new session went to the removed server b');

  // 2. An invalid config: rejected by the primary, logged once, old config kept.
  await proxy.writeConfig({ ...config([{ name: 'b', port: echoB.port }], ['main'], 8), listners: [] });
  proxy.signal('SIGHUP');
  await waitFor(() => reloads(proxy, 'invalid') === 1, { timeoutMs: 10_000, description: 'reload invalid' });
  await progressed(30);

  // 3. A config that cannot be applied (a new listener's port is taken): failed, with the
  // workers' reason, counted once; the old config stays in force everywhere.
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.after(() => squatter.close());
  const busyPort = (squatter.address() as net.AddressInfo).port;
  const busy = config([{ name: 'a', port: echoA.port }, { name: 'b', port: echoB.port }], ['main', 'extra'], 8);
  busy.listeners.push({ name: 'busy', bind: `127.0.0.1:${busyPort}`, pool: 'main' });
  await proxy.writeConfig(busy);
  proxy.signal('SIGHUP');
  const failed = await proxy.waitForLog((line) => line.event === 'config-reload' && line.outcome === 'failed', 15_000, 'reload failed');
  assert.match(String(failed.err), /worker \d+: .*EADDRINUSE/, 'the reason names the worker and the error');
  await progressed(30);

  await loop.stop();
  t.diagnostic(`across 3 reloads (1 ok, 1 invalid, 1 failed) with workers: 2: ${loop.stats.ok} clients, ${loop.stats.refused} refused, ${loop.stats.failed.length} failed`);
  assert.equal(loop.stats.refused, 0, 'no connection refused');
  assert.deepEqual(loop.stats.failed, [], 'every client got its echo');

  // The held sessions, including those on the removed server b, still work.
  for (const session of held) assert.ok(await session.echo('still-there\r\n'), `held session on ${session.banner} survived`);
  assert.ok(
    proxy.logs.some((line) => line.event === 'server-state' && line.server === 'b' && line.to === 'DRAINING'),
    'b went DRAINING in the workers holding its sessions',
  );

  // One outcome per reload: logged once (by the primary) and counted once in the merged scrape.
  assert.equal(reloads(proxy, 'ok'), 1);
  assert.equal(reloads(proxy, 'invalid'), 1);
  assert.equal(reloads(proxy, 'failed'), 1);
  const metrics = await scrape(adminPort);
  assert.equal(metrics.value('sshproxy_config_reloads_total', { outcome: 'ok' }), 1);
  assert.equal(metrics.value('sshproxy_config_reloads_total', { outcome: 'invalid' }), 1);
  assert.equal(metrics.value('sshproxy_config_reloads_total', { outcome: 'failed' }), 1);

  // /api/status: the new server set, weight, listener, slot shares recomputed (the failed reload changed nothing).
  const body = await status();
  const main = body.pools.find((pool) => pool.name === 'main');
  assert.deepEqual(main?.servers.map((server) => [server.name, server.weight]), [['a', 3]]);
  assert.equal(main?.servers[0]?.handshakeSlots.limit, 6, 'floor(7 / 2) per worker, summed');
  assert.deepEqual(body.listeners.map((listener) => [listener.name, listener.listening]), [['main', true], ['extra', true]]);

  // 4. A worker that dies is forked with the config in force, not the file on disk (the one that failed).
  // (Only a worker up for 5 s is forked again: younger, the primary takes it for a crash loop.)
  await waitFor(async () => (await status()).workers.every((worker) => worker.uptimeSeconds >= 6), { timeoutMs: 20_000, intervalMs: 500, description: 'workers up 6 s' });
  const victim = body.workers[0];
  assert.ok(victim);
  const listeningBefore = proxy.logs.filter((line) => line.event === 'listening').length;
  process.kill(victim.pid, 'SIGKILL');
  await proxy.waitForLog((line) => line.event === 'worker-exit', 10_000, 'worker exit');
  await waitFor(() => proxy.logs.filter((line) => line.event === 'listening').length === listeningBefore + 2, { timeoutMs: 30_000, description: 'new worker listening on main and extra' });
  await waitFor(async () => (await status()).workers.length === 2 && !(await status()).workers.some((worker) => worker.pid === victim.pid), {
    timeoutMs: 10_000,
    description: 'two workers, a new pid',
  });
  const after = await status();
  assert.equal(after.pools.find((pool) => pool.name === 'main')?.servers[0]?.handshakeSlots.limit, 6);
  for (const listener of ['main', 'extra']) {
    for (let index = 0; index < 10; index += 1) {
      const result = await rawExchange({ port: proxy.port(listener), send: CLIENT_IDENT, until: (data) => data.includes(CLIENT_IDENT), timeoutMs: 10_000 });
      assert.equal(result.outcome, 'matched', `${listener} after the refork`);
      assert.ok(result.data.toString('latin1').startsWith('SSH-2.0-EchoA'));
    }
  }

  for (const session of held) session.close();
  proxy.signal('SIGTERM');
  assert.equal((await proxy.exited).code, 0);
});
