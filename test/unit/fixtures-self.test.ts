/**
 * Self-test of the hostile fixture backends: each does what it claims, seen
 * from a raw TCP client.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import {
  FIXTURE_BACKEND_KINDS,
  HTTP_400_RESPONSE,
  TLS_ALERT_RECORD,
  startFixtureBackend,
  type FixtureBackend,
  type FixtureBackendKind,
  type FixtureBackendOptions,
} from '../fixtures/backends/hostile-backends.js';
import { rawExchange, untilBytes, untilLine } from '../fixtures/clients/raw-client.js';

/** How long "nothing more arrives" is watched for. */
const QUIET_WINDOW_MS = 150;
const TIMEOUT_MS = 5_000;

async function backend(
  t: TestContext,
  kind: FixtureBackendKind,
  options: FixtureBackendOptions = {},
): Promise<FixtureBackend> {
  const started = await startFixtureBackend(kind, options);
  t.after(() => started.close());
  return started;
}

/** Greets with `greeting`, then keeps the connection open and says nothing more. */
async function assertGreetsThenStaysOpen(t: TestContext, kind: FixtureBackendKind, greeting: string | Buffer): Promise<void> {
  const b = await backend(t, kind);
  const expected = Buffer.from(greeting);
  const r = await rawExchange({ port: b.port, timeoutMs: QUIET_WINDOW_MS + expected.length });
  assert.equal(r.outcome, 'timeout', 'connection should stay open');
  assert.deepEqual(r.data, expected);
}

/** Sends `line` and then FIN. */
async function assertSaysThenEnds(t: TestContext, kind: FixtureBackendKind, expected: string | Buffer): Promise<void> {
  const b = await backend(t, kind);
  const r = await rawExchange({ port: b.port, timeoutMs: TIMEOUT_MS });
  assert.equal(r.outcome, 'end');
  assert.equal(r.error, null);
  assert.deepEqual(r.data, Buffer.from(expected));
}

describe('hostile fixture backends', () => {
  it('silent: accepts and never writes, but records what the client sends', async (t) => {
    const b = await backend(t, 'silent');
    const r = await rawExchange({ port: b.port, send: 'SSH-2.0-Client\r\n', timeoutMs: QUIET_WINDOW_MS });
    assert.equal(r.outcome, 'timeout');
    assert.equal(r.data.length, 0);
    await b.waitForBytes(0, 16, TIMEOUT_MS);
    assert.deepEqual(b.received(), [Buffer.from('SSH-2.0-Client\r\n')]);
  });

  it('slow-banner: identification only after delayMs, then echoes what was sent before it', async (t) => {
    const b = await backend(t, 'slow-banner', { delayMs: 200 });
    const ident = 'SSH-2.0-SlowFixture_1.0\r\n';
    const r = await rawExchange({
      port: b.port,
      send: 'early',
      until: untilBytes(ident.length + 5),
      timeoutMs: TIMEOUT_MS,
    });
    assert.equal(r.outcome, 'matched');
    assert.equal(r.data.toString(), `${ident}early`);
    assert.ok(r.firstByteMs !== null && r.firstByteMs >= 190, `first byte after ${String(r.firstByteMs)}ms`);
  });

  it('reset: the client sees ECONNRESET', async (t) => {
    const b = await backend(t, 'reset');
    const r = await rawExchange({ port: b.port, timeoutMs: TIMEOUT_MS });
    assert.equal(r.outcome, 'error');
    assert.equal(r.error?.code, 'ECONNRESET');
    assert.equal(b.connections, 1);
  });

  it('close: FIN at once, no bytes, no error', async (t) => {
    await assertSaysThenEnds(t, 'close', '');
  });

  it('throttle: "Exceeded MaxStartups" then FIN (as OpenSSH 9 does)', async (t) => {
    await assertSaysThenEnds(t, 'throttle', 'Exceeded MaxStartups\r\n');
  });

  it('not-allowed: tcp-wrappers style refusal then FIN', async (t) => {
    await assertSaysThenEnds(t, 'not-allowed', 'Not allowed at this time\r\n');
  });

  it('http: an nginx-style 400 response then FIN', async (t) => {
    await assertSaysThenEnds(t, 'http', HTTP_400_RESPONSE);
    assert.match(HTTP_400_RESPONSE, /^HTTP\/1\.1 400 Bad Request\r\n/);
    const [head, body] = HTTP_400_RESPONSE.split('\r\n\r\n');
    assert.match(head ?? '', new RegExp(`Content-Length: ${Buffer.byteLength(body ?? '')}\r?$`, 'm'));
  });

  it('tls: a TLS alert record then FIN', async (t) => {
    await assertSaysThenEnds(t, 'tls', TLS_ALERT_RECORD);
    assert.deepEqual([...TLS_ALERT_RECORD.subarray(0, 3)], [0x15, 0x03, 0x01]);
  });

  it('smtp: a 220 greeting, stays open', async (t) => {
    await assertGreetsThenStaysOpen(t, 'smtp', '220 mail.example.com ESMTP Postfix\r\n');
  });

  it('ftp: a 220 greeting, stays open', async (t) => {
    await assertGreetsThenStaysOpen(t, 'ftp', '220 (vsFTPd 3.0.3)\r\n');
  });

  it('garbage: random bytes with no line feed, stays open', async (t) => {
    const b = await backend(t, 'garbage', { garbageBytes: 512 });
    const r = await rawExchange({ port: b.port, until: untilBytes(512), timeoutMs: TIMEOUT_MS });
    assert.equal(r.outcome, 'matched');
    assert.equal(r.data.length, 512);
    assert.equal(r.data.includes(0x0a), false);
    assert.notEqual(r.data.subarray(0, 4).toString('latin1'), 'SSH-');
    const more = await rawExchange({ port: b.port, until: untilBytes(513), timeoutMs: QUIET_WINDOW_MS });
    assert.equal(more.outcome, 'timeout', 'exactly garbageBytes, then quiet and open');
  });

  it('byte-at-a-time: a valid identification dribbled one byte per write, then echo', async (t) => {
    const b = await backend(t, 'byte-at-a-time', { intervalMs: 5 });
    const ident = 'SSH-2.0-DribbleFixture\r\n';
    const r = await rawExchange({ port: b.port, send: 'ping', until: untilBytes(ident.length + 4), timeoutMs: TIMEOUT_MS });
    assert.equal(r.outcome, 'matched');
    assert.equal(r.data.toString(), `${ident}ping`);
    assert.ok(r.chunks > ident.length / 2, `expected many small chunks, got ${r.chunks}`);
    assert.ok(r.elapsedMs >= 5 * (ident.length - 1) - 5, `dribble took ${r.elapsedMs}ms`);
  });

  it('ssh1: an SSH-1.5 identification, stays open', async (t) => {
    await assertGreetsThenStaysOpen(t, 'ssh1', 'SSH-1.5-OldServer\r\n');
  });

  it('long-line: a 300-byte line starting with SSH-2.0-, stays open', async (t) => {
    const b = await backend(t, 'long-line');
    const r = await rawExchange({ port: b.port, until: untilLine, timeoutMs: TIMEOUT_MS });
    assert.equal(r.outcome, 'matched');
    assert.equal(r.data.length, 300);
    assert.ok(r.data.toString('latin1').startsWith('SSH-2.0-'));
    assert.ok(r.data.toString('latin1').endsWith('\r\n'));
  });

  it('nul: an identification with a NUL byte, stays open', async (t) => {
    await assertGreetsThenStaysOpen(t, 'nul', 'SSH-2.0-Bad\0Server\r\n');
  });

  it('pre-lines: two text lines, then a valid identification, then echo', async (t) => {
    const b = await backend(t, 'pre-lines');
    const expected = 'Welcome to the fixture host\r\nAuthorized use only\r\nSSH-2.0-PreLinesFixture_1.0\r\nhi';
    const r = await rawExchange({ port: b.port, send: 'hi', until: untilBytes(expected.length), timeoutMs: TIMEOUT_MS });
    assert.equal(r.outcome, 'matched');
    assert.equal(r.data.toString(), expected);
  });

  it('ssh-echo: identification at accept, then every byte echoed in order', async (t) => {
    const b = await backend(t, 'ssh-echo');
    const ident = Buffer.from('SSH-2.0-EchoFixture_1.0\r\n');
    const payload = randomBytes(256 * 1024);
    const r = await rawExchange({
      port: b.port,
      send: payload,
      until: untilBytes(ident.length + payload.length),
      timeoutMs: TIMEOUT_MS,
    });
    assert.equal(r.outcome, 'matched');
    assert.deepEqual(r.data, Buffer.concat([ident, payload]));
    assert.deepEqual(b.received()[0], payload);
  });

  it('ssh-sink: counts and hashes what each connection sent', async (t) => {
    const b = await backend(t, 'ssh-sink', { record: false });
    const payload = randomBytes(1024 * 1024);
    const r = await rawExchange({ port: b.port, send: payload, endAfterSend: true, timeoutMs: TIMEOUT_MS });
    assert.equal(r.outcome, 'end', 'the sink ends when the client does');
    assert.equal(r.data.toString(), 'SSH-2.0-SinkFixture_1.0\r\n');
    await b.waitForClosed(1, TIMEOUT_MS);
    assert.deepEqual(b.sinkStats(), [
      { bytes: payload.length, sha256: createHash('sha256').update(payload).digest('hex'), closed: true },
    ]);
    assert.deepEqual(b.received(), [Buffer.alloc(0)], 'record: false keeps no bytes');
  });

  it('half-banner: "SSH-2.0-Partial" without a line end, then silence', async (t) => {
    await assertGreetsThenStaysOpen(t, 'half-banner', 'SSH-2.0-Partial');
  });

  it('identification can be overridden', async (t) => {
    const b = await backend(t, 'ssh-echo', { identification: 'SSH-2.0-Custom_9' });
    const r = await rawExchange({ port: b.port, until: untilLine, timeoutMs: TIMEOUT_MS });
    assert.equal(r.data.toString(), 'SSH-2.0-Custom_9\r\n');
  });
});

describe('fixture backend bookkeeping', () => {
  it('records per-connection bytes, accept times, open count and maxConcurrent', async (t) => {
    const b = await backend(t, 'ssh-echo');
    const sockets = await Promise.all(
      ['one', 'two', 'three'].map((word) =>
        rawExchange({ port: b.port, send: word, until: untilBytes(25 + word.length), timeoutMs: TIMEOUT_MS }),
      ),
    );
    assert.deepEqual(sockets.map((s) => s.outcome), ['matched', 'matched', 'matched']);
    await b.waitForClosed(3, TIMEOUT_MS);
    assert.equal(b.connections, 3);
    assert.equal(b.openConnections, 0);
    assert.ok(b.maxConcurrent >= 1 && b.maxConcurrent <= 3);
    assert.deepEqual(
      b.received().map((x) => x.toString()).sort(),
      ['one', 'three', 'two'],
    );
    const records = b.records();
    for (const [i, record] of records.entries()) {
      assert.equal(record.id, i);
      assert.ok(record.closedAt !== null && record.closedAt >= record.acceptedAt);
      assert.ok(record.chunks.every((chunk) => chunk.at >= record.acceptedAt));
    }
  });

  it('maxConcurrent counts connections open at the same time', async (t) => {
    const b = await backend(t, 'silent');
    const held = [1, 2, 3].map(() => rawExchange({ port: b.port, timeoutMs: 60_000 }));
    await b.waitForConnections(3, TIMEOUT_MS);
    assert.equal(b.openConnections, 3);
    assert.equal(b.maxConcurrent, 3);
    await b.close();
    const results = await Promise.all(held);
    assert.deepEqual(results.map((r) => r.outcome), ['end', 'end', 'end'], 'close() destroys open sockets');
    await b.close(); // idempotent
  });

  it('a backend nobody connects to records nothing', async (t) => {
    const b = await backend(t, 'ssh-echo');
    assert.equal(b.connections, 0);
    assert.deepEqual(b.received(), []);
    assert.equal(b.maxConcurrent, 0);
  });

  it('every kind starts, accepts and closes cleanly', async (t) => {
    for (const kind of FIXTURE_BACKEND_KINDS) {
      const b = await backend(t, kind, { delayMs: 10, intervalMs: 1 });
      const r = await rawExchange({ port: b.port, timeoutMs: 100 });
      assert.ok(['timeout', 'end', 'error'].includes(r.outcome), `${kind}: ${r.outcome}`);
      await b.waitForConnections(1, TIMEOUT_MS);
      await b.close();
    }
  });

  it('listens on ::1 when asked', async (t) => {
    const b = await backend(t, 'ssh-echo', { host: '::1' });
    const r = await rawExchange({ host: '::1', port: b.port, until: untilLine, timeoutMs: TIMEOUT_MS });
    assert.equal(r.data.toString(), 'SSH-2.0-EchoFixture_1.0\r\n');
    assert.equal(b.records()[0]?.remoteAddress, '::1');
  });
});
