import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MIN_HEALTHY_UPTIME_MS, RestartPolicy } from '../../src/cluster/restart-policy.js';

describe('RestartPolicy', () => {
  it('replaces a worker that ran a while at once, and one that died at start after a growing backoff', () => {
    const policy = new RestartPolicy();
    assert.deepEqual(policy.decide(MIN_HEALTHY_UPTIME_MS, 1), { action: 'restart', delayMs: 0 });
    const delays = [1, 2, 3, 4, 5, 6, 7].map(() => policy.decide(100, 1));
    assert.deepEqual(delays.map((decision) => (decision.action === 'restart' ? decision.delayMs : -1)), [500, 1000, 2000, 4000, 8000, 16000, 30000]);
  });

  it('gives up only when starts keep failing and no worker is alive', () => {
    const policy = new RestartPolicy();
    for (let index = 0; index < 5; index += 1) assert.equal(policy.decide(10, 0).action, 'restart');
    assert.deepEqual(policy.decide(10, 0), { action: 'give-up', failedStarts: 6 });
    const withSurvivor = new RestartPolicy();
    for (let index = 0; index < 20; index += 1) assert.equal(withSurvivor.decide(10, 1).action, 'restart', 'a healthy worker keeps the proxy up');
  });

  it('a worker that lived resets the count of failed starts', () => {
    const policy = new RestartPolicy();
    for (let index = 0; index < 5; index += 1) policy.decide(10, 0);
    policy.decide(60_000, 0);
    assert.equal(policy.decide(10, 0).action, 'restart');
  });
});
