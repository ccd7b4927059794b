// Idle sockets (connect, send nothing) must not deny logins: they may hold only the
// silent share of the handshake slots, and are cut once they stay silent after the banner.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { runSsh, sshClientAvailable } from '../fixtures/clients.js';
import { startProxy } from '../fixtures/proxy.js';
import { sshdAvailable, startSshd } from '../fixtures/sshd.js';
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
