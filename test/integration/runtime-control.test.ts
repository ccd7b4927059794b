// Runtime control behind the admin token (issue 26, docs/operations.md "Runtime control"):
// drain, maint, ready and weight on a live proxy in front of two real sshd, through the
// admin API and the `ctl` command; the token is required for every change, compared in
// constant time, and reads beyond admin.open need it too.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { identifiedClient } from '../fixtures/clients/identified-client.js';
import { httpRequest } from '../fixtures/proxy/prometheus.js';
import { startProxy, type TestProxy } from '../fixtures/proxy/proxy.js';
import { runProcess } from '../fixtures/run-process.js';
import { connectSsh2, execSsh2 } from '../fixtures/clients/ssh2-client.js';
import { sshdAvailable, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const TOKEN_ENV = 'SBP_TEST_ADMIN_TOKEN_RUNTIME_CONTROL';

async function sessionServer(proxy: TestProxy, name: string): Promise<string> {
  const client = await identifiedClient(proxy.port, name);
  assert.match(await client.firstLine, /^SSH-2\.0-/);
  client.socket.destroy();
  const line = await proxy.waitForLog((entry) => entry.event === 'session' && String(entry.clientIdent).includes(name), 10_000);
  return String(line.server);
}

function post(port: number, path: string, body: unknown, token?: string) {
  return httpRequest(port, path, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json', ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }) } });
}

function ctl(adminPort: number, args: readonly string[], env: NodeJS.ProcessEnv) {
  return runProcess(process.execPath, ['--import', 'tsx', CLI, 'ctl', ...args, '--admin', `127.0.0.1:${adminPort}`, '--token-env', TOKEN_ENV], { timeoutMs: 20_000, env: { ...process.env, [TOKEN_ENV]: '', ...env } });
}

describe('runtime control: drain, maint, ready and weight behind the admin token', { skip: sshdAvailable() ? false : 'OpenSSH server is not installed' }, () => {
  const token = randomBytes(24).toString('hex');
  const sshds: SshdHandle[] = [];
  let proxy: TestProxy;
  let adminPort = 0;

  before(async () => {
    process.env[TOKEN_ENV] = token;
    sshds.push(await startSshd(), await startSshd());
    const [a, b] = sshds as [SshdHandle, SshdHandle];
    proxy = await startProxy({
      servers: [
        { name: 'a', host: a.host, port: a.port },
        { name: 'b', host: b.host, port: b.port },
      ],
      pool: { verify: 'kexinit', healthCheck: { enabled: true, interval: '300ms', timeout: '2s', rise: 1 } },
      config: { admin: { bind: '127.0.0.1:0', tokenEnv: TOKEN_ENV } },
      logLevel: 'debug',
    });
    adminPort = proxy.runtime.adminPort ?? 0;
  });
  after(async () => {
    delete process.env[TOKEN_ENV];
    await proxy?.stop();
    for (const sshd of sshds) await sshd.stop();
  });

  it('refuses every change without the right token, and says what to send', async () => {
    const missing = await post(adminPort, '/api/server/state', { pool: 'main', server: 'a', state: 'drain' });
    assert.equal(missing.status, 401);
    assert.match(String(missing.headers['www-authenticate']), /^Bearer/);
    assert.equal(JSON.parse(missing.body).error, 'TOKEN_REQUIRED');
    const wrong = await post(adminPort, '/api/server/state', { pool: 'main', server: 'a', state: 'drain' }, `${token}x`);
    assert.equal(wrong.status, 401);
    assert.equal(JSON.parse(wrong.body).error, 'TOKEN_WRONG');
    const get = await httpRequest(adminPort, '/api/server/state');
    assert.equal(get.status, 405);
    assert.equal(get.headers.allow, 'POST');
    assert.equal(proxy.runtime.server.pools.get('main')?.servers.every((server) => server.admin === 'ready'), true, 'nothing changed');
  });

  it('names what is wrong with a request: a bad state, an unknown server, a body that is not JSON', async () => {
    const badState = await post(adminPort, '/api/server/state', { pool: 'main', server: 'a', state: 'off' }, token);
    assert.equal(badState.status, 400);
    assert.match(JSON.parse(badState.body).message, /"state": expected one of ready, drain, maint, got "off"/);
    const unknown = await post(adminPort, '/api/server/state', { pool: 'main', server: 'z', state: 'drain' }, token);
    assert.equal(unknown.status, 404);
    assert.match(JSON.parse(unknown.body).message, /no server or entry "z" \(servers: a, b\)/);
    const notJson = await httpRequest(adminPort, '/api/server/weight', { method: 'POST', body: 'weight=3', headers: { Authorization: `Bearer ${token}` } });
    assert.equal(notJson.status, 400);
    assert.match(JSON.parse(notJson.body).message, /not JSON/);
  });

  it('ctl drain: no new sessions on the server, its live session carries on, DRAINING in status and metrics; ctl ready undoes it', async () => {
    const [a] = sshds as [SshdHandle, SshdHandle];
    const pool = proxy.runtime.server.pools.get('main');
    // A live session on a: connect until one lands there (round robin alternates).
    let live: Awaited<ReturnType<typeof connectSsh2>> | undefined;
    for (let index = 0; index < 4 && live === undefined; index += 1) {
      const connection = await connectSsh2({ host: proxy.host, port: proxy.port, user: a.user, identityFile: a.identityFile }).catch(() => undefined);
      if (connection && pool?.servers.find((server) => server.name === 'a')?.activeSessions === 1) live = connection;
      else await connection?.close();
    }
    assert.ok(live, 'a live session on a');
    try {
      const drained = await ctl(adminPort, ['drain', 'main/a'], { [TOKEN_ENV]: token });
      assert.equal(drained.code, 0, drained.stderr);
      assert.match(drained.stdout, /^main\/a {2}DRAINING {2}admin=drain {2}weight=1$/m);
      const status = JSON.parse((await httpRequest(adminPort, '/api/status')).body) as { pools: { servers: { name: string; state: string; admin: string }[] }[] };
      assert.deepEqual(status.pools[0]?.servers.map((server) => `${server.name} ${server.state} ${server.admin}`), ['a DRAINING drain', 'b UP ready']);
      assert.match((await httpRequest(adminPort, '/metrics')).body, /^sshproxy_server_draining\{pool="main",server="a"\} 1$/m);
      assert.equal((await execSsh2(live.client, 'echo live-on-a')).stdout.trim(), 'live-on-a');
      for (let index = 0; index < 4; index += 1) assert.equal(await sessionServer(proxy, `drained-${index}`), 'b');
      const ready = await ctl(adminPort, ['ready', 'main/a'], { [TOKEN_ENV]: token });
      assert.equal(ready.code, 0, ready.stderr);
      const servers = new Set<string>();
      for (let index = 0; index < 4; index += 1) servers.add(await sessionServer(proxy, `ready-${index}`));
      assert.deepEqual([...servers].sort(), ['a', 'b']);
    } finally {
      await live.close();
    }
  });

  it('maint: MAINT, no sessions and no health checks until ready', async () => {
    const reply = await post(adminPort, '/api/server/state', { pool: 'main', server: 'b', state: 'maint' }, token);
    assert.equal(reply.status, 200, reply.body);
    assert.deepEqual(JSON.parse(reply.body).servers, [{ name: 'b', state: 'MAINT', admin: 'maint', weight: 1 }]);
    const mark = proxy.logs.length;
    let checksOfA = 0;
    await proxy.waitForLog((line) => line.event === 'health-check' && line.server === 'a' && proxy.logs.indexOf(line) >= mark && ++checksOfA >= 3, 10_000);
    const checksOfB = proxy.logs.slice(mark).filter((line) => line.event === 'health-check' && line.server === 'b').length;
    assert.ok(checksOfB <= 1, `b is not checked in maintenance (${checksOfB} checks while a had 3; one may have been under way)`);
    for (let index = 0; index < 3; index += 1) assert.equal(await sessionServer(proxy, `maint-${index}`), 'a');
    assert.equal((await post(adminPort, '/api/server/state', { pool: 'main', server: 'b', state: 'ready' }, token)).status, 200);
  });

  it('a drain survives a reload that keeps the server; the config weight applies again', async () => {
    assert.equal((await post(adminPort, '/api/server/state', { pool: 'main', server: 'a', state: 'drain' }, token)).status, 200);
    assert.equal((await post(adminPort, '/api/server/weight', { pool: 'main', server: 'b', weight: 7 }, token)).status, 200);
    await proxy.runtime.reload(proxy.runtime.config, 'test');
    const servers = proxy.runtime.server.pools.get('main')?.servers.map((server) => `${server.name} ${server.state} ${server.weight}`);
    assert.deepEqual(servers, ['a DRAINING 1', 'b UP 1']);
    assert.equal((await post(adminPort, '/api/server/state', { pool: 'main', server: 'a', state: 'ready' }, token)).status, 200);
  });

  it('ctl weight: 0 takes no new sessions, 3 takes three in four', async () => {
    const zero = await ctl(adminPort, ['weight', 'main/a', '0'], { [TOKEN_ENV]: token });
    assert.equal(zero.code, 0, zero.stderr);
    for (let index = 0; index < 3; index += 1) assert.equal(await sessionServer(proxy, `weight0-${index}`), 'b');
    assert.equal((await ctl(adminPort, ['weight', 'main/a', '3'], { [TOKEN_ENV]: token })).code, 0);
    const servers: string[] = [];
    for (let index = 0; index < 8; index += 1) servers.push(await sessionServer(proxy, `weight3-${index}`));
    assert.equal(servers.filter((server) => server === 'a').length, 6, servers.join(', '));
    const usage = await ctl(adminPort, ['weight', 'main/a', 'lots'], { [TOKEN_ENV]: token });
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /a whole number from 0 to 256/);
    assert.equal((await ctl(adminPort, ['weight', 'main/a', '1'], {})).code, 1, 'without the token ctl fails');
    assert.equal((await ctl(adminPort, ['weight', 'main/a', '1'], { [TOKEN_ENV]: token })).code, 0);
  });
});

describe('admin reads and the token file', () => {
  let dir = '';
  let proxy: TestProxy;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sbp-admin-token-'));
    await writeFile(path.join(dir, 'token'), 'first-token\n');
    proxy = await startProxy({
      servers: [{ name: 'a', host: '127.0.0.1', port: 9 }],
      config: { admin: { bind: '127.0.0.1:0', tokenFile: path.join(dir, 'token'), open: ['metrics', 'healthz'] } },
    });
  });
  after(async () => {
    await proxy?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads beyond admin.open need the token; the open ones do not', async () => {
    const port = proxy.runtime.adminPort ?? 0;
    assert.equal((await httpRequest(port, '/metrics')).status, 200);
    assert.equal((await httpRequest(port, '/healthz')).status, 200);
    for (const closed of ['/api/status', '/readyz', '/', '/api/session?address=127.0.0.1&port=1']) assert.equal((await httpRequest(port, closed)).status, 401, closed);
    assert.equal((await httpRequest(port, '/api/status', { headers: { Authorization: 'Bearer first-token' } })).status, 200);
  });

  it('a rotated token file applies without a restart', async () => {
    const port = proxy.runtime.adminPort ?? 0;
    await writeFile(path.join(dir, 'token'), 'second-token\n');
    assert.equal((await httpRequest(port, '/api/status', { headers: { Authorization: 'Bearer first-token' } })).status, 401);
    assert.equal((await httpRequest(port, '/api/status', { headers: { Authorization: 'Bearer second-token' } })).status, 200);
  });

  it('with no token at all, changes are refused (403), whatever is sent', async () => {
    const open = await startProxy({ servers: [{ name: 'a', host: '127.0.0.1', port: 9 }], config: { admin: { bind: '127.0.0.1:0', tokenEnv: 'SBP_TEST_NO_SUCH_TOKEN' } } });
    try {
      const reply = await post(open.runtime.adminPort ?? 0, '/api/server/state', { pool: 'main', server: 'a', state: 'drain' }, 'anything');
      assert.equal(reply.status, 403);
      assert.equal(JSON.parse(reply.body).error, 'NO_TOKEN');
      assert.equal((await httpRequest(open.runtime.adminPort ?? 0, '/api/status')).status, 200, 'on loopback every read is open by default');
    } finally {
      await open.stop();
    }
  });

  it('a token file that cannot be read stops start, naming it', async () => {
    await assert.rejects(
      startProxy({ servers: [{ name: 'a', host: '127.0.0.1', port: 9 }], config: { admin: { bind: '127.0.0.1:0', tokenFile: path.join(dir, 'missing') } } }),
      /admin\.tokenFile .*missing: cannot be read, or holds no token/,
    );
  });
});
