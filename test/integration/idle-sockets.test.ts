// Idle sockets (connect, send nothing) must not deny logins: they may hold only the
// silent share of the handshake slots, and are cut once they stay silent after the banner.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { runSsh, sshClientAvailable } from '../fixtures/clients/clients.js';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { startProxy } from '../fixtures/proxy/proxy.js';
import { sshdAvailable, startSshd } from '../fixtures/sshd/sshd.js';
import { waitFor } from '../fixtures/wait.js';

const skip = sshdAvailable() && sshClientAvailable() ? false : 'OpenSSH server and client are needed';

test('idle sockets hold at most the silent share of the slots: logins go through meanwhile, and the idle ones are cut as CLIENT_SILENT', { skip, timeout: 90_000 }, async (t) => {
  const sshd = await startSshd();
  t.after(() => sshd.stop());
  const proxy = await startProxy({
    servers: [{ name: 'sshd', host: '127.0.0.1', port: sshd.port, maxStartups: 4 }],
    // A short queue timeout: before, the idle sockets held all 4 slots for maxHold (30 s) and every login timed out here.
    pool: { queue: { timeout: '5s' } },
    config: { timeouts: { clientIdentification: '3s' } },
  });
  t.after(() => proxy.stop());

  const idle: net.Socket[] = [];
  t.after(() => {
    for (const socket of idle) socket.destroy();
  });
  for (let index = 0; index < 12; index += 1) {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port });
    socket.on('error', () => {});
    socket.on('data', () => {});
    idle.push(socket);
  }
  const server = proxy.runtime.server.pools.get('main')?.servers[0];
  assert.ok(server);
  // Two of the four slots go to silent clients (silentShare 0.5); ten idle sockets wait.
  // (Polled: no event says "queued"; bounded.)
  await waitFor(() => server.silentHandshakes === 2 && proxy.runtime.server.pools.get('main')?.queueLength === 10, { timeoutMs: 5000, description: '2 silent slots, 10 queued' });

  const logins = await Promise.all(
    Array.from({ length: 4 }, () => runSsh({ host: '127.0.0.1', port: proxy.port, user: sshd.user, identityFile: sshd.identityFile, command: 'echo logged-in', timeoutMs: 20_000 })),
  );
  for (const login of logins) assert.deepEqual([login.code, login.stdout], [0, 'logged-in\n'], login.stderr);
  assert.ok(server.silentHandshakes <= 2, 'idle sockets never held more than their share');

  const silent = await proxy.waitForLog((line) => line.event === 'session' && line.reason === 'CLIENT_SILENT', 15_000);
  assert.equal(silent.spliced, true, 'cut after it got the banner and said nothing');
});

test('only a whole line identifies a client: one byte, a line past 255 bytes that never ends and a line trickled without its end all stay silent and are cut as CLIENT_SILENT', { timeout: 30_000 }, async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  const proxy = await startProxy({
    servers: [{ name: 'echo', host: echo.host, port: echo.port, maxStartups: 2 }],
    config: { timeouts: { clientIdentification: '1s' } },
  });
  t.after(() => proxy.stop());
  const sockets: net.Socket[] = [];
  const trickle = { timer: undefined as NodeJS.Timeout | undefined };
  t.after(() => {
    clearInterval(trickle.timer);
    for (const socket of sockets) socket.destroy();
  });
  const open = (first: string): net.Socket => {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port }, () => socket.write(first));
    socket.on('error', () => {});
    socket.on('data', () => {});
    sockets.push(socket);
    return socket;
  };
  open(`SSH-2.0-${'x'.repeat(300)}`);
  open('S');
  const trickler = open('S');
  let sent = 1;
  const line = 'SSH-2.0-trickle';
  trickle.timer = setInterval(() => trickler.write(line[sent++ % line.length] ?? 'x'), 200);

  const server = proxy.runtime.server.pools.get('main')?.servers[0];
  assert.ok(server);
  // maxStartups 2, silentShare 0.5: one silent client holds a slot, the other two wait.
  // Before, the 300-byte line counted as identified and took the second slot. (Polled: no event says "queued".)
  await waitFor(() => server.silentHandshakes === 1 && proxy.runtime.server.pools.get('main')?.queueLength === 2, { timeoutMs: 5000, description: '1 silent slot, 2 queued' });
  const sessions = await proxy.waitForSessions(3, 20_000);
  assert.deepEqual(sessions.map((session) => session.reason), ['CLIENT_SILENT', 'CLIENT_SILENT', 'CLIENT_SILENT']);
  assert.ok(sessions.every((session) => session.clientIdent === undefined), JSON.stringify(sessions));
});
