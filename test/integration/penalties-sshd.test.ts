/**
 * Per-source penalties against a real OpenSSH 10.0 (PerSourcePenalties on by default):
 * one client failing to log in from 127.0.0.5 is refused by the proxy itself
 * (PENALIZED, "Not allowed at this time") after as many failures as sshd would allow it,
 * while clients from 127.0.0.6 keep logging in. With the proxy not exempted at sshd,
 * the proxy recognises the penalty on its own address, holds the backend out instead of
 * hammering it, and logs the exemption that fixes it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { probeMany } from '../../src/diagnose/probe-many.js';
import { runSsh } from '../fixtures/clients/clients.js';
import { httpRequest, scrape } from '../fixtures/proxy/prometheus.js';
import { startProxy, type TestProxy } from '../fixtures/proxy/proxy.js';
import { rawExchange } from '../fixtures/clients/raw-client.js';
import { generateEd25519 } from '../fixtures/sshd/ssh-keys.js';
import { sshdAvailable, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';

const BAD = '127.0.0.5';
const GOOD = '127.0.0.6';

describe('per-source penalties in front of OpenSSH 10.0', { skip: sshdAvailable(10) ? false : 'OpenSSH 10.0 is not available (scripts/unpack-openssh10.sh)' }, () => {
  let dir: string;
  let wrongKey: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sbp-penalties-'));
    wrongKey = (await generateEd25519(path.join(dir, 'wrong'), 'not authorized')).privateKeyPath;
  });
  after(() => rm(dir, { recursive: true, force: true }));

  function login(sshd: SshdHandle, proxy: TestProxy, from: string, identityFile: string) {
    return runSsh({ ...sshd, identityFile, host: proxy.host, port: proxy.port, command: 'true', timeoutMs: 20_000, extraOptions: [`BindAddress=${from}`] });
  }

  describe('sshd exempts the proxy; the proxy penalises the client', () => {
    let sshd: SshdHandle;
    let proxy: TestProxy;
    before(async () => {
      sshd = await startSshd({ version: 10 });
      proxy = await startProxy({ servers: [{ name: 'sshd', host: sshd.host, port: sshd.port }], pool: { verify: 'kexinit' }, config: { penalties: {}, admin: { bind: '127.0.0.1:0' } } });
    });
    after(async () => {
      await proxy?.stop();
      await sshd?.stop();
    });

    it('four failed logins, then the proxy refuses that source with sshd\'s line; other sources log in', async () => {
      for (let failure = 1; failure <= 4; failure += 1) {
        const result = await login(sshd, proxy, BAD, wrongKey);
        assert.equal(result.code, 255, `failure ${failure} reached sshd and was refused there`);
        assert.match(result.stderr, /Permission denied/);
      }
      // Charged as each session closes, which may trail the client's exit by a moment.
      const failed = await proxy.waitForSessions(4, 10_000);
      assert.deepEqual(failed.map((summary) => summary.auth), ['authfail', 'authfail', 'authfail', 'authfail']);
      const refused = await rawExchange({ port: proxy.port, localAddress: BAD, timeoutMs: 5000 });
      assert.equal(refused.data.toString(), 'Not allowed at this time\r\n');
      assert.equal(refused.outcome, 'end', 'then a clean close');
      // While the penalty is enforced (20 s charged, enforced past 15 s: a few seconds on a loaded
      // machine), what shows it: the gauge, the status list and the page.
      const during = await scrape(proxy.runtime.adminPort);
      assert.equal(during.value('sshproxy_sources_penalised'), 1);
      const status = JSON.parse((await httpRequest(proxy.runtime.adminPort as number, '/api/status')).body) as { penalties: { penalised: { source: string; kind: string; charges: number }[] } };
      assert.deepEqual(status.penalties.penalised.map(({ source, kind, charges }) => ({ source, kind, charges })), [{ source: BAD, kind: 'authfail', charges: 4 }]);
      const page = await httpRequest(proxy.runtime.adminPort as number, '/');
      assert.match(page.body, new RegExp(`<td class="mono">${BAD.replace(/\./g, '\\.')}</td><td>authfail</td>`), 'the status page lists the penalised source');
      for (let client = 0; client < 5; client += 1) {
        const result = await login(sshd, proxy, GOOD, sshd.identityFile);
        assert.equal(result.code, 0, result.stderr);
      }
      await proxy.waitForSessions(9, 10_000);
      const metrics = await scrape(proxy.runtime.adminPort);
      assert.equal(metrics.value('sshproxy_connections_rejected_total', { listener: 'ssh', reason: 'PENALIZED' }), 1);
      assert.equal(metrics.value('sshproxy_penalties_charged_total', { kind: 'authfail' }), 4);
      assert.equal(metrics.value('sshproxy_penalties_activated_total', { kind: 'authfail' }), 1);
      assert.equal(metrics.value('sshproxy_auth_outcomes_total', { pool: 'main', outcome: 'ok' }), 5);
      assert.doesNotMatch(await sshd.readLog(), /penalty/, 'sshd never penalised anyone');
    });
  });

  describe('sshd does not exempt the proxy', () => {
    let sshd: SshdHandle;
    let proxy: TestProxy;
    before(async () => {
      sshd = await startSshd({ version: 10, exemptLoopback: false });
      // The proxy's own penalties off: sshd is the one to lock everybody out here.
      proxy = await startProxy({ servers: [{ name: 'sshd', host: sshd.host, port: sshd.port }], pool: { verify: 'kexinit' } });
    });
    after(async () => {
      await proxy?.stop();
      await sshd?.stop();
    });

    it('the lock-out is recognised, the backend held out after three refusals, and the fix logged', async () => {
      for (let failure = 1; failure <= 4; failure += 1) await login(sshd, proxy, BAD, wrongKey);
      await sshd.waitForLog(/penalty: failed authentication/, 10_000);
      const attemptsBefore = (await proxy.waitForSessions(4, 10_000)).length;
      const locked = [];
      for (let client = 0; client < 5; client += 1) locked.push(await login(sshd, proxy, GOOD, sshd.identityFile));
      assert.ok(locked.every((result) => result.code !== 0), 'sshd locks every client out: the reason to exempt the proxy');
      const warning = await proxy.waitForLog((line) => line.event === 'backend-penalty' && line.phase === 'started', 5000);
      assert.equal(warning.hint, 'PerSourcePenaltyExemptList 127.0.0.1');
      const sessions = proxy.sessions().slice(attemptsBefore);
      const attempts = sessions.reduce((total, summary) => total + (Array.isArray(summary.attempts) ? summary.attempts.length : 0), 0);
      // Without the hold-out each client would make retry.maxAttempts (6): 30 in all.
      assert.ok(attempts <= 6, `backend attempts for the five locked-out clients: ${attempts} (at most one client's worth reveals the penalty)`);
      assert.ok(sessions.slice(1).every((summary) => summary.reason === 'NO_BACKEND'), 'later clients are not sent to a backend that refuses the proxy');
      // probe, from the proxy's address, one connection at a time: refused every time with the line
      // 9.8+ writes for penalties and MaxStartups alike, so it names both (its hint: the exemption).
      const distribution = await probeMany({ host: sshd.host, port: sshd.port, connectTimeoutMs: 2000, timeoutMs: 3000, slowMs: 2000, kexinit: false }, 3, 1);
      assert.deepEqual(distribution.verdicts, { 'refused-repeatedly': 3 });
      assert.match(distribution.examples[0]?.hint ?? '', /PerSourcePenaltyExemptList/);
    });
  });
});
