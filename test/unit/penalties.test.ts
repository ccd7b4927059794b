import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../src/config/schema.js';
import { SourcePenalties, chargeableOutcome } from '../../src/proxy/penalties.js';

/** sshd's defaults, as the config gives them. */
function defaults(overrides: Record<string, unknown> = {}) {
  const config = configSchema.parse({ listeners: [{ name: 'l', bind: '127.0.0.1:1', pool: 'p' }], pools: [{ name: 'p', servers: [{ name: 's', address: '127.0.0.1:22' }] }], penalties: overrides });
  return config.penalties;
}

function clock(): { now: () => number; advance: (ms: number) => void } {
  let at = 1_000_000;
  return { now: () => at, advance: (ms) => void (at += ms) };
}

describe('SourcePenalties (sshd PerSourcePenalties semantics)', () => {
  it('authfail 5s, min 15s: refused at the fourth failure in quick succession, as sshd', () => {
    const time = clock();
    const penalties = new SourcePenalties(defaults(), time.now);
    for (let failure = 1; failure <= 3; failure += 1) {
      assert.equal(penalties.charge('192.0.2.7', 'authfail'), undefined, `failure ${failure}: 5 s each, not past min yet`);
      assert.equal(penalties.check('192.0.2.7'), undefined);
      time.advance(10);
    }
    const activation = penalties.charge('192.0.2.7', 'authfail');
    assert.ok(activation, 'the fourth failure exceeds min');
    assert.equal(activation.kind, 'authfail');
    assert.equal(activation.charges, 4);
    const refused = penalties.check('192.0.2.7');
    assert.ok(refused);
    assert.ok(refused.remainingMs > 15_000 && refused.remainingMs <= 20_000);
    assert.equal(penalties.check('192.0.2.8'), undefined, 'another source is not touched');
  });

  it('the penalty decays in real time; once active it lasts until expiry', () => {
    const time = clock();
    const penalties = new SourcePenalties(defaults(), time.now);
    for (let failure = 0; failure < 4; failure += 1) penalties.charge('192.0.2.7', 'authfail');
    time.advance(10_000);
    assert.ok(penalties.check('192.0.2.7'), 'still refused with 10 s left (under min)');
    time.advance(10_001);
    assert.equal(penalties.check('192.0.2.7'), undefined, 'expired');
    assert.equal(penalties.size, 0, 'and forgotten');
  });

  it('noauth 1s: more than one abandoned connection per second, sustained, trips it', () => {
    const time = clock();
    const penalties = new SourcePenalties(defaults(), time.now);
    let trippedAt: number | undefined;
    for (let connection = 1; connection <= 60 && trippedAt === undefined; connection += 1) {
      if (penalties.charge('198.51.100.1', 'noauth')) trippedAt = connection;
      time.advance(500);
    }
    // Two a second gain 0.5 s a second net: past 15 s after about 30 connections.
    assert.ok(trippedAt !== undefined && trippedAt >= 28 && trippedAt <= 34, `tripped at ${trippedAt}`);
    const slow = new SourcePenalties(defaults(), time.now);
    for (let connection = 0; connection < 100; connection += 1) {
      assert.equal(slow.charge('198.51.100.2', 'noauth'), undefined, 'one a second never accumulates');
      time.advance(1000);
    }
  });

  it('capped at max; ok and unknown outcomes charge nothing; a kind set to 0 is not charged', () => {
    const time = clock();
    const penalties = new SourcePenalties(defaults({ max: '30s', noauth: 0 }), time.now);
    for (let failure = 0; failure < 100; failure += 1) penalties.charge('192.0.2.7', 'grace-exceeded');
    assert.equal(penalties.check('192.0.2.7')?.remainingMs, 30_000);
    assert.equal(penalties.charge('192.0.2.9', 'ok'), undefined);
    assert.equal(penalties.charge('192.0.2.9', 'unknown'), undefined);
    assert.equal(penalties.charge('192.0.2.9', 'noauth'), undefined);
    assert.equal(penalties.size, 1);
  });

  it('exempt CIDRs are never charged; prefixes group sources (IPv6 /64 by default)', () => {
    const penalties = new SourcePenalties(defaults({ exempt: ['10.0.0.0/8'], ipv4Prefix: 24 }));
    for (let failure = 0; failure < 10; failure += 1) penalties.charge('10.1.2.3', 'authfail');
    assert.equal(penalties.size, 0);
    for (let failure = 0; failure < 4; failure += 1) penalties.charge(`192.0.2.${failure + 1}`, 'authfail');
    assert.equal(penalties.check('192.0.2.200')?.key, '192.0.2.0/24', 'the /24 shares one penalty');
    for (let failure = 0; failure < 4; failure += 1) penalties.charge(`2001:db8:1:2::${failure + 1}`, 'authfail');
    assert.ok(penalties.check('2001:db8:1:2:ffff::1'), 'same /64');
    assert.equal(penalties.check('2001:db8:1:3::1'), undefined, 'next /64');
  });

  it('bounded, and a flood of 200,000 new sources (IPv4 and IPv6 /64) cannot flush an active penalty', () => {
    const penalties = new SourcePenalties(defaults({ maxSources: 1000 }));
    for (let failure = 0; failure < 4; failure += 1) penalties.charge('192.0.2.1', 'authfail');
    for (let failure = 0; failure < 4; failure += 1) penalties.charge('2001:db8:ffff:1::7', 'authfail');
    assert.ok(penalties.check('192.0.2.1'));
    for (let index = 0; index < 100_000; index += 1) penalties.charge(`10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`, 'noauth');
    // One /48 gives 65,536 /64 keys; here 100,000 of them.
    for (let index = 0; index < 100_000; index += 1) penalties.charge(`2001:db8:${(index >> 16).toString(16)}:${(index & 0xffff).toString(16)}::1`, 'noauth');
    assert.equal(penalties.size, 1000, 'memory bounded');
    assert.ok(penalties.check('192.0.2.1'), 'the IPv4 penalty survived the flood');
    assert.ok(penalties.check('2001:db8:ffff:1::99'), 'so did the IPv6 /64 one');
    assert.equal(penalties.penalisedCount(), 2);
  });

  it('a table full of refused sources: permissive records no new penalty; deny-all refuses every other source until one expires', () => {
    const time = clock();
    for (const overflow of ['permissive', 'deny-all'] as const) {
      const penalties = new SourcePenalties(defaults({ maxSources: 3, overflow, exempt: ['198.51.100.9'] }), time.now);
      for (const source of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) for (let failure = 0; failure < 4; failure += 1) penalties.charge(source, 'authfail');
      assert.equal(penalties.penalisedCount(), 3);
      for (let failure = 0; failure < 4; failure += 1) penalties.charge('192.0.2.4', 'authfail');
      assert.ok(penalties.overflowed > 0, overflow);
      assert.ok(penalties.check('192.0.2.1'), `${overflow}: the recorded penalties stay`);
      if (overflow === 'permissive') {
        assert.equal(penalties.check('192.0.2.4'), undefined, 'permissive: not recorded, not refused');
        assert.equal(penalties.check('203.0.113.1'), undefined);
      } else {
        assert.ok(penalties.check('203.0.113.1'), 'deny-all: a stranger is refused while the table is full');
        assert.equal(penalties.check('198.51.100.9'), undefined, 'an exempt source never is');
      }
      time.advance(11 * 60 * 1000);
      assert.equal(penalties.check('203.0.113.1'), undefined, `${overflow}: after the penalties expire, open again`);
    }
  });

  it('lists penalised sources newest first, bounded; off and reload', () => {
    const time = clock();
    const penalties = new SourcePenalties(defaults(), time.now);
    for (const source of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) {
      for (let failure = 0; failure < 4; failure += 1) penalties.charge(source, 'authfail');
      time.advance(100);
    }
    assert.deepEqual(penalties.penalised(2).map((entry) => entry.source), ['192.0.2.3', '192.0.2.2']);
    assert.equal(penalties.penalisedCount(), 3);
    penalties.update(defaults({ min: '1m' }));
    assert.equal(penalties.penalisedCount(), 3, 'same grouping: kept');
    penalties.update('off');
    assert.equal(penalties.enabled, false);
    assert.equal(penalties.check('192.0.2.1'), undefined);
    assert.equal(penalties.charge('192.0.2.1', 'authfail'), undefined);
  });
});

describe('chargeableOutcome: what a closed session is charged for', () => {
  it('charges the client\'s doing only', () => {
    // Spliced: the tracker's verdict, except a server that closed before the client tried.
    assert.equal(chargeableOutcome('authfail', 'CLIENT_CLOSED', true, false), 'authfail');
    assert.equal(chargeableOutcome('noauth', 'CLIENT_CLOSED', true, false), 'noauth');
    assert.equal(chargeableOutcome('noauth', 'SERVER_CLOSED', true, false), undefined);
    assert.equal(chargeableOutcome('grace-exceeded', 'SERVER_RESET', true, false), 'grace-exceeded');
    // Never: a success, an unreadable session, the proxy stopping.
    assert.equal(chargeableOutcome('ok', 'CLIENT_CLOSED', true, false), undefined);
    assert.equal(chargeableOutcome('unknown', 'CLIENT_CLOSED', true, false), undefined);
    assert.equal(chargeableOutcome('authfail', 'SHUTDOWN', true, false), undefined);
    assert.equal(chargeableOutcome('authfail', 'DRAIN_TIMEOUT', true, false), undefined);
    // Before the splice: noauth only for a client that left of its own accord (not made to wait).
    assert.equal(chargeableOutcome('noauth', 'CLIENT_CLOSED', false, true), 'noauth');
    assert.equal(chargeableOutcome('noauth', 'CLIENT_RESET', false, true), 'noauth');
    assert.equal(chargeableOutcome('noauth', 'CLIENT_CLOSED', false, false), undefined, 'kept waiting by the proxy');
    assert.equal(chargeableOutcome('noauth', 'NO_BACKEND', false, true), undefined);
    assert.equal(chargeableOutcome(undefined, 'CLIENT_CLOSED', false, true), undefined, 'queued: no outcome');
  });
});
