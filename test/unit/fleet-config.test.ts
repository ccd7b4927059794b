import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configProblems } from '../fixtures/config-problems.js';
import { validateConfig } from '../../src/config/load.js';
import { isServerSet } from '../../src/backend/server-spec.js';
import { parseControlRequest } from '../../src/proxy/server-control.js';
import { AdminAuth } from '../../src/observe/admin-auth.js';

const configWith = (servers: unknown[], extra: Record<string, unknown> = {}): unknown => ({
  listeners: [{ name: 'ssh', bind: '0.0.0.0:22', pool: 'main' }],
  pools: [{ name: 'main', servers }],
  ...extra,
});

const problemsOf = configProblems;

describe('server sets in the config', () => {
  it('takes an address with a host name, or an srv name, as a set; an IP address as one server', () => {
    const config = validateConfig(configWith([{ name: 'fleet', address: 'fleet.example:22' }, { name: 'pods', srv: '_ssh._tcp.sshd.default.svc.cluster.local' }, { name: 'one', address: '10.0.0.1:22' }]), 't');
    assert.deepEqual(config.pools[0]?.servers.map(isServerSet), [true, true, false]);
    assert.equal(config.pools[0]?.servers[0]?.maxServers, 32);
    assert.deepEqual(config.dns.refresh, { min: 1000, max: 30_000 });
  });

  it('needs exactly one of address and srv, naming the entry', () => {
    assert.match(String(problemsOf(configWith([{ name: 'a' }]))[0]), /pools\[0\]\.servers\[0\].*needs an address \(host:port\) or an srv name/);
    assert.match(String(problemsOf(configWith([{ name: 'a', address: '10.0.0.1:22', srv: '_ssh._tcp.x' }]))[0]), /give an address or an srv name, not both/);
  });

  it('refuses a malformed srv name and a bad dns section, naming the field', () => {
    assert.match(String(problemsOf(configWith([{ name: 'a', srv: 'not a name' }]))[0]), /srv.*expected a DNS name/);
    assert.match(String(problemsOf(configWith([{ name: 'a', address: '10.0.0.1:22' }], { dns: { resolvers: ['nowhere'] } }))[0]), /dns\.resolvers\[0\].*missing port/);
    assert.match(String(problemsOf(configWith([{ name: 'a', address: '10.0.0.1:22' }], { dns: { family: 'ipx' } }))[0]), /dns\.family/);
  });

  it('takes maxStartups: auto, with learn settings', () => {
    const config = validateConfig(configWith([{ name: 'a', address: '10.0.0.1:22', maxStartups: 'auto' }]), 't');
    assert.equal(config.pools[0]?.servers[0]?.maxStartups, 'auto');
    assert.deepEqual(config.pools[0]?.handshake.learn, { start: 2, ceiling: 32, probeInterval: 30_000 });
    assert.match(String(problemsOf(configWith([{ name: 'a', address: '10.0.0.1:22', maxStartups: 'lots' }]))[0]), /maxStartups/);
  });
});

describe('control requests', () => {
  it('reads a state, a weight and a resolve, and names what is wrong', () => {
    assert.deepEqual(parseControlRequest('state', { pool: 'main', server: 'a', state: 'drain' }), { action: 'state', pool: 'main', server: 'a', state: 'drain' });
    assert.deepEqual(parseControlRequest('weight', { pool: 'main', server: 'a', weight: 0 }), { action: 'weight', pool: 'main', server: 'a', weight: 0 });
    assert.deepEqual(parseControlRequest('resolve', { pool: 'main' }), { action: 'resolve', pool: 'main' });
    assert.match(String(parseControlRequest('state', [])), /expected a JSON object/);
    assert.match(String(parseControlRequest('state', { server: 'a', state: 'drain' })), /"pool"/);
    assert.match(String(parseControlRequest('weight', { pool: 'main', server: 'a', weight: 300 })), /"weight": expected a whole number from 0 to 256, got 300/);
  });
});

describe('the admin token', () => {
  it('is compared whole: a prefix, a longer string or another scheme is refused', async () => {
    const auth = new AdminAuth({ tokenEnv: 'T', loopback: true }, { T: 'secret-token\n' });
    assert.equal(await auth.check('Bearer secret-token'), 'ok');
    assert.equal(await auth.check('bearer secret-token'), 'ok');
    assert.equal(await auth.check('Bearer secret'), 'wrong');
    assert.equal(await auth.check('Bearer secret-token-and-more'), 'wrong');
    assert.equal(await auth.check('Basic c2VjcmV0LXRva2Vu'), 'missing');
    assert.equal(await auth.check(undefined), 'missing');
    assert.equal(await new AdminAuth({ tokenEnv: 'T', loopback: true }, {}).check('Bearer x'), 'unset');
  });

  it('leaves status closed beyond loopback unless admin.open says otherwise', () => {
    assert.deepEqual([...new AdminAuth({ tokenEnv: 'T', loopback: false }, {}).openReads], ['metrics', 'healthz', 'readyz']);
    assert.deepEqual([...new AdminAuth({ tokenEnv: 'T', loopback: true }, {}).openReads], ['metrics', 'healthz', 'readyz', 'status']);
    assert.deepEqual([...new AdminAuth({ tokenEnv: 'T', loopback: false, open: ['status'] }, {}).openReads], ['status']);
  });
});
