/**
 * Faults a whole `serve` process meets: descriptor exhaustion across a reload, storms
 * of SIGHUP and SIGTERM with live sessions, and worker kills. Run as real child
 * processes, as an operator would see them.
 */
import net from 'node:net';
import { startFixtureBackend } from '../../test/fixtures/backends/hostile-backends.js';
import { httpRequest, scrape } from '../../test/fixtures/proxy/prometheus.js';
import { startServeProcess } from '../../test/fixtures/proxy/serve-process.js';
import { waitFor } from '../../test/fixtures/wait.js';
import { echoSession } from './echo-client.js';
import { measured, type FaultResult } from './harness.js';

const BANNER = 'SSH-2.0-EchoFixture_1.0\r\n';

function pool(port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'main', healthCheck: { interval: '1s' }, handshake: { endsAt: 'splice' }, servers: [{ name: 'echo', address: `127.0.0.1:${port}` }], ...extra };
}

export async function descriptorExhaustion(): Promise<FaultResult> {
  return measured('fd-exhaustion-reload', 'serve under prlimit --nofile=512, a no-op SIGHUP, then 400 clients held at once: excess refused at accept, no backend marked DOWN', async () => {
    const echo = await startFixtureBackend('ssh-echo');
    const proxy = await startServeProcess(
      { listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }], pools: [pool(echo.port)], admin: { bind: '127.0.0.1:0' }, log: { level: 'info' } },
      { wrap: ['/usr/bin/prlimit', '--nofile=512:512'] },
    );
    try {
      const cap = Number((await proxy.waitForLog((line) => line.event === 'fd-limit', 5000)).effectiveMaxConnections);
      proxy.signal('SIGHUP');
      await proxy.waitForLog((line) => line.event === 'config-reload', 5000);
      const clients = Array.from({ length: 400 }, () => {
        const socket = net.connect({ host: '127.0.0.1', port: proxy.port('ssh') });
        socket.on('error', () => {});
        socket.on('data', () => {});
        socket.write('SSH-2.0-Held_1.0\r\n');
        return socket;
      });
      await waitFor(() => proxy.logs.filter((line) => line.event === 'rejected').length + echo.openConnections >= 400, { timeoutMs: 15_000, description: 'every client placed' });
      const refused = proxy.logs.filter((line) => line.event === 'rejected' && line.reason === 'LIMIT_REACHED').length;
      const down = proxy.logs.filter((line) => line.event === 'server-state' && line.to === 'DOWN').length;
      const status = JSON.parse((await httpRequest(proxy.adminPort ?? 0, '/api/status')).body) as { connections: { limit: number } };
      for (const client of clients) client.destroy();
      await echo.waitForClosed(echo.maxConcurrent, 10_000);
      const later = await echoSession(proxy.port('ssh'), { bytes: 4096, chunks: 1, gapMs: 0, banner: BANNER, timeoutMs: 10_000 });
      return {
        sessionsLost: later.intact ? 0 : 1,
        streamsChecked: 1,
        streamsCorrupt: later.intact || later.cut ? 0 : 1,
        accountingOk: down === 0 && status.connections.limit === cap && refused === 400 - echo.maxConcurrent,
        figures: { cap, limitShownAfterReload: status.connections.limit, heldAtOnce: echo.maxConcurrent, refusedAtAccept: refused, backendsMarkedDown: down },
      };
    } finally {
      await proxy.kill();
      await echo.close();
    }
  });
}

export async function signalStorms(): Promise<FaultResult> {
  return measured('signal-storms', '20 streaming sessions; 50 SIGHUPs, then SIGTERM and 20 more SIGHUPs during the drain: every stream byte-exact, exit 0', async () => {
    const echo = await startFixtureBackend('ssh-echo');
    const proxy = await startServeProcess({ listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }], pools: [pool(echo.port)], timeouts: { drain: '60s' }, log: { level: 'info' } });
    try {
      const sessions = Array.from({ length: 20 }, () => echoSession(proxy.port('ssh'), { bytes: 256 * 1024, chunks: 100, gapMs: 30, banner: BANNER, timeoutMs: 60_000 }));
      await echo.waitForConnections(20, 10_000);
      for (let index = 0; index < 50; index += 1) proxy.signal('SIGHUP');
      await waitFor(() => proxy.logs.filter((line) => line.event === 'config-reload').length >= 2, { timeoutMs: 20_000, description: 'reloads' });
      proxy.signal('SIGTERM');
      await proxy.waitForLog((line) => line.event === 'shutdown', 5000);
      for (let index = 0; index < 20; index += 1) proxy.signal('SIGHUP');
      const outcomes = await Promise.all(sessions);
      const exit = await proxy.exited;
      const lost = outcomes.filter((outcome) => outcome.cut).length;
      return {
        sessionsLost: lost,
        streamsChecked: outcomes.length,
        streamsCorrupt: outcomes.filter((outcome) => !outcome.cut && !outcome.intact).length,
        accountingOk: exit.code === 0 && exit.signal === null,
        figures: { reloadsLogged: proxy.logs.filter((line) => line.event === 'config-reload').length, hangupsIgnoredInDrain: proxy.logs.filter((line) => line.event === 'sighup-ignored').length, exit },
      };
    } finally {
      await proxy.kill();
      await echo.close();
    }
  });
}

export async function workerKills(): Promise<FaultResult> {
  return measured('worker-kills', 'workers: 2; 6 SIGKILLs of workers in a row while clients connect: the proxy stays up, counters never go backwards', async () => {
    const echo = await startFixtureBackend('ssh-echo');
    const proxy = await startServeProcess(
      { workers: 2, admin: { bind: '127.0.0.1:0' }, listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }], pools: [pool(echo.port)], log: { level: 'info' } },
      { startTimeoutMs: 60_000 },
    );
    try {
      await proxy.waitForLog((line) => line.event === 'admin-listening', 30_000);
      const adminPort = proxy.adminPort ?? 0;
      const workers = async (): Promise<{ pid: number }[]> => (JSON.parse((await httpRequest(adminPort, '/api/status')).body) as { workers: { pid: number }[] }).workers;
      const spliced = async (): Promise<number> => (await scrape(adminPort)).value('sshproxy_sessions_total', { listener: 'ssh', result: 'spliced' }) ?? 0;
      await waitFor(async () => (await workers()).length === 2, { timeoutMs: 30_000, description: 'two workers' });
      const readings: number[] = [];
      let failed = 0;
      for (let round = 0; round < 6; round += 1) {
        const outcomes = await Promise.all(Array.from({ length: 10 }, () => echoSession(proxy.port('ssh'), { bytes: 1024, chunks: 1, gapMs: 0, banner: BANNER, timeoutMs: 10_000 })));
        failed += outcomes.filter((outcome) => !outcome.intact).length;
        readings.push(await spliced());
        const [victim] = await workers();
        if (victim) process.kill(victim.pid, 'SIGKILL');
        await waitFor(async () => (await workers()).length === 2 && !(await workers()).some((worker) => worker.pid === victim?.pid), { timeoutMs: 60_000, description: 'a replacement' });
      }
      readings.push(await spliced());
      const monotonic = readings.every((value, index) => index === 0 || value >= (readings[index - 1] ?? 0));
      return {
        sessionsLost: failed,
        streamsChecked: 60,
        streamsCorrupt: 0,
        accountingOk: monotonic && proxy.child.exitCode === null,
        figures: { sessionsTotalReadings: readings.join(' → '), workerExits: proxy.logs.filter((line) => line.event === 'worker-exit').length },
      };
    } finally {
      await proxy.kill();
      await echo.close();
    }
  });
}
