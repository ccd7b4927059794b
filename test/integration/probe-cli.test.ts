/**
 * The probe command as a user runs it: JSON output schema and exit codes (0 ok, 1 other verdicts, 2 usage).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROBE_VERDICTS } from '../../src/diagnose/verdicts.js';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { runProcess } from '../fixtures/run-process.js';

const CLI = ['--import', 'tsx', 'src/cli.ts'];
const run = (args: readonly string[]) => runProcess(process.execPath, [...CLI, ...args], { timeoutMs: 30_000 });

function assertProbeJson(value: unknown): asserts value is Record<string, unknown> {
  assert.equal(typeof value, 'object');
  const object = value as Record<string, unknown>;
  assert.ok(PROBE_VERDICTS.includes(object.verdict as never), `verdict ${String(object.verdict)}`);
  assert.equal(typeof object.latencyMs, 'number');
  assert.ok(object.identification === null || typeof object.identification === 'string');
  assert.ok(Array.isArray(object.preLines));
  assert.ok(object.protocol === null || typeof object.protocol === 'string');
  assert.equal(typeof object.hint, 'string');
  assert.equal(typeof object.ok, 'boolean');
  assert.ok(object.code === null || typeof object.code === 'string');
}

test('probe --json of an SSH server: one object, verdict ok, exit 0', async (t) => {
  const backend = await startFixtureBackend('pre-lines');
  t.after(() => backend.close());
  const result = await run(['probe', `127.0.0.1:${backend.port}`, '--json', '--no-kexinit']);
  assert.equal(result.code, 0, result.stderr);
  const parsed: unknown = JSON.parse(result.stdout);
  assertProbeJson(parsed);
  assert.equal(parsed.verdict, 'ok');
  assert.equal(parsed.identification, 'SSH-2.0-PreLinesFixture_1.0');
  assert.deepEqual(parsed.preLines, ['Welcome to the fixture host', 'Authorized use only']);
  assert.equal(parsed.protocol, null);
});

test('probe --json of an HTTP server: not-ssh naming http, exit 1', async (t) => {
  const backend = await startFixtureBackend('http');
  t.after(() => backend.close());
  const result = await run(['probe', `127.0.0.1:${backend.port}`, '--json']);
  assert.equal(result.code, 1, result.stderr);
  const parsed: unknown = JSON.parse(result.stdout);
  assertProbeJson(parsed);
  assert.equal(parsed.verdict, 'not-ssh');
  assert.equal(parsed.protocol, 'http');
  assert.equal(parsed.identification, null);
});

test('probe of a throttling server, human output: verdict, the notice and the hint, exit 1', async (t) => {
  const backend = await startFixtureBackend('throttle');
  t.after(() => backend.close());
  const result = await run(['probe', `127.0.0.1:${backend.port}`, '--count', '5', '--concurrency', '2']);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stdout, /5\/5 throttled/);
  assert.match(result.stdout, /server said\s+Exceeded MaxStartups/);
  assert.match(result.stdout, /MaxStartups 100:30:200/);
  assert.equal(backend.connections, 5);
});

test('probe usage errors exit 2: bad target, bad number, unknown flag', async () => {
  for (const args of [['probe', 'host:99999'], ['probe', '127.0.0.1:22', '--count', '0'], ['probe', '127.0.0.1:22', '--bogus']]) {
    const result = await run(args);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stdout}${result.stderr}`);
    assert.equal(result.stdout, '');
  }
});

test('probe of an IPv6 address writes it as [address]:port everywhere, the detail line too', async () => {
  const { freePort } = await import('../fixtures/wait.js');
  const port = await freePort('::1');
  const result = await run(['probe', `[::1]:${port}`, '--timeout', '2s']);
  assert.equal(result.code, 1);
  assert.match(result.stdout, new RegExp(`^FAIL \\[::1\\]:${port}: refused`, 'm'));
  assert.match(result.stdout, new RegExp(`detail\\s+\\[::1\\]:${port}: connection refused`));
  assert.doesNotMatch(result.stdout, /(^|\s)::1:\d/);
});
