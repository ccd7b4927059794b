import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startFixtureBackend } from '../fixtures/hostile-backends.js';
import { httpRequest } from '../fixtures/prometheus.js';
import { startProxy } from '../fixtures/proxy.js';
import { rawExchange, untilLine } from '../fixtures/raw-client.js';

/** Opens a connection that sends nothing; resolves when it is open, records when the server closes it. */
function idleConnection(port: number): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const closed = new Promise<void>((done) => socket.on('close', () => done()));
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('error', reject);
  });
}

test('past admin.maxConnections a new admin connection is closed at accept; below it the endpoint answers', { timeout: 30_000 }, async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const proxy = await startProxy({
    servers: [{ name: 'echo', host: echo.host, port: echo.port }],
    config: { admin: { bind: '127.0.0.1:0', maxConnections: 8, idleTimeout: '60s' } },
  });
  t.after(() => proxy.stop());
  const adminPort = proxy.runtime.adminPort ?? 0;
  const held = await Promise.all(Array.from({ length: 8 }, () => idleConnection(adminPort)));
  t.after(() => {
    for (const { socket } of held) socket.destroy();
  });
  // Held ones are accepted before the next: the server's count is at its limit.
  await httpRequest(adminPort, '/healthz').then(
    (answer) => assert.fail(`a ninth connection was served (${answer.status})`),
    (error: Error) => assert.match(error.message, /ECONNRESET|socket hang up/),
  );
  const session = await rawExchange({ port: proxy.port, until: untilLine, timeoutMs: 5000 });
  assert.equal(session.outcome, 'matched', 'the data plane is not affected');
  for (const { socket } of held) socket.destroy();
  await Promise.all(held.map(({ closed }) => closed));
  let answered: number | undefined;
  for (let attempt = 0; attempt < 50 && answered === undefined; attempt += 1) {
    // The server learns of the closes asynchronously; bounded retries, each a real request.
    answered = await httpRequest(adminPort, '/healthz').then((answer) => answer.status, () => undefined);
  }
  assert.equal(answered, 200, 'the endpoint answers once connections are free');
});

test('an idle admin connection is closed by admin.idleTimeout', { timeout: 30_000 }, async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const proxy = await startProxy({
    servers: [{ name: 'echo', host: echo.host, port: echo.port }],
    config: { admin: { bind: '127.0.0.1:0', idleTimeout: '300ms' } },
  });
  t.after(() => proxy.stop());
  const idle = await Promise.all(Array.from({ length: 5 }, () => idleConnection(proxy.runtime.adminPort ?? 0)));
  t.after(() => {
    for (const { socket } of idle) socket.destroy();
  });
  await Promise.all(idle.map(({ closed }) => closed));
  assert.ok(idle.every(({ socket }) => socket.destroyed), 'the server closed every idle connection');
});

test('the admin endpoint\'s connections are kept out of the data plane\'s descriptor budget', async () => {
  const { capConnections, FD_RESERVE } = await import('../../src/net/fd-limit.js');
  assert.equal(capConnections(10_000, 512, FD_RESERVE + 32).effective, Math.floor((512 - FD_RESERVE - 32) / 2));
});
