import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { paramikoAvailable, runParamiko, runSsh } from '../fixtures/clients/clients.js';
import { httpRequest } from '../fixtures/proxy/prometheus.js';
import { startProxy, type TestProxy } from '../fixtures/proxy/proxy.js';
import { sshdAvailable, sshdVersions, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

for (const version of sshdVersions()) describe(`through the proxy to a real sshd (OpenSSH ${version === 9 ? '9.2' : '10.0'})`, { skip: sshdAvailable() ? false : 'openssh-server is not installed' }, () => {
  let sshd: SshdHandle;
  let proxy: TestProxy;

  before(async () => {
    sshd = await startSshd({ version });
    proxy = await startProxy({ servers: [{ name: 'sshd', host: sshd.host, port: sshd.port }], pool: { verify: 'kexinit' }, config: { admin: { bind: '127.0.0.1:0' } } });
  });
  after(async () => {
    await proxy?.stop();
    await sshd?.stop();
  });

  it('runs a command with the OpenSSH client', async () => {
    const result = await runSsh({ ...sshd, port: proxy.port, command: 'echo ok', timeoutMs: 20_000 });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'ok\n');
    const [summary] = await proxy.waitForSessions(1, 5000);
    assert.equal(summary?.spliced, true);
    assert.equal(summary?.server, 'sshd');
    assert.equal(summary?.serverIdent, sshd.banner);
    assert.match(sshd.banner, version === 10 ? /OpenSSH_10\.0/ : /OpenSSH_9\.2/, 'the version asked for');
    assert.match(String(summary?.clientIdent), /^SSH-2\.0-OpenSSH_/);
    assert.equal(typeof summary?.bannerMs, 'number');
  });

  it("joins sshd's log line to the proxy's: the session summary and the admin lookup name the client behind sshd's port", async () => {
    const accepted = /Accepted publickey for \S+ from (\S+) port (\d+)/g;
    const before = [...(await sshd.readLog()).matchAll(accepted)].length;
    const login = runSsh({ ...sshd, port: proxy.port, command: 'sleep 2', timeoutMs: 20_000 });
    await sshd.waitForLog(new RegExp(`(?:${accepted.source}[^]*){${before + 1}}`), 15_000);
    const line = [...(await sshd.readLog()).matchAll(accepted)][before];
    const [, address = '', port = ''] = line ?? [];
    const adminPort = proxy.runtime.adminPort ?? 0;
    // While the login runs: sshd's words, `from A port P`, find the client.
    const found = await httpRequest(adminPort, `/api/session?address=${address}&port=${port}`);
    assert.equal(found.status, 200, found.body);
    const live = JSON.parse(found.body) as Record<string, unknown>;
    assert.equal(live.client, '127.0.0.1');
    assert.equal(live.listener, 'ssh');
    assert.equal(live.server, 'sshd');
    assert.equal(live.backendLocalPort, Number(port));
    assert.match(String(live.session), /^[0-9a-f]{8}-\d+$/);
    assert.equal((await login).code, 0);
    // And afterwards, in the log: the session line carries sshd's port, and is the same session.
    const summary = await proxy.waitForLog((entry) => entry.event === 'session' && entry.backendLocalPort === Number(port), 5000);
    assert.equal(summary.session, live.session);
    assert.equal(summary.clientPort, live.clientPort);
    assert.equal(summary.backendLocalAddress, address);
    const [attempt] = summary.attempts as { local?: string; remote?: string }[];
    assert.equal(attempt?.local, `${address}:${port}`);
    assert.equal(attempt?.remote, sshd.host);
    // Gone once the session is: and a malformed question is told what to give.
    assert.equal((await httpRequest(adminPort, `/api/session?address=${address}&port=${port}`)).status, 404);
    const malformed = await httpRequest(adminPort, '/api/session?address=sshd&port=99999');
    assert.equal(malformed.status, 400);
    assert.match(malformed.body, /address=<IP address>&port=<1-65535>/);
  });

  it('runs a command with paramiko', { skip: paramikoAvailable() ? false : 'python3-paramiko is not installed' }, async () => {
    const result = await runParamiko({ ...sshd, port: proxy.port, command: 'echo paramiko-ok', timeoutMs: 20_000 });
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.stdout, 'paramiko-ok\n');
    assert.equal(result.remoteVersion, sshd.banner);
  });

  it('carries 10 MiB each way intact', async () => {
    const payload = randomBytes(10 * 1024 * 1024);
    // `cat` echoes stdin: the same 10 MiB travel client→server and back server→client.
    const result = await runSsh({ ...sshd, port: proxy.port, command: 'cat', stdin: payload, timeoutMs: 60_000 });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdoutBytes.length, payload.length);
    assert.equal(sha256(result.stdoutBytes), sha256(payload));
    // This session's summary (another test's may be logged late): the one that carried the payload.
    const summary = await proxy.waitForLog((line) => line.event === 'session' && Number(line.bytesIn) > payload.length, 5000);
    assert.ok(Number(summary?.bytesIn) > payload.length, `bytesIn ${String(summary?.bytesIn)}`);
    assert.ok(Number(summary?.bytesOut) > payload.length, `bytesOut ${String(summary?.bytesOut)}`);
  });
});
