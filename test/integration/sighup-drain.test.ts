// A SIGHUP during the drain (logrotate, config management, a closing terminal) is
// logged and ignored: the process neither dies with 129 nor cuts a draining session.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { startServeProcess } from '../fixtures/proxy/serve-process.js';

const ECHO_IDENT = 'SSH-2.0-EchoFixture_1.0\r\n';

/** A raw client through the proxy to the echo fixture; resolves once the banner is in. */
function openEchoSession(port: number): Promise<{ socket: net.Socket; received: () => string; until: (text: string) => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const waiters: (() => void)[] = [];
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      for (const waiter of waiters.splice(0)) waiter();
    });
    const until = (text: string): Promise<void> =>
      new Promise((done) => {
        const check = (): void => (data.includes(text) ? done() : void waiters.push(check));
        check();
      });
    socket.write('SSH-2.0-SighupTest_1.0\r\n');
    void until(ECHO_IDENT).then(() => resolve({ socket, received: () => data, until }));
  });
}

for (const workers of [1, 2]) {
  test(`workers: ${workers}: SIGHUP during the drain is logged and ignored; the draining session lives on and the process exits 0`, { timeout: 60_000 }, async (t) => {
    const echo = await startFixtureBackend('ssh-echo');
    t.after(() => echo.close());
    const proxy = await startServeProcess({
      listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
      pools: [{ name: 'main', healthCheck: { enabled: false }, handshake: { endsAt: 'splice' }, servers: [{ name: 'echo', address: `127.0.0.1:${echo.port}` }] }],
      timeouts: { drain: '30s' },
      workers,
      log: { level: 'info' },
    });
    t.after(() => proxy.kill());
    const session = await openEchoSession(proxy.port('ssh'));
    t.after(() => session.socket.destroy());

    proxy.signal('SIGTERM');
    await proxy.waitForLog((line) => line.event === 'shutdown', 5000, 'the drain to start');
    for (let hangup = 0; hangup < 3; hangup += 1) proxy.signal('SIGHUP');
    await proxy.waitForLog((line) => line.event === 'sighup-ignored', 5000, 'the ignored SIGHUP logged');

    session.socket.write('after-sighup');
    await session.until('after-sighup');
    assert.equal(proxy.child.exitCode, null, 'still running');
    session.socket.end();
    const exit = await proxy.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, `a clean exit once the session ended, not 129: ${JSON.stringify(proxy.logs.filter((line) => line.event === 'worker-stopped'))}`);
  });
}
