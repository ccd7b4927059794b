/**
 * `loadtest --mode kex` against the proxy with its penalties on: every connection ends
 * without a login, each is charged `noauth` to 127.0.0.1, and the load generator locks its
 * own host out. The report says so, and how to exempt it.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import ssh2 from 'ssh2';
import { startDemoBackend } from '../../src/demo/ssh-backend.js';
import { selfPenaltyNote } from '../../src/loadtest/report.js';
import { startProxy } from '../fixtures/proxy/proxy.js';
import { runProcess } from '../fixtures/run-process.js';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

test('loadtest --mode kex through the proxy: once its own source is penalised, the report says why and how to exempt it', async (t) => {
  const { private: hostKey } = ssh2.utils.generateKeyPairSync('ed25519');
  const backend = await startDemoBackend({ name: 'healthy', kind: 'healthy', hostKey });
  t.after(() => backend.close());
  // A 3 s threshold (min) and 1 s per abandoned connection: the fourth charged kex-only client tips it.
  // 30, not 12: when the backend's FIN (it answers the client's DISCONNECT) is read before the
  // client's, the session reads as SERVER_CLOSED and is not charged; 3 of 12 were charged in one run.
  const proxy = await startProxy({ servers: [{ name: 'a', host: '127.0.0.1', port: backend.port }], config: { penalties: { noauth: '1s', min: '3s', max: '1m' } }, logLevel: 'info' });
  t.after(() => proxy.stop());
  const result = await runProcess(process.execPath, ['--import', 'tsx', CLI, 'loadtest', `127.0.0.1:${proxy.port}`, '--mode', 'kex', '--clients', '1', '--total', '30'], { timeoutMs: 60_000 });
  assert.match(result.stdout, /throttled/, JSON.stringify(proxy.sessions().map((s) => [s.auth, s.penaltyCharged, s.reason])) + result.stdout.slice(0, 300));
  assert.match(result.stdout, /note \(127\.0\.0\.1:\d+\): \d+ attempt\(s\) were refused with "Not allowed at this time" after \d+ had succeeded/);
  assert.match(result.stdout, /penalties\.exempt/);
  assert.match(result.stdout, /PerSourcePenaltyExemptList/);
});

test('the note is not given where the refusals are not the load\'s own doing', () => {
  const record = (index: number, ok: boolean, reason: 'throttled' | null) => ({ target: 't', index, startMs: index, ok, reason, connectMs: 1, bannerMs: 1, handshakeMs: null, authMs: null, totalMs: 2 });
  const penalisedLater = [record(0, true, null), record(1, true, null), record(2, false, 'throttled')];
  assert.match(selfPenaltyNote('kex', penalisedLater) ?? '', /1 attempt\(s\) were refused .* after 2 had succeeded/);
  assert.equal(selfPenaltyNote('auth', penalisedLater), undefined, 'auth logs in: nothing charged for abandoning');
  assert.equal(selfPenaltyNote('banner', [record(0, false, 'throttled'), record(1, true, null)]), undefined, 'refused from the start: a full server, not the load');
});
