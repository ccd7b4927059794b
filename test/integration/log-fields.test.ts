/**
 * What a session line tells an operator: the client's identification even when it comes
 * after the banner, the errno and cause of a failed attempt, a session id that no other
 * process can repeat, the replica on every line; and the ECS and level-name formats.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { startProxy } from '../fixtures/proxy/proxy.js';
import { freePort, waitForEvent } from '../fixtures/wait.js';
import { PROCESS_TAG } from '../../src/observe/log-identity.js';

test('a client that identifies only after the banner gets its clientIdent logged, capped at 255 bytes', async (t) => {
  const backend = await startFixtureBackend('ssh-sink', { identification: 'SSH-2.0-OpenSSH_9.2p1' });
  t.after(() => backend.close());
  const proxy = await startProxy({ servers: [{ name: 'a', host: '127.0.0.1', port: backend.port }], logLevel: 'info' });
  t.after(() => proxy.stop());
  for (const line of ['SSH-2.0-late_client_1.0', `SSH-2.0-${'L'.repeat(2000)}`]) {
    const client = net.connect({ host: proxy.host, port: proxy.port });
    client.on('error', () => {});
    await waitForEvent(client, 'data', 10_000);
    // The banner is in; now the identification, in two pieces.
    client.write(line.slice(0, 10));
    client.write(`${line.slice(10)}\r\n`);
    await backend.waitForBytes(backend.connections - 1, line.length + 2, 10_000);
    client.end();
  }
  const [late, long] = await proxy.waitForSessions(2, 10_000);
  assert.equal(late?.clientIdent, 'SSH-2.0-late_client_1.0');
  assert.equal(long?.clientIdent, `SSH-2.0-${'L'.repeat(2000)}`.slice(0, 255));
});

test('a failed attempt carries its errno and cause; the session id is this process\'s tag and a counter; every line names the replica', async (t) => {
  const closedPort = await freePort();
  const backend = await startFixtureBackend('ssh-sink');
  t.after(() => backend.close());
  const proxy = await startProxy({
    servers: [
      { name: 'gone', host: '127.0.0.1', port: closedPort },
      { name: 'up', host: '127.0.0.1', port: backend.port },
    ],
    pool: { balance: 'roundrobin' },
    logLevel: 'info',
  });
  t.after(() => proxy.stop());
  for (let index = 0; index < 2; index += 1) {
    const client = net.connect({ host: proxy.host, port: proxy.port });
    client.on('error', () => {});
    await waitForEvent(client, 'data', 10_000);
    client.end('SSH-2.0-test\r\n');
  }
  const sessions = await proxy.waitForSessions(2, 10_000);
  const failed = sessions.flatMap((line) => line.attempts as { result: string; errno?: string; cause?: string }[]).find((attempt) => attempt.result === 'CONNECT_REFUSED');
  assert.equal(failed?.errno, 'ECONNREFUSED');
  assert.match(failed?.cause ?? '', /refused/i);
  for (const line of sessions) assert.match(String(line.session), new RegExp(`^${PROCESS_TAG}-\\d+$`));
  assert.notEqual(sessions[0]?.session, sessions[1]?.session);
  assert.ok(proxy.logs.length > 3);
  for (const line of proxy.logs) assert.equal(typeof line.replica, 'string', JSON.stringify(line));
});

test('log.format ecs: ECS field names; log.levelNames: the level as a word', async (t) => {
  const backend = await startFixtureBackend('ssh-sink');
  t.after(() => backend.close());
  const ecs = await startProxy({ servers: [{ name: 'a', host: '127.0.0.1', port: backend.port }], logLevel: 'info', config: { log: { level: 'info', format: 'ecs' } } });
  t.after(() => ecs.stop());
  const client = net.connect({ host: ecs.host, port: ecs.port });
  client.on('error', () => {});
  await waitForEvent(client, 'data', 10_000);
  client.end('SSH-2.0-ecs\r\n');
  const session = await ecs.waitForLog((line) => line['event.action'] === 'session', 10_000);
  assert.equal(session['log.level'], 'info');
  assert.match(String(session['@timestamp']), /^\d{4}-\d\d-\d\dT/);
  assert.equal(session['service.name'], 'ssh-banner-proxy');
  assert.equal(session['client.ip'], '127.0.0.1');
  assert.equal(typeof session['client.port'], 'number');
  assert.equal(session.message, 'session closed');
  assert.equal(session.level, undefined);
  // An error under ECS names, with its class.
  ecs.runtime.logger.warn({ event: 'probe-error', err: Object.assign(new TypeError('boom'), { code: 'EBOOM' }) }, 'failed');
  const failed = await ecs.waitForLog((line) => line['event.action'] === 'probe-error', 5_000);
  assert.equal(failed['error.type'], 'TypeError');
  assert.equal(failed['error.message'], 'boom');
  assert.equal(failed['error.code'], 'EBOOM');
  assert.match(String(failed['error.stack_trace']), /^TypeError: boom/);

  const named = await startProxy({ servers: [{ name: 'a', host: '127.0.0.1', port: backend.port }], logLevel: 'info', config: { log: { level: 'info', levelNames: true } } });
  t.after(() => named.stop());
  assert.ok(named.logs.length > 0);
  assert.ok(named.logs.every((line) => typeof line.level === 'string'), JSON.stringify(named.logs[0]));
});

test('a client identification line of 60 KB that ends in a newline is cut to 255 bytes before it is logged or matched', async (t) => {
  const backend = await startFixtureBackend('ssh-sink');
  t.after(() => backend.close());
  const proxy = await startProxy({ servers: [{ name: 'a', host: '127.0.0.1', port: backend.port }], logLevel: 'info' });
  t.after(() => proxy.stop());
  const line = `SSH-2.0-${'x'.repeat(60_000)}`;
  const client = net.connect({ host: proxy.host, port: proxy.port });
  client.on('error', () => {});
  // Sent before the banner: it is the buffered identification that is scanned.
  client.write(`${line}\r\n`);
  await waitForEvent(client, 'data', 10_000);
  client.end();
  const [session] = await proxy.waitForSessions(1, 10_000);
  assert.equal(session?.clientIdent, line.slice(0, 255));
});
