import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Socket } from 'node:net';
import { SilenceWatch } from '../../src/proxy/client-silence.js';

/** The watch keys on the socket only; it reads nothing of it (bytes are no answer, a whole line is). */
const fakeSocket = (): Socket => ({ bytesRead: 10 }) as unknown as Socket;

describe('SilenceWatch', () => {
  it('tells a client that is still watched at its limit it is silent, once; bytes read do not count as an answer', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    let clock = 0;
    const watch = new SilenceWatch(() => clock);
    const verdicts: string[] = [];
    const trickler = fakeSocket();
    const answered = fakeSocket();
    watch.watch(trickler, 1000, () => verdicts.push('trickler silent'));
    watch.watch(answered, 1000, () => verdicts.push('answered silent'));
    (trickler as unknown as { bytesRead: number }).bytesRead += 1;
    clock = 250;
    t.mock.timers.tick(250);
    assert.deepEqual(verdicts, []);
    watch.unwatch(answered);
    clock = 1000;
    t.mock.timers.tick(750);
    assert.deepEqual(verdicts, ['trickler silent']);
    clock = 5000;
    t.mock.timers.tick(4000);
    assert.equal(verdicts.length, 1, 'each verdict once');
    assert.equal(watch.size, 0);
  });

  it('limit 0 is never silent and is not even kept', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    let clock = 0;
    const watch = new SilenceWatch(() => clock);
    const verdicts: string[] = [];
    watch.watch(fakeSocket(), 0, () => verdicts.push('patient silent'));
    assert.equal(watch.size, 0);
    clock = 60_000;
    t.mock.timers.tick(60_000);
    assert.deepEqual(verdicts, []);
  });
});
