// Per-source limits through the real listener: the proxy counts clients itself
// (every backend sees only the proxy's address), by the PROXY header source when
// there is one, and rejects with PER_SOURCE_LIMIT / PER_SOURCE_RATE.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { ProxyEventMap } from '../../src/events/bus.js';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { startProxy } from '../fixtures/proxy/proxy.js';
import { rawExchange, untilLine } from '../fixtures/clients/raw-client.js';
import { waitFor, waitUntilEvent } from '../fixtures/wait.js';

type Rejection = ProxyEventMap['connection-rejected'][0];

/** Opens a connection and resolves once the backend's identification arrived; the socket stays open. */
function openSession(port: number, send?: Buffer | string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = '';
    socket.on('error', reject);
    socket.on('connect', () => {
      if (send !== undefined) socket.write(send);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('\n')) resolve(socket);
    });
    socket.on('close', () => reject(new Error(`closed before the banner (got ${JSON.stringify(received)})`)));
  });
}

test('perSourceConnections: the third concurrent connection from one source is PER_SOURCE_LIMIT', async (t) => {
  const backend = await startFixtureBackend('ssh-sink');
  const proxy = await startProxy({
    servers: [{ name: 'sink', host: '127.0.0.1', port: backend.port }],
    config: { limits: { perSourceConnections: 2 } },
  });
  t.after(async () => {
    await proxy.stop();
    await backend.close();
  });
  const rejections: Rejection[] = [];
  proxy.runtime.events.on('connection-rejected', (rejection) => rejections.push(rejection));

  const first = await openSession(proxy.port);
  const second = await openSession(proxy.port);
  const third = await rawExchange({ port: proxy.port, until: untilLine, timeoutMs: 3000 });
  assert.equal(third.data.length, 0, 'the rejected client gets nothing');
  assert.notEqual(third.outcome, 'timeout');
  await waitUntilEvent(proxy.runtime.events, 'connection-rejected', () => rejections.length >= 1, 3000, 'rejection');
  assert.equal(rejections[0]?.reason, 'PER_SOURCE_LIMIT');
  assert.equal(rejections[0]?.client, '127.0.0.1');
  assert.equal(backend.connections, 2, 'the backend never saw the rejected client');
  await proxy.waitForLog((line) => line.event === 'rejected' && line.reason === 'PER_SOURCE_LIMIT', 3000);

  // A slot frees when a session ends.
  const closed = proxy.waitForSessions(1, 3000);
  first.destroy();
  await closed;
  const again = await openSession(proxy.port);
  assert.equal(backend.connections, 3);
  second.destroy();
  again.destroy();
});

test('perSourceRate: past the per-second budget new connections are PER_SOURCE_RATE', async (t) => {
  const backend = await startFixtureBackend('ssh-sink');
  const proxy = await startProxy({
    servers: [{ name: 'sink', host: '127.0.0.1', port: backend.port }],
    config: { limits: { perSourceRate: 3 } },
  });
  t.after(async () => {
    await proxy.stop();
    await backend.close();
  });
  const rejections: Rejection[] = [];
  proxy.runtime.events.on('connection-rejected', (rejection) => rejections.push(rejection));
  const outcomes: number[] = [];
  for (let index = 0; index < 6; index += 1) {
    const result = await rawExchange({ port: proxy.port, until: untilLine, timeoutMs: 3000 });
    outcomes.push(result.data.length > 0 ? 1 : 0);
  }
  // 6 connections in well under a second: 3 tokens, refilled at 3/s.
  const admitted = outcomes.reduce((sum, value) => sum + value, 0);
  assert.ok(admitted >= 3 && admitted <= 4, `admitted ${admitted} of 6: ${outcomes.join('')}`);
  assert.ok(rejections.length >= 2);
  assert.ok(rejections.every((rejection) => rejection.reason === 'PER_SOURCE_RATE'));
  assert.equal(backend.connections, admitted);
});

test('behind a load balancer the limit applies per header source, IPv6 by /64', async (t) => {
  const backend = await startFixtureBackend('ssh-sink');
  const proxy = await startProxy({
    servers: [{ name: 'sink', host: '127.0.0.1', port: backend.port }],
    listener: { proxyProtocol: { accept: 'v1', trusted: ['127.0.0.1/32'] } },
    config: { limits: { perSourceConnections: 1, perSourceIpv6Prefix: 64 } },
  });
  t.after(async () => {
    await proxy.stop();
    await backend.close();
  });
  const rejections: Rejection[] = [];
  proxy.runtime.events.on('connection-rejected', (rejection) => rejections.push(rejection));
  const header = (family: string, source: string, destination: string): string => `PROXY ${family} ${source} ${destination} 40000 22\r\n`;

  const sockets = [
    await openSession(proxy.port, header('TCP4', '192.0.2.10', '10.0.0.1')),
    await openSession(proxy.port, header('TCP4', '192.0.2.11', '10.0.0.1')),
    await openSession(proxy.port, header('TCP6', '2001:db8:0:1::5', '2001:db8::1')),
    await openSession(proxy.port, header('TCP6', '2001:db8:0:2::5', '2001:db8::1')),
  ];
  assert.equal(backend.connections, 4, 'four sources, one connection each, all through the same peer');

  const sameV4 = await rawExchange({ port: proxy.port, send: header('TCP4', '192.0.2.10', '10.0.0.1'), until: untilLine, timeoutMs: 3000 });
  const sameSlash64 = await rawExchange({ port: proxy.port, send: header('TCP6', '2001:db8:0:1:ffff::9', '2001:db8::1'), until: untilLine, timeoutMs: 3000 });
  assert.equal(sameV4.data.length, 0);
  assert.equal(sameSlash64.data.length, 0);
  await waitUntilEvent(proxy.runtime.events, 'connection-rejected', () => rejections.length >= 2, 3000, 'two rejections');
  assert.deepEqual(
    rejections.map((rejection) => [rejection.reason, rejection.client]),
    [
      ['PER_SOURCE_LIMIT', '192.0.2.10'],
      ['PER_SOURCE_LIMIT', '2001:db8:0:1:ffff::9'],
    ],
  );
  assert.equal(backend.connections, 4);
  for (const socket of sockets) socket.destroy();
});

test('PENALIZED: a penalised source gets sshd\'s line; its lingering refusals count against limits.maxConnections, never past it', async (t) => {
  const backend = await startFixtureBackend('ssh-echo');
  t.after(() => backend.close());
  // One abandoned connection (noauth) of 20 s is past min: penalised at once.
  const proxy = await startProxy({ servers: [{ name: 'echo', host: backend.host, port: backend.port }], config: { penalties: { noauth: '20s' }, limits: { maxConnections: 5 } } });
  t.after(() => proxy.stop());
  const rejections: Rejection[] = [];
  proxy.runtime.events.on('connection-rejected', (rejection) => rejections.push(rejection));
  const scout = net.connect({ host: '127.0.0.1', port: proxy.port });
  scout.on('error', () => {});
  await new Promise((resolve) => scout.once('connect', resolve));
  scout.destroy();
  const [abandoned] = await proxy.waitForSessions(1, 5000);
  assert.equal(abandoned?.auth, 'noauth');
  assert.equal(abandoned?.penaltyCharged, true);

  const refused = await rawExchange({ port: proxy.port, until: untilLine, timeoutMs: 5000 });
  assert.equal(refused.data.toString(), 'Not allowed at this time\r\n');
  // A flood that reads nothing and lingers: each refusal holds its place for up to a second.
  const flood = Array.from({ length: 12 }, () => {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port });
    socket.on('error', () => {});
    return socket;
  });
  t.after(() => flood.forEach((socket) => socket.destroy()));
  await waitUntilEvent(proxy.runtime.events, 'connection-rejected', () => rejections.length >= 13, 5000, '13 rejections');
  const reasons = rejections.slice(1).map((rejection) => rejection.reason);
  assert.ok(reasons.filter((reason) => reason === 'PENALIZED').length <= 5, reasons.join(','));
  assert.ok(reasons.includes('LIMIT_REACHED'), 'past maxConnections the rest are cut at accept');
  assert.ok(proxy.runtime.server.activeConnections <= 5);
  flood.forEach((socket) => socket.destroy());
  // No event marks a place's release: look again, bounded.
  await waitFor(() => proxy.runtime.server.activeConnections === 0, { timeoutMs: 5000, description: 'every place released once the sockets are gone' });
});
