/**
 * systemd integration with the real tools: socket activation through
 * systemd-socket-activate (Debian's systemd package), notifications to a real
 * unix datagram notify socket, and a restart that keeps the listening socket (the
 * socket holder does what systemd does for a .socket unit), so connections made while
 * the service is down wait in the kernel instead of being refused.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { startNotifyListener } from '../fixtures/proxy/notify-listener.js';
import { readFirstLine } from '../fixtures/clients/raw-client.js';
import { startServeProcess } from '../fixtures/proxy/serve-process.js';
import { freePort, waitForEvent } from '../fixtures/wait.js';

const HOLDER = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/clients/socket_holder.py');
const IDENT = 'SSH-2.0-OpenSSH_9.2p1 systemd-test';

async function backendConfig(): Promise<Record<string, unknown> & { listeners: { name: string; [key: string]: unknown }[] }> {
  const backend = await startFixtureBackend('ssh-sink', { identification: IDENT });
  test.after(() => backend.close());
  return {
    // The bind is not used: the listener takes the socket systemd passed under its name.
    listeners: [{ name: 'ssh', bind: '127.0.0.1:1', pool: 'main' }],
    pools: [{ name: 'main', healthCheck: { enabled: false }, servers: [{ name: 'a', address: `127.0.0.1:${backend.port}` }] }],
    log: { level: 'info' },
  };
}

const SKIP = existsSync('/usr/bin/systemd-socket-activate') ? false : 'systemd-socket-activate is not installed (Debian package systemd)';

test('systemd-socket-activate: the proxy serves the passed socket, notifies READY, the watchdog, a reload and STOPPING', { skip: SKIP }, async (t) => {
  const notify = await startNotifyListener();
  t.after(() => notify.close());
  const port = await freePort();
  const wrap = ['systemd-socket-activate', '-l', `127.0.0.1:${port}`, '--fdname=ssh', '-E', `NOTIFY_SOCKET=${notify.path}`, '-E', 'WATCHDOG_USEC=300000'];
  // systemd-socket-activate starts the service on the first connection: that client waits in the kernel's queue.
  const proxy = await startServeProcess(await backendConfig(), { wrap, listeners: [] });
  t.after(() => proxy.kill());
  await proxy.waitForStderr(/Listening on 127\.0\.0\.1:\d+ as 3/, 10_000);
  assert.equal(await readFirstLine('127.0.0.1', port, 15_000), IDENT);

  const listening = await proxy.waitForLog((line) => line.event === 'listening', 10_000, 'listening');
  assert.equal(listening.fd, 3);
  assert.equal(listening.address, `127.0.0.1:${port}`);
  const ready = await notify.waitFor((message) => message.fields.READY === '1', 10_000, 'READY=1');
  assert.equal(ready.pid, proxy.child.pid, 'sent by the main process itself (NotifyAccess=main)');
  assert.match(ready.fields.STATUS ?? '', /1 listener\(s\) \(ssh\)/);
  await notify.waitFor((message) => message.fields.WATCHDOG === '1', 10_000, 'WATCHDOG=1');

  const before = notify.messages.length;
  proxy.signal('SIGHUP');
  const reloading = await notify.waitFor((message) => message.fields.RELOADING === '1', 10_000, 'RELOADING=1');
  assert.match(reloading.fields.MONOTONIC_USEC ?? '', /^\d+$/);
  assert.ok(notify.messages.indexOf(reloading) >= before);
  await notify.waitFor((message) => message.fields.READY === '1' && notify.messages.indexOf(message) > notify.messages.indexOf(reloading), 10_000, 'READY=1 after the reload');
  assert.equal(await readFirstLine('127.0.0.1', port, 15_000), IDENT, 'still serving after the reload');

  proxy.signal('SIGTERM');
  const stopping = await notify.waitFor((message) => message.fields.STOPPING === '1', 10_000, 'STOPPING=1');
  assert.match(stopping.fields.STATUS ?? '', /draining/);
  assert.equal((await proxy.exited).code, 0);
});

test('socket activation across a restart: a client that connects while the service is down is served by the next one', { skip: SKIP }, async (t) => {
  const proxy = await startServeProcess(await backendConfig(), { wrap: ['python3', HOLDER, 'ssh', '--'] });
  t.after(() => proxy.kill());
  const port = proxy.port('ssh');
  assert.equal(await readFirstLine('127.0.0.1', port, 15_000), IDENT);

  proxy.signal('SIGUSR1');
  const stopped = await proxy.waitForLog((line) => line.event === 'service-stopped', 20_000, 'service stopped');
  assert.equal(stopped.code, 0);
  // Nobody accepts now; the kernel completes the handshake and queues the connection.
  const client = net.connect({ host: '127.0.0.1', port });
  client.on('error', () => {});
  t.after(() => client.destroy());
  await waitForEvent(client, 'connect', 5_000);
  const received: Buffer[] = [];
  client.on('data', (chunk: Buffer) => received.push(chunk));

  proxy.signal('SIGUSR2');
  await proxy.waitForLog((line) => line.event === 'service-started', 10_000, 'service started');
  await waitForEvent(client, 'data', 15_000);
  assert.equal(Buffer.concat(received).toString('latin1').split('\r\n')[0], IDENT);
});

test('a socket named after no listener stops the start with a message that names it', { skip: SKIP }, async (t) => {
  const proxy = await startServeProcess(await backendConfig(), { wrap: ['python3', HOLDER, 'sshd', '--'], listeners: [] });
  t.after(() => proxy.kill());
  const exited = await proxy.waitForLog((line) => line.event === 'service-exited', 20_000, 'service exited');
  assert.equal(exited.code, 1);
  assert.match(proxy.stderr(), /socket\(s\) named "sshd" but no listener has that name \(listeners: ssh\); set FileDescriptorName=/);
});

test('with workers the primary holds the passed socket, both workers accept on it, and the primary says READY once they listen', { skip: SKIP }, async (t) => {
  const notify = await startNotifyListener();
  t.after(() => notify.close());
  const config = { ...(await backendConfig()), workers: 2 };
  const proxy = await startServeProcess(config, { wrap: ['env', `NOTIFY_SOCKET=${notify.path}`, 'python3', HOLDER, 'ssh', '--'], listeners: [] });
  t.after(() => proxy.kill());
  const ready = await notify.waitFor((message) => message.fields.READY === '1', 20_000, 'READY=1');
  assert.match(ready.fields.STATUS ?? '', /2 workers/);
  // Each worker's log line comes through its own stdout pipe, which may lag the datagram.
  await proxy.waitForLog((line) => line.event === 'listening' && proxy.logs.filter((other) => other.event === 'listening').length === 2, 10_000, 'both workers listening');
  assert.ok(proxy.logs.filter((line) => line.event === 'listening').every((line) => line.fd === 3));
  const started = proxy.logs.find((line) => line.event === 'holder-started');
  assert.equal(ready.pid, started?.pid, 'READY comes from the primary, the service\'s main process');
  assert.equal(await readFirstLine('127.0.0.1', Number(started?.port), 15_000), IDENT);
});
