import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { Splice, type SpliceOptions, type SpliceResult } from '../../src/proxy/splice.js';
import { FakeSocket } from '../fixtures/backends/fake-socket.js';

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function splice(t: TestContext, options: Partial<SpliceOptions> = {}): { client: FakeSocket; backend: FakeSocket; result: () => SpliceResult | undefined } {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const client = new FakeSocket();
  const backend = new FakeSocket();
  let result: SpliceResult | undefined;
  new Splice(client.asSocket(), backend.asSocket(), { idleTimeoutMs: 0, finTimeoutMs: 30_000, writeStallMs: 120_000, ...options }, { spliceEnded: (done) => (result = done) }).start();
  t.after(() => {
    client.destroy();
    backend.destroy();
  });
  return { client, backend, result: () => result };
}

describe('Splice close reasons', () => {
  it('passes bytes both ways and a FIN through; both FINs end it as CLIENT_CLOSED (the first)', async (t) => {
    const { client, backend, result } = splice(t);
    client.receive('to-server');
    backend.receive('to-client');
    await settle();
    assert.equal(backend.text, 'to-server');
    assert.equal(client.text, 'to-client');
    client.peerEnds();
    await settle();
    assert.equal(backend.writableEnded, true, 'the FIN reached the backend');
    backend.peerEnds();
    await settle();
    client.destroy();
    backend.destroy();
    await settle();
    assert.equal(result()?.reason, 'CLIENT_CLOSED');
    assert.equal(result()?.bytesClientToServer, 'to-server'.length);
  });

  it('a fin timeout that cuts a half-closed session is recorded as FIN_TIMEOUT, not as the half-close', async (t) => {
    const { client, result } = splice(t, { finTimeoutMs: 5000 });
    client.peerEnds();
    await settle();
    t.mock.timers.tick(5000);
    await settle();
    assert.equal(result()?.reason, 'FIN_TIMEOUT');
  });

  it('a reset after a half-close is what ended it', async (t) => {
    const { client, backend, result } = splice(t);
    client.peerEnds();
    await settle();
    backend.peerResets();
    await settle();
    assert.equal(result()?.reason, 'SERVER_RESET');
  });

  it('a vanished client (keepalive ETIMEDOUT) is CLIENT_LOST', async (t) => {
    const { client, result } = splice(t);
    client.destroy(Object.assign(new Error('read ETIMEDOUT'), { code: 'ETIMEDOUT' }));
    await settle();
    assert.equal(result()?.reason, 'CLIENT_LOST');
  });
});

describe('Splice write stalls', () => {
  async function fillTowardBackend(client: FakeSocket, backend: FakeSocket): Promise<void> {
    backend.stallWrites();
    for (let chunk = 0; chunk < 8 && !client.isPaused(); chunk += 1) {
      client.receive(Buffer.alloc(4096, 0x61));
      await settle();
    }
    assert.ok(client.isPaused(), 'the client side is paused behind the stalled backend');
  }

  it('a backend that reads nothing for writeStall ends the session (SERVER_WRITE_STALL), though the paused client is not read', async (t) => {
    const { client, backend, result } = splice(t, { writeStallMs: 10_000 });
    await fillTowardBackend(client, backend);
    // The client leaves, but its FIN sits behind the paused read: only the stall bound notices.
    client.peerEnds();
    t.mock.timers.tick(9_999);
    await settle();
    assert.equal(result(), undefined);
    t.mock.timers.tick(1);
    await settle();
    assert.equal(result()?.reason, 'SERVER_WRITE_STALL');
    assert.ok(client.destroyed && backend.destroyed);
  });

  it('a stall that drains in time changes nothing', async (t) => {
    const { client, backend, result } = splice(t, { writeStallMs: 10_000 });
    await fillTowardBackend(client, backend);
    t.mock.timers.tick(9_000);
    backend.resumeWrites();
    await settle();
    assert.ok(!client.isPaused(), 'reading resumed on drain');
    t.mock.timers.tick(60_000);
    await settle();
    assert.equal(result(), undefined, 'still spliced');
  });

  it('writeStall 0 never ends a stalled session', async (t) => {
    const { client, backend, result } = splice(t, { writeStallMs: 0 });
    await fillTowardBackend(client, backend);
    t.mock.timers.tick(3_600_000);
    await settle();
    assert.equal(result(), undefined);
  });
});
