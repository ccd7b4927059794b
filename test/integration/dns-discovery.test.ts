// DNS discovery (issue 26, docs/discovery.md): a server entry names a set in a real DNS
// server (dnsmasq on a loopback port), each address is a server of its own in front of a
// real sshd, and the set follows records added, removed and failing during the test.
import assert from 'node:assert/strict';
import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dnsmasqSkip, startDnsmasq, type DnsmasqHandle } from '../fixtures/backends/dnsmasq.js';
import { identifiedClient } from '../fixtures/clients/identified-client.js';
import { startProxy, type LogLine, type TestProxy } from '../fixtures/proxy/proxy.js';
import { connectSsh2, execSsh2 } from '../fixtures/clients/ssh2-client.js';
import { sshdAvailable, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';
import { freePort, waitFor } from '../fixtures/wait.js';

const skip = dnsmasqSkip() || (sshdAvailable() ? false : 'OpenSSH server is not installed');

/** One session through the proxy that stops at the banner; resolves with the server its log line names. */
async function oneSession(proxy: TestProxy, name: string): Promise<string> {
  const client = await identifiedClient(proxy.port, name);
  const line = await client.firstLine;
  client.socket.destroy();
  assert.match(line, /^SSH-2\.0-OpenSSH/, `${name} got an sshd banner`);
  const session = await proxy.waitForLog((entry) => entry.event === 'session' && String(entry.clientIdent).includes(name), 10_000);
  return String(session.server);
}

function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

const stateLine = (server: string, to: string) => (line: LogLine) => line.event === 'server-state' && line.server === server && line.to === to;

describe('DNS discovery: an A-record set in dnsmasq, one sshd per address', { skip }, () => {
  let dns: DnsmasqHandle;
  const sshds: SshdHandle[] = [];
  let proxy: TestProxy;
  let port = 0;

  before(async () => {
    port = await freePort();
    for (const address of ['127.0.0.1', '127.0.0.2', '127.0.0.3']) sshds.push(await startSshd({ listenAddress: address, port }));
    // One key logs in everywhere: the live session of the drain test may land on any of them.
    const key = await readFile(`${sshds[0]?.identityFile ?? ''}.pub`, 'utf8');
    for (const sshd of sshds.slice(1)) await appendFile(path.join(sshd.dir, 'authorized_keys'), key);
    dns = await startDnsmasq({ hosts: { 'fleet.test': ['127.0.0.1', '127.0.0.2'] } });
    proxy = await startProxy({
      servers: [],
      rawServers: [{ name: 'fleet', address: `fleet.test:${port}` }],
      pool: { verify: 'kexinit', balance: 'roundrobin', healthCheck: { enabled: true, interval: '300ms', timeout: '2s', rise: 1, fall: 2 } },
      config: { dns: { resolvers: [dns.resolver], timeout: '300ms', attempts: 1, refresh: { min: '200ms', max: '1s' }, hold: '1m', holdNx: '1s' } },
      logLevel: 'debug',
    });
  });
  after(async () => {
    await proxy?.stop();
    await dns?.close();
    for (const sshd of sshds) await sshd.stop();
  });

  it('each address is a server of its own, named after it, and round robin splits 10 sessions 5/5', async () => {
    const names = proxy.runtime.server.pools.get('main')?.servers.map((server) => `${server.name} ${server.address} ${server.state}`);
    assert.deepEqual(names, [`fleet/127.0.0.1 127.0.0.1:${port} UP`, `fleet/127.0.0.2 127.0.0.2:${port} UP`]);
    const servers: string[] = [];
    for (let index = 0; index < 10; index += 1) servers.push(await oneSession(proxy, `balance-${index}`));
    assert.deepEqual(countBy(servers), { 'fleet/127.0.0.1': 5, 'fleet/127.0.0.2': 5 });
  });

  it('a new address joins DOWN and takes traffic once its check passes', async (t) => {
    const changedAt = performance.now();
    const mark = proxy.logs.length;
    await dns.setHosts({ 'fleet.test': ['127.0.0.1', '127.0.0.2', '127.0.0.3'] });
    const added = await proxy.waitForLog((line) => line.event === 'dns-change' && (line.added as string[]).includes('fleet/127.0.0.3') && proxy.logs.indexOf(line) >= mark, 5000);
    assert.deepEqual(added.removed, []);
    const server = proxy.runtime.server.pools.get('main')?.servers.find((entry) => entry.name === 'fleet/127.0.0.3');
    assert.ok(server, 'the new address is a server');
    const up = await proxy.waitForLog(stateLine('fleet/127.0.0.3', 'UP'), 5000);
    assert.equal(up.from, 'DOWN', 'it joined DOWN, waiting for its check');
    const toTrafficMs = performance.now() - changedAt;
    const servers: string[] = [];
    for (let index = 0; index < 6; index += 1) servers.push(await oneSession(proxy, `joined-${index}`));
    assert.deepEqual(countBy(servers), { 'fleet/127.0.0.1': 2, 'fleet/127.0.0.2': 2, 'fleet/127.0.0.3': 2 });
    t.diagnostic(`from the record added in dnsmasq to the server UP and taking sessions: ${Math.round(toTrafficMs)} ms (TTL 1 s, refresh.min 200 ms, check interval 300 ms, rise 1)`);
  });

  it('a vanished address drains: its live session carries on, and it leaves with its metric series', async () => {
    const [first] = sshds;
    assert.ok(first);
    const connection = await connectSsh2({ host: proxy.host, port: proxy.port, user: first.user, identityFile: first.identityFile });
    try {
      const live = proxy.runtime.server.pools.get('main')?.servers.find((server) => server.activeSessions > 0);
      assert.ok(live, 'the session is on one of the servers');
      const remaining = ['127.0.0.1', '127.0.0.2', '127.0.0.3'].filter((address) => address !== live.host);
      await dns.setHosts({ 'fleet.test': remaining });
      await proxy.waitForLog(stateLine(live.name, 'DRAINING'), 5000);
      assert.equal((await execSsh2(connection.client, 'echo still-here')).stdout.trim(), 'still-here');
      for (let index = 0; index < 4; index += 1) assert.notEqual(await oneSession(proxy, `after-drain-${index}`), live.name);
      assert.match(await proxy.runtime.metrics.scrape(), new RegExp(`server="${live.name.replace(/\./g, '\\.')}"`));
      await connection.close();
      await proxy.waitForLog((line) => line.event === 'server-removed' && line.server === live.name, 5000);
      const metrics = await proxy.runtime.metrics.scrape();
      assert.doesNotMatch(metrics, new RegExp(`server="${live.name.replace(/\./g, '\\.')}"`), 'no series left for the server that left');
      const mark = proxy.logs.length;
      await dns.setHosts({ 'fleet.test': ['127.0.0.1', '127.0.0.2', '127.0.0.3'] });
      await proxy.waitForLog((line) => line.event === 'dns-change' && (line.added as string[]).includes(live.name) && proxy.logs.indexOf(line) >= mark, 5000);
      // It came back as a new server: DOWN until its check passes.
      await waitFor(() => proxy.runtime.server.pools.get('main')?.servers.every((server) => server.state === 'UP') === true, { timeoutMs: 5000, description: 'all three UP again' });
    } finally {
      await connection.close();
    }
  });

  it('a DNS outage keeps the last good set: sessions go on', async () => {
    const before = proxy.logs.length;
    dns.pause();
    try {
      await proxy.waitForLog((line) => line.event === 'dns-lookup' && line.outcome === 'failed' && line.kept === true && proxy.logs.indexOf(line) >= before, 5000);
      const servers: string[] = [];
      for (let index = 0; index < 6; index += 1) servers.push(await oneSession(proxy, `outage-${index}`));
      const states = proxy.runtime.server.pools.get('main')?.servers.map((server) => `${server.name} ${server.state} ${server.stateReason ?? ''} full=${server.heldFull} slots=${server.handshakesActive}/${server.maxStartups}`);
      assert.equal(new Set(servers).size, 3, `all three still in use: ${servers.join(', ')}; ${states?.join('; ')}`);
    } finally {
      dns.resume();
    }
  });

  it('NXDOMAIN past holdNx empties the set: its servers drain and clients get NO_BACKEND', async () => {
    const before = proxy.logs.length;
    await dns.setHosts({ 'other.test': ['127.0.0.1'] });
    const nx = await proxy.waitForLog((line) => line.event === 'dns-lookup' && line.outcome === 'nx' && line.kept === false && proxy.logs.indexOf(line) >= before, 5000);
    assert.equal(nx.code, 'ENOTFOUND');
    const pool = proxy.runtime.server.pools.get('main');
    assert.deepEqual(pool?.servers.filter((server) => server.state !== 'DRAINING').map((server) => server.name), []);
    const client = await identifiedClient(proxy.port, 'after-nx');
    assert.equal(await client.firstLine, '', 'the client is closed without a banner');
    client.socket.destroy();
    const session = await proxy.waitForLog((line) => line.event === 'session' && line.spliced === false && proxy.logs.indexOf(line) >= before, 5000);
    assert.equal(session.reason, 'NO_BACKEND', JSON.stringify(session));
    await dns.setHosts({ 'fleet.test': ['127.0.0.1', '127.0.0.2'] });
    await proxy.waitForLog(stateLine('fleet/127.0.0.1', 'UP'), 5000);
  });
});

describe('DNS discovery: SRV records name the servers after their targets', { skip }, () => {
  let dns: DnsmasqHandle;
  const sshds: SshdHandle[] = [];
  let proxy: TestProxy;

  before(async () => {
    sshds.push(await startSshd({ listenAddress: '127.0.0.1' }), await startSshd({ listenAddress: '127.0.0.2' }), await startSshd({ listenAddress: '127.0.0.3' }));
    const [a, b, c] = sshds as [SshdHandle, SshdHandle, SshdHandle];
    dns = await startDnsmasq({
      hosts: { 'sshd-0.sshd.test': ['127.0.0.1'], 'sshd-1.sshd.test': ['127.0.0.2'], 'sshd-2.sshd.test': ['127.0.0.3'] },
      srv: [
        { name: '_ssh._tcp.sshd.test', target: 'sshd-0.sshd.test', port: a.port },
        { name: '_ssh._tcp.sshd.test', target: 'sshd-1.sshd.test', port: b.port },
        { name: '_ssh._tcp.sshd.test', target: 'sshd-2.sshd.test', port: c.port },
      ],
    });
    proxy = await startProxy({
      servers: [],
      rawServers: [{ name: 'sshd', srv: '_ssh._tcp.sshd.test', maxServers: 2 }],
      pool: { verify: 'kexinit', healthCheck: { enabled: true, interval: '300ms', timeout: '2s', rise: 1 } },
      config: { dns: { resolvers: [dns.resolver], timeout: '300ms', attempts: 1, refresh: { min: '200ms', max: '1s' } } },
      logLevel: 'debug',
    });
  });
  after(async () => {
    await proxy?.stop();
    await dns?.close();
    for (const sshd of sshds) await sshd.stop();
  });

  it('targets and ports come from SRV, names from the targets; maxServers leaves the rest out, and says so', async () => {
    const [a, b] = sshds as [SshdHandle, SshdHandle];
    const servers = proxy.runtime.server.pools.get('main')?.servers.map((server) => `${server.name} ${server.address}`);
    assert.deepEqual(servers, [`sshd/sshd-0 127.0.0.1:${a.port}`, `sshd/sshd-1 127.0.0.2:${b.port}`]);
    const warning = await proxy.waitForLog((line) => line.event === 'dns-lookup' && line.leftOut === 1, 5000);
    assert.equal(warning.members, 2);
    const used = new Set<string>();
    for (let index = 0; index < 4; index += 1) used.add(await oneSession(proxy, `srv-${index}`));
    assert.deepEqual([...used].sort(), ['sshd/sshd-0', 'sshd/sshd-1']);
  });

  it('a target removed from the SRV answer drains, and the next one in line joins', async () => {
    const [, b, c] = sshds as [SshdHandle, SshdHandle, SshdHandle];
    await dns.setSrv([
      { name: '_ssh._tcp.sshd.test', target: 'sshd-1.sshd.test', port: b.port },
      { name: '_ssh._tcp.sshd.test', target: 'sshd-2.sshd.test', port: c.port },
    ]);
    const change = await proxy.waitForLog((line) => line.event === 'dns-change' && (line.removed as string[]).includes('sshd/sshd-0'), 5000);
    assert.deepEqual(change.added, ['sshd/sshd-2']);
    await proxy.waitForLog(stateLine('sshd/sshd-2', 'UP'), 5000);
    const used = new Set<string>();
    for (let index = 0; index < 4; index += 1) used.add(await oneSession(proxy, `srv-after-${index}`));
    assert.deepEqual([...used].sort(), ['sshd/sshd-1', 'sshd/sshd-2']);
  });
});

describe('DNS discovery: a plain host:port with a name is a set from the system resolver', { skip: sshdAvailable() ? false : 'OpenSSH server is not installed' }, () => {
  it('localhost:port becomes its addresses, looked up off the connection path', async () => {
    const sshd = await startSshd();
    const proxy = await startProxy({ servers: [], rawServers: [{ name: 'local', address: `localhost:${sshd.port}` }], pool: { verify: 'kexinit' }, logLevel: 'debug' });
    try {
      const servers = proxy.runtime.server.pools.get('main')?.servers ?? [];
      assert.ok(servers.some((server) => server.name === 'local/127.0.0.1' && server.host === '127.0.0.1'), servers.map((server) => server.name).join(', '));
      const lookup = await proxy.waitForLog((line) => line.event === 'dns-lookup' && line.entry === 'local', 5000);
      assert.equal(lookup.outcome, 'ok');
      // ::1 may be among them with nothing listening there: it fails over, never to the client.
      for (let index = 0; index < 2; index += 1) await oneSession(proxy, `system-${index}`);
    } finally {
      await proxy.stop();
      await sshd.stop();
    }
  });
});
