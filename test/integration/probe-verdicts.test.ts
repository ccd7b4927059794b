/**
 * Every probe verdict against a real server that behaves that way: fixture backends
 * (test/fixtures/backends/hostile-backends.ts), a closed port, and a listener whose accept
 * queue is full (connect-timeout). dns-error is unit-tested (a lookup would leave loopback).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { probe, type ProbeOptions } from '../../src/diagnose/probe.js';
import { probeMany } from '../../src/diagnose/probe-many.js';
import type { ProbeVerdict } from '../../src/diagnose/verdicts.js';
import { startFixtureBackend, type FixtureBackendKind } from '../fixtures/backends/hostile-backends.js';
import { freePort } from '../fixtures/wait.js';

const BASE: Omit<ProbeOptions, 'port'> = { host: '127.0.0.1', connectTimeoutMs: 1000, timeoutMs: 600, slowMs: 2000, kexinit: false };

const CASES: readonly { kind: FixtureBackendKind; verdict: ProbeVerdict; check?: (result: Awaited<ReturnType<typeof probe>>) => void; options?: Partial<ProbeOptions> }[] = [
  { kind: 'ssh-echo', verdict: 'ok', check: (r) => assert.equal(r.identification, 'SSH-2.0-EchoFixture_1.0') },
  {
    kind: 'pre-lines',
    verdict: 'ok',
    check: (r) => assert.deepEqual(r.preLines, ['Welcome to the fixture host', 'Authorized use only']),
  },
  // ~25 bytes 20 ms apart: give the dribble room on a loaded machine.
  { kind: 'byte-at-a-time', verdict: 'ok', options: { timeoutMs: 5000 }, check: (r) => assert.equal(r.softwareVersion, 'DribbleFixture') },
  { kind: 'slow-banner', verdict: 'slow-banner', options: { slowMs: 100, timeoutMs: 3000 }, check: (r) => assert.ok((r.bannerMs ?? 0) >= 250, `bannerMs ${r.bannerMs}`) },
  { kind: 'reset', verdict: 'reset-before-banner', check: (r) => assert.equal(r.code, 'BACKEND_RESET') },
  { kind: 'close', verdict: 'closed-before-banner', check: (r) => assert.equal(r.code, 'BACKEND_CLOSED') },
  // TCP wrappers close right at accept; a client that spoke at once would get the kernel's reset and a wrong verdict.
  { kind: 'hangup', verdict: 'closed-before-banner', check: (r) => assert.equal(r.code, 'BACKEND_CLOSED') },
  { kind: 'throttle', verdict: 'throttled', check: (r) => assert.equal(r.notice, 'Exceeded MaxStartups') },
  { kind: 'not-allowed', verdict: 'throttled', check: (r) => assert.equal(r.notice, 'Not allowed at this time') },
  { kind: 'silent', verdict: 'banner-timeout', check: (r) => assert.ok(r.latencyMs >= 550, `latency ${r.latencyMs}`) },
  { kind: 'half-banner', verdict: 'banner-timeout', check: (r) => assert.equal(r.received, 'SSH-2.0-Partial') },
  { kind: 'http', verdict: 'not-ssh', check: (r) => assert.equal(r.protocol, 'http') },
  { kind: 'tls', verdict: 'not-ssh', check: (r) => assert.equal(r.protocol, 'tls') },
  { kind: 'smtp', verdict: 'not-ssh', check: (r) => assert.equal(r.protocol, 'smtp') },
  { kind: 'ftp', verdict: 'not-ssh', check: (r) => assert.equal(r.protocol, 'ftp') },
  { kind: 'ssh1', verdict: 'ssh1-only', check: (r) => assert.equal(r.code, 'SSH_VERSION_UNSUPPORTED') },
  { kind: 'long-line', verdict: 'invalid-banner', check: (r) => assert.equal(r.code, 'BANNER_INVALID') },
  { kind: 'nul', verdict: 'invalid-banner', check: (r) => assert.match(r.received, /\\x00/) },
];

for (const { kind, verdict, check, options } of CASES) {
  test(`probe of a "${kind}" server: ${verdict}`, async (t) => {
    const backend = await startFixtureBackend(kind, kind === 'slow-banner' ? { delayMs: 300 } : {});
    t.after(() => backend.close());
    const result = await probe({ ...BASE, ...options, port: backend.port });
    assert.equal(result.verdict, verdict, `${result.message}`);
    assert.equal(result.ok, verdict === 'ok' || verdict === 'slow-banner');
    assert.ok(result.hint.length > 20);
    check?.(result);
    // The probe identified itself like a client would: to an SSH server, and to one that
    // stays silent past its short wait (an SMTP greeting is recognised before it speaks).
    await backend.waitForBytes(0, 10, 2000).catch(() => undefined);
    if (['ssh-echo', 'silent'].includes(kind)) {
      assert.match(backend.received()[0]?.toString('latin1') ?? '', /^SSH-2\.0-ssh-banner-proxy-probe_/);
    }
  });
}

test('probe of a closed port: refused', async () => {
  const port = await freePort();
  const result = await probe({ ...BASE, port });
  assert.equal(result.verdict, 'refused');
  assert.equal(result.errno, 'ECONNREFUSED');
  assert.match(result.hint, /ss -tlnp/);
});

test('probe of a listener whose accept queue is full: connect-timeout', async (t) => {
  // python3 listens with backlog 0 and never accepts; two queued connections fill it, so our SYN is dropped.
  const script = [
    'import socket, sys, time',
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
    'port = s.getsockname()[1]',
    'fill = []',
    'for i in range(3):',
    '    c = socket.socket(); c.setblocking(False)',
    '    try: c.connect(("127.0.0.1", port))',
    '    except BlockingIOError: pass',
    '    fill.append(c)',
    'print(port, flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const child = spawn('/usr/bin/python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
  const port = Number(chunk.toString().trim());
  assert.ok(port > 0);
  const result = await probe({ ...BASE, port, connectTimeoutMs: 400 });
  assert.equal(result.verdict, 'connect-timeout');
  assert.equal(result.connectMs, null);
  assert.ok(result.latencyMs >= 390, `latency ${result.latencyMs}: not before the connect timeout`);
});

// dns-error is covered by test/unit/probe-verdicts.test.ts: a real lookup would leave loopback.

test('a listener that accepts but is plain TCP echo is banner-timeout, not ok', async (t) => {
  const server = net.createServer((socket) => socket.on('error', () => undefined));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const result = await probe({ ...BASE, port });
  assert.equal(result.verdict, 'banner-timeout');
  assert.equal(result.receivedBytes, 0);
});

test('probe --count 3 --concurrency 1 refused every time with "Not allowed at this time": refused-repeatedly, naming penalties and MaxStartups, since it cannot tell', async (t) => {
  const backend = await startFixtureBackend('not-allowed', {});
  t.after(() => backend.close());
  const distribution = await probeMany({ ...BASE, port: backend.port }, 3, 1);
  assert.deepEqual(distribution.verdicts, { 'refused-repeatedly': 3 });
  const hint = distribution.examples[0]?.hint ?? '';
  assert.match(hint, /^Refused even one at a time: penalties, or other clients holding MaxStartups/);
  assert.match(hint, /PerSourcePenaltyExemptList/);
  assert.match(distribution.examples[0]?.message ?? '', /3 of 3 refused, one connection at a time/);
  // Concurrency could be MaxStartups: the verdict stays throttled.
  const concurrent = await probeMany({ ...BASE, port: backend.port }, 3, 3);
  assert.deepEqual(concurrent.verdicts, { throttled: 3 });
});

test('refused one at a time with "Exceeded MaxStartups" (sshd before 9.8, no penalties there): throttled, other clients hold MaxStartups', async (t) => {
  const backend = await startFixtureBackend('throttle', {});
  t.after(() => backend.close());
  const distribution = await probeMany({ ...BASE, port: backend.port }, 3, 1);
  assert.deepEqual(distribution.verdicts, { throttled: 3 });
  assert.match(distribution.examples[0]?.message ?? '', /other clients hold MaxStartups; sshd before 9\.8, which writes this line, has no PerSourcePenalties/);
});

test('a server that accepts and closes every time (TCP wrappers) is refused-repeatedly, not penalised', async (t) => {
  const backend = await startFixtureBackend('close', {});
  t.after(() => backend.close());
  const distribution = await probeMany({ ...BASE, port: backend.port }, 3, 1);
  assert.deepEqual(distribution.verdicts, { 'refused-repeatedly': 3 });
  assert.match(distribution.examples[0]?.hint ?? '', /TCP wrappers/);
});

test('an HTTP-mode load balancer\'s 400 to the SSH identification is named as such', async (t) => {
  const backend = await startFixtureBackend('http', {});
  t.after(() => backend.close());
  const result = await probe({ ...BASE, port: backend.port });
  assert.equal(result.verdict, 'not-ssh');
  assert.equal(result.protocol, 'http');
  assert.match(result.hint, /load balancer or proxy in HTTP mode .* 400 Bad Request/);
  assert.match(result.hint, /mode tcp/);
});
