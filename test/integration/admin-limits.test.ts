import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { httpRequest } from '../fixtures/proxy/prometheus.js';
import { startProxy } from '../fixtures/proxy/proxy.js';
import { rawExchange, untilLine } from '../fixtures/clients/raw-client.js';

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

test('at admin.maxConnections a probe is still answered: the oldest connection that sends nothing goes instead', { timeout: 30_000 }, async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const proxy = await startProxy({
    servers: [{ name: 'echo', host: echo.host, port: echo.port }],
    config: { admin: { bind: '127.0.0.1:0', maxConnections: 8, idleTimeout: '60s' } },
  });
  t.after(() => proxy.stop());
  const adminPort = proxy.runtime.adminPort ?? 0;
  const held: { socket: net.Socket; closed: Promise<void> }[] = [];
  // One at a time, so that accept order is known: the first is the oldest.
  for (let index = 0; index < 8; index += 1) held.push(await idleConnection(adminPort));
  t.after(() => {
    for (const { socket } of held) socket.destroy();
  });
  const answer = await httpRequest(adminPort, '/healthz');
  assert.equal(answer.status, 200, 'a liveness probe is answered at the limit');
  await held[0]?.closed;
  assert.ok(held[0]?.socket.destroyed, 'the oldest silent connection made room');
  assert.ok(held.slice(1).every(({ socket }) => !socket.destroyed), 'the others stay');
  const session = await rawExchange({ port: proxy.port, until: untilLine, timeoutMs: 5000 });
  assert.equal(session.outcome, 'matched', 'the data plane is not affected');
});

test('a flood of clients trickling header lines does not starve /healthz', { timeout: 60_000 }, async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const proxy = await startProxy({
    servers: [{ name: 'echo', host: echo.host, port: echo.port }],
    config: { admin: { bind: '127.0.0.1:0', maxConnections: 32 } },
    logLevel: 'info',
  });
  t.after(() => proxy.stop());
  const adminPort = proxy.runtime.adminPort ?? 0;
  // 200 slow clients, each a header line every 200 ms (bounded: 3 s of trickle).
  const slow: net.Socket[] = [];
  const timers: NodeJS.Timeout[] = [];
  t.after(() => {
    for (const timer of timers) clearInterval(timer);
    for (const socket of slow) socket.destroy();
  });
  for (let index = 0; index < 200; index += 1) {
    const socket = net.connect({ host: '127.0.0.1', port: adminPort });
    socket.on('error', () => {});
    socket.write('GET /metrics HTTP/1.1\r\n');
    let lines = 0;
    const timer = setInterval(() => {
      lines += 1;
      if (lines > 15 || socket.destroyed) clearInterval(timer);
      else socket.write(`X-Slow-${lines}: 1\r\n`);
    }, 200);
    timers.push(timer);
    slow.push(socket);
  }
  const statuses: number[] = [];
  for (let probe = 0; probe < 20; probe += 1) {
    statuses.push(await httpRequest(adminPort, '/healthz', { timeoutMs: 2000 }).then((reply) => reply.status, () => 0));
  }
  assert.deepEqual(statuses, Array.from({ length: 20 }, () => 200), 'every probe answered');
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
