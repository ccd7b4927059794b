import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startFixtureBackend, type FixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { startProxy, type TestProxy } from '../fixtures/proxy/proxy.js';
import { rawExchange, untilLine } from '../fixtures/clients/raw-client.js';

describe('listener admission', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function proxyWith(listener: Record<string, unknown>, config: Record<string, unknown> = {}): Promise<{ proxy: TestProxy; backend: FixtureBackend }> {
    const backend = await startFixtureBackend('ssh-echo');
    cleanups.push(() => backend.close());
    const proxy = await startProxy({
      servers: [{ name: 'echo', host: backend.host, port: backend.port }],
      listener: { bind: '[::]:0', ...listener },
      config,
    });
    cleanups.push(() => proxy.stop());
    return { proxy, backend };
  }

  it('closes a denied client at once without ever connecting to a backend', async () => {
    const { proxy, backend } = await proxyWith({ acl: { allow: ['0.0.0.0/0', '::/0'], deny: ['127.0.0.0/8'] } });
    const denied = await rawExchange({ host: '127.0.0.1', port: proxy.port, until: untilLine, timeoutMs: 3000 });
    assert.notEqual(denied.outcome, 'matched');
    assert.equal(denied.data.length, 0);
    const line = await proxy.waitForLog((entry) => entry.event === 'rejected', 3000);
    assert.equal(line.reason, 'ACL_DENIED');
    assert.equal(line.client, '127.0.0.1');
    // IPv6 loopback is not denied and goes through.
    const allowed = await rawExchange({ host: '::1', port: proxy.port, until: untilLine, timeoutMs: 3000 });
    assert.equal(allowed.outcome, 'matched');
    assert.equal(backend.connections, 1);
  });

  it('applies IPv4 rules to IPv4-mapped clients on a dual-stack listener', async () => {
    const { proxy, backend } = await proxyWith({ acl: { allow: ['127.0.0.1/32'], deny: [] } });
    const v4 = await rawExchange({ host: '127.0.0.1', port: proxy.port, until: untilLine, timeoutMs: 3000 });
    assert.equal(v4.outcome, 'matched');
    const v6 = await rawExchange({ host: '::1', port: proxy.port, until: untilLine, timeoutMs: 3000 });
    assert.notEqual(v6.outcome, 'matched');
    assert.equal(backend.connections, 1);
  });

  it('closes connections above maxConnections and counts them', async () => {
    const { proxy, backend } = await proxyWith({}, { limits: { maxConnections: 1 } });
    const { connect } = await import('node:net');
    const first = connect({ host: '127.0.0.1', port: proxy.port });
    first.on('error', () => {});
    await backend.waitForConnections(1, 3000);
    const second = await rawExchange({ host: '127.0.0.1', port: proxy.port, until: untilLine, timeoutMs: 3000 });
    assert.notEqual(second.outcome, 'matched');
    const line = await proxy.waitForLog((entry) => entry.event === 'rejected', 3000);
    assert.equal(line.reason, 'LIMIT_REACHED');
    assert.equal(backend.connections, 1);
    first.destroy();
  });
});
