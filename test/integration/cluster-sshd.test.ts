import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { paramikoAvailable, runSsh } from '../fixtures/clients/clients.js';
import { rawExchange } from '../fixtures/clients/raw-client.js';
import { generateEd25519 } from '../fixtures/sshd/ssh-keys.js';
import { runParamikoBurst } from '../fixtures/clients/paramiko-burst.js';
import { startProxy, type TestProxy } from '../fixtures/proxy/proxy.js';
import { redisAvailable, startRedis, type RedisHandle } from '../fixtures/backends/redis-server.js';
import { SSHD_DROP_LINE } from '../fixtures/sshd/sshd-versions.js';
import { sshdAvailable, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';

const SKIP = !redisAvailable()
  ? 'neither valkey-server nor redis-server is installed'
  : !sshdAvailable()
    ? 'openssh-server is not installed'
    : !paramikoAvailable()
      ? 'paramiko is not importable by /usr/bin/python3'
      : false;

describe('two replicas sharing a real Valkey/Redis in front of a real sshd (MaxStartups 2)', { skip: SKIP }, () => {
  let sshd: SshdHandle;
  let store: RedisHandle;
  const proxies: TestProxy[] = [];
  after(async () => {
    await Promise.all(proxies.map((proxy) => proxy.stop()));
    await sshd?.stop();
    await store?.stop();
  });

  const twoReplicas = async (cluster: Record<string, unknown> | undefined): Promise<TestProxy[]> => {
    const started: TestProxy[] = [];
    for (const replicaId of ['sshd-r0', 'sshd-r1']) {
      const proxy = await startProxy({
        // grace 2s: the slot goes at USERAUTH_SUCCESS; the grace is only the fallback, and a loaded
        // machine's publickey login can take longer than a short one (the slot would go early).
        servers: [{ name: 'sshd', host: sshd.host, port: sshd.port }],
        pool: { handshake: { maxStartups: 2, grace: '2s' }, queue: { timeout: '12s' } },
        ...(cluster ? { config: { cluster: { ...cluster, replicaId } } } : {}),
        logLevel: 'info',
      });
      proxies.push(proxy);
      started.push(proxy);
    }
    if (cluster) await Promise.all(started.map((proxy) => proxy.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 10_000)));
    return started;
  };
  const drops = async (): Promise<number> => (await sshd.readLog()).match(SSHD_DROP_LINE)?.length ?? 0;

  it('20 paramiko clients over both replicas: with the store sshd never drops one and none fails; without it, sshd drops', async () => {
    sshd = await startSshd({ maxStartups: '2' });
    store = await startRedis();
    const burst = { user: sshd.user, identityFile: sshd.identityFile, clients: 20, command: 'true', timeoutMs: 60_000 };

    // Without the store: each replica keeps to 2, so sshd sees up to 4 and drops (the test could fail).
    const local = await twoReplicas(undefined);
    const dropsBefore = await drops();
    await runParamikoBurst({ ...burst, targets: local });
    const localDrops = (await drops()) - dropsBefore;
    assert.ok(localDrops > 0, `without the store sshd dropped ${localDrops}`);
    await Promise.all(local.map((proxy) => proxy.stop()));

    const shared = await twoReplicas({ store: store.url, prefix: 'sshd:' });
    const sharedBefore = await drops();
    const withStore = await runParamikoBurst({ ...burst, targets: shared });
    assert.equal(withStore.failed, 0, JSON.stringify(withStore.errors));
    assert.equal((await drops()) - sharedBefore, 0, 'sshd never saw more than MaxStartups 2 from both replicas together');
    const sessions = (await Promise.all(shared.map((proxy) => proxy.waitForSessions(10, 10_000)))).flat();
    assert.equal(sessions.filter((session) => session.spliced === true).length, 20);
    // Every success released its slot at the end of authentication, cluster-wide.
    assert.ok(sessions.every((session) => session.slotRelease === 'auth'), JSON.stringify(sessions.map((session) => session.slotRelease)));
  });

  it('a client failing to log in on both replicas is penalised once, after the failures sshd would allow it, and refused by both', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sbp-cluster-penalties-'));
    try {
      const wrongKey = (await generateEd25519(path.join(dir, 'wrong'), 'not authorized')).privateKeyPath;
      const replicas: TestProxy[] = [];
      for (const replicaId of ['pen-r0', 'pen-r1']) {
        const proxy = await startProxy({
          servers: [{ name: 'sshd', host: sshd.host, port: sshd.port }],
          config: { penalties: {}, cluster: { store: store.url, prefix: 'pen-sshd:', replicaId } },
          logLevel: 'info',
        });
        proxies.push(proxy);
        replicas.push(proxy);
      }
      await Promise.all(replicas.map((proxy) => proxy.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 10_000)));
      // sshd's defaults: 5 s per failed login, refused past 15 s: the fourth failure tips it,
      // though each replica saw only two (alone, neither would refuse it).
      const [first, second] = replicas as [TestProxy, TestProxy];
      const learnt = once(first.runtime.events, 'penalty-shared');
      for (let failure = 0; failure < 4; failure += 1) {
        const replica = failure % 2 === 0 ? first : second;
        const result = await runSsh({ ...sshd, identityFile: wrongKey, host: replica.host, port: replica.port, command: 'true', timeoutMs: 20_000, extraOptions: ['BindAddress=127.0.0.9'] });
        assert.match(result.stderr, /Permission denied/, `failure ${failure + 1} reached sshd`);
      }
      // The fourth was on the second replica, which tipped it; the first learns it from the store's message.
      const tipped = await second.waitForLog((line) => line.event === 'source-penalised', 10_000);
      assert.equal(tipped.charges, 4);
      await learnt;
      for (const replica of replicas) {
        const refused = await rawExchange({ port: replica.port, localAddress: '127.0.0.9', timeoutMs: 5000 });
        assert.equal(refused.data.toString(), 'Not allowed at this time\r\n');
      }
      assert.equal(first.logs.filter((line) => line.event === 'source-penalised').length, 0, 'one penalty, activated once');
      // Other sources are untouched.
      const good = await runSsh({ ...sshd, host: first.host, port: first.port, command: 'true', timeoutMs: 20_000, extraOptions: ['BindAddress=127.0.0.10'] });
      assert.equal(good.code, 0, good.stderr);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
