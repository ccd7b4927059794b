// Learned handshake capacity (issue 26, `handshake.maxStartups: auto`, docs/pool.md): the proxy
// starts low, raises the limit while handshakes get through, drops it below the point where
// the server refused, and then holds it: a second burst is neither failed nor retried.
// Against sshd at MaxStartups 4 and Dropbear at its defaults (5 per source address).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { after, describe, it } from 'node:test';
import { authClientSkip, passwordUserSkip, PASSWORD_USER } from '../fixtures/clients/auth-matrix.js';
import { dropbearSkip, startDropbear, type DropbearHandle } from '../fixtures/sshd/dropbear.js';
import { runParamikoBurst, type ParamikoBurstOptions } from '../fixtures/clients/paramiko-burst.js';
import { startProxy, type LogLine, type TestProxy } from '../fixtures/proxy/proxy.js';
import { redisAvailable, startRedis, type RedisHandle } from '../fixtures/backends/redis-server.js';
import { sshdAvailable, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';
import { waitFor } from '../fixtures/wait.js';

const REFUSALS: ReadonlySet<string> = new Set(['BACKEND_CLOSED', 'BACKEND_RESET', 'THROTTLED']);

/** Refused attempts among the session lines logged from `from` on. */
function refusalsSince(proxy: TestProxy, from: number): number {
  return proxy.sessions().slice(from).flatMap((session) => session.attempts as { result: string }[]).filter((attempt) => REFUSALS.has(attempt.result)).length;
}

const learned = (proxy: TestProxy): LogLine[] => proxy.logs.filter((line) => line.event === 'capacity-learned');

/** Counts handshakes that got through until the learnt limit last moved: how many learning took. */
function convergence(proxy: TestProxy): () => number {
  let through = 0;
  let atLastChange = 0;
  proxy.runtime.events.on('attempt', (attempt) => {
    if (attempt.result === 'ok') through += 1;
  });
  proxy.runtime.events.on('capacity-learned', () => {
    atLastChange = through;
  });
  return () => atLastChange;
}

async function burst(proxy: TestProxy, options: Omit<ParamikoBurstOptions, 'targets' | 'clients' | 'timeoutMs'>, clients: number): Promise<number> {
  const from = proxy.sessions().length;
  const result = await runParamikoBurst({ ...options, targets: [proxy], clients, timeoutMs: 120_000 });
  assert.equal(result.failed, 0, JSON.stringify(result.errors));
  await proxy.waitForSessions(from + clients, 20_000);
  return refusalsSince(proxy, from);
}

const AUTO = { maxStartups: 'auto', learn: { start: 2, ceiling: 32, probeInterval: '10m' } };

/** A proxy with `maxStartups: auto` in front of one backend, retrying generously: what is tested is the learning. */
function autoProxy(name: string, backend: { readonly host: string; readonly port: number }, config?: Record<string, unknown>, learn?: Record<string, unknown>): Promise<TestProxy> {
  return startProxy({
    servers: [{ name, host: backend.host, port: backend.port }],
    pool: { verify: 'kexinit', handshake: { ...AUTO, ...(learn ? { learn } : {}) }, retry: { maxAttempts: 12 }, queue: { timeout: '60s' } },
    ...(config ? { config } : {}),
    logLevel: 'info',
  });
}

// `MaxStartups 4` drops every startup past 4. With random early drop (4:50:8) sshd admits a
// fifth half the time, and the learner may rightly reach 5 before a refusal lowers it again.
describe('maxStartups: auto against sshd at MaxStartups 4', { skip: sshdAvailable() ? false : 'OpenSSH server is not installed' }, () => {
  let sshd: SshdHandle | undefined;
  let proxy: TestProxy | undefined;
  after(async () => {
    await proxy?.stop();
    await sshd?.stop();
  });

  it('learns 4 at most; a second burst of 40 is neither failed nor retried', async (t) => {
    sshd = await startSshd({ maxStartups: '4', extraConfig: ['Subsystem sftp internal-sftp'] });
    proxy = await autoProxy('sshd', sshd);
    const login = { user: sshd.user, identityFile: sshd.identityFile, command: 'true', subsystem: 'sftp' as const };
    const converged = convergence(proxy);
    const first = await burst(proxy, login, 40);
    const server = proxy.runtime.server.pools.get('main')?.servers[0];
    assert.ok(server?.capacity, 'the server learns');
    assert.ok(server.maxStartups >= 2 && server.maxStartups <= 4, `learnt ${server.maxStartups}, within sshd's start of 4 (refused ${first} times while learning)`);
    const changes = learned(proxy).length;
    const second = await burst(proxy, login, 40);
    assert.equal(second, 0, 'no attempt refused once learnt');
    assert.ok(learned(proxy).slice(changes).every((line) => line.change !== 'lowered'), 'nothing left to lower');
    const drops = (await sshd.readLog()).match(/drop connection #\d+ from .* past MaxStartups/g) ?? [];
    assert.ok(drops.length === first, `sshd's drops are the refusals seen while learning: ${drops.length} vs ${first}`);
    t.diagnostic(`sshd MaxStartups 4: learnt ${server.maxStartups} after ${converged()} handshakes, ${first} refused attempts while learning, 0 in the second burst`);
  });
});

describe('maxStartups: auto against Dropbear at its defaults', { skip: dropbearSkip() || passwordUserSkip() || authClientSkip('paramiko') }, () => {
  let dropbear: DropbearHandle | undefined;
  let proxy: TestProxy | undefined;
  after(async () => {
    await proxy?.stop();
    await dropbear?.stop();
  });

  it('learns at most its 5 per source; a second burst of 40 is neither failed nor retried', async (t) => {
    dropbear = await startDropbear();
    proxy = await autoProxy('dropbear', dropbear);
    const login = { user: PASSWORD_USER.user, password: PASSWORD_USER.password, command: 'true' };
    const converged = convergence(proxy);
    const first = await burst(proxy, login, 40);
    const server = proxy.runtime.server.pools.get('main')?.servers[0];
    assert.ok(server && server.maxStartups >= 2 && server.maxStartups <= 5, `learnt ${server?.maxStartups} (refused ${first} times while learning)`);
    const second = await burst(proxy, login, 40);
    assert.equal(second, 0, 'no attempt refused once learnt');
    const status = proxy.runtime.server.pools.get('main')?.servers[0];
    assert.equal(status?.capacity?.known, status?.maxStartups, 'the limit is the level known to be safe');
    t.diagnostic(`Dropbear defaults: learnt ${status?.maxStartups} after ${converged()} handshakes, ${first} refused attempts while learning, 0 in the second burst`);
  });
});

describe('maxStartups: auto follows a limit raised at run time', { skip: sshdAvailable() ? false : 'OpenSSH server is not installed' }, () => {
  let sshd: SshdHandle | undefined;
  let proxy: TestProxy | undefined;
  after(async () => {
    await proxy?.stop();
    await sshd?.stop();
  });

  it('learns 2 under MaxStartups 2, then climbs past it by probing once sshd allows 8', async () => {
    sshd = await startSshd({ maxStartups: '2', extraConfig: ['Subsystem sftp internal-sftp'] });
    proxy = await autoProxy('sshd', sshd);
    const login = { user: sshd.user, identityFile: sshd.identityFile, command: 'true', subsystem: 'sftp' as const };
    await burst(proxy, login, 20);
    const server = proxy.runtime.server.pools.get('main')?.servers[0];
    assert.ok(server && server.maxStartups <= 2, `held at ${server?.maxStartups} under MaxStartups 2`);
    const config = await readFile(sshd.configPath, 'utf8');
    await writeFile(sshd.configPath, config.replace(/^MaxStartups .*$/m, 'MaxStartups 8'));
    await sshd.restart();
    // Probe often from now on (a reload keeps what was learnt and takes the new settings).
    const pools = proxy.runtime.config.pools.map((pool) => ({ ...pool, handshake: { ...pool.handshake, learn: { ...pool.handshake.learn, probeInterval: 100 } } }));
    await proxy.runtime.reload({ ...proxy.runtime.config, pools }, 'test');
    assert.equal(server.maxStartups, 2, 'the reload kept the learnt limit');
    // Bounded: bursts until the limit has risen past 3 (probing adds one slot per probeInterval at most).
    for (let round = 0; round < 10 && server.maxStartups <= 3; round += 1) await burst(proxy, login, 20);
    assert.ok(server.maxStartups > 3, `the limit rose past 3 (now ${server.maxStartups})`);
    assert.ok(learned(proxy).some((line) => line.change === 'probed'), 'it got there by probing');
  });
});

describe('maxStartups: auto shared through the store', { skip: sshdAvailable() && redisAvailable() ? false : 'needs OpenSSH server and redis-server' }, () => {
  let sshd: SshdHandle | undefined;
  let store: RedisHandle | undefined;
  const proxies: TestProxy[] = [];
  after(async () => {
    for (const proxy of proxies) await proxy.stop();
    await store?.stop();
    await sshd?.stop();
  });

  it('what one replica learns, the others adopt, and a replica that joins later too', async () => {
    sshd = await startSshd({ maxStartups: '2', extraConfig: ['Subsystem sftp internal-sftp'] });
    store = await startRedis();
    const replica = async (replicaId: string): Promise<TestProxy> => {
      const proxy = await autoProxy('sshd', { host: sshd?.host ?? '', port: sshd?.port ?? 0 }, { cluster: { store: store?.url ?? '', prefix: 'learn:', leaseTtl: '2s', replicaId } }, { start: 6, ceiling: 32, probeInterval: '10m' });
      proxies.push(proxy);
      await proxy.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 10_000);
      return proxy;
    };
    const [a, b] = [await replica('a'), await replica('b')];
    const serverOf = (proxy: TestProxy) => proxy.runtime.server.pools.get('main')?.servers[0];
    assert.equal(serverOf(b)?.maxStartups, 6, 'b starts at learn.start');
    await burst(a, { user: sshd.user, identityFile: sshd.identityFile, command: 'true', subsystem: 'sftp' }, 20);
    const learnt = serverOf(a)?.maxStartups ?? 0;
    // Down from its start of 6 (to 2 or 3: sshd counts a login done a little before the proxy's slot is free).
    assert.ok(learnt < 6 && learned(a).some((line) => line.change === 'lowered'), `a learnt ${learnt} under MaxStartups 2`);
    await b.waitForLog((line) => line.event === 'capacity-learned' && line.change === 'adopted' && line.limit === learnt, 5000);
    // a may have published more than one limit on its way down: b follows each, and ends where a did.
    await waitFor(() => serverOf(b)?.maxStartups === learnt, { timeoutMs: 5000, description: `b at a's ${learnt}` });
    const c = await replica('c');
    await waitFor(() => serverOf(c)?.maxStartups === learnt, { timeoutMs: 5000, description: `c adopts ${learnt} on joining` });
  });
});
