import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, describe, it } from 'node:test';
import { paramikoAvailable } from '../fixtures/clients/clients.js';
import { startFixtureBackend, type FixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { runParamikoBurst } from '../fixtures/clients/paramiko-burst.js';
import { startProxy, type TestProxy } from '../fixtures/proxy/proxy.js';
import { identifiedClient as rawClient, type IdentifiedClient as RawClient } from '../fixtures/clients/identified-client.js';
import { SSHD_DROP_LINE } from '../fixtures/sshd/sshd-versions.js';
import { sshdAvailable, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';

const SKIP_REAL = !sshdAvailable() ? 'openssh-server is not installed' : !paramikoAvailable() ? 'paramiko is not importable by /usr/bin/python3' : false;

describe('handshake slots against a real sshd (MaxStartups 2)', { skip: SKIP_REAL }, () => {
  let sshd: SshdHandle;
  let proxy: TestProxy;
  after(async () => {
    await proxy?.stop();
    await sshd?.stop();
  });

  it('20 concurrent paramiko clients: never more than 2 handshakes at once on sshd, no client fails, no retry needed', async () => {
    // MaxStartups 2: sshd refuses every unauthenticated connection beyond the second.
    // internal-sftp: a login that runs no shell (root's rc files here cost ~1 s of CPU per login and made this test CPU-bound).
    sshd = await startSshd({ maxStartups: '2', extraConfig: ['Subsystem sftp internal-sftp'] });
    const burst = { user: sshd.user, identityFile: sshd.identityFile, clients: 20, command: 'true', subsystem: 'sftp' as const, timeoutMs: 60_000 };

    // Direct, to show what the limit does (and that this test could fail).
    const direct = await runParamikoBurst({ ...burst, targets: [sshd] });
    const directDrops = (await sshd.readLog()).match(SSHD_DROP_LINE)?.length ?? 0;
    assert.ok(direct.failed > 0, 'direct: some clients are refused');
    assert.ok(directDrops > 0);

    proxy = await startProxy({
      servers: [{ name: 'sshd', host: sshd.host, port: sshd.port }],
      // grace 2s: only the fallback (the slot goes at USERAUTH_SUCCESS); a loaded machine's login can outlast a short one.
      // Health checks on: each check takes a slot too, so sshd still sees at most 2.
      pool: { handshake: { maxStartups: 2, grace: '2s' }, healthCheck: { enabled: true, interval: '200ms', timeout: '1s' }, queue: { timeout: '12s' } },
      logLevel: 'info',
    });
    const viaProxy = await runParamikoBurst({ ...burst, targets: [proxy] });
    assert.equal(viaProxy.failed, 0, JSON.stringify(viaProxy.errors));
    // From sshd's side: it never had to drop a connection past MaxStartups 2.
    const dropLines = (await sshd.readLog()).match(SSHD_DROP_LINE) ?? [];
    const sessions = await proxy.waitForSessions(20, 10_000);
    const releases = sessions.map((session) => session.slotRelease);
    assert.equal(dropLines.length - directDrops, 0, `sshd dropped ${JSON.stringify(dropLines.slice(directDrops))}; slot releases ${JSON.stringify(releases)}`);
    assert.equal(sessions.length, 20);
    for (const session of sessions) {
      assert.equal(session.spliced, true);
      assert.equal((session.attempts as unknown[]).length, 1, 'no retry was needed');
    }
    assert.ok(sessions.some((session) => typeof session.queueWaitMs === 'number' && session.queueWaitMs > 0), 'some sessions queued');
  });
});

describe('handshake slots and queue against a fixture backend', () => {
  const backends: FixtureBackend[] = [];
  const proxies: TestProxy[] = [];
  const sockets: net.Socket[] = [];
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all(proxies.map((proxy) => proxy.stop()));
    await Promise.all(backends.map((backend) => backend.close()));
  });

  it('maxStartups 2 with 20 clients: the backend never sees more than 2 at once, and they arrive in FIFO order', async () => {
    // ssh-sink never sends NEWKEYS, so every session holds its slot until it closes.
    const backend = await startFixtureBackend('ssh-sink');
    backends.push(backend);
    const proxy = await startProxy({ servers: [{ name: 'echo', host: backend.host, port: backend.port }], pool: { handshake: { maxStartups: 2 } } });
    proxies.push(proxy);
    const clients: RawClient[] = [];
    for (let index = 0; index < 20; index += 1) {
      const client = await rawClient(proxy.port, `client_${index}`);
      sockets.push(client.socket);
      clients.push(client);
    }
    // Each client closes 50 ms after it got the banner, freeing its slot for the next.
    await Promise.all(
      clients.map(async (client) => {
        assert.equal(await client.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
        setTimeout(() => client.socket.destroy(), 50);
      }),
    );
    await backend.waitForClosed(20, 10_000);
    assert.equal(backend.connections, 20);
    assert.equal(backend.maxConcurrent, 2);
    const order = backend.received().map((bytes) => /SSH-2\.0-(client_\d+)/.exec(bytes.toString('latin1'))?.[1]);
    assert.deepEqual(order, clients.map((_, index) => `client_${index}`));
  });

  it('rejects past queue.maxLength with QUEUE_FULL and times out queued sessions with QUEUE_TIMEOUT', async () => {
    const backend = await startFixtureBackend('ssh-sink');
    backends.push(backend);
    const proxy = await startProxy({
      servers: [{ name: 'echo', host: backend.host, port: backend.port }],
      pool: { handshake: { maxStartups: 1 }, queue: { maxLength: 1, timeout: '300ms' } },
    });
    proxies.push(proxy);
    const holder = await rawClient(proxy.port, 'holder');
    sockets.push(holder.socket);
    assert.equal(await holder.firstLine, 'SSH-2.0-SinkFixture_1.0\r\n');
    const queuedAt = performance.now();
    const queued = await rawClient(proxy.port, 'queued');
    sockets.push(queued.socket);
    await backend.waitForConnections(1, 2000);
    const full = await rawClient(proxy.port, 'full');
    sockets.push(full.socket);
    // Neither sees a byte: the proxy closes them before any backend was reached.
    assert.equal(await full.firstLine, '');
    assert.equal(await queued.firstLine, '');
    const waited = performance.now() - queuedAt;
    const sessions = await proxy.waitForSessions(2, 5000);
    const reasons = sessions.map((session) => session.reason).sort();
    assert.deepEqual(reasons, ['QUEUE_FULL', 'QUEUE_TIMEOUT']);
    const timedOut = sessions.find((session) => session.reason === 'QUEUE_TIMEOUT');
    assert.ok(typeof timedOut?.queueWaitMs === 'number' && timedOut.queueWaitMs >= 290, String(timedOut?.queueWaitMs));
    assert.ok(waited >= 290);
    assert.equal(backend.connections, 1, 'only the holder reached the backend');
  });
});
