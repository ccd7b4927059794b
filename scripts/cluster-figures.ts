/**
 * `npm run cluster`: the figures of docs/cluster.md, measured in one run on loopback with
 * real sshd, real paramiko clients, a real Valkey/Redis and real proxy processes.
 *
 * Setup: two sshd at MaxStartups 4:50:8; three replicas (`serve` processes, each with its
 * own admin port) with maxStartups 4 per server; HAProxy `mode tcp` roundrobin in front,
 * standing in for the Kubernetes Service.
 *   1. 120 paramiko clients that authenticate and hold 3 s, through HAProxy: with the
 *      store, then without it (failures and sshd drop lines, both).
 *   2. A replica SIGKILLed in the middle of a burst (clients spread over the replicas
 *      directly, so each client's replica is known): failures among the other two's
 *      clients, and how long until the killed one's slots were reclaimed.
 *   3. The store stopped in the middle of a burst, then started again: failures, the
 *      fallback logged and counted, and the time for every replica to share again.
 *   4. One client address over the three replicas with perSourceConnections 2.
 *   5. The cost: time to take a slot from the store (p50, p99), 2000 takes on loopback.
 *   6. How a waiting replica learns of a freed slot: pub/sub (what the proxy uses), keyspace
 *      notifications, a blocking list pop; 500 wake-ups each, p50 and p99.
 * Writes bench/results/cluster.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { BackendServer } from '../src/backend/server.js';
import { fixedServerSpec } from '../src/backend/server-spec.js';
import { validateConfig } from '../src/config/load.js';
import { ProxyEvents } from '../src/events/bus.js';
import { ClusterStore } from '../src/store/cluster-store.js';
import { runParamikoBurst, type BurstSummary, type BurstTarget } from '../test/fixtures/clients/paramiko-burst.js';
import { scrape } from '../test/fixtures/proxy/prometheus.js';
import { portAccepts } from '../test/fixtures/clients/identified-client.js';
import { startRedis, type RedisHandle } from '../test/fixtures/backends/redis-server.js';
import { startServeProcess, type ServeProcess } from '../test/fixtures/proxy/serve-process.js';
import { SSHD_DROP_LINE } from '../test/fixtures/sshd/sshd-versions.js';
import { listChildPids } from '../test/fixtures/sshd/sshd-process.js';
import { startSshd, type SshdHandle } from '../test/fixtures/sshd/sshd.js';
import { freePort, waitFor } from '../test/fixtures/wait.js';

const { values } = parseArgs({ options: { only: { type: 'string', default: 'burst,kill,down,source,cost,wake' }, 'local-share': { type: 'string', default: 'auto' } } });
/** Sections to run (all by default): burst, kill, down, source, cost, wake. */
const ONLY = new Set(values.only.split(','));

const CLIENTS = 120;
const HOLD_SEC = 3;
const LEASE_TTL_MS = 5000;
const HAPROXY = '/usr/sbin/haproxy';

interface Replicas {
  readonly processes: ServeProcess[];
  stop(): Promise<void>;
}

/**
 * Each replica's share of every limit while the store is down: `auto` (the default: 1 / the
 * replicas it last saw in the store, a third here), or a fixed cluster.localShare to compare.
 */
const LOCAL_SHARE: number | 'auto' = values['local-share'] === 'auto' ? 'auto' : Number(values['local-share']);

async function startReplicas(sshds: readonly SshdHandle[], store: RedisHandle | undefined, prefix: string, limits: Record<string, unknown> = {}): Promise<Replicas> {
  const processes: ServeProcess[] = [];
  for (let index = 0; index < 3; index += 1) {
    processes.push(
      await startServeProcess(
        {
          admin: { bind: '127.0.0.1:0' },
          log: { level: 'info' },
          listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'sshd' }],
          pools: [
            {
              name: 'sshd',
              balance: 'leastconn',
              servers: sshds.map((sshd, server) => ({ name: `sshd${server + 1}`, address: `127.0.0.1:${sshd.port}` })),
              handshake: { maxStartups: 4 },
              healthCheck: { interval: '2s', timeout: '2s' },
              queue: { timeout: '12s', maxLength: 10_000 },
            },
          ],
          timeouts: { connect: '3s', banner: '8s' },
          limits: { maxConnections: 10_000, ...limits },
          ...(store ? { cluster: { store: store.url, prefix, leaseTtl: `${LEASE_TTL_MS}ms`, ...(LOCAL_SHARE === 'auto' ? {} : { localShare: LOCAL_SHARE }), replicaId: `r${index}` } } : {}),
        },
        { startTimeoutMs: 30_000 },
      ),
    );
  }
  for (const replica of processes) {
    // A replica that dies on its own is a finding: show how it ended.
    void replica.exited.then(({ code, signal }) => {
      if (signal === 'SIGKILL') return;
      const last = replica.logs.filter((line) => line.level >= 40).slice(-5);
      if (code !== 0) console.error(`a replica exited (code ${code}, signal ${signal}):`, last, replica.stderr());
    });
  }
  if (store) await Promise.all(processes.map((replica) => replica.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 15_000, 'store up')));
  return { processes, stop: async () => void (await Promise.all(processes.map((replica) => replica.kill()))) };
}

/** HAProxy mode tcp, roundrobin over the replicas; a refused connect is redispatched (retries 3). */
async function startHaproxy(ports: readonly number[], dir: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const config = [
    'defaults',
    '  mode tcp',
    '  timeout connect 3s',
    '  timeout client 1h',
    '  timeout server 1h',
    '  retries 3',
    '  option redispatch',
    'frontend ssh',
    `  bind 127.0.0.1:${port}`,
    '  default_backend replicas',
    'backend replicas',
    '  balance roundrobin',
    ...ports.map((replicaPort, index) => `  server r${index} 127.0.0.1:${replicaPort}`),
    '',
  ].join('\n');
  const file = path.join(dir, 'haproxy.cfg');
  await writeFile(file, config);
  const child = spawn(HAPROXY, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor(() => portAccepts(port), { timeoutMs: 10_000, description: 'haproxy listening' });
  return { port, child };
}

async function countDrops(sshds: readonly SshdHandle[]): Promise<number> {
  let drops = 0;
  for (const sshd of sshds) drops += (await sshd.readLog()).match(SSHD_DROP_LINE)?.length ?? 0;
  return drops;
}

async function settle(sshds: readonly SshdHandle[]): Promise<void> {
  await waitFor(() => sshds.every((sshd) => sshd.pid === null || listChildPids(sshd.pid).length === 0), { timeoutMs: 30_000, description: 'sshd children to exit' });
}

interface BurstFigure {
  readonly failed: number;
  readonly errors: Record<string, number>;
  readonly sshdDrops: number;
  readonly connectP50Ms: number | undefined;
  readonly connectMaxMs: number | undefined;
}

async function burst(sshds: readonly SshdHandle[], targets: readonly BurstTarget[], during?: () => Promise<void>): Promise<{ figure: BurstFigure; summary: BurstSummary }> {
  const [a] = sshds as [SshdHandle];
  const dropsBefore = await countDrops(sshds);
  const running = runParamikoBurst({ targets, user: a.user, identityFile: a.identityFile, clients: CLIENTS, command: `sleep ${HOLD_SEC}`, timeoutMs: 120_000 });
  await during?.();
  const summary = await running;
  const figure = { failed: summary.failed, errors: summary.errors, sshdDrops: (await countDrops(sshds)) - dropsBefore, connectP50Ms: summary.connectP50Ms, connectMaxMs: summary.connectMaxMs };
  await settle(sshds);
  return { figure, summary };
}

async function metric(replica: ServeProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
  return (await scrape(replica.adminPort)).sum(name, labels);
}

/** Opens a connection and reports whether the backend's banner came (held open), or the proxy closed it. */
async function holdOne(port: number, sockets: net.Socket[]): Promise<boolean> {
  const socket = net.connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return new Promise((resolve) => {
    socket.once('data', () => resolve(true));
    socket.once('close', () => resolve(false));
  });
}

async function perSource(sshds: readonly SshdHandle[], store: RedisHandle | undefined): Promise<number> {
  const replicas = await startReplicas(sshds, store, 'figures-src:', { perSourceConnections: 2 });
  const sockets: net.Socket[] = [];
  try {
    let held = 0;
    for (const replica of [...replicas.processes, ...replicas.processes]) if (await holdOne(replica.port('ssh'), sockets)) held += 1;
    return held;
  } finally {
    for (const socket of sockets) socket.destroy();
    await replicas.stop();
    await settle(sshds);
  }
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** 2000 sequential take + give pairs from one replica: the time a session waits for the store's yes. */
async function takeCost(store: RedisHandle): Promise<{ p50Ms: number; p99Ms: number; samples: number }> {
  const config = validateConfig(
    { listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'p' }], pools: [{ name: 'p', servers: [{ name: 's', address: '127.0.0.1:1' }] }], cluster: { store: store.url, prefix: 'cost:', replicaId: 'cost' } },
    'figures',
  );
  const events = new ProxyEvents();
  const cluster = new ClusterStore({ settings: config.cluster as NonNullable<typeof config.cluster>, events });
  cluster.start();
  await waitFor(() => cluster.up, { timeoutMs: 10_000, description: 'store up' });
  const server = new BackendServer('p', fixedServerSpec('s', '127.0.0.1', 1, 1_000_000));
  const samples: number[] = [];
  for (let index = 0; index < 2000; index += 1) {
    const startedAt = performance.now();
    const verdict = await new Promise<string>((resolve) => cluster.slots.take(server, 0, resolve));
    samples.push(performance.now() - startedAt);
    if (verdict === 'granted') cluster.slots.give(server);
  }
  await cluster.close();
  samples.sort((a, b) => a - b);
  return { p50Ms: round(quantile(samples, 0.5)), p99Ms: round(quantile(samples, 0.99)), samples: samples.length };
}

const round = (value: number): number => Math.round(value * 1000) / 1000;

/** Time from one client's write to another client's wake-up, `samples` times in a row. */
async function wakeSamples(samples: number, arm: () => Promise<void>, fire: () => Promise<unknown>): Promise<{ p50Ms: number; p99Ms: number }> {
  const times: number[] = [];
  for (let index = 0; index < samples; index += 1) {
    const woken = arm();
    const startedAt = performance.now();
    await fire();
    await woken;
    times.push(performance.now() - startedAt);
  }
  times.sort((a, b) => a - b);
  return { p50Ms: round(quantile(times, 0.5)), p99Ms: round(quantile(times, 0.99)) };
}

/** The three ways of hearing that a slot was freed elsewhere, each measured on the same store. */
async function wakeCost(store: RedisHandle): Promise<Record<string, { p50Ms: number; p99Ms: number }>> {
  const writer = new Redis(store.url);
  const listener = new Redis(store.url);
  const blocker = new Redis(store.url);
  try {
    const nextMessage = (): Promise<void> => new Promise((resolve) => listener.once('message', () => resolve()));
    await listener.subscribe('wake:events');
    const pubsub = await wakeSamples(500, nextMessage, () => writer.publish('wake:events', 'f 127.0.0.1:22'));
    await listener.unsubscribe('wake:events');
    // Keyspace notifications: off by default, and many managed stores do not allow turning them on.
    await writer.config('SET', 'notify-keyspace-events', 'Kh');
    await listener.subscribe('__keyspace@0__:wake:slots');
    const keyspace = await wakeSamples(500, nextMessage, () => writer.hincrby('wake:slots', 'r0', 1));
    await listener.unsubscribe('__keyspace@0__:wake:slots');
    await writer.config('SET', 'notify-keyspace-events', '');
    // A blocking pop: one connection blocked per waiting server, per replica.
    const blocking = await wakeSamples(500, () => blocker.blpop('wake:freed', 5).then(() => undefined), () => writer.lpush('wake:freed', '1'));
    return { pubsub, keyspaceNotifications: keyspace, blockingPop: blocking };
  } finally {
    writer.disconnect();
    listener.disconnect();
    blocker.disconnect();
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sbp-cluster-figures-'));
  const sshds: SshdHandle[] = [];
  let store: RedisHandle | undefined;
  const results: Record<string, unknown> = { clients: CLIENTS, holdSec: HOLD_SEC, sshdMaxStartups: '4:50:8', proxyMaxStartups: 4, replicas: 3, leaseTtlMs: LEASE_TTL_MS, localShare: LOCAL_SHARE, node: process.version };
  try {
    sshds.push(await startSshd({ maxStartups: '4:50:8' }), await startSshd({ maxStartups: '4:50:8' }));
    const [a, b] = sshds as [SshdHandle, SshdHandle];
    await appendFile(`${b.dir}/authorized_keys`, await readFile(`${a.identityFile}.pub`, 'utf8'));
    store = await startRedis();

    // 1. Through HAProxy, with the store and without.
    for (const withStore of ONLY.has('burst') ? [true, false] : []) {
      const replicas = await startReplicas(sshds, withStore ? store : undefined, 'figures-burst:');
      const haproxy = await startHaproxy(
        replicas.processes.map((replica) => replica.port('ssh')),
        dir,
      );
      try {
        const { figure } = await burst(sshds, [{ host: '127.0.0.1', port: haproxy.port }]);
        // What the replicas did meanwhile: store calls past the deadline (decided locally), retries.
        const proxies = await Promise.all(
          replicas.processes.map(async (replica) => ({
            storeTimeouts: await metric(replica, 'sshproxy_store_call_failures_total'),
            fallbacks: await metric(replica, 'sshproxy_store_fallbacks_total'),
            failovers: await metric(replica, 'sshproxy_failovers_total'),
            throttledAttempts: await metric(replica, 'sshproxy_attempts_total', { result: 'THROTTLED' }),
          })),
        );
        results[withStore ? 'burstWithStore' : 'burstWithoutStore'] = { ...figure, proxies };
        console.log(`burst ${withStore ? 'with' : 'without'} the store: ${figure.failed}/${CLIENTS} failed, ${figure.sshdDrops} sshd drops`, figure.errors, JSON.stringify(proxies));
      } finally {
        haproxy.child.kill('SIGTERM');
        await once(haproxy.child, 'exit');
        await replicas.stop();
      }
    }

    // 2. A replica SIGKILLed mid-burst (clients spread over the replicas directly).
    if (ONLY.has('kill')) {
      const replicas = await startReplicas(sshds, store, 'figures-kill:');
      const reader = new Redis(store.url);
      const [doomed, ...survivors] = replicas.processes as [ServeProcess, ...ServeProcess[]];
      let killedAt = 0;
      let heldAtKill = 0;
      let freed: Promise<number> = Promise.resolve(Number.NaN);
      const held = async (): Promise<number> => {
        let total = 0;
        for (const sshd of sshds) total += Number((await reader.hget(`figures-kill:slots:127.0.0.1:${sshd.port}`, 'r0')) ?? 0);
        return total;
      };
      try {
        const targets = replicas.processes.map((replica) => ({ host: '127.0.0.1', port: replica.port('ssh') }));
        const { figure, summary } = await burst(sshds, targets, async () => {
          await new Promise((resolve) => setTimeout(resolve, 1000));
          // Kill it while it holds slots (that is the point), polling the store for them.
          await waitFor(async () => (heldAtKill = await held()) > 0, { timeoutMs: 20_000, intervalMs: 5, description: 'r0 to hold slots' });
          killedAt = Date.now();
          doomed.child.kill('SIGKILL');
          // Free again = the dead replica's counts gone from the store (reclaimed by a survivor's
          // script once its alive key expired), watched from the kill on, while the burst goes on.
          freed = waitFor(async () => (await held()) === 0, { timeoutMs: LEASE_TTL_MS * 4, intervalMs: 20, description: "the killed replica's slots to be freed" }).then(() => Date.now() - killedAt);
        });
        const freedAfterMs = await freed;
        const reclaimedCount = survivors.flatMap((replica) => replica.logs.filter((line) => line.event === 'store-leases-expired')).reduce((total, line) => total + Number(line.count), 0);
        const othersFailed = summary.results.filter((result) => result.index % 3 !== 0 && !result.ok).length;
        const killedFailed = summary.results.filter((result) => result.index % 3 === 0 && !result.ok).length;
        results.replicaKilled = { ...figure, heldByKilledReplica: heldAtKill, failedAmongOthersClients: othersFailed, failedAmongKilledReplicasClients: killedFailed, freedAfterMs, reclaimedCount };
        console.log(`replica killed: ${othersFailed} failed among the other two's clients (${killedFailed} of the killed one's), ${heldAtKill} slots held by it, free again after ${freedAfterMs} ms (${reclaimedCount} reclaimed by expiry)`);
      } finally {
        reader.disconnect();
        await replicas.stop();
      }
    }

    // 3. The store stopped mid-burst, then started again.
    if (ONLY.has('down')) {
      const replicas = await startReplicas(sshds, store, 'figures-down:');
      const haproxy = await startHaproxy(replicas.processes.map((replica) => replica.port('ssh')), dir);
      try {
        const running = store;
        const { figure } = await burst(sshds, [{ host: '127.0.0.1', port: haproxy.port }], async () => {
          await new Promise((resolve) => setTimeout(resolve, 1500));
          await running.stop();
        });
        const transitions = await Promise.all(replicas.processes.map((replica) => metric(replica, 'sshproxy_store_transitions_total', { to: 'down' })));
        const fallbacks = await Promise.all(replicas.processes.map((replica) => metric(replica, 'sshproxy_store_fallbacks_total')));
        const logged = replicas.processes.map((replica) => replica.logs.filter((line) => line.event === 'store-state' && line.to === 'down').length);
        const restartedAt = Date.now();
        await running.restart();
        const ups = await Promise.all(
          replicas.processes.map((replica) => replica.waitForLog((line) => line.event === 'store-state' && line.to === 'up' && Date.parse(String(line.time)) >= restartedAt, 30_000, 'shared again')),
        );
        // The last replica to share again, by its own log's (wall-clock) time.
        const sharedAgainAfterMs = Math.max(...ups.map((line) => Date.parse(String(line.time)) - restartedAt));
        results.storeStopped = { ...figure, downTransitionsCounted: transitions, downLinesLogged: logged, fallbacksCounted: fallbacks, sharedAgainAfterMs };
        console.log(`store stopped mid-burst: ${figure.failed}/${CLIENTS} failed, ${figure.sshdDrops} sshd drops; down counted ${transitions.join('/')}, fallbacks ${fallbacks.join('/')}; shared again ${sharedAgainAfterMs} ms after the restart`);
      } finally {
        haproxy.child.kill('SIGTERM');
        await once(haproxy.child, 'exit');
        await replicas.stop();
      }
    }

    // 4. One client address, three replicas, perSourceConnections 2.
    if (ONLY.has('source')) {
      const withStore = await perSource(sshds, store);
      const withoutStore = await perSource(sshds, undefined);
      results.perSource = { limit: 2, heldWithStore: withStore, heldWithoutStore: withoutStore };
      console.log(`perSourceConnections 2 over 3 replicas: ${withStore} held with the store, ${withoutStore} without`);
    }

    // 5. The cost of a take.
    if (ONLY.has('cost')) {
      results.takeCost = await takeCost(store);
      console.log('slot take on loopback:', results.takeCost);
    }

    // 6. Hearing of a freed slot.
    if (ONLY.has('wake')) {
      results.wakeUp = await wakeCost(store);
      console.log('wake-up on loopback:', results.wakeUp);
    }
  } finally {
    await store?.stop();
    await Promise.all(sshds.map((sshd) => sshd.stop()));
    await rm(dir, { recursive: true, force: true });
  }
  await mkdir('bench/results', { recursive: true });
  // A partial run (--only) adds to the last full one.
  const previous = ONLY.size < 6 ? (JSON.parse(await readFile('bench/results/cluster.json', 'utf8').catch(() => '{}')) as Record<string, unknown>) : {};
  await writeFile('bench/results/cluster.json', `${JSON.stringify({ ...previous, ...results }, null, 2)}\n`);
  console.log('wrote bench/results/cluster.json');
}

await main();
