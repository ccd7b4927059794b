// ProxyRuntime.reload in-process, against fixture backends: what is kept, what
// drains, what is refused, and that a failed reload changes nothing.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import pino from 'pino';
import { validateConfig } from '../../src/config/load.js';
import type { ProxyEventMap } from '../../src/events/bus.js';
import { ProxyRuntime } from '../../src/runtime.js';
import { startFixtureBackend, type FixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { rawExchange, untilLine } from '../fixtures/clients/raw-client.js';

type Reload = ProxyEventMap['config-reload'][0];

function configFor(servers: { name: string; backend: FixtureBackend; weight?: number }[], listeners: { name: string; bind?: string }[], extra: Record<string, unknown> = {}) {
  return validateConfig(
    {
      listeners: listeners.map((listener) => ({ name: listener.name, bind: listener.bind ?? '127.0.0.1:0', pool: 'main' })),
      pools: [
        {
          name: 'main',
          healthCheck: { enabled: false },
          // The fixture backends speak no key exchange.
          verify: 'banner',
          servers: servers.map((server) => ({ name: server.name, address: `127.0.0.1:${server.backend.port}`, weight: server.weight ?? 1 })),
        },
      ],
      log: { level: 'silent' },
      ...extra,
    },
    'test',
  );
}

/** Opens a session through the proxy and waits for the banner; the socket stays open. */
function openSession(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', reject);
    socket.once('data', () => resolve(socket));
  });
}

test('reload: kept listener keeps its socket, new listener opens, removed server drains, health kept', async (t) => {
  const a = await startFixtureBackend('ssh-echo');
  const b = await startFixtureBackend('ssh-echo');
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const runtime = new ProxyRuntime(configFor([{ name: 'a', backend: a }], [{ name: 'ssh' }]), { logger: pino({ level: 'silent' }) });
  const reloads: Reload[] = [];
  runtime.events.on('config-reload', (reload) => reloads.push(reload));
  await runtime.start();
  t.after(() => runtime.stop(0));
  const port = runtime.port('ssh');
  const pool = runtime.server.pools.get('main');
  assert.ok(pool);
  const serverA = pool.servers[0];
  assert.ok(serverA);
  pool.setHealth(serverA, 'DOWN', 'test');
  pool.setHealth(serverA, 'UP', 'test'); // a state with history: stateReason 'test'

  const onA = await openSession(port);
  t.after(() => onA.destroy());
  assert.equal(a.connections, 1);

  // Reload 1: add server b, reweight a, add a listener.
  const changes = await runtime.reload(configFor([{ name: 'a', backend: a, weight: 3 }, { name: 'b', backend: b }], [{ name: 'ssh' }, { name: 'extra' }]));
  assert.equal(runtime.port('ssh'), port, 'same socket');
  assert.deepEqual(changes.listeners, { added: ['extra'], removed: [], updated: ['ssh'] });
  assert.deepEqual(changes.servers.main, { added: ['b'], removed: [], changed: ['a'] });
  assert.equal(pool.servers[0], serverA, 'same server object: health state and counters kept');
  assert.equal(serverA.weight, 3);
  assert.equal(serverA.stateReason, 'test');
  const viaExtra = await rawExchange({ port: runtime.port('extra'), until: untilLine, timeoutMs: 3000 });
  assert.equal(viaExtra.outcome, 'matched');

  // Reload 2: remove a (it has a session) and the extra listener.
  const extraPort = runtime.port('extra');
  await runtime.reload(configFor([{ name: 'b', backend: b }], [{ name: 'ssh' }]));
  assert.equal(serverA.state, 'DRAINING');
  assert.ok(pool.servers.includes(serverA), 'listed while it still has a session');
  const aBefore = a.connections;
  for (let index = 0; index < 4; index += 1) {
    const result = await rawExchange({ port, until: untilLine, timeoutMs: 3000 });
    assert.equal(result.outcome, 'matched');
  }
  assert.equal(a.connections, aBefore, 'no new session on the removed server');
  const refused = await rawExchange({ port: extraPort, timeoutMs: 2000 });
  assert.equal(refused.error?.code, 'ECONNREFUSED', 'removed listener closed');
  // The session on a still works (ssh-echo echoes).
  onA.write('ping\n');
  await a.waitForBytes(0, 5, 3000);
  const closed = new Promise<void>((resolve) => {
    const onClosed = (summary: ProxyEventMap['session-closed'][0]): void => {
      if (summary.server !== 'a' || summary.listener !== 'ssh') return;
      runtime.events.off('session-closed', onClosed);
      resolve();
    };
    runtime.events.on('session-closed', onClosed);
  });
  onA.destroy();
  await closed;
  assert.ok(!pool.servers.includes(serverA), 'dropped once its last session ended');
  assert.deepEqual(reloads.map((reload) => reload.outcome), ['ok', 'ok']);
});

test('reload: a listener that cannot bind fails the reload and changes nothing', async (t) => {
  const a = await startFixtureBackend('ssh-echo');
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    await a.close();
    await new Promise((resolve) => blocker.close(resolve));
  });
  const busyPort = (blocker.address() as net.AddressInfo).port;
  const runtime = new ProxyRuntime(configFor([{ name: 'a', backend: a }], [{ name: 'ssh' }]), { logger: pino({ level: 'silent' }) });
  const reloads: Reload[] = [];
  runtime.events.on('config-reload', (reload) => reloads.push(reload));
  await runtime.start();
  t.after(() => runtime.stop(0));
  const before = runtime.config;
  await assert.rejects(
    runtime.reload(configFor([{ name: 'a', backend: a, weight: 7 }], [{ name: 'ssh' }, { name: 'new-ok' }, { name: 'busy', bind: `127.0.0.1:${busyPort}` }])),
    /cannot listen/,
  );
  assert.equal(runtime.config, before);
  assert.equal(runtime.server.pools.get('main')?.servers[0]?.weight, 1, 'pools untouched');
  assert.deepEqual(runtime.server.listeners.map((listener) => listener.name), ['ssh']);
  assert.deepEqual(reloads.map((reload) => reload.outcome), ['failed']);
  const still = await rawExchange({ port: runtime.port('ssh'), until: untilLine, timeoutMs: 3000 });
  assert.equal(still.outcome, 'matched');
});

test('reload: per-source limits and the connection limit follow the new config', async (t) => {
  const a = await startFixtureBackend('ssh-sink');
  t.after(() => a.close());
  const runtime = new ProxyRuntime(configFor([{ name: 'a', backend: a }], [{ name: 'ssh' }]), { logger: pino({ level: 'silent' }) });
  await runtime.start();
  t.after(() => runtime.stop(0));
  const first = await openSession(runtime.port('ssh'));
  t.after(() => first.destroy());
  await runtime.reload(configFor([{ name: 'a', backend: a }], [{ name: 'ssh' }], { limits: { perSourceConnections: 1 } }));
  const rejected = new Promise<string>((resolve) => runtime.events.once('connection-rejected', ({ reason }) => resolve(reason)));
  // The limit counts sessions opened from now on: one more is admitted, the next is not.
  const second = await openSession(runtime.port('ssh'));
  t.after(() => second.destroy());
  const third = await rawExchange({ port: runtime.port('ssh'), until: untilLine, timeoutMs: 3000 });
  assert.equal(third.data.length, 0);
  assert.equal(await rejected, 'PER_SOURCE_LIMIT');
});

test('a session admitted after its PROXY listener was removed by a reload is tracked, counted and drained within timeouts.drain', async (t) => {
  const a = await startFixtureBackend('ssh-echo');
  t.after(() => a.close());
  const withProxy = (listeners: { name: string }[]) =>
    validateConfig(
      {
        listeners: listeners.map((listener) => ({ name: listener.name, bind: '127.0.0.1:0', pool: 'main', proxyProtocol: { accept: 'v1', trusted: ['127.0.0.1/32'] } })),
        pools: [{ name: 'main', healthCheck: { enabled: false }, verify: 'banner', servers: [{ name: 'a', address: `127.0.0.1:${a.port}` }] }],
        log: { level: 'silent' },
        admin: { bind: '127.0.0.1:0' },
        timeouts: { drain: '300ms' },
      },
      'test',
    );
  const runtime = new ProxyRuntime(withProxy([{ name: 'lb' }, { name: 'other' }]), { logger: pino({ level: 'silent' }) });
  const summaries: ProxyEventMap['session-closed'][0][] = [];
  runtime.events.on('session-closed', (summary) => summaries.push(summary));
  await runtime.start();
  t.after(() => runtime.stop(0));
  const port = runtime.port('lb');

  // Half a PROXY header, then the listener goes away.
  const client = net.connect({ host: '127.0.0.1', port });
  client.on('error', () => {});
  t.after(() => client.destroy());
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  client.write('PROXY TCP4 192.0.2.9 ');
  await new Promise<void>((resolve) => setImmediate(resolve));
  await runtime.reload(withProxy([{ name: 'other' }]));
  const banner = new Promise<void>((resolve) => client.once('data', () => resolve()));
  client.write('127.0.0.1 40000 22\r\nSSH-2.0-Late_1.0\r\n');
  await banner;

  const metrics = await (await fetch(`http://127.0.0.1:${runtime.adminPort}/metrics`)).text();
  assert.match(metrics, /sshproxy_sessions_active\{listener="lb"\} 1/, 'the session is counted under its removed listener');

  // Resolves at the drain timeout, although the client never leaves (before, it waited for the client).
  await runtime.stop();
  assert.equal(summaries.length, 1);
  assert.equal(summaries[0]?.reason, 'DRAIN_TIMEOUT');
  assert.equal(summaries[0]?.client, '192.0.2.9', 'the PROXY header source');
});
