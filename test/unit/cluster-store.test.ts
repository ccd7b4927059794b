import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AcquireResult, Lease } from '../../src/backend/pool.js';
import type { BackendServer } from '../../src/backend/server.js';
import type { SlotAuthority, SlotMode, SlotVerdict } from '../../src/backend/slot-authority.js';
import { effectiveConfig } from '../../src/config/effective.js';
import { parseConfigText } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { SourcePenalties } from '../../src/proxy/penalties.js';
import { SourceLimits } from '../../src/proxy/source-limits.js';
import { redactedUrl } from '../../src/store/cluster-store.js';
import { reconnectDelayMs } from '../../src/store/store-connection.js';
import { CountedTicket, ticket, type Ticket } from '../../src/ticket.js';
import { acquire, makePool, served } from '../fixtures/proxy/pool-helpers.js';

/** A store whose answers the test gives, one take at a time. */
class ScriptedAuthority implements SlotAuthority {
  mode: SlotMode = 'shared';
  localShare = 0.5;
  epoch = 0;
  readonly pending: { server: BackendServer; waitMs: number; done: (verdict: SlotVerdict) => void }[] = [];
  readonly given: string[] = [];
  unwaited = 0;

  take(server: BackendServer, waitMs: number, done: (verdict: SlotVerdict) => void): void {
    this.pending.push({ server, waitMs, done });
  }

  give(server: BackendServer): void {
    this.given.push(server.name);
  }

  noWaiters(): void {
    this.unwaited += 1;
  }

  answer(verdict: SlotVerdict): void {
    const next = this.pending.shift();
    assert.ok(next, 'a take is pending');
    next.done(verdict);
  }
}

const request = { clientKey: '10.0.0.1', exclude: new Set<never>() };

function shared(maxStartups = 2): { pool: ReturnType<typeof makePool>['pool']; authority: ScriptedAuthority; results: AcquireResult[] } {
  const { pool } = makePool([{ name: 'a' }], { handshake: { maxStartups } });
  const authority = new ScriptedAuthority();
  pool.attachSlotAuthority(authority);
  return { pool, authority, results: [] };
}

const leaseOf = (result: AcquireResult | undefined): Lease => {
  assert.ok(result?.ok, result && !result.ok ? result.code : 'no result');
  return result.lease;
};

describe('pool with a shared store (SlotAuthority)', () => {
  it('grants only once the store says yes, and gives the slot back to it when released', async () => {
    const { pool, authority, results } = shared();
    acquire(pool, request, (result) => results.push(result));
    await served();
    assert.equal(results.length, 0, 'not granted before the store answers');
    assert.equal(authority.pending.length, 1);
    assert.equal(pool.servers[0]?.handshakesActive, 1, 'the local slot is held meanwhile');
    authority.answer('granted');
    const lease = leaseOf(results[0]);
    assert.equal(authority.unwaited, 1, 'the queue emptied: no place kept in the store');
    lease.releaseSlot();
    assert.deepEqual(authority.given, ['a']);
    lease.close();
    assert.deepEqual(authority.given, ['a'], 'given once');
  });

  it('"full": the local slot goes back, the server is full until a slot is freed, and the waiter is granted then', async () => {
    const { pool, authority, results } = shared();
    acquire(pool, request, (result) => results.push(result));
    await served();
    authority.answer('full');
    assert.equal(results.length, 0);
    assert.equal(pool.servers[0]?.handshakesActive, 0);
    assert.equal(pool.servers[0]?.clusterFull, true);
    assert.equal(authority.pending.length, 0, 'no new take while the server is full');
    pool.slotsFreed('127.0.0.1:20000');
    assert.equal(authority.pending.length, 1, 'asked again after the free');
    assert.ok((authority.pending[0]?.waitMs ?? -1) >= 0);
    authority.answer('granted');
    leaseOf(results[0]).close();
    assert.deepEqual(authority.given, ['a']);
  });

  it('a waiter that left while the store was asked: a late grant is given back', async () => {
    const { pool, authority, results } = shared();
    const handle = acquire(pool, request, (result) => results.push(result));
    await served();
    handle.cancel();
    authority.answer('granted');
    assert.equal(results.length, 0);
    assert.deepEqual(authority.given, ['a']);
    assert.equal(pool.servers[0]?.handshakesActive, 0);
    assert.equal(pool.servers[0]?.activeSessions, 0);
  });

  it('no answer in time: granted locally within localShare, not given back (the store never counted it)', async () => {
    const { pool, authority, results } = shared(4);
    acquire(pool, request, (result) => results.push(result));
    await served();
    authority.answer('unavailable');
    const lease = leaseOf(results[0]);
    lease.close();
    assert.deepEqual(authority.given, []);
  });

  it('no answer in time past localShare: the waiter waits for a slot', async () => {
    const { pool, authority, results } = shared(2);
    const first: AcquireResult[] = [];
    acquire(pool, request, (result) => first.push(result));
    await served();
    authority.answer('granted');
    acquire(pool, request, (result) => results.push(result));
    await served();
    authority.answer('unavailable');
    assert.equal(results.length, 0, 'one slot held already: 2 × 0.5 = 1 is used up');
    leaseOf(first[0]).close();
    authority.answer('granted');
    leaseOf(results[0]).close();
  });

  it('a slot held when the replica re-asserted its holdings (epoch) is given back even if granted locally', async () => {
    const { pool, authority, results } = shared(4);
    authority.mode = 'local';
    pool.slotModeChanged();
    acquire(pool, request, (result) => results.push(result));
    await served();
    const lease = leaseOf(results[0]);
    assert.equal(authority.pending.length, 0, 'down: decided locally at once');
    authority.epoch += 1;
    lease.close();
    assert.deepEqual(authority.given, ['a']);
  });

  it('store down: each server is capped at its local share; onStoreDown refuse fails waiting and new sessions with STORE_DOWN', async () => {
    const { pool, authority, results } = shared(4);
    authority.mode = 'local';
    pool.slotModeChanged();
    assert.equal(pool.servers[0]?.localCap, 2);
    for (let index = 0; index < 3; index += 1) acquire(pool, request, (result) => results.push(result));
    assert.equal(results.length, 2);
    assert.equal(pool.queueLength, 1);
    authority.mode = 'refuse';
    pool.slotModeChanged();
    assert.equal(results[2]?.ok, false);
    assert.equal(results[2]?.ok === false && results[2].code, 'STORE_DOWN');
    acquire(pool, request, (result) => results.push(result));
    await served();
    assert.equal(results[3]?.ok === false && results[3].code, 'STORE_DOWN');
    authority.mode = 'shared';
    pool.slotModeChanged();
    assert.equal(pool.servers[0]?.localCap, undefined);
    for (const result of results) if (result.ok) result.lease.close();
  });

  it('health-check slots come from the store too', async () => {
    const { pool, authority } = shared();
    const server = pool.servers[0] as BackendServer;
    const slots: (Ticket | undefined)[] = [];
    pool.takeCheckSlot(server, (slot) => slots.push(slot));
    assert.equal(slots.length, 0);
    authority.answer('full');
    assert.equal(slots.length, 1);
    assert.equal(slots[0], undefined);
    pool.slotsFreed();
    pool.takeCheckSlot(server, (slot) => slots.push(slot));
    authority.answer('granted');
    assert.ok(slots[1]);
  });
});

describe('cluster config', () => {
  const base = `
listeners:
  - name: ssh
    bind: 127.0.0.1:2222
    pool: main
pools:
  - name: main
    servers:
      - { name: a, address: 127.0.0.1:22 }
`;
  const problems = (cluster: string): readonly string[] => {
    try {
      parseConfigText(`${base}cluster:\n${cluster}`, 'test.yaml');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.problems;
    }
    assert.fail('accepted');
  };

  it('fills the defaults', () => {
    const config = parseConfigText(`${base}cluster:\n  store: redis://127.0.0.1:6379/0\n`, 'test.yaml');
    assert.deepEqual(config.cluster, { store: 'redis://127.0.0.1:6379/0', prefix: 'sbp:', leaseTtl: 10000, onStoreDown: 'local', acquireTimeout: 250, passwordEnv: 'SBP_STORE_PASSWORD' });
  });

  it('check-config prints it in the config file vocabulary, with the store password masked', () => {
    const config = parseConfigText(`${base}cluster:\n  store: redis://u:secret@127.0.0.1:6379/0\n  leaseTtl: 5s\n`, 'test.yaml');
    const printed = effectiveConfig(config) as { cluster: Record<string, unknown> };
    assert.equal(printed.cluster.store, 'redis://u:***@127.0.0.1:6379/0');
    assert.equal(printed.cluster.leaseTtl, '5s');
    assert.equal(printed.cluster.acquireTimeout, '250ms');
  });

  it('names the line and field of a bad store URL, share, TTL or mode', () => {
    assert.match(problems('  store: http://x:1\n')[0] ?? '', /^line 11: cluster\.store: expected redis:\/\/ or rediss:\/\/, got http:\/\//);
    assert.match(problems('  store: redis://x:1/db\n')[0] ?? '', /cluster\.store: the path must be a database number like \/0/);
    assert.match(problems('  store: not a url\n')[0] ?? '', /cluster\.store: expected a URL like redis:\/\/127\.0\.0\.1:6379\/0/);
    assert.match(problems('  store: redis://x:1\n  localShare: 0\n')[0] ?? '', /^line 12: cluster\.localShare/);
    assert.match(problems('  store: redis://x:1\n  leaseTtl: 100ms\n')[0] ?? '', /cluster\.leaseTtl: at least 1s/);
    assert.match(problems('  store: redis://x:1\n  onStoreDown: wait\n')[0] ?? '', /cluster\.onStoreDown/);
    assert.match(problems('  prefix: x\n')[0] ?? '', /cluster\.store/);
  });
});

describe('store pieces', () => {
  it('reconnects with a backoff from about 100 ms doubling to about 2 s, jittered', () => {
    assert.equal(reconnectDelayMs(1, () => 0.5), 100);
    assert.equal(reconnectDelayMs(3, () => 0.5), 400);
    assert.equal(reconnectDelayMs(50, () => 0.5), 2000);
    assert.equal(reconnectDelayMs(50, () => 0), 1500);
    assert.equal(reconnectDelayMs(50, () => 1), 2500);
  });

  it('never shows a password', () => {
    assert.equal(redactedUrl('redis://user:secret@host:6379/0'), 'redis://user:***@host:6379/0');
    assert.equal(redactedUrl('redis://host:6379/0'), 'redis://host:6379/0');
  });

  it('CountedTicket gives back once, only what the store counted', () => {
    const store = { epoch: 1 };
    const given: string[] = [];
    const uncounted = new CountedTicket(ticket(() => given.push('local-1')), () => given.push('store-1'), store);
    uncounted.release();
    const counted = new CountedTicket(ticket(() => given.push('local-2')), () => given.push('store-2'), store);
    counted.counted = true;
    counted.release();
    counted.release();
    const asserted = new CountedTicket(ticket(() => given.push('local-3')), () => given.push('store-3'), store);
    store.epoch = 2;
    asserted.release();
    assert.deepEqual(given, ['local-1', 'local-2', 'store-2', 'local-3', 'store-3']);
  });

  it('source limits scaled to a local share, and recorded without a check', () => {
    const limits = new SourceLimits({ perSourceConnections: 4, perSourceRate: 0, perSourceIpv6Prefix: 64 });
    const first = limits.admit('192.0.2.1', 0.5);
    const second = limits.admit('192.0.2.1', 0.5);
    assert.ok(first.ok && second.ok);
    assert.equal(limits.admit('192.0.2.1', 0.5).ok, false);
    const recorded = limits.record('192.0.2.1');
    assert.deepEqual([...limits.openCounts()], [['192.0.2.1', 3]]);
    recorded.release();
    first.release();
    second.release();
    assert.deepEqual([...limits.openCounts()], []);
  });

  it('adopts a penalty decided elsewhere: refused for its remaining time, reported new once', () => {
    let now = 0;
    const penalties = new SourcePenalties(parseConfigText(`listeners: [{ name: s, bind: "127.0.0.1:1", pool: p }]\npools: [{ name: p, servers: [{ name: a, address: "127.0.0.1:22" }] }]\n`, 't').penalties, () => now);
    assert.equal(penalties.adopt('192.0.2.9', 'authfail', 20_000, 4), true);
    assert.equal(penalties.adopt('192.0.2.9', 'authfail', 25_000, 5), false, 'already refused: extended, not new');
    assert.equal(penalties.check('192.0.2.9')?.remainingMs, 25_000);
    now = 25_001;
    assert.equal(penalties.check('192.0.2.9'), undefined);
  });
});
