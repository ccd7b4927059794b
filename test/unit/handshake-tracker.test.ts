import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { HandshakeTracker, type HandshakeTrackerOptions } from '../../src/proxy/handshake-tracker.js';
import { SSH_MSG_KEXINIT, SSH_MSG_NEWKEYS } from '../../src/protocol/ssh-packets.js';
import { FakeSocket } from '../fixtures/backends/fake-socket.js';
import { cleartextPacket } from '../fixtures/flights/ssh-packet.js';

const KEXINIT = cleartextPacket(Buffer.concat([Buffer.from([SSH_MSG_KEXINIT]), Buffer.alloc(40, 1)]));
const NEWKEYS = cleartextPacket(Buffer.from([SSH_MSG_NEWKEYS]));
/** After NEWKEYS the stream is encrypted: any bytes. */
const ENCRYPTED = Buffer.alloc(64, 0xab);
const CLIENT_IDENT = Buffer.from('SSH-2.0-TrackerTest_1.0\r\n');

const OPTIONS: HandshakeTrackerOptions = { endsAt: 'auth', graceMs: 1000, maxHoldMs: 30_000, authFlights: 4 };

/** `seen`: the bytes past the identifications the splice already had (default: the server's KEXINIT, the client's identification). */
function track(
  t: TestContext,
  options: Partial<HandshakeTrackerOptions> = {},
  seen: { serverRest: Buffer; clientBuffered: Buffer[]; clientLineKnown?: boolean } = { serverRest: KEXINIT, clientBuffered: [CLIENT_IDENT] },
): { ended: () => number; identified: (string | undefined)[]; client: FakeSocket; backend: FakeSocket; tracker: HandshakeTracker } {
  if (!mockedTimers.has(t)) t.mock.timers.enable({ apis: ['setTimeout'] });
  mockedTimers.add(t);
  let ends = 0;
  const client = new FakeSocket();
  const backend = new FakeSocket();
  // The splice reads both sides; the tracker only taps.
  client.on('data', () => {});
  backend.on('data', () => {});
  const identified: (string | undefined)[] = [];
  const tracker = new HandshakeTracker({ ...OPTIONS, ...options }, { handshakeEnded: () => (ends += 1), clientIdentified: (line) => identified.push(line) });
  // As the session does: a line that came before the splice is known already.
  tracker.start(client.asSocket(), backend.asSocket(), seen.serverRest, seen.clientBuffered, seen.clientLineKnown ?? seen.clientBuffered.length > 0);
  return { ended: () => ends, identified, client, backend, tracker };
}

const mockedTimers = new WeakSet<TestContext>();

/** Lets pushed bytes reach 'data' listeners. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function bothNewKeys(client: FakeSocket, backend: FakeSocket): Promise<void> {
  client.receive(Buffer.concat([KEXINIT, NEWKEYS]));
  backend.receive(NEWKEYS);
  await flush();
}

// The tracker on sockets: it taps both sides into the judge and runs its timers. What the judge
// decides is tested on recorded sessions in handshake-judge.test.ts.
describe('HandshakeTracker', () => {
  it('taps both sides: ends when both have sent NEWKEYS (endsAt newkeys), not before', async (t) => {
    const { ended, client, backend } = track(t, { endsAt: 'newkeys' });
    client.receive(Buffer.concat([KEXINIT, NEWKEYS]));
    await flush();
    assert.equal(ended(), 0, 'one side is not enough');
    backend.receive(NEWKEYS);
    await flush();
    assert.equal(ended(), 1);
  });

  it('tells its owner the client identification read from the client socket', async (t) => {
    const { identified, client } = track(t, {}, { serverRest: KEXINIT, clientBuffered: [] });
    client.receive(Buffer.from('SSH-2.0-Tapped_1.0\r\n'));
    await flush();
    assert.deepEqual(identified, ['SSH-2.0-Tapped_1.0']);
  });

  it('runs the grace timer from NEWKEYS: the slot goes when it ends', async (t) => {
    const { ended, client, backend, tracker } = track(t);
    await bothNewKeys(client, backend);
    client.receive(ENCRYPTED);
    await flush();
    backend.receive(ENCRYPTED);
    await flush();
    t.mock.timers.tick(999);
    assert.equal(ended(), 0);
    t.mock.timers.tick(1);
    assert.equal(ended(), 1);
    assert.equal(tracker.released, 'grace');
  });

  it('runs the hold timer from the start: maxHold bounds a handshake that never shows NEWKEYS', (t) => {
    const { ended, tracker } = track(t, { maxHoldMs: 5000 });
    t.mock.timers.tick(4999);
    assert.equal(ended(), 0);
    t.mock.timers.tick(1);
    assert.equal(ended(), 1);
    assert.equal(tracker.released, 'maxHold');
    assert.equal(tracker.outcome, 'grace-exceeded');
  });

  it('a stream that is not SSH framing: untapped at once, released when the grace period ends', async (t) => {
    const { ended, backend, client, tracker } = track(t);
    backend.receive(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
    await flush();
    assert.equal(backend.listenerCount('data'), 1, 'only the splice reads the backend now');
    assert.equal(client.listenerCount('data'), 1);
    t.mock.timers.tick(999);
    assert.equal(ended(), 0);
    t.mock.timers.tick(1);
    assert.equal(tracker.released, 'unreadable');
  });

  it('splice: the handshake is over at once', (t) => {
    const { ended, tracker } = track(t, { endsAt: 'splice' });
    assert.equal(ended(), 1);
    assert.equal(tracker.released, 'splice');
  });

  it('stop() ends nothing, leaves no timer, and untaps both sides', async (t) => {
    const { ended, tracker, client, backend } = track(t, { maxHoldMs: 5000 });
    tracker.stop('server-gone');
    await bothNewKeys(client, backend);
    t.mock.timers.tick(60_000);
    assert.equal(ended(), 0);
    assert.equal(tracker.released, 'server-gone');
    assert.equal(client.listenerCount('data'), 1, 'the tracker detached from the client');
    assert.equal(backend.listenerCount('data'), 1, 'the tracker detached from the backend');
  });
});
