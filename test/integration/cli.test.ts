import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { runProcess, type RunResult } from '../fixtures/run-process.js';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const PACKAGE = JSON.parse(await (await import('node:fs/promises')).readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function cli(args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
  return runProcess(process.execPath, ['--import', 'tsx', CLI, ...args], { timeoutMs: 20_000, env: { ...process.env, ...env } });
}

async function configFile(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sbp-cli-'));
  const file = join(dir, 'config.yaml');
  await writeFile(file, text);
  return file;
}

const VALID = `listeners:
  - { name: ssh, bind: 127.0.0.1:0, pool: main }
pools:
  - name: main
    servers:
      - { name: a, address: 127.0.0.1:22 }
`;

describe('command line', () => {
  it('prints help listing the commands, exit 0', async () => {
    const result = await cli(['--help']);
    assert.equal(result.code, 0);
    for (const command of ['serve', 'check-config', 'probe', 'loadtest', 'demo']) assert.match(result.stdout, new RegExp(`ssh-banner-proxy ${command}`));
  });

  it('prints the package version with --version and -V; -v is not the version', async () => {
    for (const flag of ['--version', '-V']) {
      const result = await cli([flag]);
      assert.equal(result.code, 0);
      assert.equal(result.stdout.trim(), PACKAGE.version);
    }
    const lower = await cli(['-v']);
    assert.equal(lower.code, 2);
    assert.doesNotMatch(lower.stdout, new RegExp(PACKAGE.version.replaceAll('.', '\\.')));
  });

  it('top-level help lists commands and the program\'s options, not serve\'s flags', async () => {
    const result = await cli(['--help']);
    assert.match(result.stdout, /ssh-banner-proxy completion/);
    for (const flag of ['--config', '--listen', '--watch', '--log-level']) assert.ok(!result.stdout.includes(flag), `${flag} is serve's, not the program's`);
    const serve = await cli(['serve', '--help']);
    assert.match(serve.stdout, /--listen/);
  });

  it('a mistyped command gets "did you mean", an unknown one the list of commands, exit 2', async () => {
    const typo = await cli(['chek-config', 'foo.yaml']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /unknown command "chek-config"\. Did you mean check-config\?/);
    const unknown = await cli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate" \(commands: serve, check-config, probe, loadtest, demo, healthcheck, transparent, ctl, completion\)/);
  });

  it('completion prints a shell script, and the script\'s query completes commands and serve\'s flags', async () => {
    const script = await cli(['completion']);
    assert.equal(script.code, 0);
    assert.match(script.stdout, /###-begin-ssh-banner-proxy-completions-###/);
    assert.match(script.stdout, /--get-yargs-completions/);
    const commands = await cli(['--get-yargs-completions', 'ssh-banner-proxy', '']);
    assert.deepEqual(commands.stdout.trim().split('\n').filter((word) => !word.startsWith('-')), ['completion', 'serve', 'check-config', 'probe', 'loadtest', 'demo', 'healthcheck', 'transparent', 'ctl']);
    const flags = await cli(['--get-yargs-completions', 'ssh-banner-proxy', 'serve', '--']);
    assert.match(flags.stdout, /^--listen$/m);
  });

  it('check-config prints the effective config with defaults in the file vocabulary', async () => {
    const result = await cli(['check-config', await configFile(VALID)]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /banner: 8s/);
    assert.match(result.stdout, /address: 127\.0\.0\.1:22/);
    assert.match(result.stderr, /configuration is valid/);
  });

  it('check-config names file, line and field of an error, exit 2', async () => {
    const file = await configFile(VALID.replace('address: 127.0.0.1:22', 'address: 127.0.0.1:22, wieght: 3'));
    const result = await cli(['check-config', file]);
    assert.equal(result.code, 2);
    assert.ok(result.stderr.includes(`${file}: invalid configuration`), result.stderr);
    assert.match(result.stderr, /line 6: pools\[0\]\.servers\[0\]: unknown key "wieght"/);
  });

  it('check-config lists problems in file order, says "file not found" for a missing file, and prints every duration one way', async () => {
    const text = VALID.replace('      - { name: a, address: 127.0.0.1:22 }', '      - { name: a, address: 127.0.0.1:22, wieght: 3 }') + 'timeouts:\n  banner: soon\nlimits:\n  maxConections: 3\n';
    // The unknown pool (line 2) is found by a second pass after the schema's problems: it still comes first.
    const file = await configFile(text.replace('pool: main }', 'pool: nope }').replace('pools:\n', 'pools:\n  - name: main2\n    balance: sideways\n    servers: []\n'));
    const result = await cli(['check-config', file]);
    assert.equal(result.code, 2);
    const lines = [...result.stderr.matchAll(/^ {2}- line (\d+): /gm)].map((match) => Number(match[1]));
    assert.ok(lines.length >= 4, result.stderr);
    assert.equal(lines[0], 2, result.stderr);
    assert.deepEqual(lines, [...lines].sort((a, b) => a - b), `sorted by line: ${lines.join(', ')}`);

    const missing = await cli(['check-config', join(tmpdir(), 'sbp-no-such-config.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /sbp-no-such-config\.yaml: file not found\n {2}- no such file/);
    assert.doesNotMatch(missing.stderr, /invalid configuration/);

    const valid = await cli(['check-config', await configFile(VALID)]);
    const durations = ['setup', 'clientIdle', 'fin', 'writeStall', 'tcpKeepalive', 'clientIdentification', 'shutdownGrace', 'banner'].map((key) => new RegExp(`^\\s+${key}: (\\S+)$`, 'm').exec(valid.stdout)?.[1]);
    for (const value of durations) assert.match(value ?? 'missing', /^\d+(ms|s|m|h)$/);
  });

  it('check-config --schema prints the JSON Schema that config/schema.json holds', async () => {
    const result = await cli(['check-config', '--schema']);
    assert.equal(result.code, 0, result.stderr);
    const file = await (await import('node:fs/promises')).readFile(new URL('../../config/schema.json', import.meta.url), 'utf8');
    assert.deepEqual(JSON.parse(result.stdout), JSON.parse(file));
    const neither = await cli(['check-config']);
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /name a config file to check/);
  });

  it('serve refuses an invalid config with exit 2 before listening', async () => {
    const result = await cli(['serve', '-c', await configFile(VALID.replace('bind: 127.0.0.1:0', 'bind: nowhere'))]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /listeners\[0\]\.bind/);
  });

  it('validates environment overrides like flags', async () => {
    const result = await cli(['serve', '-c', await configFile(VALID)], { SSH_BANNER_PROXY_LOG_LEVEL: 'chatty' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /log-level|chatty/);
  });

  it('rejects an unknown flag and an unknown command with exit 2', async () => {
    const flag = await cli(['check-config', 'x.yaml', '--bogus']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /bogus/);
    const command = await cli(['frobnicate']);
    assert.equal(command.code, 2);
  });

  it('exits 1 when a listener cannot bind', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const result = await cli(['serve', '-c', await configFile(VALID.replace('127.0.0.1:0', `127.0.0.1:${port}`))]);
      assert.equal(result.code, 1);
      assert.match(result.stdout, /cannot listen on 127\.0\.0\.1:\d+/);
    } finally {
      blocker.close();
    }
  });
});

describe('environment', () => {
  it('starts with the variables Kubernetes injects for a Service named ssh-banner-proxy, and still reads its own', async () => {
    const { spawn } = await import('node:child_process');
    const file = await configFile(VALID);
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve'], {
      env: {
        ...process.env,
        SSH_BANNER_PROXY_SERVICE_HOST: '10.0.0.1',
        SSH_BANNER_PROXY_SERVICE_PORT: '22',
        SSH_BANNER_PROXY_PORT: 'tcp://10.0.0.1:22',
        SSH_BANNER_PROXY_PORT_22_TCP_ADDR: '10.0.0.1',
        SSH_BANNER_PROXY_CONFIG: file,
        SSH_BANNER_PROXY_LOG_LEVEL: 'debug',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const listening = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('"event":"listening"')) resolve(out);
      });
      child.on('exit', (code) => reject(new Error(`serve exited ${String(code)}: ${stderr}`)));
    });
    const address = /"event":"listening"[^\n]*"address":"([^"]+)"/.exec(listening)?.[1];
    assert.ok(address && !address.endsWith(':2222'), `SSH_BANNER_PROXY_CONFIG was read (bound ${String(address)}, not the default config's 2222)`);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('a flag on the command line wins over its variable', () => {
    return import('../../src/cli/env-flags.js').then(({ withEnvFlags }) => {
      assert.deepEqual(withEnvFlags(['serve', '-c', 'a.yaml'], { SSH_BANNER_PROXY_CONFIG: 'b.yaml', SSH_BANNER_PROXY_WATCH: 'true' }), ['serve', '-c', 'a.yaml', '--watch']);
      assert.deepEqual(withEnvFlags(['probe', 'host'], { SSH_BANNER_PROXY_LOG_LEVEL: 'debug' }), ['probe', 'host'], 'probe takes no flag from the environment');
    });
  });
});

describe('one syntax for durations', () => {
  it('probe, loadtest and demo take the config\'s duration syntax; a bad one names the flag', async () => {
    const { freePort } = await import('../fixtures/wait.js');
    const port = await freePort();
    const probe = await cli(['probe', `127.0.0.1:${port}`, '--timeout', '2s', '--connect-timeout', '500ms', '--slow', '1s', '--json']);
    assert.notEqual(probe.code, 2, `accepted: ${probe.stderr}`);
    assert.equal((JSON.parse(probe.stdout) as { verdict: string }).verdict, 'refused');
    const loadtest = await cli(['loadtest', `127.0.0.1:${port}`, '--timeout', '2s', '--connect-timeout', '1s', '--duration', '1s', '--total', '2', '--json']);
    assert.notEqual(loadtest.code, 2, `accepted: ${loadtest.stderr}`);
    const bad = await cli(['probe', `127.0.0.1:${port}`, '--timeout', 'soon']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--timeout "soon" is not a duration/);
    const { durationFlag } = await import('../../src/cli/duration-flag.js');
    assert.equal(durationFlag('banner-delay', 's')('2s'), 2000);
    assert.equal(durationFlag('banner-delay', 's')('3'), 3000, 'a bare number keeps the flag\'s old unit');
    assert.equal(durationFlag('timeout', 'ms')('1500'), 1500);
  });

  it('-c means --config only: loadtest spells --clients out', async () => {
    const result = await cli(['loadtest', '127.0.0.1:1', '-c', '5']);
    assert.equal(result.code, 2);
  });
});

describe('config problems, all at once', () => {
  it('check-config reports schema and name problems together, suggests the nearest key, and prints them as JSON with --json', async () => {
    const file = await configFile(`listeners:
  - { name: ssh, bind: 127.0.0.1:0, pool: nowhere }
  - { name: ssh, bind: 127.0.0.1:0, pool: main }
pools:
  - name: main
    balanc: roundrobin
    servers:
      - { name: a, address: 127.0.0.1:22 }
      - { name: a, address: 127.0.0.1:23 }
`);
    const result = await cli(['check-config', file, '--json']);
    assert.equal(result.code, 2);
    const report = JSON.parse(result.stdout) as { valid: boolean; problems: string[] };
    assert.equal(report.valid, false);
    const text = report.problems.join('\n');
    assert.match(text, /line 6: pools\[0\]: unknown key "balanc" \(did you mean "balance"\?\)/);
    assert.match(text, /unknown pool "nowhere"/);
    assert.match(text, /duplicate listener name "ssh"/);
    assert.match(text, /duplicate server name "a" in pool "main"/);
    assert.match(result.stderr, /balanc/, 'and for people on stderr');
  });

  it('a bad --listen is reported as the flag, not as a line of the file', async () => {
    const result = await cli(['serve', '-c', await configFile(VALID), '--listen', '31213']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--listen \(command line or SSH_BANNER_PROXY_LISTEN\): listeners\[0\]\.bind/);
    assert.doesNotMatch(result.stderr, /line \d+: listeners\[0\]\.bind/);
  });
});

describe('log.pretty', () => {
  it('writes no ANSI colour codes when stdout is not a terminal', async () => {
    const { spawn } = await import('node:child_process');
    const file = await configFile(`${VALID}log: { pretty: true }\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('listening')) resolve();
      });
      child.on('exit', () => reject(new Error(`serve exited: ${out}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    await exited;
    assert.match(out, /INFO/, 'pretty (not JSON) output');
    assert.ok(!out.includes(String.fromCharCode(27)), 'no colour codes (ESC) in a pipe');
  });
});
