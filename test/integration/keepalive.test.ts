/**
 * RFC 4253 keepalive lines and client-aware deadlines, with real sshd behind a relay
 * that delays its banner, and real clients (paramiko, OpenSSH). The 20 s cases run
 * concurrently with the short ones.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import pino from 'pino';
import { validateConfig } from '../../src/config/load.js';
import type { SessionSummary } from '../../src/events/bus.js';
import { KEEPALIVE_LINE } from '../../src/proxy/keepalive.js';
import { ProxyRuntime } from '../../src/runtime.js';
import { paramikoAvailable, runParamiko, runSsh, sshClientAvailable } from '../fixtures/clients/clients.js';
import { startDelayRelay } from '../fixtures/backends/delay-relay.js';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { rawExchange } from '../fixtures/clients/raw-client.js';
import { sshdAvailable, startSshd, sshdVersions, type SshdHandle } from '../fixtures/sshd/sshd.js';
import { waitUntilEvent } from '../fixtures/wait.js';

const skip = !sshdAvailable() || !paramikoAvailable() || !sshClientAvailable() ? 'needs sshd, ssh and paramiko' : false;

interface Harness {
  readonly runtime: ProxyRuntime;
  readonly summaries: SessionSummary[];
  /** Highest keepalive line number per session id. */
  readonly lines: Map<number, number>;
  port(listener: string): number;
  waitForSessions(count: number, timeoutMs: number): Promise<void>;
}

async function startHarness(t: TestContext, raw: Record<string, unknown>): Promise<Harness> {
  const runtime = new ProxyRuntime(validateConfig({ log: { level: 'silent' }, ...raw }, 'test'), { logger: pino({ level: 'silent' }) });
  const summaries: SessionSummary[] = [];
  const lines = new Map<number, number>();
  runtime.events.on('session-closed', (summary) => summaries.push(summary));
  runtime.events.on('keepalive-line', ({ sessionId, line }) => lines.set(sessionId, Math.max(line, lines.get(sessionId) ?? 0)));
  await runtime.start();
  t.after(() => runtime.stop(0));
  return {
    runtime,
    summaries,
    lines,
    port: (listener) => runtime.port(listener),
    waitForSessions: (count, timeoutMs) =>
      waitUntilEvent(runtime.events, 'session-closed', () => summaries.length >= count, timeoutMs, `${count} session summaries`),
  };
}

function pool(name: string, servers: readonly { name: string; port: number; backup?: boolean }[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    healthCheck: { enabled: false },
    passiveHealth: { consecutiveFailures: 0 },
    // The pre-lines fixture speaks no key exchange.
    verify: 'banner',
    ...extra,
    servers: servers.map((server) => ({ name: server.name, address: `127.0.0.1:${server.port}`, ...(server.backup ? { backup: true } : {}) })),
  };
}

async function sshdBehindRelay(t: TestContext, delayMs: number): Promise<{ sshd: SshdHandle; relayPort: number }> {
  const sshd = await startSshd();
  t.after(() => sshd.stop());
  const relay = await startDelayRelay({ host: sshd.host, port: sshd.port, delayMs });
  t.after(() => relay.close());
  return { sshd, relayPort: relay.port };
}

/** Lines a raw client received before the line that starts with `SSH-`. */
function linesBeforeIdent(data: Buffer): string[] {
  const lines: string[] = [];
  let start = 0;
  for (let newline = data.indexOf(0x0a); newline !== -1; newline = data.indexOf(0x0a, start)) {
    const line = data.subarray(start, newline + 1).toString('latin1');
    if (line.startsWith('SSH-')) break;
    lines.push(line);
    start = newline + 1;
  }
  return lines;
}

const untilIdent = (data: Buffer): boolean => /(^|\n)SSH-[^\n]*\n/.test(data.toString('latin1'));

describe('keepalive lines and client deadlines', { skip, concurrency: true }, () => {
  it('a banner after 20 s: paramiko fails direct, succeeds through the proxy with keepalive (default and after: 2s with banner_timeout=5)', async (t) => {
    const { sshd, relayPort } = await sshdBehindRelay(t, 20_000);
    const harness = await startHarness(t, {
      listeners: [
        { name: 'after5', bind: '127.0.0.1:0', pool: 'slow', keepalive: {} },
        { name: 'after2', bind: '127.0.0.1:0', pool: 'slow', keepalive: { after: '2s' } },
      ],
      pools: [pool('slow', [{ name: 'sshd', port: relayPort }])],
      timeouts: { banner: '25s' },
    });
    // paramiko's `timeout` also bounds the whole negotiation (start_client); its default is None: keep it out of the way.
    const target = { host: '127.0.0.1', user: sshd.user, identityFile: sshd.identityFile, command: 'echo rescued', connectTimeoutSec: 60, timeoutMs: 45_000 };
    const started = performance.now();
    const [direct15, direct5, proxied15, proxied5] = await Promise.all([
      runParamiko({ ...target, port: relayPort }),
      runParamiko({ ...target, port: relayPort, bannerTimeoutSec: 5 }),
      runParamiko({ ...target, port: harness.port('after5') }),
      runParamiko({ ...target, port: harness.port('after2'), bannerTimeoutSec: 5 }),
    ]);
    t.diagnostic(`all four clients done in ${Math.round(performance.now() - started)} ms`);
    assert.equal(direct15.ok, false, 'paramiko (banner_timeout 15 s) straight to the slow server gives up');
    if (!direct15.ok) assert.match(direct15.message, /banner/i);
    assert.equal(direct5.ok, false);
    assert.ok(proxied15.ok, `through the proxy: ${JSON.stringify(proxied15)}`);
    assert.equal(proxied15.stdout, 'rescued\n');
    assert.match(proxied15.remoteVersion, /^SSH-2\.0-OpenSSH/);
    assert.ok(proxied5.ok, `through the proxy, banner_timeout=5, after: 2s: ${JSON.stringify(proxied5)}`);
    assert.equal(proxied5.stdout, 'rescued\n');

    await harness.waitForSessions(2, 10_000);
    const byListener = new Map(harness.summaries.map((summary) => [summary.listener, summary]));
    const after5 = byListener.get('after5');
    const after2 = byListener.get('after2');
    assert.ok(after5?.spliced && after2?.spliced, 'both rescued sessions spliced');
    t.diagnostic(`keepalive lines: after5=${after5.keepaliveLines} after2=${after2.keepaliveLines}; setup ${Math.round(after5.setupMs ?? 0)} / ${Math.round(after2.setupMs ?? 0)} ms`);
    // A line a second from 5 s (resp. 2 s) until the banner at ~20 s.
    assert.ok((after5.keepaliveLines ?? 0) >= 13 && (after5.keepaliveLines ?? 0) <= 17, `after5 sent ${after5.keepaliveLines}`);
    assert.ok((after2.keepaliveLines ?? 0) >= 16 && (after2.keepaliveLines ?? 0) <= 20, `after2 sent ${after2.keepaliveLines}`);
    assert.ok((after5.setupMs ?? 0) >= 19_000, 'the banner really came after ~20 s');

    const metrics = await harness.runtime.metrics.scrape();
    const total = (after5.keepaliveLines ?? 0) + (after2.keepaliveLines ?? 0);
    assert.match(metrics, new RegExp(`^sshproxy_keepalive_lines_total\\{listener="after5"\\} ${after5.keepaliveLines}$`, 'm'));
    assert.match(metrics, /^sshproxy_keepalive_sessions_total\{listener="after5",result="rescued"\} 1$/m);
    assert.match(metrics, /^sshproxy_keepalive_sessions_total\{listener="after2",result="rescued"\} 1$/m);
    assert.ok(total > 0, 'lines were counted');
  });

  it('lines come before the backend\'s own bytes, which stay byte-exact; never more than maxLines; none for OpenSSH', async (t) => {
    const preLines = await startFixtureBackend('pre-lines');
    t.after(() => preLines.close());
    const relay = await startDelayRelay({ host: preLines.host, port: preLines.port, delayMs: 1500 });
    t.after(() => relay.close());
    const { sshd, relayPort: sshdRelayPort } = await sshdBehindRelay(t, 1500);
    const keepalive = { after: '100ms', every: '100ms', maxLines: 5 };
    const harness = await startHarness(t, {
      listeners: [
        { name: 'pre', bind: '127.0.0.1:0', pool: 'pre', keepalive },
        { name: 'sshd', bind: '127.0.0.1:0', pool: 'sshd', keepalive: { ...keepalive, clients: ['paramiko_*', 'Go*'] } },
      ],
      pools: [pool('pre', [{ name: 'pre-lines', port: relay.port }]), pool('sshd', [{ name: 'sshd', port: sshdRelayPort }])],
    });
    // What the backend itself sends, read straight from it.
    const direct = await rawExchange({ port: preLines.port, until: untilIdent, timeoutMs: 5000 });
    assert.equal(direct.outcome, 'matched');

    const [paramikoRaw, opensshRaw, ssh] = await Promise.all([
      rawExchange({ port: harness.port('pre'), send: 'SSH-2.0-paramiko_3.4.0\r\n', until: untilIdent, timeoutMs: 8000 }),
      rawExchange({ port: harness.port('pre'), send: 'SSH-2.0-OpenSSH_9.6\r\n', until: untilIdent, timeoutMs: 8000 }),
      runSsh({ host: '127.0.0.1', port: harness.port('sshd'), user: sshd.user, identityFile: sshd.identityFile, command: 'echo openssh', timeoutMs: 15_000 }),
    ]);
    const expected = Buffer.concat([...Array.from({ length: 5 }, () => KEEPALIVE_LINE), direct.data]);
    assert.equal(paramikoRaw.outcome, 'matched');
    assert.deepEqual(linesBeforeIdent(paramikoRaw.data).filter((line) => line === KEEPALIVE_LINE.toString('latin1')).length, 5, 'exactly maxLines');
    assert.ok(paramikoRaw.data.subarray(0, expected.length).equals(expected), `byte-exact after the keepalive lines:\n${JSON.stringify(paramikoRaw.data.toString('latin1'))}`);
    assert.equal(opensshRaw.outcome, 'matched');
    assert.ok(opensshRaw.data.subarray(0, direct.data.length).equals(direct.data), 'an OpenSSH client gets the backend bytes and nothing else');
    assert.equal(ssh.code, 0, ssh.stderr);
    assert.equal(ssh.stdout, 'openssh\n');

    await harness.waitForSessions(3, 10_000);
    for (const summary of harness.summaries) {
      const expectedLines = summary.clientIdentification?.startsWith('SSH-2.0-paramiko') ? 5 : 0;
      assert.equal(summary.keepaliveLines, expectedLines, `${summary.clientIdentification}: ${summary.keepaliveLines} lines`);
      assert.equal(harness.lines.get(summary.id) ?? 0, expectedLines);
    }
    assert.ok(harness.summaries.some((summary) => summary.clientIdentification?.startsWith('SSH-2.0-OpenSSH_9.2')), 'the real ssh client was seen');
  });

  for (const version of sshdVersions()) it(`failover after keepalive lines: the proxy still moves on to the next backend (OpenSSH ${version === 9 ? '9.2' : '10.0'})`, async (t) => {
    const silent = await startFixtureBackend('silent');
    t.after(() => silent.close());
    const sshd = await startSshd({ version });
    t.after(() => sshd.stop());
    const harness = await startHarness(t, {
      listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main', keepalive: { after: '300ms', every: '300ms' } }],
      pools: [pool('main', [{ name: 'silent', port: silent.port }, { name: 'sshd', port: sshd.port, backup: true }])],
      timeouts: { banner: '2s' },
    });
    const result = await runParamiko({ host: '127.0.0.1', port: harness.port('ssh'), user: sshd.user, identityFile: sshd.identityFile, command: 'echo failed-over', timeoutMs: 20_000 });
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.stdout, 'failed-over\n');
    await harness.waitForSessions(1, 10_000);
    const [summary] = harness.summaries;
    assert.ok(summary?.spliced, 'the session spliced');
    assert.deepEqual(summary.attempts.map((attempt) => [attempt.server, attempt.result]), [['silent', 'BANNER_TIMEOUT'], ['sshd', 'ok']]);
    assert.ok((summary.keepaliveLines ?? 0) >= 4, `lines before the failover: ${summary.keepaliveLines}`);
    const metrics = await harness.runtime.metrics.scrape();
    assert.match(metrics, /^sshproxy_keepalive_sessions_total\{listener="ssh",result="rescued"\} 1$/m);
    assert.match(metrics, /^sshproxy_failovers_total\{pool="main"\} 1$/m);
  });

  it('client-aware deadline: paramiko clients are given up on at their own budget, before paramiko\'s 15 s; others keep theirs', async (t) => {
    const silent = await startFixtureBackend('silent');
    t.after(() => silent.close());
    const sshd = await startSshd();
    t.after(() => sshd.stop());
    const harness = await startHarness(t, {
      listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main', deadlines: [{ clients: ['paramiko_*'], setup: '3s' }] }],
      pools: [pool('main', [{ name: 'silent', port: silent.port }])],
      timeouts: { banner: '6s' },
    });
    const started = performance.now();
    const [paramiko, other] = await Promise.all([
      runParamiko({ host: '127.0.0.1', port: harness.port('ssh'), user: sshd.user, identityFile: sshd.identityFile, command: 'true', timeoutMs: 20_000 }).then((result) => ({
        result,
        ms: performance.now() - started,
      })),
      rawExchange({ port: harness.port('ssh'), send: 'SSH-2.0-OpenSSH_9.6\r\n', timeoutMs: 10_000 }),
    ]);
    assert.equal(paramiko.result.ok, false);
    assert.ok(paramiko.ms < 10_000, `paramiko saw the close after ${Math.round(paramiko.ms)} ms, well before its 15 s`);
    assert.equal(other.outcome === 'end' || other.outcome === 'error', true, `OpenSSH client: ${other.outcome}`);
    await harness.waitForSessions(2, 10_000);
    const paramikoSummary = harness.summaries.find((summary) => summary.clientIdentification?.startsWith('SSH-2.0-paramiko'));
    const otherSummary = harness.summaries.find((summary) => summary.clientIdentification === 'SSH-2.0-OpenSSH_9.6');
    assert.equal(paramikoSummary?.reason, 'SETUP_TIMEOUT');
    assert.equal(paramikoSummary.deadlinePattern, 'paramiko_*');
    assert.ok(paramikoSummary.durationMs >= 2900, `paramiko session lasted ${Math.round(paramikoSummary.durationMs)} ms: its 3 s budget`);
    assert.notEqual(otherSummary?.reason, 'SETUP_TIMEOUT', 'no rule for OpenSSH: the banner timeout decides');
    assert.ok((otherSummary?.durationMs ?? 0) >= 5900, `OpenSSH session lasted ${Math.round(otherSummary?.durationMs ?? 0)} ms`);
    assert.ok(paramikoSummary.durationMs < (otherSummary?.durationMs ?? 0), 'the paramiko rule ended its session before the banner timeout ended the other');
  });
});
