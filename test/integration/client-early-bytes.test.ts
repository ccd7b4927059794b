import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { startProxy } from '../fixtures/proxy/proxy.js';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('client bytes sent before the backend banner', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('reach the backend intact and in order, after the banner reached the client', async () => {
    const backend = await startFixtureBackend('slow-banner', { delayMs: 300 });
    cleanups.push(() => backend.close());
    const proxy = await startProxy({ servers: [{ name: 'slow', host: backend.host, port: backend.port }] });
    cleanups.push(() => proxy.stop());

    const early = Buffer.concat([Buffer.from('SSH-2.0-EarlyClient_1.0\r\n'), randomBytes(30_000)]);
    const client = connect({ host: proxy.host, port: proxy.port });
    client.on('error', () => {});
    client.write(early);
    const [banner] = (await once(client, 'data')) as [Buffer];
    assert.match(banner.toString('latin1'), /^SSH-2\.0-/);
    await backend.waitForBytes(0, early.length, 5000);
    assert.equal(sha256(backend.received()[0] ?? Buffer.alloc(0)), sha256(early));
    client.destroy();
    const [summary] = await proxy.waitForSessions(1, 5000);
    assert.equal(summary?.clientIdent, 'SSH-2.0-EarlyClient_1.0');
  });

  it('pause a client that sends 10 MiB before any banner instead of buffering it all, and lose nothing', async () => {
    const backend = await startFixtureBackend('ssh-sink', {});
    cleanups.push(() => backend.close());
    const slow = await startFixtureBackend('slow-banner', { delayMs: 1500 });
    cleanups.push(() => slow.close());
    const limitBytes = 65_536;
    // The slow server's banner arrives after 1.5 s; all the while the client pushes as fast as it can.
    const proxy = await startProxy({
      servers: [{ name: 'slow', host: slow.host, port: slow.port }],
      config: { limits: { clientBufferBytes: limitBytes } },
    });
    cleanups.push(() => proxy.stop());

    const payload = Buffer.concat([Buffer.from('SSH-2.0-Flood\r\n'), randomBytes(10 * 1024 * 1024)]);
    const client = connect({ host: proxy.host, port: proxy.port });
    client.on('error', () => {});
    client.on('data', () => {});
    client.end(payload);
    await slow.waitForBytes(0, payload.length, 30_000);
    assert.equal(sha256(slow.received()[0] ?? Buffer.alloc(0)), sha256(payload));
    client.destroy();
    const [summary] = await proxy.waitForSessions(1, 5000);
    const peak = Number(summary?.clientBufferPeak);
    // At most the limit plus one socket read (64 KiB) was ever held.
    assert.ok(peak >= limitBytes && peak <= limitBytes + 65_536, `peak buffered ${peak} bytes`);
  });
});
