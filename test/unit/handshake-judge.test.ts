// The handshake judge fed real sessions (test/fixtures/flights/, recorded from sshd 9.2 and
// 10.0 by scripts/record-flights.ts) and hand-made flights for what a recording cannot show.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HandshakeJudge, type HandshakeJudgeHost, type HandshakeJudgeOptions, type SlotRelease } from '../../src/protocol/handshake-judge.js';
import { encodeKexInit } from '../../src/protocol/kexinit.js';
import { SSH_MSG_KEXINIT, SSH_MSG_NEWKEYS } from '../../src/protocol/ssh-packets.js';
import { SuccessShapes } from '../../src/protocol/success-shapes.js';
import { flightRecordings, replayChunks, type FlightRecording, type ReplayChunk } from '../fixtures/flights/recording.js';
import { cleartextPacket } from '../fixtures/flights/ssh-packet.js';

/** What the judge told its host, in order. */
class RecordingHost implements HandshakeJudgeHost {
  readonly told: string[] = [];
  readonly identified: (string | undefined)[] = [];
  graceRunning = false;
  holdRunning = true;
  watching = true;

  slotReleased(how: SlotRelease): void {
    this.told.push(`released:${how}`);
    this.graceRunning = false;
  }
  clientIdentified(line: string | undefined): void {
    this.identified.push(line);
  }
  startGrace(): void {
    this.told.push('grace');
    this.graceRunning = true;
  }
  holdLifted(): void {
    this.holdRunning = false;
  }
  watchEnded(): void {
    this.told.push('watch-ended');
    this.holdRunning = false;
    this.watching = false;
  }
}

const AUTH: HandshakeJudgeOptions = { endsAt: 'auth', authFlights: 4 };

function judge(options: Partial<HandshakeJudgeOptions> = {}, clientLineKnown = false): { judge: HandshakeJudge; host: RecordingHost } {
  const host = new RecordingHost();
  return { judge: new HandshakeJudge({ ...AUTH, ...options }, host, clientLineKnown), host };
}

/** Feeds `chunks` as the proxy would: nothing once the judge's watch is over. Returns the index of the chunk at which the slot went, if it did. */
function feed(subject: { judge: HandshakeJudge; host: RecordingHost }, chunks: readonly ReplayChunk[]): number | undefined {
  let releasedAt: number | undefined;
  chunks.forEach((chunk, index) => {
    if (!subject.host.watching) return;
    subject.judge.bytes(chunk.side, chunk.bytes);
    if (releasedAt === undefined && subject.judge.released !== undefined) releasedAt = index;
  });
  return releasedAt;
}

const recordings = flightRecordings();

describe('HandshakeJudge on recorded sessions', () => {
  it('has recordings of OpenSSH 9.2 and 10.0, ssh and paramiko, logins that succeed and fail', () => {
    const names = [...recordings.keys()];
    for (const server of ['sshd9', 'sshd10']) for (const scenario of ['ssh-key', 'ssh-wrong-keys', 'paramiko-key', 'paramiko-wrong-key']) assert.ok(names.includes(`${server}-${scenario}.json`), `${server}-${scenario}`);
  });

  for (const [name, recording] of recordings) {
    it(`${name}: ${recording.client} ${recording.expected === 'ok' ? 'logs in' : 'is refused'}, and the judge says ${recording.expected}`, () => {
      const subject = judge();
      subject.judge.begin(Buffer.alloc(0), []);
      const chunks = replayChunks(recording);
      const releasedAt = feed(subject, chunks);
      assert.match(subject.host.identified[0] ?? '', /^SSH-2\.0-/, 'the client identification, read from its first bytes');
      if (recording.expected === 'ok') {
        assert.equal(subject.judge.released, 'auth', 'released by the success, before the session ended');
        assert.ok(releasedAt !== undefined && chunks[releasedAt]?.side === 'server', 'at a server flight');
        assert.equal(subject.host.watching, false, 'nothing more to read');
      } else {
        assert.equal(subject.judge.released, undefined, 'a refused login never shows the end');
        assert.equal(subject.host.graceRunning, true, 'so the grace period bounds it');
        subject.judge.graceEnded();
        assert.equal(subject.judge.released, 'grace');
      }
      subject.judge.end('server-gone');
      assert.equal(subject.judge.outcome, recording.expected);
    });
  }

  it('the slot goes at the flight after USERAUTH_SUCCESS (sshd has counted the login), never at SUCCESS itself', () => {
    const recording = recordings.get('sshd9-ssh-key.json') as FlightRecording;
    const chunks = replayChunks(recording);
    const subject = judge();
    subject.judge.begin(Buffer.alloc(0), []);
    const releasedAt = feed(subject, chunks) as number;
    // chacha20-poly1305: SUCCESS is the 28-byte packet; the next server chunk released the slot.
    const success = chunks.findIndex((chunk) => chunk.encrypted && chunk.side === 'server' && chunk.bytes.length === 28);
    assert.ok(success > 0);
    assert.ok(releasedAt > success, `released at chunk ${releasedAt}, SUCCESS was ${success}`);
    assert.equal(chunks.slice(success + 1, releasedAt).some((chunk) => chunk.side === 'server'), false, 'at the first server chunk after it');
  });

  it('a client that asks for nothing after SUCCESS: success-pending until the grace period ends, then released as a success', () => {
    const chunks = replayChunks(recordings.get('sshd10-paramiko-key.json') as FlightRecording);
    const success = chunks.findIndex((chunk) => chunk.encrypted && chunk.side === 'server' && chunk.bytes.length === 48);
    const subject = judge();
    subject.judge.begin(Buffer.alloc(0), []);
    feed(subject, chunks.slice(0, success + 1));
    assert.equal(subject.judge.phase, 'success-pending');
    assert.equal(subject.judge.outcome, 'ok');
    assert.equal(subject.host.holdRunning, false, 'the grace timer bounds it now, not the hold');
    subject.judge.graceEnded();
    assert.equal(subject.judge.released, 'auth');
  });

  it('endsAt newkeys: released when the second NEWKEYS goes by; the outcome is still judged', () => {
    const subject = judge({ endsAt: 'newkeys' });
    subject.judge.begin(Buffer.alloc(0), []);
    const chunks = replayChunks(recordings.get('sshd9-ssh-two-wrong-keys-then-right.json') as FlightRecording);
    const releasedAt = feed(subject, chunks) as number;
    assert.equal(subject.judge.released, 'newkeys');
    assert.equal(chunks[releasedAt]?.encrypted, false, 'at a cleartext chunk');
    assert.equal(chunks[releasedAt + 1]?.encrypted, true, 'the last one');
    assert.equal(subject.judge.outcome, 'ok');
  });

  it('endsAt newkeys+grace: the grace period always, even after a success seen', () => {
    const subject = judge({ endsAt: 'newkeys+grace' });
    subject.judge.begin(Buffer.alloc(0), []);
    feed(subject, replayChunks(recordings.get('sshd10-ssh-key.json') as FlightRecording));
    assert.equal(subject.judge.outcome, 'ok');
    assert.equal(subject.judge.released, undefined);
    assert.equal(subject.host.graceRunning, true);
    subject.judge.graceEnded();
    assert.equal(subject.judge.released, 'grace');
  });

  it('endsAt splice: released at once; the outcome is still judged', () => {
    const subject = judge({ endsAt: 'splice' });
    subject.judge.begin(Buffer.alloc(0), []);
    assert.equal(subject.judge.released, 'splice');
    feed(subject, replayChunks(recordings.get('sshd9-paramiko-wrong-key.json') as FlightRecording));
    assert.deepEqual(subject.host.told, ['released:splice'], 'no grace timer for a slot already gone');
    subject.judge.end('client-gone');
    assert.equal(subject.judge.outcome, 'authfail');
    assert.equal(subject.judge.released, 'splice', 'a finished handshake keeps its reason');
  });

  it('the client leaves after the service request: noauth', () => {
    const chunks = replayChunks(recordings.get('sshd9-ssh-wrong-keys.json') as FlightRecording);
    const firstEncryptedServer = chunks.findIndex((chunk) => chunk.encrypted && chunk.side === 'server');
    const subject = judge();
    subject.judge.begin(Buffer.alloc(0), []);
    feed(subject, chunks.slice(0, firstEncryptedServer + 1));
    subject.judge.end('client-gone');
    assert.equal(subject.judge.outcome, 'noauth');
    assert.equal(subject.judge.released, 'client-gone');
  });

  it('the client leaves before NEWKEYS: noauth, and which side left is recorded', () => {
    const subject = judge();
    subject.judge.begin(Buffer.alloc(0), []);
    feed(subject, replayChunks(recordings.get('sshd9-ssh-key.json') as FlightRecording).slice(0, 3));
    assert.equal(subject.judge.phase, 'watching');
    subject.judge.end('server-gone');
    assert.equal(subject.judge.outcome, 'noauth');
    assert.equal(subject.judge.released, 'server-gone');
  });

  it('a session cut short by the hold timer without a success: grace-exceeded; later bytes change nothing', () => {
    const chunks = replayChunks(recordings.get('sshd9-ssh-two-wrong-keys-then-right.json') as FlightRecording);
    const success = chunks.findIndex((chunk) => chunk.encrypted && chunk.side === 'server' && chunk.bytes.length === 28);
    const subject = judge();
    subject.judge.begin(Buffer.alloc(0), []);
    feed(subject, chunks.slice(0, success));
    subject.judge.holdExpired();
    assert.equal(subject.judge.released, 'maxHold');
    assert.equal(subject.judge.outcome, 'grace-exceeded');
    assert.equal(subject.host.watching, false);
    subject.judge.bytes('server', Buffer.alloc(28));
    assert.equal(subject.judge.outcome, 'grace-exceeded');
  });

  it('the client identification: read from its bytes once the line ends, capped at 255 bytes; not read again when known', () => {
    const trickle = judge();
    trickle.judge.begin(Buffer.alloc(0), []);
    for (const byte of Buffer.from('SSH-2.0-tric')) trickle.judge.bytes('client', Buffer.from([byte]), true);
    assert.deepEqual(trickle.host.identified, [], 'a partial line is no identification');
    trickle.judge.bytes('client', Buffer.from('kle\r\n'));
    trickle.judge.bytes('client', Buffer.from('SSH-2.0-again\r\n'));
    assert.deepEqual(trickle.host.identified, ['SSH-2.0-trickle'], 'once');
    const long = judge();
    long.judge.begin(Buffer.alloc(0), [Buffer.from(`SSH-2.0-${'x'.repeat(60_000)}\r\n`)]);
    assert.equal(long.host.identified[0]?.length, 255);
    const other = judge();
    other.judge.begin(Buffer.alloc(0), [Buffer.from('GET / HTTP/1.1\r\n')]);
    assert.deepEqual(other.host.identified, [undefined], 'not SSH-: the line ended, but it is no identification');
    const known = judge({}, true);
    known.judge.begin(Buffer.alloc(0), [Buffer.from('SSH-2.0-Known_1.0\r\n')]);
    assert.deepEqual(known.host.identified, []);
  });
});

const NEWKEYS = cleartextPacket(Buffer.from([SSH_MSG_NEWKEYS]));

/** A real KEXINIT offering one cipher and MAC each way. */
function kexinitOffering(cipher: string, mac: string): Buffer {
  const payload = encodeKexInit({
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
  });
  assert.equal(payload[0], SSH_MSG_KEXINIT);
  return cleartextPacket(payload);
}

/** A judge past both NEWKEYS with `cipher`/`mac` negotiated, then fed server flights each answering a client flight. */
function conversing(options: Partial<HandshakeJudgeOptions>, serverFlights: readonly number[], cipher = 'chacha20-poly1305@openssh.com', mac = 'hmac-sha2-256') {
  const subject = judge(options, true);
  const offer = kexinitOffering(cipher, mac);
  subject.judge.begin(Buffer.concat([offer, NEWKEYS]), [Buffer.from('SSH-2.0-Judge_1.0\r\n'), offer, NEWKEYS]);
  assert.equal(subject.judge.phase, 'flights');
  converse(subject.judge, serverFlights);
  return subject;
}

function converse(subject: HandshakeJudge, serverFlights: readonly number[]): void {
  for (const bytes of serverFlights) {
    subject.bytes('client', Buffer.alloc(64));
    subject.bytes('server', Buffer.alloc(bytes));
  }
}

describe('HandshakeJudge on flights a recording does not show', () => {
  it('algorithms whose sizes are not known: the authFlights-th server reply releases the slot; the outcome is unknown (never charged)', () => {
    const { judge: subject } = conversing({ authFlights: 3 }, [44, 76], 'twofish-ctr');
    assert.equal(subject.released, undefined);
    // Two server chunks in a row are one flight.
    subject.bytes('client', Buffer.alloc(64));
    subject.bytes('server', Buffer.alloc(28));
    subject.bytes('server', Buffer.alloc(28));
    assert.equal(subject.released, 'auth');
    subject.end('client-gone');
    assert.equal(subject.outcome, 'unknown');
  });

  it('SUCCESS read together with the host-key announcement: recognised once learnt from a session where they came apart', () => {
    const shapes = new SuccessShapes();
    const apart = conversing({ successShapes: shapes }, [44, 76, 100, 28, 412]);
    assert.equal(apart.judge.released, 'auth');
    assert.equal(shapes.isCoalescedSuccess(28, 440), true);
    // SERVICE_ACCEPT, then SUCCESS + host keys at once (paramiko signs at once): a first answer
    // of two packets is only known as a success by the shape learnt.
    const together = conversing({ successShapes: shapes }, [44, 440]);
    assert.equal(together.judge.outcome, 'ok');
    assert.equal(together.judge.released, 'auth');
  });

  it('past the first answer, a flight of several packets is the success (during authentication sshd answers with one packet)', () => {
    const { judge: subject } = conversing({}, [44, 76, 100, 440]);
    assert.equal(subject.outcome, 'ok');
    assert.equal(subject.released, 'auth');
  });

  it('a first answer of several packets (SUCCESS + host keys, or a BANNER + FAILURE) cannot be told apart: unknown, never charged', () => {
    const paramiko = conversing({}, [44, 440, 52, 60]);
    paramiko.judge.end('client-gone');
    assert.equal(paramiko.judge.outcome, 'unknown');
    const bannered = conversing({}, [44, 200, 76, 76]);
    bannered.judge.end('server-gone');
    assert.equal(bannered.judge.outcome, 'unknown', 'the lesser error: a bad client behind a banner goes uncharged here (sshd still counts it)');
    bannered.judge.holdExpired();
    assert.equal(bannered.judge.outcome, 'unknown', 'nor when the hold ends');
  });

  it('a client that spoke last after an answer was most likely past a success not seen: unknown', () => {
    const { judge: subject } = conversing({}, [44, 76, 436, 44, 76]);
    subject.bytes('client', Buffer.alloc(64));
    subject.end('client-gone');
    assert.equal(subject.outcome, 'unknown');
  });

  it('a stream that is not cleartext SSH framing: unknown, released when the grace period ends', () => {
    const subject = judge();
    subject.judge.begin(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), []);
    assert.deepEqual(subject.host.told, ['watch-ended', 'grace']);
    assert.equal(subject.judge.outcome, 'unknown');
    subject.judge.graceEnded();
    assert.equal(subject.judge.released, 'unreadable');
  });

  it('nothing is told after the session ended', () => {
    const subject = conversing({}, [44, 76]);
    subject.judge.end('client-gone');
    const told = subject.host.told.length;
    converse(subject.judge, [28, 412]);
    subject.judge.graceEnded();
    assert.equal(subject.host.told.length, told);
    assert.equal(subject.judge.released, 'client-gone');
  });
});
