import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LearnedCapacity } from '../../src/backend/learned-capacity.js';

const SETTINGS = { start: 2, ceiling: 10, probeInterval: 1000 };

function learner(): { capacity: LearnedCapacity; advance: (ms: number) => void } {
  let now = 0;
  return { capacity: new LearnedCapacity(SETTINGS, () => now), advance: (ms) => (now += ms) };
}

describe('LearnedCapacity', () => {
  it('starts at `start` and rises by one per handshake through while every slot is in use', () => {
    const { capacity } = learner();
    assert.equal(capacity.limit, 2);
    assert.equal(capacity.succeeded(1), undefined, 'a server not used to its limit says nothing of a higher one');
    assert.equal(capacity.succeeded(2), 'raised');
    assert.equal(capacity.succeeded(3), 'raised');
    assert.equal(capacity.limit, 4);
  });

  it('drops below the level refused, remembers it, and climbs back to it at once', () => {
    const { capacity } = learner();
    for (let inFlight = 2; inFlight < 7; inFlight += 1) capacity.succeeded(inFlight);
    assert.equal(capacity.limit, 7);
    assert.equal(capacity.refused(5), 'lowered');
    assert.equal(capacity.limit, 4);
    assert.equal(capacity.known, 4);
    assert.equal(capacity.refused(6), undefined, 'a refusal above the limit lowers nothing');
    assert.equal(capacity.known, 4, 'and raises nothing: it is older news');
  });

  it('past the known level, probes one slot per probeInterval, and keeps a probe that holds', () => {
    const { capacity, advance } = learner();
    capacity.refused(5);
    assert.equal(capacity.limit, 2);
    assert.equal(capacity.succeeded(2), 'raised', 'below the known level it climbs at once');
    assert.equal(capacity.succeeded(3), 'raised');
    assert.equal(capacity.limit, 4);
    assert.equal(capacity.succeeded(4), undefined, 'at the known level, within the interval of the refusal: no probe');
    advance(1000);
    assert.equal(capacity.succeeded(4), 'probed');
    assert.equal(capacity.limit, 5);
    assert.equal(capacity.succeeded(5), undefined, 'one probe per interval');
    assert.equal(capacity.known, 5, 'the probe held: 5 is known good');
    advance(1000);
    assert.equal(capacity.succeeded(5), 'probed');
    assert.equal(capacity.limit, 6);
  });

  it('never goes above the ceiling nor below one, and adopts another replica\'s limit within them', () => {
    const { capacity } = learner();
    for (let inFlight = 2; inFlight < 20; inFlight += 1) capacity.succeeded(inFlight);
    assert.equal(capacity.limit, 10);
    capacity.refused(1);
    assert.equal(capacity.limit, 1);
    assert.equal(capacity.adopt(50), 'adopted');
    assert.equal(capacity.limit, 10);
    assert.equal(capacity.adopt(10), undefined);
    capacity.configure({ ...SETTINGS, ceiling: 6 });
    assert.equal(capacity.limit, 6, 'a lower ceiling from a reload applies at once');
  });
});
