/** `healthcheck` (the container's HEALTHCHECK) asks the admin address the config and SSH_BANNER_PROXY_ADMIN give. */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { runProcess } from '../fixtures/run-process.js';
import { startServeProcess } from '../fixtures/proxy/serve-process.js';
import { freePort } from '../fixtures/wait.js';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const healthcheck = (args: readonly string[], env: Record<string, string> = {}): ReturnType<typeof runProcess> =>
  runProcess(process.execPath, ['--import', 'tsx', CLI, 'healthcheck', ...args], { timeoutMs: 20_000, env: { ...process.env, ...env } });

test('healthcheck passes against the running proxy\'s configured admin address, follows SSH_BANNER_PROXY_ADMIN, and fails where nothing answers', async (t) => {
  const adminPort = await freePort();
  const proxy = await startServeProcess({
    listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
    pools: [{ name: 'main', healthCheck: { enabled: false }, servers: [{ name: 'a', address: '127.0.0.1:1' }] }],
    admin: { bind: `0.0.0.0:${adminPort}` },
  });
  t.after(() => proxy.kill());
  await proxy.waitForLog((line) => line.event === 'admin-listening', 10_000, 'admin listening');

  const ok = await healthcheck(['--config', proxy.configPath]);
  assert.equal(ok.code, 0, ok.stderr);
  const moved = await healthcheck([], { SSH_BANNER_PROXY_CONFIG: proxy.configPath, SSH_BANNER_PROXY_ADMIN: `127.0.0.1:${await freePort()}` });
  assert.equal(moved.code, 1);
  assert.match(moved.stderr, /\/healthz: ECONNREFUSED/);
  const off = await healthcheck(['--config', proxy.configPath, '--admin', 'off']);
  assert.equal(off.code, 0);
  assert.match(off.stdout, /admin endpoint is off/);
  const missing = await healthcheck(['--config', '/nonexistent/sbp.yaml']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /file not found/);
});
