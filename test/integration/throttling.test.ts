// A server that throttles is full, not down (issue 26): two real Dropbear at their defaults
// (5 unauthenticated connections per source address, and the proxy is one source) behind a
// proxy allowed 8 handshakes on each. Dropbear closes the excess at accept; the proxy must
// neither fail a client nor mark a server DOWN for it.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { authClientSkip, passwordUserSkip, PASSWORD_USER } from '../fixtures/clients/auth-matrix.js';
import { dropbearSkip, startDropbear, type DropbearHandle } from '../fixtures/sshd/dropbear.js';
import { runParamikoBurst } from '../fixtures/clients/paramiko-burst.js';
import { startProxy, type TestProxy } from '../fixtures/proxy/proxy.js';

const REFUSALS: ReadonlySet<string> = new Set(['BACKEND_CLOSED', 'BACKEND_RESET', 'THROTTLED']);

describe('throttling is not failure: two Dropbear at their defaults, 60 paramiko clients', { skip: dropbearSkip() || passwordUserSkip() || authClientSkip('paramiko') }, () => {
  const dropbears: DropbearHandle[] = [];
  let proxy: TestProxy | undefined;
  after(async () => {
    await proxy?.stop();
    for (const dropbear of dropbears) await dropbear.stop();
  });

  it('0 clients fail, and no server is marked DOWN for closing the excess at accept', async () => {
    for (let index = 0; index < 2; index += 1) dropbears.push(await startDropbear());
    proxy = await startProxy({
      servers: dropbears.map((dropbear, index) => ({ name: `dropbear-${index}`, host: dropbear.host, port: dropbear.port })),
      // maxAttempts 12: at the default 6, one session in 60 ran out of attempts once in a loaded full-suite run (the
      // closes at accept remain until the proxy learns the servers' capacity); what this test is about is that none fails for
      // a server wrongly marked DOWN.
      pool: { verify: 'kexinit', handshake: { maxStartups: 8 }, retry: { maxAttempts: 12 }, healthCheck: { enabled: true, interval: '1s', timeout: '2s' }, queue: { timeout: '30s' } },
      logLevel: 'info',
    });
    const burst = await runParamikoBurst({ targets: [proxy], user: PASSWORD_USER.user, password: PASSWORD_USER.password, clients: 60, command: 'true', timeoutMs: 120_000 });
    assert.equal(burst.failed, 0, JSON.stringify(burst.errors));
    const sessions = await proxy.waitForSessions(60, 20_000);
    const attempts = sessions.flatMap((session) => session.attempts as { result: string }[]);
    const refusals = attempts.filter((attempt) => REFUSALS.has(attempt.result)).length;
    assert.ok(refusals > 0, 'Dropbear closed some at accept: the scenario happened');
    const down = proxy.logs.filter((line) => line.event === 'server-state' && line.to === 'DOWN');
    assert.deepEqual(down.map((line) => `${String(line.server)} ${String(line.reason)}`), [], 'full is not down');
  });
});
