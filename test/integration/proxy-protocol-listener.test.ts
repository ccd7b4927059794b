// PROXY protocol on a real listener: the good and bad corpora replayed over TCP
// through the proxy to a fixture backend. Good headers: the backend gets exactly
// the bytes after the header and the session is attributed to the header's
// source. Bad ones: a reason code, and the backend never gets a connection.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import pino from 'pino';
import { validateConfig } from '../../src/config/load.js';
import type { ProxyEventMap } from '../../src/events/bus.js';
import { ProxyRuntime } from '../../src/runtime.js';
import { startFixtureBackend, type FixtureBackend } from '../fixtures/backends/hostile-backends.js';
import {
  badProxyCases,
  goodProxyCases,
  incompleteProxyCases,
  SSH_CLIENT_IDENT,
  v2AddressBlock,
  v2Header,
} from '../fixtures/proxy/proxy-protocol-corpus.js';
import { delay, waitUntilEvent } from '../fixtures/wait.js';

const ECHO_IDENT = Buffer.from('SSH-2.0-EchoFixture_1.0\r\n', 'latin1');
type Rejection = ProxyEventMap['connection-rejected'][0];
type Summary = ProxyEventMap['session-closed'][0];

interface Harness {
  runtime: ProxyRuntime;
  backend: FixtureBackend;
  rejections: Rejection[];
  summaries: Summary[];
  logLines: Record<string, unknown>[];
}

async function startHarness(
  t: { after: (fn: () => Promise<void>) => void },
  options: { trusted?: string[]; acl?: { allow: string[]; deny: string[] }; timeoutMs?: number; backends?: number; balance?: string } = {},
): Promise<Harness & { backends: FixtureBackend[] }> {
  const backends: FixtureBackend[] = [];
  for (let index = 0; index < (options.backends ?? 1); index += 1) backends.push(await startFixtureBackend('ssh-echo'));
  const logLines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const proxyProtocol = (accept: string): Record<string, unknown> => ({
    accept,
    trusted: options.trusted ?? ['127.0.0.0/8'],
    timeout: options.timeoutMs ?? 3000,
  });
  const config = validateConfig(
    {
      listeners: (['v1', 'v2', 'any'] as const).map((mode) => ({
        name: mode,
        bind: '127.0.0.1:0',
        pool: 'main',
        proxyProtocol: proxyProtocol(mode),
        ...(options.acl ? { acl: options.acl } : {}),
      })),
      pools: [
        {
          name: 'main',
          balance: options.balance ?? 'roundrobin',
          // The echo fixture speaks no key exchange.
          verify: 'banner',
          healthCheck: { enabled: false },
          servers: backends.map((backend, index) => ({ name: `b${index}`, address: `127.0.0.1:${backend.port}` })),
        },
      ],
      timeouts: { connect: 1000, banner: 2000 },
      log: { level: 'info' },
    },
    'test',
  );
  const runtime = new ProxyRuntime(config, { logger: pino({ level: 'info' }, stream) });
  const rejections: Rejection[] = [];
  const summaries: Summary[] = [];
  runtime.events.on('connection-rejected', (rejection) => rejections.push(rejection));
  runtime.events.on('session-closed', (summary) => summaries.push(summary));
  await runtime.start();
  t.after(async () => {
    await runtime.stop(0);
    for (const backend of backends) await backend.close();
  });
  return { runtime, backend: backends[0] as FixtureBackend, backends, rejections, summaries, logLines };
}

interface ClientResult {
  data: Buffer;
  ended: 'end' | 'error' | 'matched' | 'timeout';
}

/**
 * Connects, writes `parts` one by one (a pause between them so they travel as
 * separate segments), then reads until `expectBytes` bytes arrived, the proxy
 * closes, or the deadline.
 */
function exchange(port: number, parts: readonly Buffer[], expectBytes: number, timeoutMs = 5000): Promise<ClientResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    const received: Buffer[] = [];
    let settled = false;
    const finish = (ended: ClientResult['ended']): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data: Buffer.concat(received), ended });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.on('error', () => finish('error'));
    socket.on('end', () => finish('end'));
    socket.on('close', () => finish('end'));
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      if (expectBytes > 0 && Buffer.concat(received).length >= expectBytes) finish('matched');
    });
    socket.on('connect', () => {
      void (async () => {
        for (const [index, part] of parts.entries()) {
          if (index > 0) await delay(15); // forces separate TCP segments; not synchronisation
          if (!socket.destroyed) socket.write(part);
        }
      })();
    });
  });
}

function waitForCount<T>(runtime: ProxyRuntime, event: keyof ProxyEventMap, list: T[], count: number): Promise<void> {
  return waitUntilEvent(runtime.events, event, () => list.length >= count, 5000, `${count} ${event}`);
}

test('good PROXY headers: backend gets only the bytes after the header; the session carries the header source', async (t) => {
  const h = await startHarness(t);
  for (const [index, good] of goodProxyCases.entries()) {
    const rest = good.expected.rest;
    const result = await exchange(h.runtime.port(good.mode), [good.input], ECHO_IDENT.length + rest.length);
    assert.equal(result.ended, 'matched', `${good.name}: client should see the banner and the echo`);
    assert.deepEqual(result.data, Buffer.concat([ECHO_IDENT, rest]), `${good.name}: byte-exact banner + echo`);
    await h.backend.waitForBytes(index, rest.length, 5000);
    assert.deepEqual(h.backend.received()[index], rest, `${good.name}: the header must never reach the backend`);
    await waitForCount(h.runtime, 'session-closed', h.summaries, index + 1);
    const summary = h.summaries[index] as Summary;
    const header = good.expected.header;
    const expectedClient = header.command === 'PROXY' ? (header.sourceAddress ?? '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1') : '127.0.0.1';
    assert.equal(summary.client, expectedClient, `${good.name}: client address`);
    if (header.command === 'PROXY') assert.equal(summary.clientPort, header.sourcePort, `${good.name}: client port`);
    assert.equal(summary.spliced, true);
  }
  assert.equal(h.backend.connections, goodProxyCases.length);
  assert.equal(h.rejections.length, 0);
  const sessionLine = h.logLines.find((line) => line.event === 'session' && line.client === '203.0.113.7');
  assert.ok(sessionLine, 'the log line names the header source');
});

test('good headers split across packets at every interesting offset', async (t) => {
  const h = await startHarness(t);
  const v2 = goodProxyCases.find((c) => c.name === 'v2 PROXY TCP6 with TLVs');
  const v1 = goodProxyCases.find((c) => c.name === 'v1 TCP4');
  assert.ok(v2 && v1);
  const splits: { input: Buffer; at: number[]; mode: 'v1' | 'v2' | 'any'; rest: Buffer; source: string }[] = [
    { input: v1.input, at: [1, 6, 20, v1.expected.header.headerBytes - 1, v1.expected.header.headerBytes + 3], mode: 'v1', rest: v1.expected.rest, source: '192.168.0.1' },
    { input: v2.input, at: [1, 12, 13, 15, 16, 40, v2.expected.header.headerBytes - 1], mode: 'any', rest: v2.expected.rest, source: '2001:db8::1:0:0:1' },
  ];
  let count = 0;
  for (const split of splits) {
    const parts: Buffer[] = [];
    let from = 0;
    for (const at of split.at) {
      parts.push(split.input.subarray(from, at));
      from = at;
    }
    parts.push(split.input.subarray(from));
    const result = await exchange(h.runtime.port(split.mode), parts, ECHO_IDENT.length + split.rest.length);
    assert.deepEqual(result.data, Buffer.concat([ECHO_IDENT, split.rest]));
    await h.backend.waitForBytes(count, split.rest.length, 5000);
    assert.deepEqual(h.backend.received()[count], split.rest);
    count += 1;
    await waitForCount(h.runtime, 'session-closed', h.summaries, count);
    assert.equal(h.summaries[count - 1]?.client, split.source);
  }
  // One byte at a time, the whole v1 header and the SSH identification.
  const bytes = [...v1.input].map((byte) => Buffer.from([byte]));
  const result = await exchange(h.runtime.port('v1'), bytes, ECHO_IDENT.length + v1.expected.rest.length, 10_000);
  assert.deepEqual(result.data, Buffer.concat([ECHO_IDENT, v1.expected.rest]));
});

test('bad PROXY headers: PROXY_HEADER_INVALID, nothing sent to the client, no backend connection', async (t) => {
  const h = await startHarness(t);
  for (const [index, bad] of badProxyCases.entries()) {
    const result = await exchange(h.runtime.port(bad.mode), [bad.input], 0);
    assert.notEqual(result.ended, 'timeout', `${bad.name}: the proxy must close`);
    assert.equal(result.data.length, 0, `${bad.name}: the client must get nothing`);
    await waitForCount(h.runtime, 'connection-rejected', h.rejections, index + 1);
    const rejection = h.rejections[index] as Rejection;
    assert.equal(rejection.reason, 'PROXY_HEADER_INVALID', bad.name);
    assert.ok(rejection.message?.includes(bad.expected.messageIncludes), `${bad.name}: ${rejection.message}`);
  }
  assert.equal(h.backend.connections, 0);
  assert.equal(h.runtime.server.activeConnections, 0, 'rejected connections give back their slot');
  const logged = h.logLines.filter((line) => line.event === 'rejected' && line.reason === 'PROXY_HEADER_INVALID');
  assert.equal(logged.length, badProxyCases.length);
});

test('an incomplete header times out with PROXY_HEADER_TIMEOUT', async (t) => {
  const h = await startHarness(t, { timeoutMs: 300 });
  for (const [index, incomplete] of incompleteProxyCases.entries()) {
    const started = performance.now();
    const result = await exchange(h.runtime.port(incomplete.mode), [incomplete.input], 0);
    const elapsed = performance.now() - started;
    assert.equal(result.data.length, 0);
    assert.notEqual(result.ended, 'timeout', `${incomplete.name}: closed by the proxy`);
    assert.ok(elapsed >= 250, `${incomplete.name}: closed after ${elapsed}ms, not before the header timeout`);
    await waitForCount(h.runtime, 'connection-rejected', h.rejections, index + 1);
    assert.equal(h.rejections[index]?.reason, 'PROXY_HEADER_TIMEOUT');
  }
  // A client that sends nothing at all.
  const silent = await exchange(h.runtime.port('any'), [], 0);
  assert.equal(silent.data.length, 0);
  await waitForCount(h.runtime, 'connection-rejected', h.rejections, incompleteProxyCases.length + 1);
  assert.equal(h.rejections.at(-1)?.reason, 'PROXY_HEADER_TIMEOUT');
  assert.equal(h.backend.connections, 0);
});

test('a peer outside proxyProtocol.trusted is refused with PROXY_UNTRUSTED, even with a valid header', async (t) => {
  const h = await startHarness(t, { trusted: ['10.0.0.0/8', '::1/128'] });
  const good = goodProxyCases[0];
  assert.ok(good);
  const result = await exchange(h.runtime.port('v1'), [good.input], 0);
  assert.equal(result.data.length, 0);
  await waitForCount(h.runtime, 'connection-rejected', h.rejections, 1);
  assert.equal(h.rejections[0]?.reason, 'PROXY_UNTRUSTED');
  assert.equal(h.rejections[0]?.client, '127.0.0.1');
  assert.equal(h.backend.connections, 0);
});

test('the ACL sees the header source, not the load balancer', async (t) => {
  const h = await startHarness(t, { acl: { allow: ['198.51.100.0/24'], deny: [] } });
  const header = (source: string): Buffer => v2Header(0x21, 0x11, v2AddressBlock('TCP4', source, '10.0.0.1', 40000, 22));
  const denied = await exchange(h.runtime.port('v2'), [Buffer.concat([header('203.0.113.9'), SSH_CLIENT_IDENT])], 0);
  assert.equal(denied.data.length, 0);
  await waitForCount(h.runtime, 'connection-rejected', h.rejections, 1);
  assert.equal(h.rejections[0]?.reason, 'ACL_DENIED');
  assert.equal(h.rejections[0]?.client, '203.0.113.9');
  assert.equal(h.backend.connections, 0);
  const allowed = await exchange(h.runtime.port('v2'), [Buffer.concat([header('198.51.100.20'), SSH_CLIENT_IDENT])], ECHO_IDENT.length);
  assert.equal(allowed.ended, 'matched');
  assert.equal(h.backend.connections, 1);
});

test('source balancing hashes the header source: one source sticks, many sources spread', async (t) => {
  const h = await startHarness(t, { backends: 2, balance: 'source' });
  const header = (source: string): Buffer => Buffer.from(`PROXY TCP4 ${source} 10.0.0.1 40000 22\r\n`, 'latin1');
  for (let index = 0; index < 6; index += 1) {
    const result = await exchange(h.runtime.port('v1'), [header('203.0.113.50')], ECHO_IDENT.length);
    assert.equal(result.ended, 'matched');
  }
  const sticky = h.backends.map((backend) => backend.connections);
  assert.ok(sticky.includes(6) && sticky.includes(0), `one source, one server: ${sticky.join('/')}`);
  for (let index = 0; index < 24; index += 1) {
    const result = await exchange(h.runtime.port('v1'), [header(`198.51.100.${index + 1}`)], ECHO_IDENT.length);
    assert.equal(result.ended, 'matched');
  }
  const spread = h.backends.map((backend, index) => backend.connections - (sticky[index] ?? 0));
  assert.ok(spread.every((count) => count > 0), `24 sources reach both servers (the peer is always 127.0.0.1): ${spread.join('/')}`);
});
