/**
 * The cases of issue 24's attack-and-fault campaign that the suite lacked: big streams
 * through backend kills and reloads, a store restarted again and again under load, a
 * worker killed mid-stream, a flood of slow admin clients against the probes, and a
 * penalty table under 200,000 sources (over a live listener, by PROXY header).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { startFixtureBackend, type FixtureBackend } from '../../test/fixtures/backends/hostile-backends.js';
import { httpRequest } from '../../test/fixtures/proxy/prometheus.js';
import { startProxy, type TestProxy } from '../../test/fixtures/proxy/proxy.js';
import { startRedis } from '../../test/fixtures/backends/redis-server.js';
import { startServeProcess } from '../../test/fixtures/proxy/serve-process.js';
import { waitFor } from '../../test/fixtures/wait.js';
import { echoSession, type EchoOutcome } from './echo-client.js';
import { measured, type FaultResult } from './harness.js';

const BANNER = 'SSH-2.0-EchoFixture_1.0\r\n';
const MiB = 1024 * 1024;

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function counts(outcomes: readonly EchoOutcome[]): { intact: number; cut: number; corrupt: number } {
  return {
    intact: outcomes.filter((outcome) => outcome.intact).length,
    cut: outcomes.filter((outcome) => outcome.cut).length,
    corrupt: outcomes.filter((outcome) => !outcome.cut && !outcome.intact).length,
  };
}

/** 50 streams of 20 MB over three echo backends; one backend resets all its connections and the proxy reloads three times meanwhile. */
export async function bigStreams(quick: boolean): Promise<FaultResult> {
  const streams = quick ? 20 : 50;
  const bytes = (quick ? 4 : 20) * MiB;
  return measured('big-streams', `${streams} streams of ${bytes / MiB} MB (sha256) over 3 echo backends; one is killed and the proxy reloads 3 times mid-stream`, async () => {
    const backends = await Promise.all([startFixtureBackend('ssh-echo'), startFixtureBackend('ssh-echo'), startFixtureBackend('ssh-echo')]);
    const [victim] = backends as [FixtureBackend, FixtureBackend, FixtureBackend];
    const proxy = await startProxy({
      servers: backends.map((backend, index) => ({ name: `echo${index}`, host: backend.host, port: backend.port })),
      pool: { handshake: { endsAt: 'splice' }, balance: 'roundrobin' },
      config: { limits: { maxConnections: 10_000 } },
      logLevel: 'info',
    });
    const payload = randomBytes(bytes);
    try {
      const sessions = Array.from({ length: streams }, () => echoSession(proxy.port, { bytes, chunks: 320, gapMs: 0, banner: BANNER, timeoutMs: 240_000, payload }));
      await victim.waitForBytes(0, bytes / 4, 60_000);
      const resetByVictim = victim.resetAll();
      // Reloads that keep every listener and server and change a timeout.
      const config = proxy.runtime.server.config;
      for (let reload = 0; reload < 3; reload += 1) await proxy.runtime.reload({ ...config, timeouts: { ...config.timeouts, fin: config.timeouts.fin + reload + 1 } });
      const outcomes = await Promise.all(sessions);
      const { intact, cut, corrupt } = counts(outcomes);
      return {
        // Only the sessions on the killed backend may be cut.
        sessionsLost: Math.max(0, cut - resetByVictim),
        streamsChecked: outcomes.length - cut,
        streamsCorrupt: corrupt,
        accountingOk: intact + cut === streams,
        figures: { intact: `${intact}/${streams}`, cutOnKilledBackend: cut, resetByKilledBackend: resetByVictim, reloads: 3, mebibytesEchoed: Math.round((intact * bytes) / MiB) },
      };
    } finally {
      await proxy.stop();
      await Promise.all(backends.map((backend) => backend.close()));
    }
  });
}

/** Two replicas sharing a store; sessions run without pause while the store is killed and started again 20 times within a minute. */
export async function storeRestarts(quick: boolean): Promise<FaultResult> {
  const restarts = quick ? 6 : 20;
  return measured('store-restarts', `2 replicas on one store, sessions without pause while the store is killed (SIGKILL) and restarted ${restarts} times, every 3 s`, async () => {
    const redis = await startRedis();
    const echo = await startFixtureBackend('ssh-echo');
    const replicas: TestProxy[] = [];
    try {
      for (const replicaId of ['r0', 'r1']) {
        replicas.push(
          await startProxy({
            servers: [{ name: 'echo', host: echo.host, port: echo.port, maxStartups: 8 }],
            pool: { handshake: { endsAt: 'splice' } },
            config: { cluster: { store: redis.url, prefix: 'faults:', leaseTtl: '2s', replicaId }, limits: { maxConnections: 10_000 } },
            logLevel: 'info',
          }),
        );
      }
      await Promise.all(replicas.map((proxy) => proxy.waitForLog((line) => line.event === 'store-state' && line.to === 'up', 10_000)));
      let running = true;
      const outcomes: EchoOutcome[] = [];
      // Eight clients at a time per replica, each starting again as soon as it is done.
      const load = replicas.flatMap((proxy) =>
        Array.from({ length: 8 }, async () => {
          while (running) outcomes.push(await echoSession(proxy.port, { bytes: 16 * 1024, chunks: 4, gapMs: 5, banner: BANNER, timeoutMs: 20_000 }));
        }),
      );
      for (let restart = 0; restart < restarts; restart += 1) {
        await delay(1500);
        await redis.stop('SIGKILL');
        await delay(1500);
        await redis.restart();
      }
      await delay(3000);
      running = false;
      await Promise.all(load);
      const { intact, cut, corrupt } = counts(outcomes);
      const fallbacks = replicas.reduce((sum, proxy) => sum + proxy.logs.filter((line) => line.event === 'store-state' && line.to !== 'up').length, 0);
      const backUp = replicas.every((proxy) => proxy.runtime.server.store?.up === true);
      return {
        sessionsLost: outcomes.length - intact,
        streamsChecked: outcomes.length,
        streamsCorrupt: corrupt,
        accountingOk: backUp,
        figures: { sessions: `${intact}/${outcomes.length}`, cut, storeStateChanges: fallbacks, sharingAgainAtEnd: backUp },
      };
    } finally {
      await Promise.all(replicas.map((proxy) => proxy.stop()));
      await echo.close();
      await redis.stop();
    }
  });
}

/** workers: 2; 20 streams, one worker SIGKILLed mid-stream: the other worker's streams stay byte-exact, new sessions are served. */
export async function workerKilledMidStream(): Promise<FaultResult> {
  return measured('worker-killed-mid-stream', 'workers: 2, 20 streams of 2 MB; one worker SIGKILLed mid-stream', async () => {
    const echo = await startFixtureBackend('ssh-echo');
    const proxy = await startServeProcess(
      {
        workers: 2,
        admin: { bind: '127.0.0.1:0' },
        listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
        pools: [{ name: 'main', handshake: { endsAt: 'splice' }, servers: [{ name: 'echo', address: `127.0.0.1:${echo.port}` }] }],
        log: { level: 'info' },
      },
      { startTimeoutMs: 60_000 },
    );
    try {
      await proxy.waitForLog((line) => line.event === 'admin-listening', 30_000);
      const adminPort = proxy.adminPort ?? 0;
      const workers = async (): Promise<{ pid: number }[]> => (JSON.parse((await httpRequest(adminPort, '/api/status')).body) as { workers: { pid: number }[] }).workers;
      await waitFor(async () => (await workers()).length === 2, { timeoutMs: 30_000, description: 'two workers' });
      const bytes = 2 * MiB;
      const payload = randomBytes(bytes);
      const sessions = Array.from({ length: 20 }, () => echoSession(proxy.port('ssh'), { bytes, chunks: 200, gapMs: 10, banner: BANNER, timeoutMs: 60_000, payload }));
      await echo.waitForConnections(20, 20_000);
      const [victim] = await workers();
      if (victim) process.kill(victim.pid, 'SIGKILL');
      const outcomes = await Promise.all(sessions);
      const { intact, cut, corrupt } = counts(outcomes);
      await waitFor(async () => (await workers()).length === 2, { timeoutMs: 60_000, description: 'a replacement worker' });
      const after = counts(await Promise.all(Array.from({ length: 10 }, () => echoSession(proxy.port('ssh'), { bytes: 4096, chunks: 1, gapMs: 0, banner: BANNER, timeoutMs: 10_000 }))));
      return {
        // The killed worker's sessions are lost with it (as an sshd child's are); nothing else may be.
        sessionsLost: 10 - after.intact,
        streamsChecked: outcomes.length - cut,
        streamsCorrupt: corrupt,
        accountingOk: proxy.child.exitCode === null,
        figures: { intact: `${intact}/20`, cutWithTheKilledWorker: cut, newSessionsAfter: `${after.intact}/10` },
      };
    } finally {
      await proxy.kill();
      await echo.close();
    }
  });
}

/** 1,000 admin clients send `GET /metrics` and then one header line a second; /healthz is asked once a second for 25 s (issue 24, defect 2). */
export async function adminFlood(quick: boolean): Promise<FaultResult> {
  const clients = quick ? 200 : 1000;
  const probes = quick ? 10 : 25;
  return measured('admin-flood', `${clients} admin clients trickle a header line a second; /healthz asked ${probes} times, once a second`, async () => {
    const echo = await startFixtureBackend('ssh-echo');
    const proxy = await startProxy({ servers: [{ name: 'echo', host: echo.host, port: echo.port }], config: { admin: { bind: '127.0.0.1:0' }, limits: { maxConnections: 10_000 } } });
    const adminPort = proxy.runtime.adminPort ?? 0;
    const slow: net.Socket[] = [];
    const trickle = setInterval(() => {
      for (const socket of slow) if (!socket.destroyed) socket.write('X-Slow: 1\r\n');
    }, 1000);
    try {
      for (let index = 0; index < clients; index += 1) {
        const socket = net.connect({ host: '127.0.0.1', port: adminPort }, () => socket.write('GET /metrics HTTP/1.1\r\nHost: admin\r\n'));
        socket.on('error', () => {});
        socket.on('data', () => {});
        slow.push(socket);
      }
      let answered = 0;
      for (let probe = 0; probe < probes; probe += 1) {
        const started = performance.now();
        const response = await httpRequest(adminPort, '/healthz').catch(() => undefined);
        if (response?.status === 200) answered += 1;
        await delay(Math.max(0, 1000 - (performance.now() - started)));
      }
      const stillOpen = slow.filter((socket) => !socket.destroyed).length;
      return {
        sessionsLost: probes - answered,
        streamsChecked: 0,
        streamsCorrupt: 0,
        accountingOk: true,
        figures: { healthzAnswered: `${answered}/${probes}`, slowClientsStillOpen: stillOpen },
      };
    } finally {
      clearInterval(trickle);
      for (const socket of slow) socket.destroy();
      await proxy.stop();
      await echo.close();
    }
  });
}

/** Sends a PROXY v1 header naming `source` and closes: a client from there that left without a word (charged noauth). */
function proxiedHello(port: number, source: string): Promise<void> {
  const family = source.includes(':') ? 'TCP6' : 'TCP4';
  const destination = family === 'TCP6' ? '::1' : '127.0.0.1';
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.end(`PROXY ${family} ${source} ${destination} 40000 22\r\n`));
    socket.on('error', () => resolve());
    socket.on('data', () => {});
    socket.on('close', () => resolve());
  });
}

/** This process's heap in use after a full collection (run with --expose-gc, as npm run faults does). */
function heapMiB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / MiB;
}

/** Runs `task(index)` for 0 … count-1, `parallel` at a time. */
async function pooled(count: number, parallel: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/**
 * Two sources are penalised, then 200,000 distinct sources (100,000 IPv4, 100,000 IPv6 /64
 * from one /32) connect once each through a live listener, by trusted PROXY header: the
 * table stays within maxSources, both penalties stay, memory stays bounded (issue 24, defect 8).
 */
export async function penaltyTable(quick: boolean): Promise<FaultResult> {
  const perFamily = quick ? 20_000 : 100_000;
  const maxSources = 65_536;
  return measured('penalty-table', `2 sources penalised, then ${perFamily * 2} distinct sources (IPv4 and IPv6 /64) once each, by PROXY header through a live listener`, async () => {
    // A backend in a process of its own: the in-process fixture keeps a record of every connection, which would be counted here.
    const backend = spawn(process.execPath, ['-e', `require('node:net').createServer((c) => { c.on('error', () => {}); c.resume(); c.write('SSH-2.0-Sink_1.0\\r\\n'); }).listen(0, '127.0.0.1', function () { console.log(this.address().port); })`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const backendPort = await new Promise<number>((resolve) => backend.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
    const proxy = await startProxy({
      servers: [{ name: 'sink', host: '127.0.0.1', port: backendPort }],
      listener: { proxyProtocol: { accept: 'v1', trusted: ['127.0.0.0/8'] } },
      // Two quick noauths (60 s each) pass min (90 s): the attackers are refused for two minutes,
      // longer than the flood lasts; one charge each leaves the flood's sources pending.
      config: { penalties: { maxSources, noauth: '60s', min: '90s' }, limits: { maxConnections: 10_000 } },
      // The test proxy keeps every log line it writes: none here, so the heap shows the table.
      logLevel: 'error',
    });
    const penalties = proxy.runtime.server.penalties;
    try {
      for (const attacker of ['192.0.2.66', '2001:db8:ffff:1::66']) for (let hello = 0; hello < 2; hello += 1) await proxiedHello(proxy.port, attacker);
      const penalisedBefore = penalties.penalisedCount();
      const heapBefore = heapMiB();
      await pooled(perFamily * 2, 200, (index) => {
        const n = index >> 1;
        const source = index % 2 === 0 ? `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` : `2001:db8:${(n >> 16).toString(16)}:${(n & 0xffff).toString(16)}::1`;
        return proxiedHello(proxy.port, source);
      });
      // Connections still closing hold memory of their own for a moment (no event says all are gone).
      await delay(2000);
      const heapGrowthMiB = Math.round((heapMiB() - heapBefore) * 10) / 10;
      const stillRefused = penalties.check('192.0.2.66') !== undefined && penalties.check('2001:db8:ffff:1::99') !== undefined;
      return {
        sessionsLost: 0,
        streamsChecked: 0,
        streamsCorrupt: 0,
        accountingOk: penalisedBefore === 2 && stillRefused && penalties.size <= maxSources,
        figures: { sources: perFamily * 2, tableSize: penalties.size, maxSources, bothPenaltiesKept: stillRefused, heapGrowthMiB, heapPerSourceBytes: Math.round((heapGrowthMiB * MiB) / (perFamily * 2)), penalisedBefore },
      };
    } finally {
      await proxy.stop();
      backend.kill('SIGKILL');
    }
  });
}
