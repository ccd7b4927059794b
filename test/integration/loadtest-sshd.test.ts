/**
 * loadtest against a real OpenSSH server, directly and through the proxy (in-process
 * ProxyRuntime), with the counts asserted; and the CLI's --json/--csv output.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { validateConfig } from '../../src/config/load.js';
import { buildReport } from '../../src/loadtest/report.js';
import { runLoadTest, type LoadTarget, type LoadTestOptions } from '../../src/loadtest/runner.js';
import { ProxyRuntime } from '../../src/runtime.js';
import { runProcess } from '../fixtures/run-process.js';
import { sshdAvailable, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';

const skip = sshdAvailable() ? false : 'OpenSSH server not installed';
const TIMEOUTS = { connectTimeoutMs: 3000, bannerTimeoutMs: 8000, handshakeTimeoutMs: 15000 };

function target(port: number, label = `127.0.0.1:${port}`): LoadTarget {
  return { host: '127.0.0.1', port, label };
}

async function startProxy(t: TestContext, sshd: SshdHandle, pool: Record<string, unknown> = {}, server: Record<string, unknown> = {}): Promise<number> {
  const config = validateConfig(
    {
      listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
      pools: [{ name: 'main', servers: [{ name: 'sshd', address: `${sshd.host}:${sshd.port}`, ...server }], ...pool }],
      // Banner and kex clients leave without logging in, all from loopback: the proxy's
      // penalties would refuse them after about 16 (as sshd 9.8+ would). Exempt, as docs/loadtest.md says.
      penalties: { exempt: ['127.0.0.0/8'] },
    },
    'test',
  );
  const runtime = new ProxyRuntime(config, { logger: pino({ level: 'silent' }) });
  await runtime.start();
  t.after(() => runtime.stop(0));
  return runtime.port('ssh');
}

function run(options: Partial<LoadTestOptions> & Pick<LoadTestOptions, 'targets' | 'mode' | 'total'>) {
  return runLoadTest({ durationMs: 60_000, ...TIMEOUTS, ...options });
}

test('banner mode, closed loop, against sshd: every attempt counted and identified', { skip }, async (t) => {
  const sshd = await startSshd();
  t.after(() => sshd.stop());
  const result = await run({ targets: [target(sshd.port)], mode: 'banner', clients: 4, total: 30 });
  assert.equal(result.records.length, 30);
  assert.equal(result.stoppedBy, 'total');
  const report = buildReport(result, [target(sshd.port)], { mode: 'banner', clients: 4 });
  const [summary] = report.targets;
  assert.equal(summary?.attempts, 30);
  assert.equal(summary?.successes, 30, JSON.stringify(summary?.failuresByReason));
  assert.equal(summary?.latency.banner?.count, 30);
  assert.equal(summary?.latency.handshake, undefined); // banner mode does no key exchange
  assert.equal(summary?.histogram.reduce((sum, bucket) => sum + bucket.count, 0), 30);
  assert.deepEqual(new Set(result.records.map((record) => record.index)).size, 30);
});

test('kex mode, direct vs through the proxy, interleaved: both 20/20 with handshake latencies', { skip }, async (t) => {
  const sshd = await startSshd();
  t.after(() => sshd.stop());
  const proxyPort = await startProxy(t, sshd);
  const targets = [target(sshd.port, 'direct'), target(proxyPort, 'proxy')];
  const result = await run({ targets, mode: 'kex', clients: 2, total: 20 });
  const report = buildReport(result, targets, { mode: 'kex', clients: 2 });
  for (const summary of report.targets) {
    assert.equal(summary.attempts, 20, summary.target);
    assert.equal(summary.successes, 20, `${summary.target}: ${JSON.stringify(summary.failuresByReason)}`);
    assert.equal(summary.latency.handshake?.count, 20);
  }
  // Interleaved: each target's attempts start before the other's last one does.
  const starts = (label: string): number[] => result.records.filter((record) => record.target === label).map((record) => record.startMs);
  assert.ok(Math.min(...starts('proxy')) < Math.max(...starts('direct')));
  assert.ok(Math.min(...starts('direct')) < Math.max(...starts('proxy')));
});

test('kex mode against sshd MaxStartups 2: direct clients get throttled, the proxy (maxStartups 1) queues them and all succeed', { skip }, async (t) => {
  const sshd = await startSshd({ maxStartups: '2' });
  t.after(() => sshd.stop());
  const direct = await run({ targets: [target(sshd.port, 'direct')], mode: 'kex', clients: 8, total: 24 });
  const directFailures = direct.records.filter((record) => !record.ok);
  assert.equal(direct.records.length, 24);
  assert.ok(directFailures.length > 0, 'expected throttling with 8 clients against MaxStartups 2');
  assert.ok(
    directFailures.every((record) => record.reason === 'throttled' || record.reason === 'closed-before-banner' || record.reason === 'reset-before-banner'),
    JSON.stringify(directFailures.map((record) => record.reason)),
  );
  assert.ok(directFailures.some((record) => record.reason === 'throttled'));

  const proxyPort = await startProxy(t, sshd, { healthCheck: { enabled: false }, handshake: { endsAt: 'newkeys+grace', grace: '100ms' } }, { maxStartups: 1 });
  const proxied = await run({ targets: [target(proxyPort, 'proxy')], mode: 'kex', clients: 8, total: 24 });
  assert.equal(proxied.records.length, 24);
  const failures = proxied.records.filter((record) => !record.ok).map((record) => record.reason);
  assert.deepEqual(failures, [], 'every client through the proxy completes key exchange');
});

test('loadtest CLI, auth mode with a command through the proxy: --json counts, --csv rows', { skip }, async (t) => {
  const sshd = await startSshd();
  t.after(() => sshd.stop());
  const proxyPort = await startProxy(t, sshd);
  const cli = (extra: readonly string[]) =>
    runProcess(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'loadtest', `127.0.0.1:${proxyPort}`, '--mode', 'auth', '-u', sshd.user, '-i', sshd.identityFile, '--command', 'echo hi', '--total', '6', ...extra],
      { timeoutMs: 60_000 },
    );
  const json = await cli(['--rate', '10', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as { loop: string; targets: { attempts: number; successes: number; latency: Record<string, { count: number; p50: number; p99: number; max: number }> }[] };
  assert.equal(report.loop, 'open');
  assert.equal(report.targets[0]?.attempts, 6);
  assert.equal(report.targets[0]?.successes, 6);
  for (const phase of ['connect', 'banner', 'handshake', 'auth', 'total']) {
    const summary: { count: number; p50: number; max: number } | undefined = report.targets[0]?.latency[phase];
    assert.equal(summary?.count, 6, phase);
    assert.ok((summary?.p50 ?? -1) >= 0 && (summary?.p50 ?? 0) <= (summary?.max ?? -1), phase);
  }
  const log = await sshd.readLog();
  assert.ok((log.match(/Accepted publickey/g) ?? []).length >= 6, 'sshd saw six logins');

  const csv = await cli(['--clients', '2', '--csv']);
  assert.equal(csv.code, 0, csv.stderr);
  const lines = csv.stdout.trim().split('\n');
  assert.equal(lines[0], 'target,index,startMs,ok,reason,connectMs,bannerMs,handshakeMs,authMs,totalMs');
  assert.equal(lines.length, 7);
  for (const line of lines.slice(1)) assert.match(line, /^127\.0\.0\.1:\d+,\d,[\d.]+,true,,[\d.]+,[\d.]+,[\d.]+,[\d.]+,[\d.]+$/);
});

test('loadtest on a terminal: live progress line, and --hold keeps each authenticated session open', { skip: skip || (existsSync('/usr/bin/script') ? false : 'script (util-linux) is not installed') }, async (t) => {
  const sshd = await startSshd();
  t.after(() => sshd.stop());
  const command = [process.execPath, '--import', 'tsx', 'src/cli.ts', 'loadtest', `127.0.0.1:${sshd.port}`, '--mode', 'auth', '-u', sshd.user, '-i', sshd.identityFile, '--hold', '1', '--clients', '2', '--total', '4']
    .map((word) => `'${word}'`)
    .join(' ');
  // script(1) gives the command a pseudo-terminal, as an operator's shell would.
  const startedAt = performance.now();
  const result = await runProcess('/usr/bin/script', ['-qec', command, '/dev/null'], { timeoutMs: 60_000 });
  const elapsedMs = performance.now() - startedAt;
  assert.equal(result.code, 0, result.stdout);
  assert.match(result.stdout, /\r\[#*\.*\] \d\/4 [\d.]+\/s {2}failed 0 {2}in flight \d/, 'a progress line redrawn in place');
  assert.match(result.stdout, /\[#{30}\] 4\/4/, 'the bar reached the end');
  const log = await sshd.readLog();
  assert.equal((log.match(/Accepted publickey/g) ?? []).length, 4);
  // 4 sessions, 2 at a time, each held 1 s after login: at least two rounds of holding.
  assert.ok(elapsedMs >= 2000, `the run took ${Math.round(elapsedMs)} ms; held sessions need at least 2000`);
});
