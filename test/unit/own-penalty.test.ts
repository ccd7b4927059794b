import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { OwnPenaltyWatch, type OwnPenaltyEpisode } from '../../src/backend/own-penalty.js';
import { BackendServer } from '../../src/backend/server.js';
import { fixedServerSpec } from '../../src/backend/server-spec.js';

function setup(t: TestContext, maxStartups = 10) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const server = new BackendServer('main', fixedServerSpec('sshd', '127.0.0.1', 22, maxStartups));
  const log: string[] = [];
  const episodes: OwnPenaltyEpisode[] = [];
  const watch = new OwnPenaltyWatch({
    started: (episode) => {
      log.push(`started ${episode.holdMs}`);
      episodes.push(episode);
    },
    extended: (episode) => log.push(`extended ${episode.holdMs}`),
    ended: (_server, refusals) => log.push(`ended after ${refusals}`),
    holdEnded: () => log.push('hold ended'),
  }, () => Date.now());
  t.after(() => watch.clear());
  return { server, watch, log, episodes };
}

describe('OwnPenaltyWatch: a backend that penalises the proxy is held out, not hammered', () => {
  it('three refusals in a row with few slots in use open an episode: held out 15 s, doubling toward 600 s', (t) => {
    const { server, watch, log, episodes } = setup(t);
    watch.failed(server, 'THROTTLED', '10.0.0.9');
    t.mock.timers.tick(500);
    watch.failed(server, 'BACKEND_RESET', undefined);
    assert.equal(watch.isHeldOut(server), false, 'two refusals are not yet an episode');
    watch.failed(server, 'BACKEND_CLOSED', undefined);
    assert.equal(watch.isHeldOut(server), false, 'three within half a second: sshd lagging behind closed connections, perhaps');
    t.mock.timers.tick(500);
    watch.failed(server, 'BACKEND_CLOSED', undefined);
    assert.equal(watch.isHeldOut(server), true, 'still refused a second later: a penalty');
    assert.equal(episodes[0]?.proxyAddress, '10.0.0.9', 'the address to exempt');
    watch.failed(server, 'THROTTLED', undefined);
    assert.deepEqual(log, ['started 15000'], 'refusals of attempts already under way change nothing');
    assert.equal(episodes[0]?.refusals, 4);
    t.mock.timers.tick(15_000);
    assert.equal(watch.isHeldOut(server), false);
    let expected = 15_000;
    for (let round = 0; round < 7; round += 1) {
      watch.failed(server, 'THROTTLED', undefined);
      expected = Math.min(expected * 2, 600_000);
      assert.equal(log.at(-1), `extended ${expected}`);
      t.mock.timers.tick(expected);
    }
    assert.equal(expected, 600_000, 'capped at sshd max');
    watch.succeeded(server);
    assert.equal(log.at(-1), 'ended after 12');
    assert.equal(watch.isHeldOut(server), false);
  });

  it("names what it saw: sshd's line makes a penalty likely; closes and resets alone do not", (t) => {
    const { server, watch, episodes } = setup(t);
    for (let refusal = 0; refusal < 3; refusal += 1) {
      watch.failed(server, 'BACKEND_RESET', '10.0.0.9');
      t.mock.timers.tick(600);
    }
    assert.equal(episodes[0]?.withNotice, false, 'a server that resets everything is not blamed on penalties');
    watch.succeeded(server);
    for (let refusal = 0; refusal < 3; refusal += 1) {
      watch.failed(server, refusal === 1 ? 'THROTTLED' : 'BACKEND_CLOSED', '10.0.0.9');
      t.mock.timers.tick(600);
    }
    assert.equal(episodes[1]?.withNotice, true);
  });

  it('refusals while the proxy holds half its slots there or more may be its own MaxStartups excess: no episode', (t) => {
    const { server, watch } = setup(t, 4);
    server.takeSlot(() => {});
    server.takeSlot(() => {});
    for (let refusal = 0; refusal < 10; refusal += 1) {
      watch.failed(server, 'THROTTLED', undefined);
      t.mock.timers.tick(500);
    }
    assert.equal(watch.isHeldOut(server), false);
  });

  it('a success or another kind of failure between refusals breaks the streak', (t) => {
    const { server, watch } = setup(t);
    for (const code of ['THROTTLED', 'THROTTLED', 'BANNER_TIMEOUT', 'THROTTLED', 'THROTTLED'] as const) {
      watch.failed(server, code, undefined);
      t.mock.timers.tick(600);
    }
    assert.equal(watch.isHeldOut(server), false);
    watch.succeeded(server);
    watch.failed(server, 'THROTTLED', undefined);
    assert.equal(watch.isHeldOut(server), false);
  });
});
