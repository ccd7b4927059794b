/**
 * loadtest is always bounded (total, duration, signal) and names failures with the probe's verdicts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runLoadTest, type LoadTestOptions } from '../../src/loadtest/runner.js';
import { renderProgress } from '../../src/loadtest/progress.js';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';

const BASE = { mode: 'banner', connectTimeoutMs: 1000, bannerTimeoutMs: 500, handshakeTimeoutMs: 1000 } as const;

function targetFor(port: number): LoadTestOptions['targets'] {
  return [{ host: '127.0.0.1', port, label: `127.0.0.1:${port}` }];
}

test('open loop stops at the duration even when the total is far away', async (t) => {
  const backend = await startFixtureBackend('ssh-echo');
  t.after(() => backend.close());
  const run = await runLoadTest({ ...BASE, targets: targetFor(backend.port), rate: 50, total: 10_000, durationMs: 400 });
  assert.equal(run.stoppedBy, 'duration');
  assert.ok(run.records.length >= 10 && run.records.length <= 30, `${run.records.length} attempts at 50/s in 0.4 s`);
  assert.equal(backend.connections, run.records.length);
  assert.ok(run.records.every((record) => record.ok));
});

test('closed loop against a throttling server: every failure is "throttled", never more than --clients at once', async (t) => {
  const backend = await startFixtureBackend('throttle');
  t.after(() => backend.close());
  const run = await runLoadTest({ ...BASE, targets: targetFor(backend.port), clients: 3, total: 15, durationMs: 10_000 });
  assert.equal(run.records.length, 15);
  assert.deepEqual([...new Set(run.records.map((record) => record.reason))], ['throttled']);
  assert.ok(backend.maxConcurrent <= 3, `max concurrent ${backend.maxConcurrent}`);
});

test('an abort signal stops launching; running attempts finish within their timeouts', async (t) => {
  const backend = await startFixtureBackend('silent');
  t.after(() => backend.close());
  const abort = new AbortController();
  const progress: number[] = [];
  const running = runLoadTest({
    ...BASE,
    targets: targetFor(backend.port),
    clients: 2,
    total: 1000,
    durationMs: 60_000,
    signal: abort.signal,
    onProgress: (snapshot) => progress.push(snapshot.inFlight),
  });
  await backend.waitForConnections(2, 2000);
  abort.abort();
  const run = await running;
  assert.equal(run.stoppedBy, 'signal');
  assert.equal(run.records.length, 2);
  assert.deepEqual(run.records.map((record) => record.reason), ['banner-timeout', 'banner-timeout']);
  assert.equal(progress.at(-1), 0);
});

test('the progress line shows done/planned, rate, failures and a bar', () => {
  const line = renderProgress({ done: 50, planned: 100, failures: 3, inFlight: 4, elapsedMs: 2000, durationMs: 60_000 });
  assert.match(line, /^\[#{15}\.{15}\] 50\/100 25\.0\/s {2}failed 3 {2}in flight 4 {2}2\.0s$/);
});

test('the report counts failures by phase and keeps throttle lines, resets and closes apart', async (t) => {
  const { buildReport, formatReport } = await import('../../src/loadtest/report.js');
  const { freePort } = await import('../fixtures/wait.js');
  const throttle = await startFixtureBackend('throttle');
  t.after(() => throttle.close());
  const reset = await startFixtureBackend('reset');
  t.after(() => reset.close());
  const targets = [...targetFor(throttle.port), ...targetFor(reset.port), ...targetFor(await freePort())];
  const run = await runLoadTest({ ...BASE, targets, clients: 1, total: 3, durationMs: 10_000 });
  const report = buildReport(run, targets, { mode: 'banner', clients: 1 });
  const [throttled, resetting, refused] = report.targets;
  assert.deepEqual(throttled?.failuresByPhase, { connect: 0, banner: 3, 'key exchange': 0, authentication: 0, session: 0 });
  assert.deepEqual(throttled?.failuresByReason, { throttled: 3 });
  assert.deepEqual(resetting?.failuresByReason, { 'reset-before-banner': 3 });
  assert.equal(refused?.failuresByPhase.connect, 3);
  const text = formatReport(report);
  assert.match(text, /at connect/);
  assert.match(text, /at banner[\s\S]*throttled[\s\S]*reset-before-banner/);
});
