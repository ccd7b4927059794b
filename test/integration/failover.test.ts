import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runSsh } from '../fixtures/clients/clients.js';
import { startFixtureBackend, type FixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { rawExchange } from '../fixtures/clients/raw-client.js';
import { startProxy, type LogLine, type TestProxy } from '../fixtures/proxy/proxy.js';
import { sshdAvailable, sshdVersions, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';

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

describe('wrong-protocol backends that wait to be spoken to', () => {
  for (const kind of ['http-server', 'tls-server'] as const) {
    it(`a ${kind} is recognised as NOT_SSH after a short silence, not after the banner timeout, and the client's bytes reach the next backend once`, async (t) => {
      const wrong = await startFixtureBackend(kind);
      t.after(() => wrong.close());
      const echo = await startFixtureBackend('ssh-echo');
      t.after(() => echo.close());
      const proxy = await startProxy({
        servers: [
          { name: 'wrong', host: wrong.host, port: wrong.port, weight: 100 },
          { name: 'echo', host: echo.host, port: echo.port, weight: 1 },
        ],
        pool: { balance: 'roundrobin', handshake: { endsAt: 'splice' } },
        config: { timeouts: { banner: '30s' } },
      });
      t.after(() => proxy.stop());
      const ident = 'SSH-2.0-OrderTest_1.0\r\n';
      const result = await rawExchange({ port: proxy.port, send: `${ident}kexinit`, until: (data) => data.includes('kexinit'), timeoutMs: 20_000 });
      assert.equal(result.outcome, 'matched');
      const [summary] = await proxy.waitForSessions(1, 10_000);
      // Before, a session waited out the whole banner timeout (30 s here) on such a server.
      assert.deepEqual(attemptsOf(summary).map((attempt) => `${attempt.server}:${attempt.result}`), ['wrong:NOT_SSH', 'echo:ok']);
      // What reached the echo backend: the identification once, then the rest, in order.
      assert.equal(echo.received()[0]?.toString('latin1'), `${ident}kexinit`);
      assert.ok(wrong.received()[0]?.toString('latin1').startsWith(ident), 'the wrong server was sent the client identification, and answered');
    });
  }
});
