import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Socket } from 'node:net';
import { SilenceWatch } from '../../src/proxy/client-silence.js';

/** Just what the watch reads of a socket: its byte counter. */
function fakeSocket(): { socket: Socket; read: (bytes: number) => void } {
  const state = { bytesRead: 10 };
  return { socket: state as unknown as Socket, read: (bytes) => (state.bytesRead += bytes) };
}

describe('SilenceWatch', () => {
  it('tells a client that sends anything it spoke, and one that sends nothing within its limit it is silent, once each', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    let clock = 0;
    const watch = new SilenceWatch(() => clock);
    const verdicts: string[] = [];
    const talker = fakeSocket();
    const quiet = fakeSocket();
    watch.watch(talker.socket, 1000, { spoke: () => verdicts.push('talker spoke'), silent: () => verdicts.push('talker silent') });
    watch.watch(quiet.socket, 1000, { spoke: () => verdicts.push('quiet spoke'), silent: () => verdicts.push('quiet silent') });
    talker.read(30);
    clock = 250;
    t.mock.timers.tick(250);
    assert.deepEqual(verdicts, ['talker spoke']);
    clock = 1000;
    t.mock.timers.tick(750);
    assert.deepEqual(verdicts, ['talker spoke', 'quiet silent']);
    clock = 5000;
    t.mock.timers.tick(4000);
    assert.equal(verdicts.length, 2, 'each verdict once');
  });

  it('an unwatched client gets no verdict; limit 0 is never silent', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    let clock = 0;
    const watch = new SilenceWatch(() => clock);
    const verdicts: string[] = [];
    const gone = fakeSocket();
    const patient = fakeSocket();
    watch.watch(gone.socket, 100, { spoke: () => verdicts.push('gone spoke'), silent: () => verdicts.push('gone silent') });
    watch.watch(patient.socket, 0, { spoke: () => verdicts.push('patient spoke'), silent: () => verdicts.push('patient silent') });
    watch.unwatch(gone.socket);
    clock = 60_000;
    t.mock.timers.tick(60_000);
    assert.deepEqual(verdicts, []);
    patient.read(1);
    t.mock.timers.tick(250);
    assert.deepEqual(verdicts, ['patient spoke']);
  });
});
