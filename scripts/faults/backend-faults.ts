/**
 * Backends that die or freeze under load. 40 sessions stream 512 KiB each through
 * two echo backends; one backend is killed (its connections reset) or SIGSTOPped
 * mid-stream. Sessions on the other must be byte-exact; sessions on the dead one end
 * SERVER_RESET and are counted so in sshproxy_session_ends_total; new sessions fail
 * over; nothing leaks.
 */
import { spawn } from 'node:child_process';
import { startFixtureBackend } from '../../test/fixtures/backends/hostile-backends.js';
import { scrape } from '../../test/fixtures/proxy/prometheus.js';
import { startProxy } from '../../test/fixtures/proxy/proxy.js';
import { echoSession } from './echo-client.js';
import { measured, type FaultResult } from './harness.js';

const BANNER = 'SSH-2.0-EchoFixture_1.0\r\n';

export async function backendKilled(): Promise<FaultResult> {
  return measured('backend-killed', '40 streaming sessions over 2 echo backends; one backend resets all its connections mid-stream', async () => {
    const a = await startFixtureBackend('ssh-echo');
    const b = await startFixtureBackend('ssh-echo');
    const proxy = await startProxy({
      servers: [{ name: 'a', host: a.host, port: a.port }, { name: 'b', host: b.host, port: b.port }],
      pool: { handshake: { endsAt: 'splice' }, balance: 'roundrobin' },
      config: { admin: { bind: '127.0.0.1:0' } },
      logLevel: 'info',
    });
    try {
      const sessions = Array.from({ length: 40 }, () => echoSession(proxy.port, { bytes: 512 * 1024, chunks: 64, gapMs: 20, banner: BANNER, timeoutMs: 30_000 }));
      await a.waitForConnections(20, 10_000);
      // Mid-stream: the first session on `a` has moved a good part of its bytes.
      await a.waitForBytes(0, 64 * 1024, 10_000);
      const reset = a.resetAll();
      const outcomes = await Promise.all(sessions);
      const cut = outcomes.filter((outcome) => outcome.cut).length;
      const corrupt = outcomes.filter((outcome) => !outcome.cut && !outcome.intact).length;
      // The client can see its cut before the proxy has ended that session and counted it.
      await proxy.waitForSessions(outcomes.length, 10_000);
      const after = await Promise.all(Array.from({ length: 10 }, () => echoSession(proxy.port, { bytes: 4096, chunks: 1, gapMs: 0, banner: BANNER, timeoutMs: 10_000 })));
      const metrics = await scrape(proxy.runtime.adminPort);
      // A crash shows as resets, or as closes when the reset met a socket that had already read the end.
      const resets = metrics.value('sshproxy_session_ends_total', { listener: 'ssh', reason: 'SERVER_RESET' }) ?? 0;
      const closes = metrics.value('sshproxy_session_ends_total', { listener: 'ssh', reason: 'SERVER_CLOSED' }) ?? 0;
      return {
        // Only the sessions on the backend that died may be lost.
        sessionsLost: Math.max(0, cut - reset),
        streamsChecked: outcomes.length - cut,
        streamsCorrupt: corrupt,
        accountingOk: resets + closes === cut && after.every((outcome) => outcome.intact),
        figures: { resetByBackend: reset, cutOnKilledBackend: cut, endsCounted: { SERVER_RESET: resets, SERVER_CLOSED: closes }, newSessionsAfter: `${after.filter((outcome) => outcome.intact).length}/10` },
      };
    } finally {
      await proxy.stop();
      await a.close();
      await b.close();
    }
  });
}

export async function backendFrozen(): Promise<FaultResult> {
  return measured('backend-sigstop', 'one of two backends SIGSTOPped: 30 new sessions fail over, none fails; sessions already on it end by the write stall or stay', async () => {
    // The frozen backend is a separate process, so SIGSTOP freezes it and not us.
    const frozen = spawn(process.execPath, ['-e', `require('node:net').createServer((c) => { c.on('error', () => {}); c.write('SSH-2.0-Frozen_1.0\\r\\n'); c.pipe(c); }).listen(0, '127.0.0.1', function () { console.log(this.address().port); })`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve) => frozen.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
    const healthy = await startFixtureBackend('ssh-echo');
    const proxy = await startProxy({
      servers: [{ name: 'frozen', host: '127.0.0.1', port }, { name: 'healthy', host: healthy.host, port: healthy.port }],
      pool: { handshake: { endsAt: 'splice' }, balance: 'roundrobin' },
      config: { timeouts: { banner: '1s' } },
      logLevel: 'info',
    });
    try {
      frozen.kill('SIGSTOP');
      const outcomes = await Promise.all(Array.from({ length: 30 }, () => echoSession(proxy.port, { bytes: 8192, chunks: 1, gapMs: 0, banner: 'SSH-2.0-EchoFixture_1.0\r\n', timeoutMs: 15_000 })));
      const failed = outcomes.filter((outcome) => !outcome.intact).length;
      await proxy.waitForSessions(outcomes.length, 10_000);
      const attempts = proxy.sessions().flatMap((line) => (Array.isArray(line.attempts) ? (line.attempts as { result?: string }[]) : []));
      const timeouts = attempts.filter((attempt) => attempt.result === 'BANNER_TIMEOUT').length;
      return {
        sessionsLost: failed,
        streamsChecked: outcomes.length,
        streamsCorrupt: outcomes.filter((outcome) => !outcome.cut && !outcome.intact).length,
        accountingOk: timeouts > 0 && proxy.sessions().filter((line) => line.spliced === true).length === outcomes.length - failed,
        figures: { bannerTimeoutsOnFrozen: timeouts, sessionsOk: `${outcomes.length - failed}/${outcomes.length}` },
      };
    } finally {
      frozen.kill('SIGCONT');
      frozen.kill('SIGKILL');
      await proxy.stop();
      await healthy.close();
    }
  });
}
