import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { attemptBackend, type AttemptOptions, type AttemptOutcome } from '../../src/backend/attempt.js';
import { setReadTarget } from '../../src/net/reused-reads.js';
import { freePort } from '../fixtures/wait.js';

/** A loopback server that does `behave` with each connection. */
async function server(t: TestContext, behave: (socket: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    behave(socket);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    srv.close();
  });
  return (srv.address() as AddressInfo).port;
}

function attempt(port: number, options: Partial<AttemptOptions> = {}): Promise<AttemptOutcome> {
  return new Promise((resolve) => attemptBackend({ host: '127.0.0.1', port, connectTimeoutMs: 2000, bannerTimeoutMs: 2000, ...options }, resolve));
}

describe('attemptBackend', () => {
  it('succeeds on a valid identification, keeping pre-lines and the bytes after it, and reports the connect', async (t) => {
    const port = await server(t, (socket) => socket.write('hello\r\nSSH-2.0-Unit_1.0 comment\r\nKEX'));
    let connected = 0;
    const outcome = await attempt(port, { onConnected: () => (connected += 1) });
    assert.ok(outcome.ok);
    assert.equal(connected, 1);
    assert.equal(outcome.identification.softwareVersion, 'Unit_1.0');
    assert.deepEqual(outcome.preLines, ['hello']);
    assert.equal(outcome.received.toString(), 'hello\r\nSSH-2.0-Unit_1.0 comment\r\nKEX');
    assert.equal(outcome.received.subarray(outcome.identEndOffset).toString(), 'KEX');
    assert.ok(outcome.socket.isPaused(), 'handed over paused');
    outcome.releaseErrorGuard();
    outcome.socket.destroy();
  });

  it('sends its own identification first when asked (health checks)', async (t) => {
    const seen: string[] = [];
    const port = await server(t, (socket) => socket.once('data', (chunk) => {
      seen.push(chunk.toString());
      socket.write('SSH-2.0-Unit_1.0\r\n');
    }));
    const outcome = await attempt(port, { sendOnConnect: Buffer.from('SSH-2.0-check\r\n') });
    assert.ok(outcome.ok);
    assert.deepEqual(seen, ['SSH-2.0-check\r\n']);
    outcome.socket.destroy();
  });

  it('reads into a reused buffer when asked, and hands the socket over with no read target', async (t) => {
    const port = await server(t, (socket) => socket.write('SSH-2.0-Unit_1.0\r\n'));
    const outcome = await attempt(port, { reuseReads: true });
    assert.ok(outcome.ok);
    assert.equal(outcome.identification.line, 'SSH-2.0-Unit_1.0');
    setReadTarget(outcome.socket, undefined);
    outcome.socket.destroy();
  });

  const failures: { name: string; behave: (socket: net.Socket) => void; code: string; options?: Partial<AttemptOptions> }[] = [
    { name: 'silence', behave: () => {}, code: 'BANNER_TIMEOUT', options: { bannerTimeoutMs: 50 } },
    { name: 'a close before anything', behave: (socket) => socket.end(), code: 'BACKEND_CLOSED' },
    { name: 'a reset', behave: (socket) => socket.resetAndDestroy(), code: 'BACKEND_RESET' },
    { name: 'a throttle notice', behave: (socket) => socket.end('Not allowed at this time\r\n'), code: 'THROTTLED' },
    { name: 'HTTP', behave: (socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'), code: 'NOT_SSH' },
    { name: 'SSH-1.5', behave: (socket) => socket.write('SSH-1.5-Old\r\n'), code: 'SSH_VERSION_UNSUPPORTED' },
    { name: 'a partial line then close', behave: (socket) => socket.end('SSH-2.0-Parti'), code: 'BACKEND_CLOSED' },
  ];
  for (const failure of failures) {
    it(`fails with ${failure.code} on ${failure.name}`, async (t) => {
      const port = await server(t, failure.behave);
      const outcome = await attempt(port, failure.options);
      assert.equal(outcome.ok, false);
      if (outcome.ok) return;
      assert.equal(outcome.code, failure.code, outcome.message);
      assert.match(outcome.message, new RegExp(`127\\.0\\.0\\.1:${port}`), 'the message names the target');
      // A reset may beat the 'connect' event.
      if (failure.code !== 'BACKEND_RESET') assert.notEqual(outcome.connectMs, undefined, 'it had connected');
    });
  }

  it('fails with CONNECT_REFUSED, keeping the errno, when nothing listens', async () => {
    const outcome = await attempt(await freePort());
    assert.equal(outcome.ok, false);
    if (outcome.ok) return;
    assert.equal(outcome.code, 'CONNECT_REFUSED');
    assert.equal(outcome.errno, 'ECONNREFUSED');
    assert.equal(outcome.connectMs, undefined);
  });

  it('cancel() stops the attempt: no callback, the socket is closed', async (t) => {
    let serverSawClose: () => void = () => {};
    const closed = new Promise<void>((resolve) => (serverSawClose = resolve));
    const port = await server(t, (socket) => socket.on('close', serverSawClose));
    let called = false;
    const handle = attemptBackend({ host: '127.0.0.1', port, connectTimeoutMs: 2000, bannerTimeoutMs: 2000, onConnected: () => handle.cancel() }, () => (called = true));
    await closed;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(called, false, 'a cancelled attempt never calls back');
  });
});
