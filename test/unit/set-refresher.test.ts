import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { SetMember } from '../../src/backend/server-spec.js';
import type { DnsLookups, LookupAnswer } from '../../src/discovery/lookup.js';
import { srvMembers } from '../../src/discovery/lookup.js';
import { SetRefresher, type LookupReport } from '../../src/discovery/set-refresher.js';

const SETTINGS = { resolvers: [], timeout: 100, attempts: 1, refresh: { min: 1000, max: 30_000 }, hold: 60_000, holdNx: 10_000, family: 'any' as const };
const member = (address: string): SetMember => ({ label: address, address, port: 22 });
const ok = (addresses: string[], ttlMs?: number): LookupAnswer => ({ kind: 'ok', members: addresses.map(member), ttlMs });

function setup(t: TestContext, answers: LookupAnswer[]) {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let now = 0;
  const applied: string[][] = [];
  const reports: LookupReport[] = [];
  const lookups = { lookup: () => Promise.resolve(answers.shift() ?? ok([])), cancel: () => {} } as unknown as DnsLookups;
  const refresher = new SetRefresher({
    target: { kind: 'address', name: 'fleet.test', port: 22 },
    maxServers: 2,
    settings: SETTINGS,
    lookups,
    apply: (members) => applied.push(members.map((entry) => entry.address)),
    report: (report) => reports.push(report),
    now: () => now,
  });
  t.after(() => refresher.stop());
  /** Moves time on and lets the lookup it starts settle. */
  const tick = async (ms: number): Promise<void> => {
    now += ms;
    t.mock.timers.tick(ms);
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { refresher, applied, reports, tick };
}

describe('SetRefresher', () => {
  it('applies the first answer, then only changes, looked up again after the TTL within bounds', async (t) => {
    const { refresher, applied, tick } = setup(t, [ok(['10.0.0.1'], 5000), ok(['10.0.0.1'], 5000), ok(['10.0.0.1', '10.0.0.2'], 100)]);
    await refresher.start();
    assert.deepEqual(applied, [['10.0.0.1']]);
    await tick(4999);
    assert.equal(applied.length, 1);
    await tick(1);
    assert.deepEqual(applied, [['10.0.0.1']], 'the same answer changes nothing');
    await tick(5000);
    assert.deepEqual(applied.at(-1), ['10.0.0.1', '10.0.0.2']);
  });

  it('keeps the last good set through failures for `hold`, then empties it', async (t) => {
    const failed: LookupAnswer = { kind: 'failed', code: 'ETIMEOUT', message: 'timeout' };
    const { refresher, applied, reports, tick } = setup(t, [ok(['10.0.0.1'], 30_000), ...Array.from({ length: 20 }, () => failed)]);
    await refresher.start();
    await tick(30_000);
    assert.equal(reports.at(-1)?.kept, true);
    assert.equal(applied.length, 1, 'kept');
    // Retries back off from refresh.min, doubling, up to refresh.max; past 60 s of hold the set empties.
    for (let elapsed = 0; elapsed < 70_000; elapsed += 1000) await tick(1000);
    assert.deepEqual(applied.at(-1), []);
    assert.equal(reports.at(-1)?.kept, false);
  });

  it('keeps it through NXDOMAIN for `holdNx`, counted from the first such answer', async (t) => {
    const nx: LookupAnswer = { kind: 'nx', code: 'ENOTFOUND', message: 'no such name' };
    const { refresher, applied, tick } = setup(t, [ok(['10.0.0.1'], 1000), ...Array.from({ length: 40 }, () => nx)]);
    await refresher.start();
    await tick(1000);
    assert.equal(applied.length, 1);
    for (let elapsed = 0; elapsed < 9000; elapsed += 1000) await tick(1000);
    assert.equal(applied.length, 1, 'still held at 9 s');
    for (let elapsed = 0; elapsed < 20_000 && applied.length === 1; elapsed += 1000) await tick(1000);
    assert.deepEqual(applied.at(-1), [], 'emptied once holdNx has passed');
  });

  it('keeps at most maxServers and reports how many were left out', async (t) => {
    const { refresher, applied, reports } = setup(t, [ok(['10.0.0.1', '10.0.0.2', '10.0.0.3'])]);
    await refresher.start();
    assert.deepEqual(applied, [['10.0.0.1', '10.0.0.2']]);
    assert.equal(reports[0]?.leftOut, 1);
  });
});

describe('srvMembers', () => {
  it('names members after the target\'s first label, the whole target where two share it, with port or address where needed', () => {
    const members = srvMembers([
      { target: 'sshd-0.sshd.ns.svc.cluster.local', port: 22, addresses: ['10.0.0.1'] },
      { target: 'sshd-1.sshd.ns.svc.cluster.local', port: 22, addresses: ['10.0.0.2'] },
      { target: 'web.a.example', port: 2222, addresses: ['10.0.1.1'] },
      { target: 'web.b.example', port: 2222, addresses: ['10.0.1.2', '10.0.1.3'] },
      { target: 'multi.example', port: 22, addresses: ['10.0.2.1'] },
      { target: 'multi.example', port: 2022, addresses: ['10.0.2.1'] },
    ]);
    assert.deepEqual(
      members.map((entry) => `${entry.label} ${entry.address}:${entry.port}`),
      [
        'multi:2022 10.0.2.1:2022',
        'multi:22 10.0.2.1:22',
        'sshd-0 10.0.0.1:22',
        'sshd-1 10.0.0.2:22',
        'web.a.example 10.0.1.1:2222',
        'web.b.example@10.0.1.2 10.0.1.2:2222',
        'web.b.example@10.0.1.3 10.0.1.3:2222',
      ],
    );
  });
});
