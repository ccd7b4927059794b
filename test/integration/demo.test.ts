/**
 * `ssh-banner-proxy demo` as a newcomer runs it: it starts, an ssh2 session through the
 * proxy works (failing over past the slow/throttling backends), the admin endpoint serves
 * metrics, and SIGTERM stops it with exit code 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import ssh2 from 'ssh2';
import { waitForEvent } from '../fixtures/wait.js';

function execThroughProxy(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    const timer = setTimeout(() => {
      client.end();
      reject(new Error('ssh2 session through the demo proxy timed out'));
    }, 15_000);
    client.on('error', (error: Error) => {
      clearTimeout(timer);
      reject(error);
    });
    client.on('ready', () => {
      client.exec(command, (error, channel) => {
        if (error !== undefined) {
          clearTimeout(timer);
          reject(error);
          return;
        }
        let output = '';
        channel.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
        channel.on('close', () => {
          clearTimeout(timer);
          client.end();
          resolve(output);
        });
      });
    });
    client.connect({ host: '127.0.0.1', port, username: 'demo', password: 'demo', readyTimeout: 12_000 });
  });
}

test('demo starts, serves an ssh2 session through the proxy, and exits 0 on SIGTERM', async (t) => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'demo', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--log-level', 'info'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = once(child, 'exit');
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ready = new Promise<void>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (/Ctrl-C stops the demo/.test(stdout)) resolve();
    });
  });
  await Promise.race([ready, waitForEvent(child, 'exit', 20_000).then(() => assert.fail(`demo exited early: ${stderr}`))]);

  const port = Number(/proxy listening on 127\.0\.0\.1:(\d+)/.exec(stdout)?.[1]);
  const adminPort = Number(/Status page\s+http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout)?.[1]);
  assert.ok(port > 0, stdout);
  assert.ok(adminPort > 0, stdout);
  assert.match(stdout, /ssh -p \d+ /);
  assert.match(stdout, /probe 127\.0\.0\.1:\d+/);
  assert.match(stdout, /loadtest 127\.0\.0\.1:\d+ --compare/);

  // Round robin over healthy, slow (20 s banner) and throttle: three sessions in a row all
  // land on a backend that answers, none waits for the slow one's banner.
  for (let index = 0; index < 3; index += 1) {
    const startedAt = performance.now();
    const output = await execThroughProxy(port, 'hostname');
    assert.match(output, /^(healthy|throttle): hostname\n$/);
    assert.ok(performance.now() - startedAt < 10_000);
  }

  const metrics = await fetch(`http://127.0.0.1:${adminPort}/metrics`).then((response) => response.text());
  assert.match(metrics, /^sshproxy_sessions_total\{.*\} [1-9]/m);

  child.kill('SIGTERM');
  const [code, signal] = (await Promise.race([exited, waitForEvent(child, 'exit', 15_000)])) as [number | null, string | null];
  assert.equal(signal, null);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /stopping the demo/);
  // The same logger setup as serve's: ISO time, the service and the replica on every line.
  const lines = stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.ok(lines.length > 0, stderr);
  for (const line of lines) {
    assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(line.service, 'ssh-banner-proxy');
    assert.equal(typeof line.replica, 'string');
  }
});

test('demo refuses a non-loopback --listen (its backends accept any login) and a bad --backend-ports', async () => {
  const { runProcess } = await import('../fixtures/run-process.js');
  const cli = new URL('../../src/cli.ts', import.meta.url).pathname;
  const exposed = await runProcess(process.execPath, ['--import', 'tsx', cli, 'demo', '--listen', '0.0.0.0:2222'], { timeoutMs: 20_000 });
  assert.equal(exposed.code, 2);
  assert.match(exposed.stderr, /loopback only/);
  const ports = await runProcess(process.execPath, ['--import', 'tsx', cli, 'demo', '--listen', '127.0.0.1:0', '--backend-ports', '1,2'], { timeoutMs: 20_000 });
  assert.equal(ports.code, 2);
  assert.match(ports.stderr, /--backend-ports "1,2" is not three ports/);
});

test('demo binds its backends to the ports asked for', async (t) => {
  const { startDemo } = await import('../../src/demo/demo.js');
  const { freePort } = await import('../fixtures/wait.js');
  const pino = (await import('pino')).default;
  const wanted: [number, number, number] = [await freePort(), await freePort(), await freePort()];
  const demo = await startDemo({ listen: '127.0.0.1:0', admin: undefined, bannerDelayMs: 1000, maxStartups: { start: 2, rate: 50, full: 4 }, logger: pino({ level: 'silent' }), backendPorts: wanted });
  t.after(() => demo.stop());
  assert.deepEqual(demo.backends.map((backend) => backend.port), wanted);
});
