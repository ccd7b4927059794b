import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configProblems } from '../fixtures/config-problems.js';
import { routingPlan } from '../../src/net/transparent-routing.js';

const configWith = (pool: Record<string, unknown>): unknown => ({
  listeners: [{ name: 'ssh', bind: '0.0.0.0:22', pool: 'main' }],
  pools: [{ name: 'main', source: 'transparent', servers: [{ name: 'a', address: '10.0.0.5:22' }], ...pool }],
});

const problemsOf = configProblems;

describe('source: transparent in the config', () => {
  it('is accepted with non-loopback backends and no prefetch', () => {
    assert.deepEqual(problemsOf(configWith({})), []);
  });

  it('refuses a loopback backend, naming the server and why', () => {
    const [problem] = problemsOf(configWith({ servers: [{ name: 'a', address: '127.0.0.1:22' }] }));
    assert.match(String(problem), /pools\[0\]\.servers\[0\]\.address|pools\.0\.servers\.0\.address/);
    assert.match(String(problem), /127\.0\.0\.1:22 is a loopback address, which cannot work with source: transparent/);
  });

  it('refuses prefetch: its connections are opened before their clients', () => {
    const [problem] = problemsOf(configWith({ prefetch: { perServer: 2 } }));
    assert.match(String(problem), /prefetch.*cannot be used with source: transparent/);
  });
});

describe('sendProxy in the config', () => {
  it('refuses it beside prefetch: a prefetched connection has no client to name', () => {
    const raw = configWith({ source: 'proxy', prefetch: { perServer: 1 }, servers: [{ name: 'a', address: '10.0.0.5:22', sendProxy: 'v2' }] });
    const [problem] = problemsOf(raw);
    assert.match(String(problem), /sendProxy/);
    assert.match(String(problem), /cannot be used with prefetch/);
  });
});

describe('transparent routing plan', () => {
  it('sidecar: a local default route in the table, and a rule for replies from the backend', () => {
    const steps = routingPlan({ backend: '10.99.1.1', topology: 'sidecar', table: 100, mark: 1, ports: [22] });
    assert.deepEqual(
      steps.map((step) => step.apply.join(' ')),
      ['ip -4 route replace local 0.0.0.0/0 dev lo table 100', 'ip -4 rule add from 10.99.1.1 lookup 100'],
    );
    assert.equal(steps[1]?.remove?.join(' '), 'ip -4 rule del from 10.99.1.1 lookup 100');
  });

  it('bastion over IPv6: ip6tables marks the backend port, a fwmark rule uses the table', () => {
    const steps = routingPlan({ backend: 'fd00::5', topology: 'bastion', table: 7, mark: 16, ports: [2222, 22] });
    assert.deepEqual(
      steps.map((step) => step.apply.join(' ')),
      [
        'ip -6 route replace local ::/0 dev lo table 7',
        'ip -6 rule add fwmark 0x10 lookup 7',
        'ip6tables -t mangle -A PREROUTING -p tcp -s fd00::5 --sport 2222 -j MARK --set-mark 0x10',
        'ip6tables -t mangle -A PREROUTING -p tcp -s fd00::5 --sport 22 -j MARK --set-mark 0x10',
      ],
    );
    assert.equal(steps[2]?.check?.join(' '), 'ip6tables -t mangle -C PREROUTING -p tcp -s fd00::5 --sport 2222 -j MARK --set-mark 0x10');
  });
});
