import type { Ticket } from '../../src/ticket.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AcquireResult, Lease } from '../../src/backend/pool.js';
import { acquire, makePool, served } from '../fixtures/proxy/pool-helpers.js';

const request = (clientKey = '10.0.0.1') => ({ clientKey, exclude: new Set<never>() });

/** Acquires and returns the result once the callback fires (at once or later). */
const acquired = (pool: ReturnType<typeof makePool>['pool'], clientKey?: string): Promise<AcquireResult> =>
  new Promise((resolve) => {
    acquire(pool, request(clientKey), resolve);
  });

const leaseOf = (result: AcquireResult): Lease => {
  assert.ok(result.ok, result.ok ? '' : result.code);
  return result.lease;
};

describe('BackendPool handshake slots and queue', () => {
  it('never has more than maxStartups handshakes on a server; 20 requests are served as slots free, in FIFO order', async () => {
    const { pool } = makePool([{ name: 'a' }, { name: 'b' }], { handshake: { maxStartups: 2 } });
    const granted: number[] = [];
    const leases: Lease[] = [];
    let peak = 0;
    for (let index = 0; index < 20; index += 1) {
      acquire(pool, request(), (result) => {
        const lease = leaseOf(result);
        granted.push(index);
        leases.push(lease);
        for (const server of pool.servers) peak = Math.max(peak, server.handshakesActive);
      });
    }
    assert.deepEqual(granted, [0, 1, 2, 3]);
    assert.equal(pool.queueLength, 16);
    // Free slots one at a time, oldest lease first: each frees exactly the next queued request.
    for (let released = 0; released < 16; released += 1) {
      leases[released]?.releaseSlot();
      assert.equal(granted.length, 5 + released);
    }
    assert.deepEqual(granted, Array.from({ length: 20 }, (_, index) => index));
    assert.equal(peak, 2);
    for (const server of pool.servers) assert.ok(server.handshakesActive <= 2);
    // Sessions stay counted after their handshake slot is freed, until close().
    assert.equal(pool.servers.reduce((sum, server) => sum + server.activeSessions, 0), 20);
    for (const lease of leases) lease.close();
    assert.equal(pool.servers.reduce((sum, server) => sum + server.activeSessions + server.handshakesActive, 0), 0);
  });

  it('long sessions do not block the queue: the slot frees at handshake end, not at close', async () => {
    const { pool } = makePool([{ name: 'a', maxStartups: 1 }]);
    const first = leaseOf(await acquired(pool));
    const second = acquired(pool);
    assert.equal(pool.queueLength, 1);
    first.releaseSlot(); // handshake over; the session itself keeps running
    const lease = leaseOf(await second);
    assert.equal(lease.server.activeSessions, 2);
    first.close();
    lease.close();
  });

  it('close() and releaseSlot() are idempotent', async () => {
    const { pool } = makePool([{ name: 'a', maxStartups: 3 }]);
    const lease = leaseOf(await acquired(pool));
    lease.releaseSlot();
    lease.releaseSlot();
    lease.close();
    lease.close();
    assert.equal(lease.server.handshakesActive, 0);
    assert.equal(lease.server.activeSessions, 0);
  });

  it('rejects with QUEUE_FULL past queue.maxLength, at once', async () => {
    const { pool } = makePool([{ name: 'a', maxStartups: 1 }], { queue: { maxLength: 2, timeout: '5s' } });
    const held = leaseOf(await acquired(pool));
    const handles = [acquire(pool, request(), () => {}), acquire(pool, request(), () => {})];
    const rejected = await acquired(pool);
    assert.equal(rejected.ok, false);
    assert.equal(!rejected.ok && rejected.code, 'QUEUE_FULL');
    assert.equal(pool.queueLength, 2);
    for (const handle of handles) handle.cancel();
    held.close();
  });

  it('times a queued request out with QUEUE_TIMEOUT after queue.timeout and emits queue-wait', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { pool, events } = makePool([{ name: 'a', maxStartups: 1 }], { queue: { timeout: 150 } });
    const waits: { granted: boolean; waitMs: number }[] = [];
    events.on('queue-wait', (wait) => waits.push(wait));
    const held = leaseOf(await acquired(pool));
    let settled = false;
    const pending = acquired(pool).then((outcome) => {
      settled = true;
      return outcome;
    });
    t.mock.timers.tick(149);
    await Promise.resolve();
    assert.equal(settled, false, 'still queued before queue.timeout');
    t.mock.timers.tick(1);
    const result = await pending;
    assert.equal(!result.ok && result.code, 'QUEUE_TIMEOUT');
    assert.equal(pool.queueLength, 0);
    assert.deepEqual(waits.map((wait) => wait.granted), [false]);
    held.close();
  });

  it('a cancelled waiter is skipped and its timer cleared', async () => {
    const { pool } = makePool([{ name: 'a', maxStartups: 1 }], { queue: { timeout: 100 } });
    const held = leaseOf(await acquired(pool));
    let called = false;
    acquire(pool, request(), () => {
      called = true;
    }).cancel();
    const next = acquired(pool);
    held.releaseSlot();
    leaseOf(await next).close();
    assert.equal(called, false);
    held.close();
  });

  it('serves a later waiter when the head of the queue cannot use the freed server', async () => {
    const { pool } = makePool([{ name: 'a', maxStartups: 1 }, { name: 'b', maxStartups: 1 }]);
    const [a, b] = pool.servers as [NonNullable<(typeof pool.servers)[0]>, NonNullable<(typeof pool.servers)[0]>];
    const leaseA = leaseOf(await acquired(pool));
    const leaseB = leaseOf(await acquired(pool));
    const order: string[] = [];
    acquire(pool, { clientKey: 'x', exclude: new Set([leaseA.server]) }, (result) => order.push(`excludes-${leaseA.server.name}:${leaseOf(result).server.name}`));
    acquire(pool, request(), (result) => order.push(`any:${leaseOf(result).server.name}`));
    leaseA.releaseSlot();
    assert.deepEqual(order, [`any:${leaseA.server.name}`]);
    leaseB.releaseSlot();
    assert.deepEqual(order, [`any:${leaseA.server.name}`, `excludes-${leaseA.server.name}:${leaseB.server.name}`]);
    assert.ok(a.handshakesActive <= 1 && b.handshakesActive <= 1);
  });

  it('source balancing is sticky under load: waits for the hashed server instead of moving the client', async () => {
    const { pool } = makePool([{ name: 'a', maxStartups: 1 }, { name: 'b', maxStartups: 1 }], { balance: 'source' });
    const first = leaseOf(await acquired(pool, '192.0.2.10'));
    const second = acquired(pool, '192.0.2.10');
    assert.equal(pool.queueLength, 1, 'queued although the other server has a free slot');
    first.releaseSlot();
    assert.equal(leaseOf(await second).server, first.server);
  });

  it('health-check slots count against maxStartups', async () => {
    const { pool } = makePool([{ name: 'a', maxStartups: 2 }]);
    const server = pool.servers[0];
    assert.ok(server);
    const checkSlot = (): Ticket | undefined => {
      let taken: Ticket | undefined;
      pool.takeCheckSlot(server, (slot) => (taken = slot));
      return taken;
    };
    const slot = checkSlot();
    assert.ok(slot);
    const lease = leaseOf(await acquired(pool));
    assert.equal(checkSlot(), undefined, 'no slot left for a second check');
    const queued = acquired(pool);
    slot.release();
    leaseOf(await queued).close();
    lease.close();
  });

  it('paces grants with retry.maxConnectRate: the burst at once, then one every 50 ms at 20/s', async (t) => {
    // The pool's one clock and the timers move together, by hand: no wall time is measured.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let clock = 1000;
    const advance = (ms: number): void => {
      clock += ms;
      t.mock.timers.tick(ms);
    };
    const { pool } = makePool([{ name: 'a', maxStartups: 100 }], { retry: { maxConnectRate: 20 } }, () => clock);
    const leases: Lease[] = [];
    for (let index = 0; index < 30; index += 1) acquire(pool, request(), (result) => leases.push(leaseOf(result)));
    await served();
    assert.equal(leases.length, 20, 'one second\'s burst is granted at once');
    assert.equal(pool.queueLength, 10);
    advance(49);
    assert.equal(leases.length, 20, 'no token before 50 ms');
    advance(1);
    assert.equal(leases.length, 21, 'one token at 50 ms');
    for (let step = 0; step < 9; step += 1) advance(50);
    assert.equal(leases.length, 30, 'the last at 500 ms');
    assert.equal(pool.queueLength, 0);
    for (const lease of leases) lease.close();
  });

  it('rejectQueued answers SHUTDOWN', async () => {
    const { pool } = makePool([{ name: 'a', maxStartups: 1 }]);
    const held = leaseOf(await acquired(pool));
    const queued = acquired(pool);
    pool.close();
    const result = await queued;
    assert.equal(!result.ok && result.code, 'SHUTDOWN');
    held.close();
  });
});

describe('silent clients', () => {
  it('a full queue drops its oldest silent waiter for a newcomer; identified waiters keep their place', async () => {
    const { pool } = makePool([{ name: 'a', maxStartups: 1 }], { queue: { maxLength: 2 } });
    const held = leaseOf(await acquired(pool));
    const results: string[] = [];
    const silentRequest = { clientKey: 'silent', exclude: new Set<never>(), identified: false };
    const spokeRequest = { clientKey: 'spoke', exclude: new Set<never>(), identified: true };
    acquire(pool, spokeRequest, (result) => results.push(`spoke:${result.ok ? 'ok' : result.code}`));
    acquire(pool, silentRequest, (result) => results.push(`silent:${result.ok ? 'ok' : result.code}`));
    acquire(pool, spokeRequest, (result) => results.push(`late:${result.ok ? 'ok' : result.code}`));
    assert.deepEqual(results, ['silent:QUEUE_FULL'], 'the silent waiter made room');
    assert.equal(pool.queueLength, 2);
    held.close();
    assert.deepEqual(results, ['silent:QUEUE_FULL', 'spoke:ok']);
  });

  it('silent clients get at most handshake.silentShare of the slots; a client that spoke takes the rest', async () => {
    const { pool } = makePool([{ name: 'a', maxStartups: 4 }], { handshake: { silentShare: 0.5 } });
    const granted: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      acquire(pool, { clientKey: `s${index}`, exclude: new Set(), identified: false }, (result) => result.ok && granted.push(`s${index}`));
    }
    await served();
    assert.deepEqual(granted, ['s0', 's1']);
    assert.equal(pool.servers[0]?.silentHandshakes, 2);
    acquire(pool, { clientKey: 'x', exclude: new Set(), identified: true }, (result) => result.ok && granted.push('x'));
    await served();
    assert.deepEqual(granted, ['s0', 's1', 'x'], 'served past the silent waiter at the head of the queue');
    assert.equal(pool.queueLength, 1);
  });
});
