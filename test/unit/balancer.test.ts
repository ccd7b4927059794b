import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LeastConnBalancer, RoundRobinBalancer, SourceHashBalancer } from '../../src/backend/balancer.js';
import type { BackendServer } from '../../src/backend/server.js';
import { makePool } from '../fixtures/proxy/pool-helpers.js';

const serversOf = (specs: { name: string; weight?: number }[]): BackendServer[] => makePool(specs).pool.servers;

const countPicks = (pick: () => BackendServer | undefined, times: number): Map<string, number> => {
  const counts = new Map<string, number>();
  for (let index = 0; index < times; index += 1) {
    const server = pick();
    assert.ok(server);
    counts.set(server.name, (counts.get(server.name) ?? 0) + 1);
  }
  return counts;
};

describe('RoundRobinBalancer (smooth weighted)', () => {
  it('matches weights 1:2:5 over 1,000 picks within 1%', () => {
    const servers = serversOf([{ name: 'a', weight: 1 }, { name: 'b', weight: 2 }, { name: 'c', weight: 5 }]);
    const balancer = new RoundRobinBalancer();
    const counts = countPicks(() => balancer.pick(servers), 1000);
    assert.ok(Math.abs((counts.get('a') ?? 0) - 125) <= 10, `a: ${counts.get('a')}`);
    assert.ok(Math.abs((counts.get('b') ?? 0) - 250) <= 10, `b: ${counts.get('b')}`);
    assert.ok(Math.abs((counts.get('c') ?? 0) - 625) <= 10, `c: ${counts.get('c')}`);
  });

  it('spreads turns instead of bursting: weight 5 of 6 never gets 6 in a row', () => {
    const servers = serversOf([{ name: 'a', weight: 1 }, { name: 'b', weight: 5 }]);
    const balancer = new RoundRobinBalancer();
    const sequence = Array.from({ length: 60 }, () => balancer.pick(servers)?.name).join('');
    assert.doesNotMatch(sequence, /b{6}/);
    assert.equal(sequence.split('a').length - 1, 10);
  });

  it('alternates equal servers', () => {
    const servers = serversOf([{ name: 'a' }, { name: 'b' }]);
    const balancer = new RoundRobinBalancer();
    assert.equal(Array.from({ length: 6 }, () => balancer.pick(servers)?.name).join(''), 'ababab');
  });
});

describe('LeastConnBalancer', () => {
  it('picks the server with the fewest active sessions per weight', () => {
    const [a, b, c] = serversOf([{ name: 'a' }, { name: 'b', weight: 2 }, { name: 'c' }]) as [BackendServer, BackendServer, BackendServer];
    const sessions = (server: BackendServer, count: number): void => void Array.from({ length: count }, () => server.takeSession());
    sessions(a, 3);
    sessions(b, 4); // 2 per weight unit
    sessions(c, 5);
    assert.equal(new LeastConnBalancer().pick([a, b, c])?.name, 'b');
  });

  it('shares ties between equal servers', () => {
    const servers = serversOf([{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
    const balancer = new LeastConnBalancer();
    const counts = countPicks(() => balancer.pick(servers), 300);
    for (const name of ['a', 'b', 'c']) assert.equal(counts.get(name), 100);
  });
});

describe('SourceHashBalancer (weighted rendezvous)', () => {
  it('keeps a client on one server', () => {
    const servers = serversOf([{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
    const balancer = new SourceHashBalancer();
    for (const client of ['10.0.0.1', '10.0.0.2', '2001:db8::7']) {
      const first = balancer.pick(servers, client)?.name;
      for (let index = 0; index < 20; index += 1) assert.equal(balancer.pick(servers, client)?.name, first);
    }
  });

  it('moves only the clients of a server that leaves, and spreads them by weight', () => {
    const servers = serversOf([{ name: 'a' }, { name: 'b' }, { name: 'c' }, { name: 'd', weight: 3 }]);
    const balancer = new SourceHashBalancer();
    const clients = Array.from({ length: 1200 }, (_, index) => `10.1.${index >> 8}.${index & 255}`);
    const before = new Map(clients.map((client) => [client, balancer.pick(servers, client)?.name]));
    const counts = new Map<string, number>();
    for (const name of before.values()) counts.set(name ?? '', (counts.get(name ?? '') ?? 0) + 1);
    // Weight 3 of 6: about half the clients.
    assert.ok(Math.abs((counts.get('d') ?? 0) - 600) < 80, `d: ${counts.get('d')}`);
    const without = servers.filter((server) => server.name !== 'b');
    let moved = 0;
    for (const client of clients) {
      const after = balancer.pick(without, client)?.name;
      if (before.get(client) === 'b') assert.notEqual(after, 'b');
      else if (after !== before.get(client)) moved += 1;
    }
    assert.equal(moved, 0, 'clients of the remaining servers kept their server');
  });
});
