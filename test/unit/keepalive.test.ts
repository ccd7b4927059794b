import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import type { KeepaliveConfig } from '../../src/config/schema.js';
import { SetupDeadline, type DeadlineExpiry } from '../../src/proxy/client-deadline.js';
import { ClientPatterns, globToRegExp, softwarePart } from '../../src/proxy/client-pattern.js';
import { ClientKeepalive, KEEPALIVE_LINE } from '../../src/proxy/keepalive.js';

const PARAMIKO = 'SSH-2.0-paramiko_2.12.0';
const OPENSSH = 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3';

/** Node 20's mock timers do not run timers set during a tick within that tick: advance in steps. */
function advance(ms: number, stepMs = 50): void {
  for (let left = ms; left > 0; left -= stepMs) mock.timers.tick(Math.min(stepMs, left));
}

function keepaliveConfig(overrides: Partial<KeepaliveConfig> = {}): KeepaliveConfig {
  return { after: 5000, every: 1000, maxLines: 90, clients: ['paramiko_*'], ...overrides };
}

test('client patterns: globs on the software version, or on the whole line when they start with SSH-', () => {
  const patterns = new ClientPatterns(['paramiko_*', 'SSH-2.0-Go', 'libssh?_0.*']);
  assert.equal(patterns.match(PARAMIKO), 'paramiko_*');
  assert.equal(patterns.match(OPENSSH), undefined);
  assert.equal(patterns.match('SSH-2.0-Go'), 'SSH-2.0-Go');
  assert.equal(patterns.match('SSH-2.0-Gopher'), undefined, 'anchored at the end');
  assert.equal(patterns.match('SSH-2.0-libssh2_0.9'), 'libssh?_0.*');
  assert.equal(patterns.match('SSH-2.0-xparamiko_2'), undefined, 'anchored at the start');
  assert.equal(patterns.match(undefined), undefined);
  assert.equal(softwarePart('SSH-1.99-foo bar'), 'foo bar');
  assert.ok(globToRegExp('a.b(c)*').test('a.b(c)xyz'), 'regexp characters are literal');
  assert.ok(!globToRegExp('a.b').test('aXb'));
});

test('the keepalive line is a legal RFC 4253 pre-identification line and short', () => {
  const text = KEEPALIVE_LINE.toString('latin1');
  assert.ok(!text.startsWith('SSH-'));
  assert.ok(text.endsWith('\r\n'));
  assert.equal(text.indexOf('\n'), text.length - 1, 'one line');
  assert.ok(KEEPALIVE_LINE.length <= 64, `${KEEPALIVE_LINE.length} bytes`);
  assert.match(text, /^[\x20-\x7e]+\r\n$/);
});

test('keepalive: first line at `after`, then every `every`, never more than maxLines', (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const sent: number[] = [];
  const keepalive = new ClientKeepalive(keepaliveConfig({ after: 2000, every: 500, maxLines: 4 }), () => PARAMIKO, (line, count) => {
    assert.equal(line, KEEPALIVE_LINE);
    sent.push(count);
  });
  keepalive.start();
  mock.timers.tick(1999);
  assert.deepEqual(sent, []);
  mock.timers.tick(1);
  assert.deepEqual(sent, [1]);
  mock.timers.tick(499);
  assert.deepEqual(sent, [1]);
  mock.timers.tick(1);
  assert.deepEqual(sent, [1, 2]);
  advance(10_000);
  assert.deepEqual(sent, [1, 2, 3, 4]);
  assert.equal(keepalive.linesSent, 4);
  assert.equal(keepalive.decision, 'on');
});

test('keepalive: nothing for clients that do not match (OpenSSH)', (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  let sent = 0;
  const keepalive = new ClientKeepalive(keepaliveConfig({ after: 100, every: 100 }), () => OPENSSH, () => (sent += 1));
  keepalive.start();
  advance(60_000);
  assert.equal(sent, 0);
  assert.equal(keepalive.decision, 'off');
});

test('keepalive: a client that has not identified yet is asked again at the next tick', (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const client: { identification?: string } = {};
  const sent: number[] = [];
  const keepalive = new ClientKeepalive(keepaliveConfig({ after: 1000, every: 300 }), () => client.identification, (_line, count) => sent.push(count));
  keepalive.start();
  mock.timers.tick(1000);
  assert.equal(keepalive.decision, 'pending');
  client.identification = PARAMIKO;
  mock.timers.tick(300);
  assert.deepEqual(sent, [1]);
});

test('keepalive: stop() ends it at once and is idempotent', (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  let sent = 0;
  const keepalive = new ClientKeepalive(keepaliveConfig({ after: 100, every: 100 }), () => PARAMIKO, () => (sent += 1));
  keepalive.start();
  advance(350);
  assert.equal(keepalive.stop(), 3);
  assert.equal(keepalive.stop(), 3);
  advance(10_000);
  assert.equal(sent, 3);
  keepalive.start();
  advance(10_000);
  assert.equal(sent, 3, 'start after stop does nothing');
});

test('setup deadline: the first matching rule replaces the default, counted from start', (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  let now = 0;
  const expired: DeadlineExpiry[] = [];
  const deadline = new SetupDeadline(
    [
      { clients: ['paramiko_*'], setup: 14_000 },
      { clients: ['*'], setup: 60_000 },
    ],
    30_000,
    (expiry) => expired.push(expiry),
    () => now,
  );
  deadline.start();
  now = 2000;
  mock.timers.tick(2000);
  deadline.identify(PARAMIKO);
  assert.deepEqual(deadline.budget, { budgetMs: 14_000, pattern: 'paramiko_*' });
  now = 13_999;
  mock.timers.tick(11_999);
  assert.equal(expired.length, 0);
  mock.timers.tick(1);
  assert.deepEqual(expired, [{ budgetMs: 14_000, pattern: 'paramiko_*' }]);
  mock.timers.tick(60_000);
  assert.equal(expired.length, 1, 'fires once');
});

test('setup deadline: no match keeps the default; a spent budget expires at once; clear() cancels', (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  let now = 0;
  const expired: DeadlineExpiry[] = [];
  const rules = [{ clients: ['paramiko_*'], setup: 1000 }];
  const openssh = new SetupDeadline(rules, 0, (expiry) => expired.push(expiry), () => now);
  openssh.start();
  openssh.identify(OPENSSH);
  mock.timers.tick(100_000);
  assert.equal(expired.length, 0, 'default 0 = no budget');

  now = 0;
  const late = new SetupDeadline(rules, 0, (expiry) => expired.push(expiry), () => now);
  late.start();
  now = 5000;
  late.identify(PARAMIKO);
  mock.timers.tick(0);
  assert.deepEqual([...expired], [{ budgetMs: 1000, pattern: 'paramiko_*' }]);

  const cleared = new SetupDeadline(rules, 500, (expiry) => { expired.push(expiry); }, () => now);
  cleared.start();
  cleared.clear();
  mock.timers.tick(10_000);
  assert.equal(expired.length, 1);
});

test('config: keepalive.every must stay under paramiko\'s 2 s per line; deadlines parse; prefetch maxAge under LoginGraceTime', () => {
  const base = {
    listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
    pools: [{ name: 'main', servers: [{ name: 'a', address: '127.0.0.1:22' }] }],
  };
  const withListener = (extra: Record<string, unknown>): unknown => ({ ...base, listeners: [{ ...base.listeners[0], ...extra }] });
  assert.throws(() => validateConfig(withListener({ keepalive: { every: '2s' } }), 'test'), /keepalive\.every|every/);
  const config = validateConfig(withListener({ keepalive: { after: '2s' }, deadlines: [{ clients: ['paramiko_*'], setup: '14s' }] }), 'test');
  const listener = config.listeners[0];
  assert.ok(listener);
  assert.deepEqual(listener.keepalive, { after: 2000, every: 1000, maxLines: 90, clients: ['paramiko_*'] });
  assert.deepEqual(listener.deadlines, [{ clients: ['paramiko_*'], setup: 14_000 }]);
  assert.throws(() => validateConfig(withListener({ deadlines: [{ clients: [], setup: '1s' }] }), 'test'));
  assert.throws(() => validateConfig(withListener({ keepalive: { maxLines: 100 } }), 'test'), /maxLines/);
  const prefetch = (maxAge: string): unknown => ({ ...base, pools: [{ ...base.pools[0], prefetch: { perServer: 2, maxAge } }] });
  assert.throws(() => validateConfig(prefetch('100s'), 'test'), /LoginGraceTime/);
  assert.equal(validateConfig(prefetch('60s'), 'test').pools[0]?.prefetch?.maxAge, 60_000);
});
