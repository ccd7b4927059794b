import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseDurationMs } from '../../src/config/duration.js';
import { loadConfigFile, parseConfigText } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const VALID = `
listeners:
  - name: ssh
    bind: 127.0.0.1:2222
    pool: main
pools:
  - name: main
    servers:
      - { name: a, address: 127.0.0.1:22 }
`;

/** Parses text expected to be invalid and returns the problems reported. */
function problemsOf(text: string): readonly string[] {
  try {
    parseConfigText(text, 'test.yaml');
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.match(error.message, /^test\.yaml: invalid configuration/);
    return error.problems;
  }
  assert.fail('config was accepted');
}

describe('durations', () => {
  it('accepts ms, s, m, h and plain milliseconds', () => {
    assert.equal(parseDurationMs('250ms'), 250);
    assert.equal(parseDurationMs('5s'), 5000);
    assert.equal(parseDurationMs('1.5s'), 1500);
    assert.equal(parseDurationMs('2m'), 120000);
    assert.equal(parseDurationMs('1h'), 3600000);
    assert.equal(parseDurationMs(750), 750);
    assert.equal(parseDurationMs('750'), 750);
  });

  it('refuses units it does not know and negative numbers', () => {
    assert.equal(parseDurationMs('5 sec'), undefined);
    assert.equal(parseDurationMs('-1'), undefined);
    assert.equal(parseDurationMs(-5), undefined);
    assert.equal(parseDurationMs('5d'), undefined);
  });
});

describe('config loading', () => {
  it('fills defaults for a minimal config', () => {
    const config = parseConfigText(VALID, 'test.yaml');
    assert.deepEqual(config.listeners[0]?.bind, { host: '127.0.0.1', port: 2222 });
    assert.equal(config.pools[0]?.balance, 'roundrobin');
    assert.equal(config.pools[0]?.retries, 2);
    assert.equal(config.timeouts.banner, 8000);
    assert.equal(config.limits.clientBufferBytes, 65536);
    assert.equal(config.pools[0]?.servers[0]?.weight, 1);
  });

  it('loads the shipped default config', async () => {
    const config = await loadConfigFile(new URL('../../config/default.yaml', import.meta.url).pathname);
    assert.deepEqual(config.listeners[0]?.bind, { host: '127.0.0.1', port: 2222 });
    assert.deepEqual(config.pools[0]?.servers[0]?.address, { host: '127.0.0.1', port: 22 });
  });

  it('names the unknown key and its line', () => {
    const problems = problemsOf(`${VALID}\ntimeouts: { connect: 3s, bannr: 5s }\n`);
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^line 11: timeouts: unknown key "bannr"/);
  });

  it('names the field path and line of a bad duration', () => {
    const problems = problemsOf(`${VALID}timeouts:\n  banner: soon\n`);
    assert.match(problems[0] ?? '', /^line 11: timeouts\.banner: expected a duration like 250ms/);
  });

  it('names a bad address inside a list', () => {
    const problems = problemsOf(VALID.replace('address: 127.0.0.1:22 ', 'address: 127.0.0.1:99999 '));
    assert.match(problems[0] ?? '', /^line 9: pools\[0\]\.servers\[0\]\.address: expected host:port, .*port 99999 is above 65535/);
  });

  it('refuses a bind without a port, and an IPv6 address without brackets plus port', () => {
    assert.match(problemsOf(VALID.replace('127.0.0.1:2222', '127.0.0.1'))[0] ?? '', /listeners\[0\]\.bind: .*missing port/);
    assert.match(problemsOf(VALID.replace('127.0.0.1:2222', 'fe80::1:22:x'))[0] ?? '', /listeners\[0\]\.bind/);
  });

  it('accepts [::]:2222 for IPv6', () => {
    const config = parseConfigText(VALID.replace('127.0.0.1:2222', '"[::]:2222"'), 'test.yaml');
    assert.deepEqual(config.listeners[0]?.bind, { host: '::', port: 2222 });
  });

  it('refuses a listener naming an unknown pool', () => {
    assert.match(problemsOf(VALID.replace('pool: main', 'pool: other'))[0] ?? '', /listeners\[0\]\.pool: unknown pool "other" \(defined: main\)/);
  });

  it('refuses duplicate server names', () => {
    const text = VALID.replace('      - { name: a, address: 127.0.0.1:22 }', '      - { name: a, address: 127.0.0.1:22 }\n      - { name: a, address: 127.0.0.1:23 }');
    assert.match(problemsOf(text)[0] ?? '', /pools\[0\]\.servers\[1\]\.name: duplicate server name "a"/);
  });

  it('refuses a bad CIDR in an ACL', () => {
    const text = VALID.replace('    pool: main', '    pool: main\n    acl: { allow: [10.0.0.0/33] }');
    assert.match(problemsOf(text)[0] ?? '', /listeners\[0\]\.acl\.allow\[0\]: expected a CIDR block/);
  });

  it('refuses wrong types and enum values, naming what was expected', () => {
    assert.match(problemsOf(VALID.replace('  - name: main', '  - name: main\n    balance: random'))[0] ?? '', /pools\[0\]\.balance: .*"roundrobin"/);
    assert.match(problemsOf(VALID.replace('  - name: main', '  - name: main\n    retries: two'))[0] ?? '', /pools\[0\]\.retries: .*number/);
    assert.match(problemsOf(VALID.replace('{ name: a, address: 127.0.0.1:22 }', '{ name: a, address: 127.0.0.1:22, weight: -1 }'))[0] ?? '', /servers\[0\]\.weight/);
  });

  it('refuses an empty pool and a missing section', () => {
    assert.match(problemsOf(VALID.replace(/ {4}servers:\n.*\n/, '    servers: []\n'))[0] ?? '', /pools\[0\]\.servers: a pool needs at least one server/);
    assert.match(problemsOf('pools: []\n').join('\n'), /listeners: /);
  });

  it('reports YAML syntax errors with their line', () => {
    assert.match(problemsOf('listeners:\n  - name: [unclosed\n')[0] ?? '', /^line \d+: YAML syntax/);
  });

  it('refuses an empty file', () => {
    assert.match(problemsOf('')[0] ?? '', /empty/);
  });

  it('refuses a prefetch maxAge near sshd LoginGraceTime', () => {
    const text = VALID.replace('  - name: main', '  - name: main\n    prefetch: { perServer: 2, maxAge: 2m }');
    assert.match(problemsOf(text)[0] ?? '', /pools\[0\]\.prefetch\.maxAge: must stay well under sshd's LoginGraceTime/);
  });

  it('names the file when it cannot be read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sbp-config-'));
    await assert.rejects(loadConfigFile(join(dir, 'missing.yaml')), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /missing\.yaml: file not found\n\s+- no such file/);
      return true;
    });
    const file = join(dir, 'ok.yaml');
    await writeFile(file, VALID);
    assert.equal((await loadConfigFile(file, { logLevel: 'debug', listen: '127.0.0.1:3333' })).log.level, 'debug');
  });

  it('validates command-line overrides through the same schema', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sbp-config-'));
    const file = join(dir, 'ok.yaml');
    await writeFile(file, VALID);
    const config = await loadConfigFile(file, { listen: '127.0.0.1:3333', admin: '127.0.0.1:9999' });
    assert.deepEqual(config.listeners[0]?.bind, { host: '127.0.0.1', port: 3333 });
    assert.deepEqual(config.admin?.bind, { host: '127.0.0.1', port: 9999 });
    await assert.rejects(loadConfigFile(file, { logLevel: 'loud' }), /log\.level/);
  });
});

describe('penalties', () => {
  it('defaults to sshd\'s PerSourcePenalties values; "off" switches them off', () => {
    const config = parseConfigText(VALID, 'test.yaml');
    assert.deepEqual(
      { ...config.penalties, exempt: [...config.penalties.exempt] },
      { enabled: true, authfail: 5000, noauth: 1000, graceExceeded: 10000, min: 15000, max: 600000, exempt: [], ipv4Prefix: 32, ipv6Prefix: 64, maxSources: 65536, overflow: 'permissive' },
    );
    assert.equal(parseConfigText(`${VALID}penalties: off\n`, 'test.yaml').penalties.enabled, false);
  });

  it('names the bad field and the line, and suggests the key a typo meant', () => {
    const problems = problemsOf(`${VALID}penalties:\n  authfail: banana\n  exmept: [10.0.0.0/8]\n  ipv4Prefix: 40\n`);
    assert.ok(problems.some((problem) => /line \d+: penalties\.authfail: expected a duration/.test(problem)), problems.join('\n'));
    assert.ok(problems.some((problem) => /penalties: unknown key "exmept" \(did you mean "exempt"\?\)/.test(problem)), problems.join('\n'));
    assert.ok(problems.some((problem) => /penalties\.ipv4Prefix/.test(problem)), problems.join('\n'));
  });
});
