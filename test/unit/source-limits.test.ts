import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SourceLimits } from '../../src/proxy/source-limits.js';
import { ipv6Block, sourceKey } from '../../src/net/source-key.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test('concurrent connections per source: the next one is PER_SOURCE_LIMIT until one closes', () => {
  const limits = new SourceLimits({ perSourceConnections: 2, perSourceRate: 0, perSourceIpv6Prefix: 64 });
  const a = limits.admit('192.0.2.1');
  const b = limits.admit('192.0.2.1');
  assert.ok(a.ok && b.ok);
  const c = limits.admit('192.0.2.1');
  assert.equal(c.ok, false);
  assert.equal(!c.ok && c.code, 'PER_SOURCE_LIMIT');
  assert.ok(limits.admit('192.0.2.2').ok, 'another source is not affected');
  a.release();
  a.release(); // idempotent: must not free a second slot
  assert.ok(limits.admit('192.0.2.1').ok);
  assert.equal(limits.admit('192.0.2.1').ok, false);
});

test('IPv4-mapped IPv6 counts as the IPv4 address', () => {
  const limits = new SourceLimits({ perSourceConnections: 1, perSourceRate: 0, perSourceIpv6Prefix: 64 });
  assert.ok(limits.admit('::ffff:192.0.2.1').ok);
  assert.equal(limits.admit('192.0.2.1').ok, false);
});

test('IPv6 sources are grouped by the configured prefix', () => {
  const limits = new SourceLimits({ perSourceConnections: 1, perSourceRate: 0, perSourceIpv6Prefix: 64 });
  assert.ok(limits.admit('2001:db8:1:2::1').ok);
  assert.equal(limits.admit('2001:db8:1:2:ffff:ffff:ffff:ffff').ok, false, 'same /64');
  assert.ok(limits.admit('2001:db8:1:3::1').ok, 'next /64');
  assert.equal(limits.keyFor('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2:0:0:0:0/64');
  assert.equal(ipv6Block('2001:db8:abcd:ef12::1', 56), '2001:db8:abcd:ef00:0:0:0:0/56');
  assert.equal(ipv6Block('2001:db8::1', 128), '2001:db8:0:0:0:0:0:1/128');
  assert.equal(ipv6Block('::ffff:10.1.2.3', 120), '0:0:0:0:0:ffff:a01:200/120');
});

test('sourceKey: IPv4 by prefix (as is at 32), IPv4-mapped as IPv4, IPv6 by prefix', () => {
  assert.equal(sourceKey('10.1.2.3', 32, 64), '10.1.2.3');
  assert.equal(sourceKey('10.1.2.3', 24, 64), '10.1.2.0/24');
  assert.equal(sourceKey('::ffff:10.1.2.3', 16, 64), '10.1.0.0/16');
  assert.equal(sourceKey('2001:db8:1:2::9', 32, 48), '2001:db8:1:0:0:0:0:0/48');
});

test('rate per source: a bucket of perSourceRate tokens refilled per second', () => {
  const c = clock();
  const limits = new SourceLimits({ perSourceConnections: 0, perSourceRate: 3, perSourceIpv6Prefix: 64 }, c.now);
  for (let index = 0; index < 3; index += 1) limits.admit('198.51.100.1');
  const fourth = limits.admit('198.51.100.1');
  assert.equal(!fourth.ok && fourth.code, 'PER_SOURCE_RATE');
  c.advance(340);
  assert.ok(limits.admit('198.51.100.1').ok, 'one token back after a third of a second');
  assert.equal(limits.admit('198.51.100.1').ok, false);
  c.advance(5000);
  for (let index = 0; index < 3; index += 1) assert.ok(limits.admit('198.51.100.1').ok, 'bucket never exceeds its size');
  assert.equal(limits.admit('198.51.100.1').ok, false);
});

test('memory stays bounded: idle sources are swept, busy ones are kept', () => {
  const c = clock();
  const limits = new SourceLimits({ perSourceConnections: 5, perSourceRate: 10, perSourceIpv6Prefix: 64 }, c.now);
  const held = limits.admit('203.0.113.1');
  assert.ok(held.ok);
  for (let round = 0; round < 20; round += 1) {
    for (let index = 0; index < 1000; index += 1) {
      const verdict = limits.admit(`2001:db8:${round.toString(16)}:${index.toString(16)}::1`);
      if (verdict.ok) verdict.release();
    }
    c.advance(1500);
  }
  assert.ok(limits.size <= 2048 + 1, `map holds ${limits.size} entries after 20000 sources`);
  // The busy source's count survived the sweeps.
  for (let index = 0; index < 4; index += 1) assert.ok(limits.admit('203.0.113.1').ok);
  assert.equal(limits.admit('203.0.113.1').ok, false);
});

test('concurrency only: an entry is dropped as soon as its last connection closes', () => {
  const limits = new SourceLimits({ perSourceConnections: 3, perSourceRate: 0, perSourceIpv6Prefix: 64 });
  const verdicts = ['192.0.2.1', '192.0.2.2', '192.0.2.1'].map((address) => limits.admit(address));
  assert.equal(limits.size, 2);
  for (const verdict of verdicts) if (verdict.ok) verdict.release();
  assert.equal(limits.size, 0);
});

test('disabled (both 0): admits everything and tracks nothing', () => {
  const limits = new SourceLimits({ perSourceConnections: 0, perSourceRate: 0, perSourceIpv6Prefix: 64 });
  for (let index = 0; index < 100; index += 1) assert.ok(limits.admit('192.0.2.1').ok);
  assert.equal(limits.size, 0);
});
