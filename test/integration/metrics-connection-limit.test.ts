import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { httpRequest, scrape } from '../fixtures/proxy/prometheus.js';
import { startProxy } from '../fixtures/proxy/proxy.js';
import { untilEvent } from '../fixtures/proxy/proxy-wait.js';
import { rawExchange } from '../fixtures/clients/raw-client.js';

const SINK_IDENT = 'SSH-2.0-SinkFixture_1.0\r\n';

/** Connects and resolves once the backend's identification has come through the proxy; the socket stays open. */
function openSession(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no banner within 5s'));
    }, 5_000);
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received === SINK_IDENT) {
        clearTimeout(timer);
        resolve(socket);
      }
    });
  });
}

test('the admin endpoint answers while the data plane is at its connection limit', async (t) => {
  const sink = await startFixtureBackend('ssh-sink');
  t.after(() => sink.close());
  const limit = 3;
  const proxy = await startProxy({
    servers: [{ name: 'sink', host: sink.host, port: sink.port }],
    config: { admin: { bind: '127.0.0.1:0' }, limits: { maxConnections: limit } },
  });
  t.after(() => proxy.stop());

  const held: net.Socket[] = [];
  t.after(() => {
    for (const socket of held) socket.destroy();
  });
  for (let index = 0; index < limit; index += 1) held.push(await openSession(proxy.port));

  // One more client is refused at accept...
  const refused = await rawExchange({ port: proxy.port, timeoutMs: 3_000 });
  assert.notEqual(refused.outcome, 'timeout');
  assert.equal(refused.data.length, 0);
  await untilEvent(proxy, 'connection-rejected', () => proxy.logs.some((l) => l.event === 'rejected' && l.reason === 'LIMIT_REACHED'), 3_000);

  // ...while every admin endpoint still answers.
  const metrics = await scrape(proxy.runtime.adminPort);
  assert.equal(metrics.value('sshproxy_sessions_active', { listener: 'ssh' }), limit);
  assert.equal(metrics.value('sshproxy_server_sessions_active', { pool: 'main', server: 'sink' }), limit);
  // No NEWKEYS from a sink: every session still holds its handshake slot.
  assert.equal(metrics.value('sshproxy_server_handshakes_active', { pool: 'main', server: 'sink' }), limit);
  assert.equal(metrics.value('sshproxy_connections_rejected_total', { listener: 'ssh', reason: 'LIMIT_REACHED' }), 1);
  assert.equal(metrics.value('sshproxy_sessions_total', { listener: 'ssh', result: 'spliced' }), limit);

  for (const path of ['/healthz', '/readyz', '/api/status', '/']) {
    const result = await httpRequest(proxy.runtime.adminPort ?? 0, path);
    assert.equal(result.status, 200, `${path}: ${result.body}`);
  }
  const status = JSON.parse((await httpRequest(proxy.runtime.adminPort ?? 0, '/api/status')).body) as {
    connections: { active: number; limit: number };
  };
  assert.deepEqual({ active: status.connections.active, limit: status.connections.limit }, { active: limit, limit });

  // A slot frees: the next client gets through, and the counters follow.
  held.pop()?.destroy();
  await untilEvent(proxy, 'session-closed', () => proxy.sessions().length === 1, 3_000);
  held.push(await openSession(proxy.port));
  const after = await scrape(proxy.runtime.adminPort);
  assert.equal(after.value('sshproxy_sessions_total', { listener: 'ssh', result: 'spliced' }), limit + 1);
  assert.equal(after.value('sshproxy_sessions_active', { listener: 'ssh' }), limit);
});
