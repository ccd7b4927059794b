import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { httpRequest } from '../fixtures/proxy/prometheus.js';
import { rawExchange, untilLine } from '../fixtures/clients/raw-client.js';
import { startServeProcess } from '../fixtures/proxy/serve-process.js';

const PRLIMIT = '/usr/bin/prlimit';
const FD_LIMIT = 160;
const PRLIMITED = [PRLIMIT, `--nofile=${FD_LIMIT}:${FD_LIMIT}`];

/** maxConnections far above what FD_LIMIT allows, over echo backends on `ports`. */
function cappedConfig(ports: readonly number[], pool: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): { listeners: { name: string; [key: string]: unknown }[]; [key: string]: unknown } {
  return {
    listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }],
    pools: [
      {
        name: 'main',
        healthCheck: { enabled: false },
        // Release slots at the splice: these raw clients never finish an SSH handshake.
        handshake: { endsAt: 'splice' },
        ...pool,
        servers: ports.map((port, index) => ({ name: index === 0 ? 'echo' : `echo${index}`, address: `127.0.0.1:${port}` })),
      },
    ],
    limits: { maxConnections: 10000 },
    ...extra,
  };
}

describe('a descriptor limit below limits.maxConnections', { skip: existsSync(PRLIMIT) ? false : 'prlimit (util-linux) is not installed' }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('caps connections below the limit, refuses the excess visibly, keeps running and serves again', async () => {
    const backend = await startFixtureBackend('ssh-echo');
    cleanups.push(() => backend.close());
    const proxy = await startServeProcess(cappedConfig([backend.port]), { wrap: PRLIMITED });
    cleanups.push(() => proxy.kill());
    const warning = await proxy.waitForLog((line) => line.event === 'fd-limit', 5000, 'the fd-limit warning');
    const effective = Number(warning.effectiveMaxConnections);
    assert.equal(warning.fdLimit, FD_LIMIT);
    assert.ok(effective > 0 && effective * 2 < FD_LIMIT, `effective ${effective}`);
    assert.match(String(warning.msg), new RegExp(`would need ${Number(warning.fdsNeeded)} file descriptors .*the limit is ${FD_LIMIT}, so at most ${effective} connections`));
    assert.ok(Number(warning.fdsNeeded) > 10000 * 2, 'the need counts the reserve, not just two per connection');

    const port = proxy.port('ssh');
    const clients: Socket[] = [];
    const extra = 10;
    for (let index = 0; index < effective + extra; index += 1) {
      const client = connect({ host: '127.0.0.1', port });
      client.on('error', () => {});
      client.on('data', () => {});
      clients.push(client);
    }
    await backend.waitForConnections(effective, 15_000);
    await proxy.waitForLog((line) => line.event === 'rejected' && line.reason === 'LIMIT_REACHED', 10_000, 'a LIMIT_REACHED rejection');
    assert.equal(backend.connections, effective);
    for (const client of clients) client.destroy();
    await backend.waitForClosed(effective, 10_000);
    // The backend can see its side close before the proxy has ended the session and given
    // its place back: wait for the proxy's own word (one summary per session).
    await proxy.waitForLog(() => proxy.logs.filter((line) => line.event === 'session').length >= effective, 10_000, 'every session summary');

    const later = await rawExchange({ host: '127.0.0.1', port, until: untilLine, timeoutMs: 5000 });
    assert.equal(later.outcome, 'matched', `after the limit: ${later.outcome} ${later.error?.message ?? ''}`);
    assert.equal(proxy.child.exitCode, null);
    assert.equal(proxy.logs.filter((line) => line.event === 'accept-error').length, 0);
  });

  it('a reload keeps the descriptor cap; descriptor exhaustion never marks a backend DOWN; status shows the limit in force', async () => {
    const backends = [await startFixtureBackend('ssh-echo'), await startFixtureBackend('ssh-echo')];
    for (const backend of backends) cleanups.push(() => backend.close());
    const proxy = await startServeProcess(
      cappedConfig(
        backends.map((backend) => backend.port),
        { passiveHealth: { consecutiveFailures: 1 } },
        { admin: { bind: '127.0.0.1:0' } },
      ),
      { wrap: PRLIMITED },
    );
    cleanups.push(() => proxy.kill());
    const warning = await proxy.waitForLog((line) => line.event === 'fd-limit', 5000, 'the fd-limit warning');
    const effective = Number(warning.effectiveMaxConnections);
    // A reload of the very same file (logrotate, config management).
    proxy.signal('SIGHUP');
    await proxy.waitForLog((line) => line.event === 'config-reload' && line.outcome === 'ok', 5000, 'the reload');
    const status = JSON.parse((await httpRequest(proxy.adminPort ?? 0, '/api/status')).body) as { connections: { limit: number; configured: number; fdLimit: number } };
    assert.deepEqual(status.connections, { active: 0, limit: effective, configured: 10000, fdLimit: FD_LIMIT }, 'the limit in force, not the configured one');

    // Twice the cap in clients: the excess is refused at accept, none reaches a backend connect that would hit EMFILE.
    const port = proxy.port('ssh');
    const clients: Socket[] = [];
    for (let index = 0; index < effective * 2; index += 1) {
      const client = connect({ host: '127.0.0.1', port });
      client.on('error', () => {});
      client.on('data', () => {});
      clients.push(client);
    }
    await proxy.waitForLog((line) => line.event === 'rejected' && line.reason === 'LIMIT_REACHED', 10_000, 'a LIMIT_REACHED rejection');
    const total = backends.reduce((sum, backend) => sum + backend.connections, 0);
    assert.ok(total <= effective, `${total} backend connections for a cap of ${effective}`);
    for (const client of clients) client.destroy();
    assert.equal(proxy.logs.filter((line) => line.event === 'server-state' && line.to === 'DOWN').length, 0, 'no backend was marked DOWN');
    // Every session ended and gave its place back (the proxy says so once per session).
    await proxy.waitForLog(() => proxy.logs.filter((line) => line.event === 'session').length >= total, 10_000, 'every session summary');
    const later = await rawExchange({ host: '127.0.0.1', port, until: untilLine, timeoutMs: 5000 });
    assert.equal(later.outcome, 'matched');
  });
});
