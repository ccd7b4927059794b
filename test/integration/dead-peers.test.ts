// Peers that vanish without a FIN or RST, and peers that stop reading: the proxy must
// notice both and free the session, as a bare sshd would (TCPKeepAlive, its own timeouts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { test } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { createLinkedNamespace, netnsUnavailable } from '../fixtures/net/netns.js';
import { startProxy } from '../fixtures/proxy/proxy.js';


test('a client whose link is cut (no FIN, no RST) is noticed by TCP keepalive: CLIENT_LOST, backend closed', { skip: netnsUnavailable() ?? false, timeout: 60_000 }, async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const ns = createLinkedNamespace();
  t.after(() => ns.remove());
  const proxy = await startProxy({
    servers: [{ name: 'echo', host: echo.host, port: echo.port }],
    pool: { handshake: { endsAt: 'splice' } },
    listener: { bind: `${ns.hostAddress}:0` },
    config: { timeouts: { tcpKeepalive: '1s' } },
  });
  t.after(() => proxy.stop());

  // The client lives in the namespace: it gets the banner and the echo of its own line
  // (so nothing is left in flight: keepalive probes only an idle connection), says so, waits.
  const script = `
    const socket = require('node:net').connect({ host: ${JSON.stringify(ns.hostAddress)}, port: ${proxy.port} });
    socket.on('error', () => {});
    socket.write('SSH-2.0-LinkCutTest_1.0\\r\\n');
    let seen = '';
    socket.on('data', (chunk) => {
      seen += chunk.toString();
      // The kernel acknowledges what was read within its delayed-ACK time (40 ms): give it
      // that before the cut, or the proxy retransmits (for minutes) instead of probing.
      if (seen.includes('EchoFixture') && seen.includes('LinkCutTest')) setTimeout(() => process.stdout.write('READY\\n'), 200);
    });
    setTimeout(() => process.exit(0), 50_000);
  `;
  const [command = 'ip', ...args] = [...ns.exec, process.execPath, '-e', script];
  const client = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => client.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    client.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('READY') && resolve());
    client.on('exit', () => reject(new Error('the namespace client exited before its banner')));
  });
  assert.equal(echo.connections, 1);

  ns.cutLink();
  const [summary] = await proxy.waitForSessions(1, 40_000);
  assert.equal(summary?.reason, 'CLIENT_LOST', 'keepalive probes went unanswered');
  assert.equal(summary?.client, ns.clientAddress);
  await echo.waitForClosed(1, 5_000);
  assert.equal(proxy.runtime.server.activeConnections, 0);
});

test('a backend that stops reading cannot hold a session forever: the client leaves, the write stall ends it (SERVER_WRITE_STALL)', { timeout: 30_000 }, async (t) => {
  const stall = await startFixtureBackend('ssh-stall');
  t.after(() => stall.close());
  const proxy = await startProxy({
    servers: [{ name: 'stall', host: stall.host, port: stall.port }],
    pool: { handshake: { endsAt: 'splice' } },
    config: { timeouts: { writeStall: '1s' } },
  });
  t.after(() => proxy.stop());

  const client = net.connect({ host: '127.0.0.1', port: proxy.port });
  client.on('error', () => {});
  t.after(() => client.destroy());
  await new Promise<void>((resolve) => client.once('data', () => resolve()));
  // 32 MiB toward a backend that reads nothing: the kernels' buffers fill, then the proxy's
  // write blocks and it pauses the client. The client's FIN queues behind its unsent bytes
  // and never reaches the proxy: before writeStall, this session was held forever.
  client.write(Buffer.alloc(32 * 1024 * 1024, 0x61));
  client.end();
  const [summary] = await proxy.waitForSessions(1, 20_000);
  assert.equal(summary?.reason, 'SERVER_WRITE_STALL');
  assert.equal(proxy.runtime.server.activeConnections, 0, 'the session and its budget place are gone');
  const server = proxy.runtime.server.pools.get('main')?.servers[0];
  assert.equal(server?.activeSessions, 0, 'and its hold on the server');
  // (The fixture itself reads nothing, so it cannot see the proxy's reset: a hung sshd child would not either.)
});


test('timeouts.clientIdle ends a spliced session with no traffic either way (IDLE_TIMEOUT); traffic in either direction keeps it', { timeout: 30_000 }, async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const proxy = await startProxy({
    servers: [{ name: 'echo', host: echo.host, port: echo.port }],
    pool: { handshake: { endsAt: 'splice' } },
    config: { timeouts: { clientIdle: '600ms' } },
  });
  t.after(() => proxy.stop());

  const client = net.connect({ host: '127.0.0.1', port: proxy.port });
  client.on('error', () => {});
  t.after(() => client.destroy());
  const closed = new Promise<number>((resolve) => client.on('close', () => resolve(performance.now())));
  let echoed = 0;
  let lastByteAt = 0;
  client.on('data', (chunk: Buffer) => {
    echoed += chunk.length;
    lastByteAt = performance.now();
  });
  await new Promise<void>((resolve) => client.once('data', () => resolve()));
  // Traffic every 200 ms for 1.4 s, longer than the idle timeout: the session stays.
  for (let i = 0; i < 7; i += 1) {
    client.write('SSH-2.0-IdleTest_1.0\r\n');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.equal(client.destroyed, false, 'a session with traffic is not idle');
  assert.ok(echoed > 0, 'the echo came back through the splice');
  const [summary] = await proxy.waitForSessions(1, 10_000);
  const closedAt = await closed;
  assert.equal(summary?.reason, 'IDLE_TIMEOUT');
  // The last byte either way is the echo of the last line.
  assert.ok(closedAt - lastByteAt >= 590, `closed ${Math.round(closedAt - lastByteAt)} ms after the last byte, not before the idle timeout`);
});
