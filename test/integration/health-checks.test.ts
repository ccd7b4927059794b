import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { ProxyEventMap } from '../../src/events/bus.js';
import { startFixtureBackend, type FixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { startProxy, type TestProxy } from '../fixtures/proxy/proxy.js';
import { sshdAvailable, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';
import { waitFor, waitForEvent } from '../fixtures/wait.js';

type StateChange = ProxyEventMap['server-state'][0];
type CheckEvent = ProxyEventMap['health-check'][0];

const INTERVAL_MS = 300;
const TIMEOUT_MS = 400;
const JITTER = 0.1;
const RISE = 2;
const FALL = 2;
const healthCheck = { enabled: true, interval: INTERVAL_MS, timeout: TIMEOUT_MS, rise: RISE, fall: FALL, jitter: JITTER };

/** Resolves with the next server-state change of `server` to `to`. */
function nextState(proxy: TestProxy, server: string, to: string, timeoutMs: number): Promise<StateChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proxy.runtime.events.off('server-state', onChange);
      reject(new Error(`${server} did not become ${to} within ${timeoutMs}ms`));
    }, timeoutMs);
    const onChange = (change: StateChange): void => {
      if (change.server !== server || change.to !== to) return;
      clearTimeout(timer);
      proxy.runtime.events.off('server-state', onChange);
      resolve(change);
    };
    proxy.runtime.events.on('server-state', onChange);
  });
}

describe('active health checks against a real sshd', { skip: sshdAvailable() ? false : 'openssh-server is not installed' }, () => {
  let sshd: SshdHandle;
  let proxy: TestProxy;
  after(async () => {
    await proxy?.stop();
    await sshd?.stop();
  });

  it('records banner latency and identification, and sshd logs no missing identification', async () => {
    sshd = await startSshd();
    proxy = await startProxy({ servers: [{ name: 'sshd', host: sshd.host, port: sshd.port }], pool: { healthCheck } });
    const [check] = (await waitForEvent(proxy.runtime.events, 'health-check', 5000)) as [CheckEvent];
    assert.equal(check.ok, true);
    assert.equal(check.identification, sshd.banner);
    const server = proxy.runtime.server.pools.get('main')?.servers[0];
    assert.ok(server);
    assert.equal(server.lastIdentification, sshd.banner);
    assert.ok(server.lastBannerMs !== undefined && server.lastBannerMs >= 0 && server.lastBannerMs < TIMEOUT_MS);
    assert.equal(server.lastCheck?.ok, true);
    // Each check identified itself, so sshd saw a client version and no protocol error.
    await waitForEvent(proxy.runtime.events, 'health-check', 5000);
    const log = await sshd.readLog();
    assert.doesNotMatch(log, /did not receive identification string/);
    assert.doesNotMatch(log, /Bad protocol version identification/);
    // A check holds a handshake slot until sshd has closed its side (no event for that: poll, bounded).
    await waitFor(() => server.handshakesActive === 0, { timeoutMs: 2000, description: 'check slot to be freed' });
    // What sshd logs for a check: a connection, then a plain close.
    assert.match(log, /Connection closed by 127\.0\.0\.1 port \d+/);
  });

  it('goes DOWN after exactly `fall` failed checks once sshd dies, and UP after exactly `rise` good ones once it is back', async () => {
    // Counted, not timed: the checks between the event that starts each phase and the state change.
    const checks: CheckEvent[] = [];
    const onCheck = (check: CheckEvent): void => {
      if (check.server === 'sshd') checks.push(check);
    };
    proxy.runtime.events.on('health-check', onCheck);
    const down = nextState(proxy, 'sshd', 'DOWN', 10_000);
    await sshd.kill();
    const killedAt = checks.length;
    const change = await down;
    const failedBefore = checks.slice(killedAt).filter((check) => !check.ok).length;
    assert.equal(failedBefore, FALL, `DOWN after ${failedBefore} failed checks: ${JSON.stringify(checks.slice(killedAt))}`);
    assert.equal(change.from, 'UP');
    assert.equal(change.reason, 'check:CONNECT_REFUSED');
    const server = proxy.runtime.server.pools.get('main')?.servers[0];
    assert.equal(server?.state, 'DOWN');
    assert.equal(server?.lastCheck?.code, 'CONNECT_REFUSED');
    // The transition is logged with its reason.
    const logged = await proxy.waitForLog((line) => line.event === 'server-state' && line.to === 'DOWN', 1000);
    assert.equal(logged.reason, 'check:CONNECT_REFUSED');

    const up = nextState(proxy, 'sshd', 'UP', 15_000);
    await sshd.restart();
    const restartedAt = checks.length;
    const upChange = await up;
    proxy.runtime.events.off('health-check', onCheck);
    const okBefore = checks.slice(restartedAt).filter((check) => check.ok).length;
    assert.equal(okBefore, RISE, `UP after ${okBefore} good checks`);
    assert.equal(upChange.reason, 'check:ok');
  });
});

describe('active health checks against hostile backends', () => {
  const backends: FixtureBackend[] = [];
  let proxy: TestProxy | undefined;
  after(async () => {
    await proxy?.stop();
    await Promise.all(backends.map((backend) => backend.close()));
  });

  it('marks silent, HTTP and throttling servers DOWN with the right reason', async () => {
    for (const kind of ['silent', 'http', 'throttle', 'ssh-sink'] as const) backends.push(await startFixtureBackend(kind));
    const changes: StateChange[] = [];
    proxy = await startProxy({
      servers: backends.map((backend) => ({ name: backend.kind, host: backend.host, port: backend.port })),
      pool: { healthCheck },
    });
    proxy.runtime.events.on('server-state', (change) => changes.push(change));
    const downs = await Promise.all(['silent', 'http', 'throttle'].map((name) => nextState(proxy as TestProxy, name, 'DOWN', 5000)));
    assert.deepEqual(
      downs.map((change) => `${change.server}:${change.reason}`),
      ['silent:check:BANNER_TIMEOUT', 'http:check:NOT_SSH', 'throttle:check:THROTTLED'],
    );
    const pool = proxy.runtime.server.pools.get('main');
    const sink = pool?.servers.find((server) => server.name === 'ssh-sink');
    assert.equal(sink?.state, 'UP');
    assert.equal(sink?.lastIdentification, 'SSH-2.0-SinkFixture_1.0');
    assert.ok(!changes.some((change) => change.server === 'ssh-sink'));
    // Every check sent our identification first.
    const silent = backends[0] as FixtureBackend;
    assert.ok(silent.received().length > 0);
    for (const bytes of silent.received()) assert.equal(bytes.toString('latin1'), 'SSH-2.0-ssh-banner-proxy_check\r\n');
    // Sessions now avoid the DOWN servers entirely.
    assert.deepEqual(pool?.candidates({ clientKey: 'x', exclude: new Set() }).map((server) => server.name), ['ssh-sink']);
  });
});
