// Connections reset before their address could be read are charged to nobody (issue 24,
// defect 7): before, they were charged to one shared key, `unknown`, and penalised each other.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { SYSTEM_PYTHON } from '../fixtures/clients/paramiko-client.js';
import { startProxy } from '../fixtures/proxy/proxy.js';

const RESETTER = fileURLToPath(new URL('../fixtures/clients/reset_connections.py', import.meta.url));

test('connections reset before their address is read are charged to nobody', async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  // One noauth (20 s) is past `min` (1 s): a single charge would penalise its key.
  const proxy = await startProxy({ servers: [{ name: 'echo', host: echo.host, port: echo.port }], config: { penalties: { noauth: '20s', min: '1s' } } });
  t.after(() => proxy.stop());
  const penalised: unknown[] = [];
  proxy.runtime.events.on('source-penalised', (activation) => penalised.push(activation));
  // Synchronous: this process (and so the proxy) accepts only after every reset.
  execFileSync(SYSTEM_PYTHON, [RESETTER, String(proxy.port), '5']);
  const sessions = await proxy.waitForSessions(5, 10_000);
  assert.deepEqual(sessions.map((session) => `${String(session.client)} ${String(session.reason)}`), Array(5).fill('unknown CLIENT_RESET'));
  assert.deepEqual(penalised, []);
});
