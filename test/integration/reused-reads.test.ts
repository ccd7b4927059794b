import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { attemptBackend, type AttemptSuccess } from '../../src/backend/attempt.js';
import { Splice, type SpliceResult } from '../../src/proxy/splice.js';
import { startProxy } from '../fixtures/proxy/proxy.js';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/**
 * Writes `payload` one chunk per tick (`size(offset)` bytes at a time), then FIN, then
 * calls `sent`: issued, not flushed (a stalled reader may hold the rest back).
 */
function dribble(socket: Socket, payload: Buffer, size: (offset: number) => number, sent: () => void = () => undefined): void {
  let offset = 0;
  const next = (): void => {
    if (offset >= payload.length) {
      socket.end();
      sent();
      return;
    }
    const bytes = size(offset);
    socket.write(payload.subarray(offset, offset + bytes));
    offset += bytes;
    setImmediate(next);
  };
  next();
}

/** Backend: banner, then `payload`, then FIN; keeps whatever the client sends until the client's FIN. */
async function startSource(payload: Buffer): Promise<{ server: Server; port: number; received: Promise<Buffer> }> {
  let resolveReceived: (data: Buffer) => void = () => undefined;
  const received = new Promise<Buffer>((resolve) => (resolveReceived = resolve));
  const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    const chunks: Buffer[] = [];
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolveReceived(Buffer.concat(chunks)));
    socket.write('SSH-2.0-ReusedReads_1.0\r\n');
    socket.end(payload);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, received };
}

describe('server→client bytes read into reused buffers', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** Listens on loopback; at the end, destroys the sockets it accepted (`open`) and closes. */
  const listenTracked = async (server: Server, open: Set<Socket>): Promise<void> => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(
      () =>
        new Promise((resolve) => {
          for (const socket of open) socket.destroy();
          server.close(() => resolve());
        }),
    );
  };

  it('stay intact when small reads queue below the high-water mark (the buffer must not be reused then)', async () => {
    // 4 KiB writes, one per tick: the proxy reads them one by one. The client reads nothing
    // until all are sent, so loopback buffers fill and writes to it queue: a 4 KiB chunk
    // queued under the 16 KiB mark does not pause reading, and the next read must not land
    // in the buffer that chunk still lives in.
    const payload = randomBytes(16 * 1024 * 1024);
    let sent: () => void = () => undefined;
    const allSent = new Promise<void>((resolve) => (sent = resolve));
    const open = new Set<Socket>();
    const server = createServer((socket: Socket) => {
      open.add(socket);
      socket.on('error', () => undefined);
      socket.write('SSH-2.0-SmallChunks_1.0\r\n');
      dribble(socket, payload, () => 4096, sent);
    });
    await listenTracked(server, open);
    const proxy = await startProxy({ servers: [{ name: 'small', host: '127.0.0.1', port: (server.address() as AddressInfo).port }] });
    cleanups.push(() => proxy.stop());

    const client = connect({ host: proxy.host, port: proxy.port });
    client.on('error', () => undefined);
    client.pause();
    client.write('SSH-2.0-Client_1.0\r\n');
    await allSent;
    const chunks: Buffer[] = [];
    client.on('data', (chunk: Buffer) => chunks.push(chunk));
    client.resume();
    await once(client, 'end');
    client.destroy();
    const banner = Buffer.from('SSH-2.0-SmallChunks_1.0\r\n');
    assert.equal(sha256(Buffer.concat(chunks)), sha256(Buffer.concat([banner, payload])));
  });

  it('Splice: a write queued under the high-water mark keeps its buffer (reading goes on into a new one)', async () => {
    // The proxy-side client socket gets a 4 MiB high-water mark: writes to it return true
    // while bytes are still queued, so reading continues and each such read must land in
    // a new buffer. Reusing the old one would overwrite bytes that are still queued.
    const payload = randomBytes(12 * 1024 * 1024);
    const backendServer = createServer((socket: Socket) => {
      socket.on('error', () => undefined);
      socket.write('SSH-2.0-Splice_1.0\r\n');
      dribble(socket, payload, () => 4096);
    });
    backendServer.listen(0, '127.0.0.1');
    await once(backendServer, 'listening');
    const front = createServer({ highWaterMark: 4 * 1024 * 1024 });
    front.listen(0, '127.0.0.1');
    await once(front, 'listening');
    cleanups.push(() => new Promise((resolve) => front.close(() => resolve())));
    cleanups.push(() => new Promise((resolve) => backendServer.close(() => resolve())));

    const user = connect({ port: (front.address() as AddressInfo).port, host: '127.0.0.1' });
    user.on('error', () => undefined);
    user.pause();
    const [accepted] = (await once(front, 'connection')) as [Socket];
    accepted.on('error', () => undefined);
    const success = await new Promise<AttemptSuccess>((resolve, reject) => {
      attemptBackend(
        { host: '127.0.0.1', port: (backendServer.address() as AddressInfo).port, connectTimeoutMs: 2000, bannerTimeoutMs: 2000, reuseReads: true },
        (outcome) => (outcome.ok ? resolve(outcome) : reject(new Error(outcome.code))),
      );
    });
    const done = new Promise<SpliceResult>((resolve) => {
      const splice = new Splice(accepted, success.socket, { idleTimeoutMs: 0, finTimeoutMs: 5000 }, { spliceEnded: resolve });
      accepted.write(success.received);
      splice.start();
      success.releaseErrorGuard();
    });
    // Let the queue toward `user` build up before reading any of it.
    // Polled (no event says "this much is queued"); bounded to 10 s.
    const until = Date.now() + 10_000;
    while (accepted.writableLength < 1024 * 1024 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(accepted.writableLength >= 1024 * 1024, `only ${accepted.writableLength} bytes queued`);
    const chunks: Buffer[] = [];
    user.on('data', (chunk: Buffer) => chunks.push(chunk));
    user.resume();
    await once(user, 'end');
    user.end();
    const result = await done;
    const banner = Buffer.from('SSH-2.0-Splice_1.0\r\n');
    assert.equal(result.bytesServerToClient, banner.length + payload.length);
    assert.equal(sha256(Buffer.concat(chunks)), sha256(Buffer.concat([banner, payload])));
  });

  it('reach a slow-reading client intact, with half-close both ways and exact byte counts', async () => {
    // 24 MiB to a client that keeps pausing: most writes to it go asynchronous, so the
    // backend's read buffer is handed to a pending write many times and must not be reused.
    const payload = randomBytes(24 * 1024 * 1024);
    const source = await startSource(payload);
    cleanups.push(() => new Promise((resolve) => source.server.close(() => resolve())));
    const proxy = await startProxy({ servers: [{ name: 'source', host: '127.0.0.1', port: source.port }] });
    cleanups.push(() => proxy.stop());

    const upstream = Buffer.concat([Buffer.from('SSH-2.0-Client_1.0\r\n'), randomBytes(3 * 1024 * 1024)]);
    const client = connect({ host: proxy.host, port: proxy.port, allowHalfOpen: true });
    client.on('error', () => undefined);
    const chunks: Buffer[] = [];
    let pauses = 0;
    client.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (chunks.length % 8 === 0) {
        pauses += 1;
        client.pause();
        setTimeout(() => client.resume(), 2);
      }
    });
    client.write(upstream);
    await once(client, 'end');
    // The backend's FIN reached the client while the client's half stays open; now the client's.
    client.end();
    const upstreamSeen = await source.received;
    const downstream = Buffer.concat(chunks);
    const banner = Buffer.from('SSH-2.0-ReusedReads_1.0\r\n');
    assert.equal(downstream.length, banner.length + payload.length);
    assert.equal(sha256(downstream), sha256(Buffer.concat([banner, payload])));
    assert.equal(sha256(upstreamSeen), sha256(upstream));
    assert.ok(pauses > 10, `client paused ${pauses} times`);

    const [summary] = await proxy.waitForSessions(1, 10_000);
    assert.equal(summary?.bytesOut, banner.length + payload.length);
    assert.equal(summary?.bytesIn, upstream.length);
  });
  it('stay intact across many sessions whose small reads share one buffer, with slow clients', async () => {
    // 6 sessions at once, each backend writing 8 MiB (more than loopback buffers hold) in chunks of 1 to 3,000 bytes, one
    // per tick: their reads interleave in the one shared buffer. The clients read nothing
    // until every backend has issued all of it, so writes toward them queue; then they read
    // with pauses. Any view of the shared buffer kept past its read would show up as
    // another session's bytes.
    const sessions = 6;
    const payloads = Array.from({ length: sessions }, () => randomBytes(8 * 1024 * 1024));
    let accepted = 0;
    let finished = 0;
    let allSent: () => void = () => undefined;
    const sent = new Promise<void>((resolve) => (allSent = resolve));
    const open = new Set<Socket>();
    const server = createServer((socket: Socket) => {
      open.add(socket);
      const payload = payloads[accepted++] as Buffer;
      socket.on('error', () => undefined);
      socket.write('SSH-2.0-Interleaved_1.0\r\n');
      const send = (): void =>
        dribble(socket, payload, (offset) => 1 + ((offset * 7919) % 3000), () => {
          if (++finished === sessions) allSent();
        });
      // Sessions are set up one by one (below); the bytes flow once all are.
      socket.once('go', send);
      if (accepted === sessions) for (const each of open) each.emit('go');
    });
    await listenTracked(server, open);
    const proxy = await startProxy({ servers: [{ name: 'interleaved', host: '127.0.0.1', port: (server.address() as AddressInfo).port, maxStartups: sessions }] });
    cleanups.push(() => proxy.stop());

    const banner = Buffer.from('SSH-2.0-Interleaved_1.0\r\n');
    // Sessions are set up in order, so the n-th client gets the n-th payload.
    const clients: { client: Socket; chunks: Buffer[] }[] = [];
    for (let index = 0; index < sessions; index += 1) {
      const client = connect({ host: proxy.host, port: proxy.port });
      client.on('error', () => undefined);
      client.write('SSH-2.0-Client_1.0\r\n');
      const [first] = (await once(client, 'data')) as [Buffer];
      client.pause();
      clients.push({ client, chunks: [first] });
    }
    await sent;
    const received = clients.map(({ client, chunks }) => {
      let reads = 0;
      client.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        reads += 1;
        if (reads % 5 === 0) {
          client.pause();
          setTimeout(() => client.resume(), 1);
        }
      });
      client.resume();
      return once(client, 'end').then(() => {
        client.destroy();
        return Buffer.concat(chunks);
      });
    });
    const all = await Promise.all(received);
    for (let index = 0; index < sessions; index += 1) {
      const got = all[index] as Buffer;
      assert.equal(got.length, banner.length + (payloads[index] as Buffer).length, `session ${index}: length`);
      assert.equal(sha256(got), sha256(Buffer.concat([banner, payloads[index] as Buffer])), `session ${index}: bytes`);
    }
  });
});
