/**
 * Self-test of the sshd launcher and the three SSH clients, directly
 * against a real OpenSSH server (no proxy involved).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connectSsh2, execSsh2, paramikoAvailable, runParamiko, runSsh, sshClientAvailable } from '../fixtures/clients/clients.js';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { rawExchange, readFirstLine, untilLine } from '../fixtures/clients/raw-client.js';
import { sshdAvailable, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';
import { waitForEvent } from '../fixtures/wait.js';

const SKIP_SSHD = sshdAvailable() ? false : 'OpenSSH server (/usr/sbin/sshd) is not installed';
const SKIP_SSH = SKIP_SSHD || (sshClientAvailable() ? false : 'OpenSSH client (/usr/bin/ssh) is not installed');
const SKIP_PARAMIKO = SKIP_SSHD || (paramikoAvailable() ? false : 'paramiko is not importable by /usr/bin/python3');
const TIMEOUT_MS = 20_000;

describe('startSshd', { skip: SKIP_SSHD }, () => {
  let sshd: SshdHandle;
  before(async () => {
    sshd = await startSshd();
  });
  after(() => sshd.stop());

  it('is ready on a loopback port and announces SSH-2.0', async () => {
    assert.equal(sshd.host, '127.0.0.1');
    assert.match(sshd.banner, /^SSH-2\.0-OpenSSH_/);
    assert.match(sshd.hostKeyFingerprint, /^SHA256:/);
    assert.equal(await readFirstLine(sshd.host, sshd.port, 5_000), sshd.banner);
    assert.match(await sshd.readLog(), new RegExp(`Server listening on 127\\.0\\.0\\.1 port ${sshd.port}\\.`));
  });

  it('ssh echo ok', { skip: SKIP_SSH }, async () => {
    const r = await runSsh({ ...sshd, command: 'echo ok', timeoutMs: TIMEOUT_MS });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'ok\n');
    await sshd.waitForLog(/Accepted publickey for \S+ from 127\.0\.0\.1/, 5_000);
  });

  it('ssh round-trips 10 MiB through stdin and cat, byte-exact', { skip: SKIP_SSH }, async () => {
    const payload = randomBytes(10 * 1024 * 1024);
    const r = await runSsh({ ...sshd, command: 'cat', stdin: payload, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdoutBytes.length, payload.length);
    assert.equal(sha256(r.stdoutBytes), sha256(payload));
  });

  it('ssh reports a remote exit code', { skip: SKIP_SSH }, async () => {
    const r = await runSsh({ ...sshd, command: 'exit 7', timeoutMs: TIMEOUT_MS });
    assert.equal(r.code, 7);
  });

  it('paramiko exec succeeds and sees the OpenSSH identification', { skip: SKIP_PARAMIKO }, async () => {
    const r = await runParamiko({ ...sshd, command: 'echo ok; echo err >&2; exit 3', stdin: 'ignored', timeoutMs: TIMEOUT_MS });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.stdout, 'ok\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.exitStatus, 3);
    assert.equal(r.remoteVersion, sshd.banner);
  });

  it('paramiko forwards stdin', { skip: SKIP_PARAMIKO }, async () => {
    const payload = randomBytes(64 * 1024);
    const r = await runParamiko({ ...sshd, command: 'cat', stdin: payload, timeoutMs: TIMEOUT_MS });
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.stdoutBytes, payload);
  });

  it('ssh2 (npm) connects and execs', async () => {
    const connection = await connectSsh2({ ...sshd, readyTimeoutMs: 10_000 });
    try {
      const r = await execSsh2(connection.client, 'cat; exit 5', { stdin: 'via ssh2\n' });
      assert.equal(r.code, 5);
      assert.equal(r.stdout, 'via ssh2\n');
    } finally {
      await connection.close();
    }
    await connection.close(); // idempotent
    assert.deepEqual(connection.laterErrors, []);
  });

  it('restart keeps the port and serves again', { skip: SKIP_SSH }, async () => {
    const { port } = sshd;
    const pidBefore = sshd.pid;
    await sshd.restart();
    assert.equal(sshd.port, port);
    assert.notEqual(sshd.pid, pidBefore);
    const r = await runSsh({ ...sshd, command: 'echo again', timeoutMs: TIMEOUT_MS });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'again\n');
  });

  it('kill makes the port refuse, restart brings it back', async () => {
    await sshd.kill();
    assert.equal(sshd.running, false);
    const refused = await rawExchange({ port: sshd.port, until: untilLine, timeoutMs: 5_000 });
    assert.equal(refused.error?.code, 'ECONNREFUSED');
    await sshd.kill(); // nothing left to kill: no-op
    await sshd.restart();
    assert.equal(sshd.running, true);
    assert.equal(await readFirstLine(sshd.host, sshd.port, 5_000), sshd.banner);
  });
});

describe('startSshd options and lifecycle', { skip: SKIP_SSHD }, () => {
  it('stop is idempotent, frees the port and removes the temp dir', async () => {
    const sshd = await startSshd();
    await Promise.all([sshd.stop(), sshd.stop()]);
    await sshd.stop();
    assert.equal(sshd.running, false);
    assert.equal(existsSync(sshd.dir), false);
    const r = await rawExchange({ port: sshd.port, timeoutMs: 5_000 });
    assert.equal(r.error?.code, 'ECONNREFUSED');
    await assert.rejects(sshd.restart(), /stopped/);
  });

  it('maxStartups: real sshd answers "Exceeded MaxStartups" past the limit', async (t) => {
    const sshd = await startSshd({ maxStartups: '1' });
    t.after(() => sshd.stop());
    // Holds the only pre-auth slot: it reads the banner and then says nothing.
    const holder = net.connect({ host: sshd.host, port: sshd.port });
    holder.on('error', () => undefined);
    t.after(() => holder.destroy());
    const [banner] = await waitForEvent(holder, 'data', 5_000);
    assert.equal(String(banner), `${sshd.banner}\r\n`);
    const second = await rawExchange({ port: sshd.port, timeoutMs: 5_000 });
    assert.equal(second.outcome, 'end');
    assert.equal(second.data.toString(), 'Exceeded MaxStartups\r\n');
    await sshd.waitForLog(/drop connection #\d+ from \[127\.0\.0\.1\]:\d+ .*past MaxStartups/, 5_000);
  });

  it('an open session survives kill and restart of the listener; stop ends it', async () => {
    const sshd = await startSshd();
    const connection = await connectSsh2({ ...sshd });
    try {
      await sshd.kill();
      await sshd.restart();
      const r = await execSsh2(connection.client, 'echo still here');
      assert.equal(r.stdout, 'still here\n');
      // Stopping sshd ends the session with a close, or with a reset the client reports first
      // (seen under load): either is "stop ends it". Handled at once, not after the stop.
      const closed = waitForEvent(connection.client, 'close', 10_000).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== 'ECONNRESET') throw error;
      });
      await sshd.stop();
      await closed;
    } finally {
      await connection.close();
      await sshd.stop();
    }
  });

  it('listens on ::1 when asked', { skip: SKIP_SSH }, async (t) => {
    const sshd = await startSshd({ listenAddress: '::1', extraConfig: ['LoginGraceTime 30'] });
    t.after(() => sshd.stop());
    assert.equal(sshd.host, '::1');
    const r = await runSsh({ ...sshd, command: 'echo six', timeoutMs: TIMEOUT_MS });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'six\n');
  });
});

describe('client failure reporting', () => {
  it('paramiko reports "Error reading SSH protocol banner" against a silent backend', { skip: SKIP_PARAMIKO }, async (t) => {
    const silent = await startFixtureBackend('silent');
    t.after(() => silent.close());
    const r = await runParamiko({
      host: silent.host,
      port: silent.port,
      user: 'nobody',
      identityFile: '/dev/null',
      command: 'true',
      bannerTimeoutSec: 0.5,
      timeoutMs: TIMEOUT_MS,
    });
    assert.equal(r.ok, false);
    assert.ok(!r.ok);
    assert.equal(r.errorClass, 'SSHException');
    assert.match(r.message, /Error reading SSH protocol banner/);
  });

  it('ssh exits 255 when the server closes before identification', { skip: SKIP_SSH }, async (t) => {
    const closing = await startFixtureBackend('close');
    t.after(() => closing.close());
    const r = await runSsh({
      host: closing.host,
      port: closing.port,
      user: 'nobody',
      identityFile: '/dev/null',
      command: 'true',
      timeoutMs: TIMEOUT_MS,
    });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /kex_exchange_identification|Connection closed/);
  });

  it('ssh2 rejects when the server throttles', async (t) => {
    const throttle = await startFixtureBackend('throttle');
    t.after(() => throttle.close());
    await assert.rejects(
      connectSsh2({ host: throttle.host, port: throttle.port, user: 'nobody', identityFile: '/dev/null', readyTimeoutMs: 5_000 }),
    );
  });
});

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
