import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { HandshakeTracker, type HandshakeTrackerOptions } from '../../src/proxy/handshake-tracker.js';
import { encodeKexInit } from '../../src/protocol/kexinit.js';
import { SuccessShapes } from '../../src/protocol/success-shapes.js';
import { SSH_MSG_KEXINIT, SSH_MSG_NEWKEYS } from '../../src/protocol/ssh-packets.js';
import { FakeSocket } from '../fixtures/backends/fake-socket.js';

/** A cleartext SSH binary packet (RFC 4253 §6) carrying `payload`, padded to a multiple of 8. */
function packet(payload: Buffer): Buffer {
  let padding = 8 - ((5 + payload.length) % 8);
  if (padding < 4) padding += 8;
  const out = Buffer.alloc(4 + 1 + payload.length + padding);
  out.writeUInt32BE(1 + payload.length + padding, 0);
  out.writeUInt8(padding, 4);
  payload.copy(out, 5);
  return out;
}

const KEXINIT = packet(Buffer.concat([Buffer.from([SSH_MSG_KEXINIT]), Buffer.alloc(40, 1)]));
const NEWKEYS = packet(Buffer.from([SSH_MSG_NEWKEYS]));
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

describe('HandshakeTracker', () => {
  it('tells its owner the client\'s identification once its line ends: not for bytes that trickle in, capped at 255 bytes', async (t) => {
    const { identified, client } = track(t, {}, { serverRest: KEXINIT, clientBuffered: [] });
    for (const byte of Buffer.from('SSH-2.0-tric')) client.receive(Buffer.from([byte]));
    await flush();
    assert.deepEqual(identified, [], 'a partial line is no identification');
    client.receive(Buffer.from('kle\r\n'));
    await flush();
    assert.deepEqual(identified, ['SSH-2.0-trickle']);
    client.receive(Buffer.from('SSH-2.0-again\r\n'));
    await flush();
    assert.equal(identified.length, 1, 'once');

    const long = track(t, {}, { serverRest: KEXINIT, clientBuffered: [] });
    long.client.receive(Buffer.from(`SSH-2.0-${'x'.repeat(60_000)}\r\n`));
    await flush();
    assert.equal(long.identified[0]?.length, 255);
    const other = track(t, {}, { serverRest: KEXINIT, clientBuffered: [Buffer.from('GET / HTTP/1.1\r\n')], clientLineKnown: false });
    assert.deepEqual(other.identified, [undefined], 'not SSH-: the line ended, but it is no identification');
    const known = track(t, {}, { serverRest: KEXINIT, clientBuffered: [CLIENT_IDENT] });
    assert.deepEqual(known.identified, [], 'a line the owner had before the splice is not read again');
  });

  it('splice: the handshake is over at once', (t) => {
    const { ended, tracker } = track(t, { endsAt: 'splice' });
    assert.equal(ended(), 1);
    assert.equal(tracker.released, 'splice');
  });

  it('newkeys: ends when both sides have sent NEWKEYS, not before', async (t) => {
    const { ended, client, backend } = track(t, { endsAt: 'newkeys' });
    client.receive(Buffer.concat([KEXINIT, NEWKEYS]));
    await flush();
    assert.equal(ended(), 0, 'one side is not enough');
    backend.receive(NEWKEYS);
    await flush();
    assert.equal(ended(), 1);
  });

  it('newkeys+grace: ends the grace period after both NEWKEYS', async (t) => {
    const { ended, client, backend } = track(t, { endsAt: 'newkeys+grace' });
    await bothNewKeys(client, backend);
    t.mock.timers.tick(999);
    assert.equal(ended(), 0);
    t.mock.timers.tick(1);
    assert.equal(ended(), 1);
  });

  it('auth: ends at the server\'s authFlights-th reply after NEWKEYS; client bytes between replies make each a flight', async (t) => {
    const { ended, client, backend, tracker } = track(t, { authFlights: 3 });
    await bothNewKeys(client, backend);
    for (let flight = 1; flight <= 3; flight += 1) {
      client.receive(ENCRYPTED);
      await flush();
      backend.receive(ENCRYPTED);
      // Two server chunks in a row are one flight.
      backend.receive(ENCRYPTED);
      await flush();
      assert.equal(ended(), flight === 3 ? 1 : 0, `after flight ${flight}`);
    }
    t.mock.timers.tick(60_000);
    assert.equal(ended(), 1, 'ends exactly once');
    assert.equal(tracker.released, 'auth');
  });

  it('auth: a login slower than the grace period is released at the grace period', async (t) => {
    const { ended, client, backend } = track(t);
    await bothNewKeys(client, backend);
    client.receive(ENCRYPTED);
    await flush();
    backend.receive(ENCRYPTED);
    await flush();
    assert.equal(ended(), 0);
    t.mock.timers.tick(1000);
    assert.equal(ended(), 1);
  });

  it('a stream that is not cleartext SSH framing ends after the grace period', async (t) => {
    const { ended, backend } = track(t);
    backend.receive(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
    await flush();
    t.mock.timers.tick(999);
    assert.equal(ended(), 0);
    t.mock.timers.tick(1);
    assert.equal(ended(), 1);
  });

  it('maxHold bounds a handshake that never shows NEWKEYS', (t) => {
    const { ended, tracker } = track(t, { maxHoldMs: 5000 });
    t.mock.timers.tick(4999);
    assert.equal(ended(), 0);
    t.mock.timers.tick(1);
    assert.equal(ended(), 1);
    assert.equal(tracker.released, 'maxHold');
  });

  it('records grace when the auth replies do not come in time', async (t) => {
    const { client, backend, tracker } = track(t);
    await bothNewKeys(client, backend);
    t.mock.timers.tick(1000);
    assert.equal(tracker.released, 'grace');
    tracker.stop('client-gone');
    assert.equal(tracker.released, 'grace', 'a finished handshake keeps its reason');
  });

  it('records unreadable for a stream that is not SSH framing', async (t) => {
    const { backend, tracker } = track(t);
    backend.receive(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
    await flush();
    t.mock.timers.tick(1000);
    assert.equal(tracker.released, 'unreadable');
  });

  it('records which side left when the session ends before the handshake', (t) => {
    const { tracker } = track(t);
    tracker.stop('server-gone');
    assert.equal(tracker.released, 'server-gone');
  });

  it('stop() ends nothing and leaves no timer', async (t) => {
    const { ended, tracker, client, backend } = track(t, { maxHoldMs: 5000 });
    tracker.stop();
    await bothNewKeys(client, backend);
    t.mock.timers.tick(60_000);
    assert.equal(ended(), 0);
    assert.equal(client.listenerCount('data'), 1, 'the tracker detached from the client');
    assert.equal(backend.listenerCount('data'), 1, 'the tracker detached from the backend');
  });
});

/** A real KEXINIT offering one cipher and MAC each way, so the tracker knows the packet sizes. */
function kexinitOffering(cipher: string, mac: string): Buffer {
  return packet(
    encodeKexInit({
      kexAlgorithms: ['curve25519-sha256'],
      serverHostKeyAlgorithms: ['ssh-ed25519'],
      ciphersClientToServer: [cipher],
      ciphersServerToClient: [cipher],
      macsClientToServer: [mac],
      macsServerToClient: [mac],
      compressionClientToServer: ['none'],
      compressionServerToClient: ['none'],
      languagesClientToServer: [],
      languagesServerToClient: [],
      firstKexPacketFollows: false,
    }),
  );
}

/** Server flights of one chunk each, every one answering a client flight, as measured from sshd (docs/penalties.md). */
async function converse(client: FakeSocket, backend: FakeSocket, serverFlights: readonly number[]): Promise<void> {
  for (const bytes of serverFlights) {
    client.receive(ENCRYPTED);
    await flush();
    backend.receive(Buffer.alloc(bytes, 0xcd));
    await flush();
  }
}

describe('HandshakeTracker: USERAUTH_SUCCESS by packet size, and the authentication outcome', () => {
  /** Both sides past NEWKEYS, having offered `cipher` and `mac`: the tracker knows the packet sizes. */
  function trackSized(t: TestContext, options: Partial<HandshakeTrackerOptions> = {}, cipher = 'chacha20-poly1305@openssh.com', mac = 'hmac-sha2-256') {
    const offer = kexinitOffering(cipher, mac);
    return track(t, options, { serverRest: Buffer.concat([offer, NEWKEYS]), clientBuffered: [CLIENT_IDENT, offer, NEWKEYS] });
  }

  it('OpenSSH, two wrong keys then the right one (chacha20-poly1305): released after the 28-byte SUCCESS, not at the 4th reply', async (t) => {
    const { ended, client, backend, tracker } = trackSized(t);
    // SERVICE_ACCEPT, FAILURE (none), FAILURE, FAILURE, PK_OK: five replies, none the smallest packet.
    await converse(client, backend, [44, 76, 76, 76, 100]);
    assert.equal(ended(), 0, 'wrong keys are not the end of authentication');
    assert.equal(tracker.outcome, 'authfail', 'so far: the server refused requests');
    await converse(client, backend, [28]);
    assert.equal(tracker.outcome, 'ok');
    assert.equal(ended(), 0, "sshd's listener learns of the login only after SUCCESS went out");
    // The post-authentication process answers the client's next request (CHANNEL_OPEN).
    await converse(client, backend, [248]);
    assert.equal(ended(), 1);
    assert.equal(tracker.released, 'auth');
    assert.equal(tracker.outcome, 'ok');
    await converse(client, backend, [28, 76]);
    tracker.stop();
    assert.equal(tracker.outcome, 'ok', 'a success stays a success');
  });

  it('paramiko (aes128-ctr + hmac-sha2-256): SUCCESS is 48 bytes', async (t) => {
    const { client, backend, tracker } = trackSized(t, {}, 'aes128-ctr', 'hmac-sha2-256');
    await converse(client, backend, [64, 96]);
    assert.equal(tracker.released, undefined);
    await converse(client, backend, [48]);
    assert.equal(tracker.released, undefined);
    // A client that asks for nothing more: held while sshd may still be handing over (a starved
    // sshd took longer than 250 ms), released as a success when the grace period after NEWKEYS ends.
    t.mock.timers.tick(250);
    assert.equal(tracker.released, undefined);
    t.mock.timers.tick(750);
    assert.equal(tracker.released, 'auth');
    assert.equal(tracker.outcome, 'ok');
  });

  it('the client gives up after failures: authfail; the slot went at the grace period', async (t) => {
    const { ended, client, backend, tracker } = trackSized(t);
    await converse(client, backend, [44, 76, 76]);
    t.mock.timers.tick(1000);
    assert.equal(ended(), 1);
    assert.equal(tracker.released, 'grace');
    tracker.stop('client-gone');
    assert.equal(tracker.outcome, 'authfail');
  });

  it('the client leaves after the service request: noauth', async (t) => {
    const { client, backend, tracker } = trackSized(t);
    await converse(client, backend, [44]);
    tracker.stop('client-gone');
    assert.equal(tracker.outcome, 'noauth');
    assert.equal(tracker.released, 'client-gone');
  });

  it('the client leaves before NEWKEYS: noauth', (t) => {
    const { tracker } = track(t);
    tracker.stop('client-gone');
    assert.equal(tracker.outcome, 'noauth');
  });

  it('no success within maxHold: grace-exceeded, and the slot is released', async (t) => {
    const { client, backend, tracker } = trackSized(t, { maxHoldMs: 5000 });
    await converse(client, backend, [44, 76]);
    t.mock.timers.tick(5000);
    assert.equal(tracker.outcome, 'grace-exceeded');
    // Later bytes change nothing: the watch is over.
    await converse(client, backend, [28]);
    assert.equal(tracker.outcome, 'grace-exceeded');
  });

  it('algorithms whose sizes are not known: authFlights releases the slot, the outcome is unknown (never charged)', async (t) => {
    const { client, backend, tracker } = trackSized(t, { authFlights: 2, maxHoldMs: 5000 }, 'twofish-ctr', 'hmac-sha2-256');
    await converse(client, backend, [44, 28]);
    assert.equal(tracker.released, 'auth');
    t.mock.timers.tick(5000);
    tracker.stop();
    assert.equal(tracker.outcome, 'unknown');
  });

  it('SUCCESS read together with the host-key announcement that follows: recognised once learnt from a session where they came apart', async (t) => {
    const shapes = new SuccessShapes();
    const first = trackSized(t, { successShapes: shapes });
    await converse(first.client, first.backend, [44, 76, 100, 28, 412]);
    assert.equal(first.tracker.released, 'auth');
    // Another session on the same server, under load: SUCCESS (28) + host keys (412) in one read.
    t.mock.timers.reset();
    const second = trackSized(t, { successShapes: shapes });
    await converse(second.client, second.backend, [44, 76, 100, 440]);
    assert.equal(second.tracker.outcome, 'ok');
    assert.equal(second.tracker.released, 'auth', 'the post-authentication process already spoke');
  });

  it('a session whose client spoke last after an answer was most likely a success not seen: unknown, never charged', async (t) => {
    const { client, backend, tracker } = trackSized(t);
    await converse(client, backend, [44, 76, 436, 44, 76]);
    client.receive(ENCRYPTED);
    await flush();
    tracker.stop('client-gone');
    assert.equal(tracker.outcome, 'unknown');
  });

  it('SUCCESS read together with the host-key announcement, never seen apart: a flight of two packets past the first answer is the success (chacha20: every packet is 4 mod 8 bytes)', async (t) => {
    const { ended, client, backend, tracker } = trackSized(t);
    // SERVICE_ACCEPT, FAILURE (none), PK_OK, then SUCCESS + host keys (28 + 412) in one read.
    await converse(client, backend, [44, 76, 100, 440]);
    assert.equal(tracker.outcome, 'ok');
    assert.equal(ended(), 1, 'the post-authentication process already spoke');
    tracker.stop('client-gone');
    assert.equal(tracker.outcome, 'ok', 'not charged: the client spoke last, but the login succeeded');
  });

  it('a first answer of two packets (SUCCESS + host keys, or a BANNER + FAILURE) cannot be told apart: unknown, never charged', async (t) => {
    const paramiko = trackSized(t);
    // paramiko signs at once: SERVICE_ACCEPT, then SUCCESS + host keys; then the session's channel traffic.
    await converse(paramiko.client, paramiko.backend, [44, 440, 52, 60]);
    paramiko.tracker.stop('client-gone');
    assert.equal(paramiko.tracker.outcome, 'unknown');
    t.mock.timers.reset();
    const bannered = trackSized(t);
    // A Banner with the FAILURE to `none`, then wrong keys refused one packet at a time.
    await converse(bannered.client, bannered.backend, [44, 200, 76, 76]);
    bannered.tracker.stop('server-gone');
    assert.equal(bannered.tracker.outcome, 'unknown', 'the lesser error: a bad client behind a banner goes uncharged here (sshd still counts it)');
  });

  it('SUCCESS alone, then the host keys before the client speaks again: the slot goes at that flight, and its shape is learnt', async (t) => {
    const shapes = new SuccessShapes();
    const { ended, client, backend, tracker } = trackSized(t, { successShapes: shapes });
    await converse(client, backend, [44, 76, 100, 28]);
    assert.equal(ended(), 0);
    backend.receive(Buffer.alloc(412, 0xcd));
    await flush();
    assert.equal(ended(), 1, 'without waiting for the settle timer');
    assert.equal(tracker.released, 'auth');
    assert.equal(shapes.isCoalescedSuccess(28, 440), true);
  });

  it('endsAt splice: the slot goes at once, the outcome is still watched', async (t) => {
    const { client, backend, tracker } = trackSized(t, { endsAt: 'splice' });
    assert.equal(tracker.released, 'splice');
    await converse(client, backend, [44, 76, 28]);
    assert.equal(tracker.outcome, 'ok');
  });
});
