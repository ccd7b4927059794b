// Graceful drain of a real `serve` process with real SSH sessions (ssh2 client →
// proxy → OpenSSH sshd): SIGTERM turns /readyz 503 at once and closes the
// listener, open sessions finish their work, the process exits 0 as soon as they
// are gone or at timeouts.drain; a second SIGTERM exits at once.
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import { connectSsh2, execSsh2, type Ssh2Connection } from '../fixtures/clients/clients.js';
import { startServeProcess, type ServeProcess } from '../fixtures/proxy/serve-process.js';
import { sshdAvailable, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';
import { waitFor } from '../fixtures/wait.js';

const skip = sshdAvailable() ? false : 'OpenSSH sshd is not installed';

async function setup(t: { after: (fn: () => Promise<void>) => void }, drain: string): Promise<{ sshd: SshdHandle; proxy: ServeProcess }> {
  const sshd = await startSshd();
  t.after(() => sshd.stop());
  const proxy = await startServeProcess({
    listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
    pools: [{ name: 'main', healthCheck: { interval: '500ms', rise: 1 }, servers: [{ name: 'sshd', address: `127.0.0.1:${sshd.port}` }] }],
    timeouts: { drain },
    admin: { bind: '127.0.0.1:0' },
    log: { level: 'info' },
  });
  t.after(() => proxy.kill());
  await waitFor(async () => (await readyz(proxy)) === 200, { timeoutMs: 10_000, description: '/readyz 200' });
  return { sshd, proxy };
}

async function readyz(proxy: ServeProcess): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${proxy.adminPort}/readyz`);
  await response.arrayBuffer();
  return response.status;
}

function connectRefused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}

async function openSessions(proxy: ServeProcess, sshd: SshdHandle, count: number): Promise<Ssh2Connection[]> {
  const connections: Ssh2Connection[] = [];
  for (let index = 0; index < count; index += 1) {
    connections.push(await connectSsh2({ host: '127.0.0.1', port: proxy.port('ssh'), user: sshd.user, identityFile: sshd.identityFile }));
  }
  return connections;
}

test('SIGTERM: /readyz 503 at once, no new connections, open ssh sessions finish, exit 0 when they are done', { skip, timeout: 60_000 }, async (t) => {
  const { sshd, proxy } = await setup(t, '20s');
  const connections = await openSessions(proxy, sshd, 3);
  t.after(async () => {
    for (const connection of connections) await connection.close();
  });
  const running = connections.map((connection) => execSsh2(connection.client, 'sleep 2; echo finished', { timeoutMs: 20_000 }));

  proxy.signal('SIGTERM');
  await proxy.waitForLog((line) => line.event === 'shutdown', 5000, 'draining log line');
  assert.equal(await readyz(proxy), 503, '/readyz turns 503 as soon as the drain starts');
  assert.equal(await connectRefused(proxy.port('ssh')), 'ECONNREFUSED', 'the listener is closed');

  const results = await Promise.all(running);
  for (const result of results) assert.deepEqual([result.code, result.stdout], [0, 'finished\n'], 'commands started before SIGTERM complete');
  // The sessions themselves keep working: a new channel on an existing connection.
  const again = await execSsh2((connections[0] as Ssh2Connection).client, 'echo still-here', { timeoutMs: 10_000 });
  assert.equal(again.stdout, 'still-here\n');

  for (const connection of connections) await connection.close();
  const exit = await proxy.exited;
  assert.deepEqual(exit, { code: 0, signal: null });
  const sessions = proxy.logs.filter((line) => line.event === 'session');
  assert.equal(sessions.length, 3);
  // Ended by the peers (whichever closed first), not by the 20 s drain timer (that would be DRAIN_TIMEOUT).
  assert.ok(sessions.every((line) => line.spliced === true && ['CLIENT_CLOSED', 'SERVER_CLOSED'].includes(String(line.reason))), JSON.stringify(sessions.map((line) => line.reason)));
  assert.ok(proxy.logs.some((line) => line.event === 'shutdown' && line.msg === 'stopped'));
});

test('SIGTERM: sessions still open at timeouts.drain are closed (DRAIN_TIMEOUT) and the process exits 0', { skip, timeout: 60_000 }, async (t) => {
  const { sshd, proxy } = await setup(t, '1500ms');
  const connections = await openSessions(proxy, sshd, 2);
  t.after(async () => {
    for (const connection of connections) await connection.close();
  });
  const running = connections.map((connection) =>
    execSsh2(connection.client, 'sleep 30; echo never', { timeoutMs: 40_000 }).catch((error: unknown) => error),
  );
  const signalledAt = performance.now();
  proxy.signal('SIGTERM');
  const exit = await proxy.exited;
  const elapsedMs = performance.now() - signalledAt;
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.ok(elapsedMs >= 1400, `not before the drain (${Math.round(elapsedMs)}ms)`);
  const results = await Promise.all(running);
  for (const result of results) assert.ok(!(typeof result === 'object' && result && 'stdout' in result && result.stdout === 'never\n'));
  const sessions = proxy.logs.filter((line) => line.event === 'session');
  assert.deepEqual(sessions.map((line) => line.reason), ['DRAIN_TIMEOUT', 'DRAIN_TIMEOUT']);
});

test('a second SIGTERM exits at once', { skip, timeout: 60_000 }, async (t) => {
  const { sshd, proxy } = await setup(t, '30s');
  const connections = await openSessions(proxy, sshd, 1);
  t.after(async () => {
    for (const connection of connections) await connection.close();
  });
  proxy.signal('SIGTERM');
  await proxy.waitForLog((line) => line.event === 'shutdown', 5000, 'draining log line');
  proxy.signal('SIGTERM');
  const exit = await proxy.exited;
  // A drain would have ended in 30 s with exit 0 and the session as DRAIN_TIMEOUT.
  assert.equal(exit.code, 1);
  assert.ok(!proxy.logs.some((line) => line.event === 'session' && line.reason === 'DRAIN_TIMEOUT'), 'the drain did not run out: the second signal cut it');
  assert.ok(proxy.logs.some((line) => line.event === 'shutdown' && /second signal/.test(line.msg)));
});

test('timeouts.shutdownGrace: after SIGTERM /readyz is 503 at once, yet connections arriving within the grace are served; then the listener closes', { timeout: 60_000 }, async (t) => {
  const { startFixtureBackend } = await import('../fixtures/backends/hostile-backends.js');
  const { readFirstLine } = await import('../fixtures/clients/raw-client.js');
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const proxy = await startServeProcess({
    listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
    pools: [{ name: 'main', healthCheck: { interval: '500ms', rise: 1 }, servers: [{ name: 'echo', address: `127.0.0.1:${echo.port}` }] }],
    timeouts: { drain: '5s', shutdownGrace: '3s' },
    admin: { bind: '127.0.0.1:0' },
    log: { level: 'info' },
  });
  t.after(() => proxy.kill());
  await waitFor(async () => (await readyz(proxy)) === 200, { timeoutMs: 10_000, description: '/readyz 200' });
  proxy.signal('SIGTERM');
  const shutdown = await proxy.waitForLog((line) => line.event === 'shutdown', 5000, 'the shutdown line');
  assert.equal(shutdown.graceMs, 3000);
  assert.equal(await readyz(proxy), 503, 'not ready at once, so the endpoint is removed');
  // A client that the load balancer still sends here, inside the grace: served.
  assert.equal(await readFirstLine('127.0.0.1', proxy.port('ssh'), 5000), 'SSH-2.0-EchoFixture_1.0');
  await proxy.waitForLog((line) => line.event === 'listener-closed', 10_000, 'the listener closing after the grace');
  assert.equal(await connectRefused(proxy.port('ssh')), 'ECONNREFUSED', 'after the grace: no new connections');
  assert.deepEqual(await proxy.exited, { code: 0, signal: null });
});

test('with workers a second SIGTERM aborts the drain and the service exits 1, as a single process does', { timeout: 60_000 }, async (t) => {
  const { startFixtureBackend } = await import('../fixtures/backends/hostile-backends.js');
  const backend = await startFixtureBackend('ssh-sink');
  t.after(() => backend.close());
  const proxy = await startServeProcess({
    listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
    pools: [{ name: 'main', healthCheck: { enabled: false }, servers: [{ name: 'a', address: `127.0.0.1:${backend.port}` }] }],
    timeouts: { drain: '30s' },
    workers: 2,
  });
  t.after(() => proxy.kill());
  // A spliced session that would hold the drain for its whole 30 s.
  const client = net.connect({ host: '127.0.0.1', port: proxy.port('ssh') });
  client.on('error', () => {});
  t.after(() => client.destroy());
  await once(client, 'data');
  client.write('SSH-2.0-held\r\n');
  await backend.waitForBytes(0, 14, 10_000);
  proxy.signal('SIGTERM');
  await proxy.waitForLog((line) => line.event === 'shutdown' && line.msg === 'stopping workers', 5000, 'stopping workers');
  proxy.signal('SIGTERM');
  const exit = await proxy.exited;
  assert.equal(exit.code, 1, 'an aborted drain is not a clean stop');
  assert.ok(proxy.logs.some((line) => line.event === 'shutdown' && /second signal/.test(line.msg)));
});
