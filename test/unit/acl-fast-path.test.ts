import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Acl } from '../../src/proxy/acl.js';

describe('Acl fast paths', () => {
  it('allow-all with no deny admits any address the kernel reports, and still refuses none', () => {
    const acl = new Acl({ allow: ['0.0.0.0/0', '::/0'], deny: [] });
    assert.deepEqual(acl.check('203.0.113.9'), { allowed: true });
    assert.deepEqual(acl.check('2001:db8::1'), { allowed: true });
    assert.equal(acl.check(undefined).allowed, false);
    assert.equal(acl.check('').allowed, false);
  });

  it('allow-all plus a deny rule still applies the deny', () => {
    const acl = new Acl({ allow: ['0.0.0.0/0', '::/0'], deny: ['198.51.100.0/24'] });
    assert.equal(acl.check('198.51.100.7').allowed, false);
    assert.equal(acl.check('198.51.101.7').allowed, true);
  });

  it('compiles IPv4 blocks with host bits, /32, /1 and high addresses correctly', () => {
    const acl = new Acl({ allow: ['10.1.2.3/8', '192.0.2.7/32', '128.0.0.0/1'], deny: ['255.255.255.255/32'] });
    assert.equal(acl.check('10.200.0.1').allowed, true);
    assert.equal(acl.check('11.0.0.1').allowed, false);
    assert.equal(acl.check('192.0.2.7').allowed, true);
    assert.equal(acl.check('192.0.2.8').allowed, true); // inside 128.0.0.0/1
    assert.equal(acl.check('127.255.255.255').allowed, false);
    assert.equal(acl.check('255.255.255.254').allowed, true);
    const denied = acl.check('255.255.255.255');
    assert.equal(denied.allowed, false);
    assert.match(denied.allowed ? '' : denied.reason, /matches deny 255\.255\.255\.255\/32/);
  });
});
