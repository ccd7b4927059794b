/** A backend's banner with terminal escapes reaches the status page as visible text, never as raw control bytes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { httpRequest } from '../fixtures/proxy/prometheus.js';
import { startProxy } from '../fixtures/proxy/proxy.js';

test('status page: ESC and BEL of a server identification are shown as \\xNN, not written raw', async (t) => {
  const evil = 'SSH-2.0-evil\x1b[2J\x1b]0;pwned\x07';
  const backend = await startFixtureBackend('ssh-echo', { identification: evil });
  t.after(() => backend.close());
  const proxy = await startProxy({
    servers: [{ name: 'evil', host: backend.host, port: backend.port }],
    pool: { healthCheck: { enabled: true, interval: '200ms', timeout: '1s', rise: 1 } },
    config: { admin: { bind: '127.0.0.1:0' } },
  });
  t.after(() => proxy.stop());
  await proxy.waitForLog((line) => line.event === 'health-check' && line.ok === true, 5_000);
  const page = await httpRequest(proxy.runtime.adminPort ?? 0, '/');
  assert.equal(page.status, 200);
  assert.ok(page.body.includes('SSH-2.0-evil\\x1b[2J\\x1b]0;pwned\\x07'), 'shown, escaped');
  const raw = [...page.body].filter((char) => (char < ' ' && char !== '\n' && char !== '\t') || char === '\x7f');
  assert.deepEqual(raw, [], 'no raw control character in the HTML');
});
