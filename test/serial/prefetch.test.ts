/**
 * Banner prefetch against a real sshd whose banner takes 2 s (a delay relay in front
 * of it): time-to-banner through the proxy, full ssh sessions, refill after a burst,
 * and connection lifetimes under maxAge as the backend side sees them.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import pino from 'pino';
import { PREFETCH_IDENTIFICATION } from '../../src/backend/prefetch.js';
import type { BackendServer } from '../../src/backend/server.js';
import { validateConfig } from '../../src/config/load.js';
import type { ProxyEventMap } from '../../src/events/bus.js';
import { ProxyRuntime } from '../../src/runtime.js';
import { paramikoAvailable, runParamiko, runSsh, sshClientAvailable } from '../fixtures/clients/clients.js';
import { startDelayRelay } from '../fixtures/backends/delay-relay.js';
import { rawExchange } from '../fixtures/clients/raw-client.js';
import { sshdAvailable, startSshd, sshdVersions } from '../fixtures/sshd/sshd.js';
import { waitFor, waitUntilEvent } from '../fixtures/wait.js';

const skip = !sshdAvailable() || !paramikoAvailable() || !sshClientAvailable() ? 'needs sshd, ssh and paramiko' : false;

type PrefetchEvent = ProxyEventMap['prefetch'][0];

interface Harness {
  readonly runtime: ProxyRuntime;
  readonly port: number;
  readonly server: BackendServer;
  readonly prefetch: PrefetchEvent[];
  ready(): number;
  waitForReady(count: number, timeoutMs: number): Promise<void>;
  waitForPrefetch(predicate: (events: readonly PrefetchEvent[]) => boolean, timeoutMs: number, what: string): Promise<void>;
}

async function startHarness(t: TestContext, backendPort: number, pool: Record<string, unknown>, timeouts: Record<string, unknown> = {}): Promise<Harness> {
  const config = validateConfig(
    {
      listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
      pools: [{ name: 'main', healthCheck: { enabled: false }, ...pool, servers: [{ name: 'slow', address: `127.0.0.1:${backendPort}` }] }],
      timeouts,
      log: { level: 'silent' },
      // Waves of banner-only connections from loopback: penalties would refuse them (docs/penalties.md).
      penalties: 'off',
    },
    'test',
  );
  const runtime = new ProxyRuntime(config, { logger: pino({ level: 'silent' }) });
  const prefetch: PrefetchEvent[] = [];
  runtime.events.on('prefetch', (event) => prefetch.push(event));
  await runtime.start();
  t.after(() => runtime.stop(0));
  const mainPool = runtime.server.pools.get('main');
  const server = mainPool?.servers[0];
  assert.ok(mainPool && server, 'pool main with one server');
  const ready = (): number => mainPool.prefetchReady(server);
  return {
    runtime,
    port: runtime.port('ssh'),
    server,
    prefetch,
    ready,
    waitForReady: (count, timeoutMs) => waitUntilEvent(runtime.events, 'prefetch', () => ready() >= count, timeoutMs, `${count} prefetched connections ready`),
    waitForPrefetch: (predicate, timeoutMs, what) => waitUntilEvent(runtime.events, 'prefetch', () => predicate(prefetch), timeoutMs, what),
  };
}

const untilIdent = (data: Buffer): boolean => /(^|\n)SSH-[^\n]*\n/.test(data.toString('latin1'));

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

const count = (events: readonly PrefetchEvent[], outcome: PrefetchEvent['outcome']): number => events.filter((event) => event.outcome === outcome).length;

// Sequential: the time-to-banner figures should not share the event loop with another test's sshd start-up.
describe('banner prefetch', { skip }, () => {
  for (const version of sshdVersions()) it(`a server whose banner takes 2 s: time-to-banner p50 far below the server's 2 s over 50 sessions, refill after a burst, full ssh sessions (OpenSSH ${version === 9 ? '9.2' : '10.0'})`, async (t) => {
    const sshd = await startSshd({ maxStartups: '100', version });
    t.after(() => sshd.stop());
    const relay = await startDelayRelay({ host: sshd.host, port: sshd.port, delayMs: 2000 });
    t.after(() => relay.close());
    const perServer = 25;
    const harness = await startHarness(t, relay.port, { prefetch: { perServer, maxAge: '60s' }, handshake: { maxStartups: 40 } }, { banner: '5s' });

    const direct = await rawExchange({ port: relay.port, send: 'SSH-2.0-timing\r\n', until: untilIdent, timeoutMs: 5000 });
    assert.equal(direct.outcome, 'matched');
    assert.ok(direct.elapsedMs >= 1900, `straight to the server the banner takes ${Math.round(direct.elapsedMs)} ms`);

    await harness.waitForReady(perServer, 10_000);
    assert.equal(harness.server.handshakesActive, perServer, 'each prefetched connection holds a handshake slot');

    const wave = async (): Promise<number[]> => {
      const times: number[] = [];
      for (let index = 0; index < perServer; index += 1) {
        const result = await rawExchange({ port: harness.port, send: 'SSH-2.0-timing\r\n', until: untilIdent, timeoutMs: 5000 });
        assert.equal(result.outcome, 'matched');
        assert.match(result.data.toString('latin1'), /^SSH-2\.0-OpenSSH/);
        times.push(result.elapsedMs);
      }
      return times;
    };
    const first = await wave();
    assert.ok(harness.ready() < perServer, 'the burst used the prefetched connections');
    const refillStarted = performance.now();
    await harness.waitForReady(perServer, 8000);
    const refillMs = performance.now() - refillStarted;
    const second = await wave();
    const all = [...first, ...second];
    const p50 = percentile(all, 50);
    t.diagnostic(
      `time-to-banner over ${all.length} sessions: p50 ${p50.toFixed(2)} ms, p90 ${percentile(all, 90).toFixed(2)} ms, max ${Math.max(...all).toFixed(2)} ms; direct ${Math.round(direct.elapsedMs)} ms; refill of ${perServer} after the burst ${Math.round(refillMs)} ms`,
    );
    // An order, not a wall-clock bound: half the clients got their banner at least 50 times
    // sooner than the server gives one (2 s); the measured figures are in the diagnostic.
    assert.ok(p50 * 50 < direct.elapsedMs, `p50 ${p50} ms vs ${direct.elapsedMs} ms direct`);
    assert.ok(count(harness.prefetch, 'hit') >= 50, `${count(harness.prefetch, 'hit')} hits`);

    // Full sessions on prefetched connections, both clients.
    await harness.waitForReady(perServer, 8000);
    const target = { host: '127.0.0.1', port: harness.port, user: sshd.user, identityFile: sshd.identityFile, timeoutMs: 20_000 };
    const hitsBefore = count(harness.prefetch, 'hit');
    const attempts: { prefetched?: boolean; bannerMs?: number }[] = [];
    harness.runtime.events.on('attempt', (attempt) => attempts.push(attempt));
    const results = await Promise.all([
      runSsh({ ...target, command: 'echo ssh-1' }),
      runSsh({ ...target, command: 'echo ssh-2' }),
      runSsh({ ...target, command: 'echo ssh-3' }),
      runParamiko({ ...target, command: 'echo paramiko-1' }),
      runParamiko({ ...target, command: 'echo paramiko-2' }),
    ]);
    const outputs = results.map((result) => ('code' in result ? result.stdout : result.ok ? result.stdout : `paramiko failed: ${result.message}`));
    assert.deepEqual(outputs, ['ssh-1\n', 'ssh-2\n', 'ssh-3\n', 'paramiko-1\n', 'paramiko-2\n']);
    assert.equal(count(harness.prefetch, 'hit') - hitsBefore, 5, 'all five were spliced to prefetched connections');
    assert.equal(count(harness.prefetch, 'discarded'), 0);
    // A hit waited for no banner: its latency is the client's (0), not the prefetched connection's 800 ms.
    const hits = attempts.filter((attempt) => attempt.prefetched === true);
    assert.equal(hits.length, 5);
    assert.ok(hits.every((attempt) => attempt.bannerMs === 0), `banner latency recorded for hits: ${hits.map((attempt) => attempt.bannerMs).join(', ')}`);

    const metrics = await harness.runtime.metrics.scrape();
    assert.match(metrics, new RegExp(`^sshproxy_prefetch_sessions_total\\{pool="main",result="hit"\\} ${count(harness.prefetch, 'hit')}$`, 'm'));
    assert.match(metrics, /^sshproxy_prefetch_ready\{pool="main",server="slow"\} \d+$/m);
  });

  it('no prefetched connection lives past maxAge (relay-side lifetimes); retired with our identification; none left at stop', async (t) => {
    const sshd = await startSshd({ maxStartups: '100' });
    t.after(() => sshd.stop());
    const relay = await startDelayRelay({ host: sshd.host, port: sshd.port, delayMs: 800 });
    t.after(() => relay.close());
    const maxAgeMs = 3000;
    const harness = await startHarness(t, relay.port, { prefetch: { perServer: 3, maxAge: `${maxAgeMs}ms` } }, { banner: '5s' });
    // Three generations retired by age, with a couple of sessions taking connections meanwhile.
    await harness.waitForReady(3, 5000);
    for (const _ of [1, 2]) {
      const result = await rawExchange({ port: harness.port, send: 'SSH-2.0-age-check\r\n', until: untilIdent, timeoutMs: 5000 });
      assert.equal(result.outcome, 'matched');
    }
    await harness.waitForPrefetch((events) => events.filter((event) => event.outcome === 'retired' && event.reason === 'MAX_AGE').length >= 9, 20_000, '9 retirements by age');
    await harness.runtime.stop(0);
    await waitUntilEvent(relay, 'ended', () => relay.open === 0, 5000, 'every relay connection ended');

    const now = performance.now();
    const ages = relay.connections.map((connection) => ({
      // A prefetched connection is "in use" from the first client byte on (a session's, or our retiring identification).
      ageMs: (connection.firstClientByteAt ?? connection.endedAt ?? now) - connection.acceptedAt,
      first: connection.firstClientBytes.toString('latin1'),
    }));
    const retiredByUs = ages.filter((age) => age.first === PREFETCH_IDENTIFICATION.toString('latin1'));
    t.diagnostic(`${ages.length} backend connections, ${retiredByUs.length} retired with our identification; oldest ${Math.round(Math.max(...ages.map((a) => a.ageMs)))} ms (maxAge ${maxAgeMs} ms)`);
    t.diagnostic(`first client bytes: ${JSON.stringify(ages.map((age) => age.first))}; prefetch events: ${JSON.stringify(harness.prefetch.map((event) => `${event.outcome}${event.reason ? `:${event.reason}` : ''}@${Math.round(event.ageMs ?? 0)}`))}`);
    for (const age of ages) assert.ok(age.ageMs < maxAgeMs, `a connection reached ${Math.round(age.ageMs)} ms (first bytes ${JSON.stringify(age.first)})`);
    assert.ok(retiredByUs.length >= 9, `${retiredByUs.length} retired with our identification; first bytes: ${JSON.stringify(ages.map((age) => age.first))}; events: ${JSON.stringify(harness.prefetch.map((event) => `${event.outcome}${event.reason ? `:${event.reason}` : ''}@${Math.round(event.ageMs ?? 0)}`))}`);
    assert.equal(count(harness.prefetch, 'discarded'), 0);
    // Retired connections give their slot back once sshd has closed its side (no event for that: poll, bounded).
    await waitFor(() => harness.server.handshakesActive === 0, { timeoutMs: 3000, description: 'every handshake slot released' });
    const log = await sshd.readLog();
    assert.doesNotMatch(log, /did not receive identification string/, 'retired connections identified themselves');
  });

  it('bytes after the identification: kept byte-exact when they frame as SSH packets; discarded when invalid or closed by the server', async (t) => {
    // Connection n of this server: 1 sends identification + a KEXINIT-shaped packet; 2 sends garbage after it; 3 closes after 300 ms; then all like 1.
    const ident = Buffer.from('SSH-2.0-KexFirst_1.0\r\n', 'latin1');
    const payload = Buffer.concat([Buffer.from([20]), Buffer.alloc(16, 7), Buffer.from('kex-ish payload')]);
    const padding = 8 - ((payload.length + 5) % 8) + 8;
    const packet = Buffer.alloc(4 + 1 + payload.length + padding);
    packet.writeUInt32BE(1 + payload.length + padding, 0);
    packet[4] = padding;
    payload.copy(packet, 5);
    let accepted = 0;
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      accepted += 1;
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
      if (accepted === 2) socket.write(Buffer.concat([ident, Buffer.from('this is not an ssh packet at all\r\n')]));
      else if (accepted === 3) {
        socket.write(ident);
        setTimeout(() => socket.destroy(), 300);
      } else socket.write(Buffer.concat([ident, packet]));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.after(() => {
      for (const socket of sockets) socket.destroy();
      server.close();
    });
    const harness = await startHarness(t, (server.address() as net.AddressInfo).port, { prefetch: { perServer: 3, maxAge: '30s' } });
    await harness.waitForPrefetch((events) => count(events, 'discarded') >= 2 && harness.ready() >= 3, 10_000, 'two discards and three ready');
    const reasons = harness.prefetch.filter((event) => event.outcome === 'discarded').map((event) => event.reason).sort();
    assert.deepEqual(reasons, ['BACKEND_CLOSED', 'INVALID_DATA']);
    const result = await rawExchange({ port: harness.port, until: (data) => data.length >= ident.length + packet.length, timeoutMs: 3000 });
    assert.equal(result.outcome, 'matched');
    assert.ok(result.data.equals(Buffer.concat([ident, packet])), 'identification and the packet after it, byte-exact');
    assert.equal(count(harness.prefetch, 'hit'), 1);
  });
});
