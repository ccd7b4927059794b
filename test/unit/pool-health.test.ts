import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelayMs, ConnectRateLimiter, planNextAttempt } from '../../src/backend/retry-policy.js';
import type { Lease } from '../../src/backend/pool.js';
import type { BackendServer } from '../../src/backend/server.js';
import type { ProxyEventMap } from '../../src/events/bus.js';
import { acquire, makePool } from '../fixtures/proxy/pool-helpers.js';

type StateChange = ProxyEventMap['server-state'][0];
const noExclusions = { clientKey: 'c', exclude: new Set<BackendServer>() };
const names = (servers: readonly BackendServer[]): string[] => servers.map((server) => server.name);

describe('BackendPool health states', () => {
  it('prefers UP primaries, then UP backups, then (whenAllDown: try) everything not draining', () => {
    const { pool } = makePool([{ name: 'p1' }, { name: 'p2' }, { name: 'b1', backup: true }]);
    const [p1, p2, b1] = pool.servers as [BackendServer, BackendServer, BackendServer];
    assert.deepEqual(names(pool.candidates(noExclusions)), ['p1', 'p2']);
    pool.setHealth(p1, 'DOWN', 'check:CONNECT_REFUSED');
    assert.deepEqual(names(pool.candidates(noExclusions)), ['p2']);
    pool.setHealth(p2, 'DOWN', 'check:CONNECT_REFUSED');
    assert.deepEqual(names(pool.candidates(noExclusions)), ['b1'], 'backup only when no primary is UP');
    pool.setHealth(b1, 'DOWN', 'check:BANNER_TIMEOUT');
    assert.deepEqual(names(pool.candidates(noExclusions)), ['p1', 'p2', 'b1'], 'all DOWN: try them anyway');
    pool.setDraining(p2, true, 'reload');
    assert.deepEqual(names(pool.candidates(noExclusions)), ['p1', 'b1']);
  });

  it('whenAllDown: refuse answers NO_BACKEND at once', () => {
    const { pool } = makePool([{ name: 'a' }], { whenAllDown: 'refuse' });
    pool.setHealth(pool.servers[0] as BackendServer, 'DOWN', 'check:CONNECT_REFUSED');
    let code: string | undefined;
    acquire(pool, noExclusions, (result) => {
      code = result.ok ? 'ok' : result.code;
    });
    assert.equal(code, 'NO_BACKEND');
  });

  it('emits server-state on visible changes only; DRAINING hides health changes and undraining shows them', () => {
    const { pool, events } = makePool([{ name: 'a' }]);
    const server = pool.servers[0] as BackendServer;
    const changes: StateChange[] = [];
    events.on('server-state', (change) => changes.push(change));
    pool.setHealth(server, 'UP', 'check:ok'); // no change
    pool.setDraining(server, true, 'reload');
    pool.setHealth(server, 'DOWN', 'check:CONNECT_REFUSED'); // still DRAINING
    assert.equal(server.state, 'DRAINING');
    pool.setDraining(server, false, 'reload');
    assert.deepEqual(
      changes.map((change) => `${change.from}>${change.to}:${change.reason}`),
      ['UP>DRAINING:reload', 'DRAINING>DOWN:reload'],
    );
    assert.equal(server.stateReason, 'reload');
  });

  it('passive health: consecutive failed attempts mark a server DOWN; a success in between resets the count', () => {
    const { pool, events } = makePool([{ name: 'a' }, { name: 'b' }], { passiveHealth: { consecutiveFailures: 3 }, healthCheck: { enabled: true } });
    const [a] = pool.servers as [BackendServer];
    const changes: StateChange[] = [];
    events.on('server-state', (change) => changes.push(change));
    pool.reportAttempt(a, 'BANNER_TIMEOUT');
    pool.reportAttempt(a, 'THROTTLED');
    pool.reportAttempt(a, undefined);
    pool.reportAttempt(a, 'BACKEND_RESET');
    pool.reportAttempt(a, 'BACKEND_RESET');
    assert.equal(a.state, 'UP');
    pool.reportAttempt(a, 'BACKEND_RESET');
    assert.equal(a.state, 'DOWN');
    assert.deepEqual(changes, [{ pool: 'main', server: 'a', from: 'UP', to: 'DOWN', reason: 'passive:BACKEND_RESET' }]);
    pool.close();
  });

  it('throttling is full, not down: a throttle, or a close at accept while others are in flight, holds the server for a backoff and never counts', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { pool, events } = makePool([{ name: 'a', maxStartups: 4 }], { passiveHealth: { consecutiveFailures: 2 }, retry: { backoff: '100ms', maxBackoff: '400ms' } });
    const [a] = pool.servers as [BackendServer];
    const changes: StateChange[] = [];
    events.on('server-state', (change) => changes.push(change));
    for (let index = 0; index < 5; index += 1) pool.reportAttempt(a, 'THROTTLED');
    assert.equal(a.state, 'UP', "sshd's throttle line: full");
    assert.equal(a.hasFreeSlot, false, 'held: no new handshake for a moment');
    t.mock.timers.tick(399);
    assert.equal(a.hasFreeSlot, false, 'the fifth refusal in a row: the hold doubled up to retry.maxBackoff');
    t.mock.timers.tick(1);
    assert.equal(a.hasFreeSlot, true);
    // A close at accept while another handshake of the proxy is in flight there: full too.
    const leases: Lease[] = [];
    acquire(pool, noExclusions, (result) => result.ok && leases.push(result.lease));
    pool.reportAttempt(a, 'BACKEND_CLOSED');
    pool.reportAttempt(a, 'BACKEND_RESET');
    assert.equal(a.state, 'UP');
    for (const lease of leases) lease.close();
    t.mock.timers.tick(400);
    // Alone, a close at accept is a broken server: it counts.
    pool.reportAttempt(a, 'BACKEND_RESET');
    pool.reportAttempt(a, 'BACKEND_RESET');
    assert.equal(a.state, 'DOWN');
    assert.deepEqual(changes.map((change) => change.reason), ['passive:BACKEND_RESET']);
    pool.close();
  });

  it('a server that closes every connection at accept is full only for 16 in a row: then passive health hears of it', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { pool } = makePool([{ name: 'a', maxStartups: 4 }], { passiveHealth: { consecutiveFailures: 2 } });
    const [a] = pool.servers as [BackendServer];
    const leases: Lease[] = [];
    acquire(pool, noExclusions, (result) => result.ok && leases.push(result.lease));
    for (let index = 0; index < 16; index += 1) pool.reportAttempt(a, 'BACKEND_CLOSED');
    assert.equal(a.state, 'UP');
    pool.reportAttempt(a, 'BACKEND_CLOSED');
    pool.reportAttempt(a, 'BACKEND_CLOSED');
    assert.equal(a.state, 'DOWN');
    for (const lease of leases) lease.close();
    pool.close();
  });

  it('passive DOWN without active checks expires after one interval', async () => {
    const { pool, events } = makePool([{ name: 'a' }], { passiveHealth: { consecutiveFailures: 1 }, healthCheck: { enabled: false, interval: 100 } });
    const server = pool.servers[0] as BackendServer;
    const back = new Promise<StateChange>((resolve) => events.on('server-state', (change) => change.to === 'UP' && resolve(change)));
    pool.reportAttempt(server, 'CONNECT_REFUSED');
    assert.equal(server.state, 'DOWN');
    assert.equal((await back).reason, 'passive:expired');
    pool.close();
  });

  it('a server coming back UP serves the queue (whenAllDown: refuse)', () => {
    const { pool } = makePool([{ name: 'a', maxStartups: 1 }, { name: 'b', maxStartups: 1 }], { whenAllDown: 'refuse' });
    const [a, b] = pool.servers as [BackendServer, BackendServer];
    pool.setHealth(b, 'DOWN', 'check:CONNECT_REFUSED');
    const got: string[] = [];
    acquire(pool, noExclusions, (result) => got.push(result.ok ? result.lease.server.name : result.code));
    acquire(pool, noExclusions, (result) => got.push(result.ok ? result.lease.server.name : result.code));
    assert.deepEqual(got, ['a']);
    pool.setHealth(b, 'UP', 'check:ok');
    assert.deepEqual(got, ['a', 'b']);
    assert.equal(a.handshakesActive + b.handshakesActive, 2);
  });
});

describe('retry policy', () => {
  const servers = makePool([{ name: 'a' }, { name: 'b' }, { name: 'c' }]).pool.servers as [BackendServer, BackendServer, BackendServer];
  const [a, b, c] = servers;
  const base = {
    retries: 2,
    maxAttempts: 6,
    backoffRounds: 0,
    backoff: { backoff: 100, maxBackoff: 1000 },
    random: () => 0.5,
    hasCandidate: (exclude: ReadonlySet<BackendServer>) => servers.some((server) => !exclude.has(server)),
  };

  it('fails over to an untried server at once, then retries transient failures after a backoff', () => {
    const first = planNextAttempt({ ...base, attempts: 1, hardFailed: new Set<BackendServer>(), transientFailed: new Set([a]) });
    assert.equal(first.kind, 'next');
    const allTried = planNextAttempt({ ...base, attempts: 3, hardFailed: new Set([b]), transientFailed: new Set([a, c]) });
    assert.equal(allTried.kind, 'retry');
    assert.ok(allTried.kind === 'retry' && allTried.exclude.has(b) && !allTried.exclude.has(a));
    assert.ok(allTried.kind === 'retry' && allTried.delayMs === 75);
  });

  it('gives up when only hard failures are left, when retries are spent, and at maxAttempts', () => {
    assert.equal(planNextAttempt({ ...base, attempts: 3, hardFailed: new Set([a, b, c]), transientFailed: new Set<BackendServer>() }).kind, 'exhausted');
    assert.equal(planNextAttempt({ ...base, retries: 1, attempts: 2, hardFailed: new Set([a]), transientFailed: new Set([b]) }).kind, 'exhausted');
    assert.equal(planNextAttempt({ ...base, attempts: 6, hardFailed: new Set<BackendServer>(), transientFailed: new Set([a, b, c]) }).kind, 'exhausted');
  });

  it('backoff doubles per round, is capped and jittered within [d/2, d]', () => {
    const settings = { backoff: 100, maxBackoff: 1000 };
    assert.equal(backoffDelayMs(0, settings, () => 1), 100);
    assert.equal(backoffDelayMs(2, settings, () => 1), 400);
    assert.equal(backoffDelayMs(10, settings, () => 1), 1000);
    assert.equal(backoffDelayMs(10, settings, () => 0), 500);
  });

  it('rate limiter: a second of burst, then the rate', () => {
    let now = 0;
    const limiter = new ConnectRateLimiter(10, () => now);
    for (let index = 0; index < 10; index += 1) assert.equal(limiter.tryTake(), true);
    assert.equal(limiter.tryTake(), false);
    assert.equal(limiter.msUntilNext(), 100);
    now = 100;
    assert.equal(limiter.tryTake(), true);
    assert.equal(new ConnectRateLimiter(0).tryTake(), true);
  });
});

describe('local resource errors', () => {
  it('EMFILE, ENFILE and EADDRNOTAVAIL are the proxy\'s own (LOCAL_RESOURCE) and never count against a server', async () => {
    const { attemptCodeForSocketError } = await import('../../src/errors.js');
    const { recordAttemptOutcome } = await import('../../src/backend/passive-health.js');
    for (const errno of ['EMFILE', 'ENFILE', 'EADDRNOTAVAIL']) {
      assert.equal(attemptCodeForSocketError(Object.assign(new Error(errno), { code: errno }), false), 'LOCAL_RESOURCE');
    }
    const { pool } = makePool([{ name: 'a' }], { passiveHealth: { consecutiveFailures: 1 } });
    const server = pool.servers[0];
    assert.ok(server);
    for (let index = 0; index < 5; index += 1) pool.reportAttempt(server, 'LOCAL_RESOURCE');
    assert.equal(server.health, 'UP');
    assert.equal(server.consecutiveFailures, 0);
    assert.equal(recordAttemptOutcome(server, 'CONNECT_REFUSED', 1), true, 'a real failure still counts');
  });
});
