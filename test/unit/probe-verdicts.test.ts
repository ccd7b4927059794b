import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { test } from 'node:test';
import type { AttemptFailure, AttemptSuccess } from '../../src/backend/attempt.js';
import { ATTEMPT_FAILURE_CODES, type AttemptFailureCode } from '../../src/errors.js';
import { hintFor } from '../../src/diagnose/hints.js';
import { describeHostKey } from '../../src/diagnose/host-key.js';
import { isHealthyVerdict, PROBE_VERDICTS, verdictForOutcome } from '../../src/diagnose/verdicts.js';
import { histogram, percentile, summarise } from '../../src/stats/latency.js';

function failure(code: AttemptFailureCode, extra: Partial<AttemptFailure> = {}): AttemptFailure {
  return { ok: false, code, message: 'm', connectMs: 1, elapsedMs: 2, received: Buffer.alloc(0), preLines: [], ...extra };
}

function success(bannerMs: number): AttemptSuccess {
  return {
    ok: true,
    socket: new Socket(),
    received: Buffer.from('SSH-2.0-X\r\n'),
    identEndOffset: 11,
    identification: { line: 'SSH-2.0-X', protoVersion: '2.0', softwareVersion: 'X', comments: undefined, lineEnding: 'crlf' },
    preLines: [],
    connectMs: 1,
    bannerMs,
    releaseErrorGuard: () => undefined,
  sentBytes: 0,
  };
}

test('every attempt failure code maps to a verdict that is not healthy', () => {
  for (const code of ATTEMPT_FAILURE_CODES) {
    const verdict = verdictForOutcome(failure(code), 2000);
    assert.ok(PROBE_VERDICTS.includes(verdict), `${code} → ${verdict}`);
    assert.equal(isHealthyVerdict(verdict), false, code);
  }
});

test('reason codes map to the verdicts the troubleshooting table names', () => {
  const cases: [AttemptFailure, string][] = [
    [failure('CONNECT_REFUSED', { errno: 'ECONNREFUSED' }), 'refused'],
    [failure('CONNECT_TIMEOUT'), 'connect-timeout'],
    [failure('CONNECT_ERROR', { errno: 'ENOTFOUND' }), 'dns-error'],
    [failure('CONNECT_ERROR', { errno: 'EAI_AGAIN' }), 'dns-error'],
    [failure('CONNECT_ERROR', { errno: 'EHOSTUNREACH' }), 'connect-error'],
    [failure('BACKEND_RESET'), 'reset-before-banner'],
    [failure('BACKEND_CLOSED'), 'closed-before-banner'],
    [failure('THROTTLED', { notice: 'Exceeded MaxStartups' }), 'throttled'],
    [failure('BANNER_TIMEOUT'), 'banner-timeout'],
    [failure('NOT_SSH', { protocol: 'http' }), 'not-ssh'],
    [failure('BANNER_INVALID'), 'invalid-banner'],
    [failure('SSH_VERSION_UNSUPPORTED', { received: Buffer.from('SSH-1.5-Old\r\n') }), 'ssh1-only'],
    [failure('SSH_VERSION_UNSUPPORTED', { received: Buffer.from('hello\r\nSSH-1.0-Older\r\n') }), 'ssh1-only'],
    [failure('SSH_VERSION_UNSUPPORTED', { received: Buffer.from('SSH-3.0-Future\r\n') }), 'invalid-banner'],
  ];
  for (const [outcome, expected] of cases) {
    assert.equal(verdictForOutcome(outcome, 2000), expected, `${outcome.code} ${outcome.errno ?? ''}`);
  }
});

test('an identification later than --slow is slow-banner, which is still healthy', () => {
  assert.equal(verdictForOutcome(success(1999), 2000), 'ok');
  const slow = verdictForOutcome(success(2001), 2000);
  assert.equal(slow, 'slow-banner');
  assert.equal(isHealthyVerdict(slow), true);
});

test('hints name what the troubleshooting guide names', () => {
  const context = { host: 'h', port: 22, slowMs: 2000, timeoutMs: 10000 };
  const expectations: [Parameters<typeof hintFor>[0], RegExp[]][] = [
    ['refused', [/ss -tlnp/, /sshd running/]],
    ['connect-timeout', [/firewall/, /host down/, /wrong address/]],
    ['dns-error', [/resolv/]],
    ['reset-before-banner', [/\/etc\/hosts\.deny/, /MaxStartups/, /PerSourcePenalties/, /load balancer/, /TCP mode/]],
    ['closed-before-banner', [/\/etc\/hosts\.deny/, /MaxStartups/, /PerSourcePenalties/]],
    ['throttled', [/MaxStartups 100:30:200/, /10:30:100/, /PerSourcePenalties/]],
    ['banner-timeout', [/overloaded/, /load balancer/, /conntrack/]],
    ['slow-banner', [/UseDNS/, /GSSAPIAuthentication/, /MaxStartups/]],
    ['not-ssh', [/smtp/, /wrong|Another service/]],
    ['ssh1-only', [/upgrade/]],
    ['invalid-banner', [/255 bytes/, /NUL/]],
  ];
  for (const [verdict, patterns] of expectations) {
    const hint = hintFor(verdict, { ...context, protocol: 'smtp', bannerMs: 3000 });
    for (const pattern of patterns) assert.match(hint, pattern, `${verdict} hint lacks ${String(pattern)}`);
  }
});

test('host key summary has ssh-keygen -l shape, with RSA bits from the modulus', () => {
  const string = (value: Buffer | string): Buffer => {
    const body = Buffer.isBuffer(value) ? value : Buffer.from(value);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(body.length);
    return Buffer.concat([length, body]);
  };
  const ed = describeHostKey(Buffer.concat([string('ssh-ed25519'), string(Buffer.alloc(32, 7))]));
  assert.match(ed.summary, /^256 SHA256:[A-Za-z0-9+/]{43} \(ED25519\)$/);
  const modulus = Buffer.concat([Buffer.from([0x00, 0xc0]), Buffer.alloc(255, 1)]); // 2048-bit
  const rsa = describeHostKey(Buffer.concat([string('ssh-rsa'), string(Buffer.from([1, 0, 1])), string(modulus)]));
  assert.equal(rsa.bits, 2048);
  assert.match(rsa.summary, /^2048 SHA256:\S+ \(RSA\)$/);
});

test('percentiles are nearest-rank and the histogram counts every value once', () => {
  const values = Array.from({ length: 100 }, (_, index) => index + 1);
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 90), 90);
  assert.equal(percentile(values, 99), 99);
  assert.equal(percentile([7], 99), 7);
  const summary = summarise([5, 1, 3]);
  assert.deepEqual(summary && [summary.min, summary.p50, summary.max, summary.count], [1, 3, 5, 3]);
  assert.equal(summarise([]), null);
  const buckets = histogram([0.5, 3, 3, 40, 70_000]);
  assert.equal(buckets.reduce((sum, bucket) => sum + bucket.count, 0), 5);
  assert.equal(buckets[0]?.leMs, 1);
  assert.equal(buckets.at(-1)?.leMs, Number.POSITIVE_INFINITY);
});
