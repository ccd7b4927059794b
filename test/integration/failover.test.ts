import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runSsh } from '../fixtures/clients.js';
import { startFixtureBackend, type FixtureBackend } from '../fixtures/hostile-backends.js';
import { startProxy, type LogLine, type TestProxy } from '../fixtures/proxy.js';
import { sshdAvailable, sshdVersions, startSshd, type SshdHandle } from '../fixtures/sshd.js';

interface LoggedAttempt {
  readonly server: string;
  readonly result: string;
}

const attemptsOf = (line: LogLine | undefined): LoggedAttempt[] => (line?.attempts as LoggedAttempt[] | undefined) ?? [];

for (const version of sshdVersions()) describe(`failover across misbehaving backends to a real sshd (OpenSSH ${version === 9 ? '9.2' : '10.0'})`, { skip: sshdAvailable() ? false : 'openssh-server is not installed' }, () => {
  let sshd: SshdHandle;
  let proxy: TestProxy;
  const backends: FixtureBackend[] = [];

  before(async () => {
    sshd = await startSshd({ version });
    for (const kind of ['silent', 'reset', 'throttle', 'http'] as const) backends.push(await startFixtureBackend(kind));
    proxy = await startProxy({
      servers: [
        ...backends.map((backend) => ({ name: backend.kind, host: backend.host, port: backend.port })),
        { name: 'sshd', host: sshd.host, port: sshd.port },
      ],
      // Passive health off: every session must meet every failure and survive it.
      pool: { retries: 4, passiveHealth: { consecutiveFailures: 0 } },
      config: { timeouts: { connect: '1s', banner: '400ms' } },
    });
  });
  after(async () => {
    await proxy?.stop();
    await Promise.all(backends.map((backend) => backend.close()));
    await sshd?.stop();
  });

  it('brings every client session through to sshd and names each failure', async () => {
    const clients = 3;
    for (let index = 0; index < clients; index += 1) {
      const result = await runSsh({ ...sshd, port: proxy.port, command: 'echo ok', timeoutMs: 30_000 });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, 'ok\n');
    }
    const sessions = await proxy.waitForSessions(clients, 5000);
    assert.equal(sessions.length, clients);
    for (const session of sessions) {
      assert.equal(session.spliced, true);
      assert.equal(session.server, 'sshd');
      const attempts = attemptsOf(session);
      assert.equal(attempts.at(-1)?.result, 'ok');
      // No server is tried twice in one session.
      assert.equal(new Set(attempts.map((attempt) => attempt.server)).size, attempts.length);
    }
    const first = attemptsOf(sessions[0]);
    assert.deepEqual(
      first.map((attempt) => `${attempt.server}:${attempt.result}`),
      ['silent:BANNER_TIMEOUT', 'reset:BACKEND_RESET', 'throttle:THROTTLED', 'http:NOT_SSH', 'sshd:ok'],
    );
    // The client saw none of the failed backends' bytes: its session is byte-exact with sshd's.
    assert.equal(sessions[0]?.serverIdent, sshd.banner);
  });

  it('gives up with BACKENDS_EXHAUSTED when the retries run out', async () => {
    const limited = await startProxy({
      servers: backends.map((backend) => ({ name: backend.kind, host: backend.host, port: backend.port })),
      pool: { retries: 1, passiveHealth: { consecutiveFailures: 0 } },
      config: { timeouts: { connect: '1s', banner: '300ms' } },
    });
    let failovers = 0;
    limited.runtime.events.on('failover', () => (failovers += 1));
    try {
      const result = await runSsh({ ...sshd, port: limited.port, command: 'true', timeoutMs: 20_000 });
      assert.notEqual(result.code, 0);
      const [session] = await limited.waitForSessions(1, 5000);
      assert.equal(session?.spliced, false);
      assert.equal(session?.reason, 'BACKENDS_EXHAUSTED');
      assert.equal(attemptsOf(session).length, 2);
      // Only the move from the first server to the second was a failover; the last failure ended the session.
      assert.equal(failovers, 1);
    } finally {
      await limited.stop();
    }
  });
});
