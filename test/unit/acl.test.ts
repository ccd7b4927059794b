import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normaliseAddress, parseHostPort } from '../../src/net/address.js';
import { Acl } from '../../src/proxy/acl.js';

describe('Acl', () => {
  const acl = new Acl({ allow: ['10.0.0.0/8', '2001:db8::/32', '127.0.0.1/32'], deny: ['10.9.0.0/16', '2001:db8:dead::/48'] });

  it('allows addresses inside an allow block', () => {
    assert.deepEqual(acl.check('10.1.2.3'), { allowed: true });
    assert.deepEqual(acl.check('2001:db8:1::5'), { allowed: true });
  });

  it('lets deny win over allow', () => {
    const verdict = acl.check('10.9.8.7');
    assert.equal(verdict.allowed, false);
    assert.match(verdict.allowed ? '' : verdict.reason, /matches deny 10\.9\.0\.0\/16/);
    assert.equal(acl.check('2001:db8:dead:1::1').allowed, false);
  });

  it('refuses addresses outside every allow block', () => {
    assert.equal(acl.check('192.168.1.1').allowed, false);
    assert.equal(acl.check('2001:db9::1').allowed, false);
  });

  it('matches IPv4-mapped IPv6 clients against IPv4 rules', () => {
    assert.deepEqual(acl.check('::ffff:10.1.2.3'), { allowed: true });
    assert.equal(acl.check('::ffff:10.9.0.1').allowed, false);
  });

  it('fails closed on a missing or malformed address', () => {
    assert.equal(acl.check(undefined).allowed, false);
    assert.equal(acl.check('not-an-ip').allowed, false);
    assert.equal(acl.check('10.0.0.256').allowed, false);
  });

  it('keeps IPv4 and IPv6 rules apart', () => {
    const v4only = new Acl({ allow: ['0.0.0.0/0'], deny: [] });
    assert.equal(v4only.check('::1').allowed, false);
    assert.equal(v4only.check('127.0.0.1').allowed, true);
  });
});

describe('addresses', () => {
  it('normalises IPv4-mapped IPv6', () => {
    assert.equal(normaliseAddress('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(normaliseAddress('::1'), '::1');
  });

  it('parses host:port forms', () => {
    assert.deepEqual(parseHostPort('[::1]:22'), { host: '::1', port: 22 });
    assert.deepEqual(parseHostPort('example.com:2222'), { host: 'example.com', port: 2222 });
    assert.deepEqual(parseHostPort('example.com', 22), { host: 'example.com', port: 22 });
    assert.match(String(parseHostPort('host:http')), /not a number/);
    assert.match(String(parseHostPort('[10.0.0.1]:22')), /not an IPv6/);
  });
});
