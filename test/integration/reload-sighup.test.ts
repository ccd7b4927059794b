// Hot reload of a real `serve` process (SIGHUP, --watch) while real SSH sessions
// are open and clients connect in a loop: no session dropped, no connection
// refused, invalid configs kept out, outcomes logged and counted.
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { connectSsh2, execSsh2, type Ssh2Connection } from '../fixtures/clients/clients.js';
import { clientLoop } from '../fixtures/clients/client-loop.js';
import { rawExchange, untilLine } from '../fixtures/clients/raw-client.js';
import { startServeProcess, type ServeProcess } from '../fixtures/proxy/serve-process.js';
import { sshdAvailable, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';
import { delay, waitFor, waitUntilEvent } from '../fixtures/wait.js';

const skip = sshdAvailable() ? false : 'OpenSSH sshd is not installed';

function config(servers: { name: string; sshd: SshdHandle; weight?: number }[], listeners: string[]): { listeners: { name: string; bind: string; pool: string }[]; [key: string]: unknown } {
  return {
    listeners: listeners.map((name) => ({ name, bind: '127.0.0.1:0', pool: 'main' })),
    pools: [
      {
        name: 'main',
        healthCheck: { interval: '500ms', rise: 1 },
        servers: servers.map((server) => ({ name: server.name, address: `127.0.0.1:${server.sshd.port}`, weight: server.weight ?? 1 })),
      },
    ],
    timeouts: { drain: '5s' },
    admin: { bind: '127.0.0.1:0' },
    log: { level: 'info' },
  };
}

async function reloadAndWait(proxy: ServeProcess, outcome: 'ok' | 'invalid', count: number): Promise<void> {
  proxy.signal('SIGHUP');
  await waitFor(() => proxy.logs.filter((line) => line.event === 'config-reload' && line.outcome === outcome).length >= count, {
    timeoutMs: 10_000,
    description: `${count} config-reload ${outcome}`,
  });
}

async function metric(proxy: ServeProcess, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 'NaN');
}

test('SIGHUP with live ssh sessions and clients connecting in a loop: 0 dropped, 0 refused, invalid configs kept out', { skip, timeout: 120_000 }, async (t) => {
  const sshdA = await startSshd();
  t.after(() => sshdA.stop());
  const sshdB = await startSshd();
  t.after(() => sshdB.stop());
  const proxy = await startServeProcess(config([{ name: 'a', sshd: sshdA }], ['ssh']), { startTimeoutMs: 40_000 });
  t.after(() => proxy.kill());
  const port = proxy.port('ssh');
  // The loop's ssh clients land on a or b: let each sshd accept both client keys.
  await appendFile(path.join(sshdA.dir, 'authorized_keys'), await readFile(`${sshdB.identityFile}.pub`));
  await appendFile(path.join(sshdB.dir, 'authorized_keys'), await readFile(`${sshdA.identityFile}.pub`));
  const target = { host: '127.0.0.1', port, user: sshdA.user, identityFile: sshdA.identityFile };

  // Two long-lived ssh sessions on server a (the only server so far).
  const held: Ssh2Connection[] = [await connectSsh2(target), await connectSsh2(target)];
  t.after(async () => {
    for (const connection of held) await connection.close();
  });
  const longCommand = execSsh2((held[0] as Ssh2Connection).client, 'sleep 4; echo survived', { timeoutMs: 30_000 });

  // Raw clients (banner only) and real ssh clients (handshake, auth, command), in loops.
  const raw = clientLoop(
    async () => {
      const result = await rawExchange({ port, until: untilLine, timeoutMs: 5000 });
      // Pacing, not synchronisation: every banner-only client costs sshd a fork, and an
      // unpaced loop slows the real sessions on this 2-core machine to a crawl.
      await delay(25);
      if (result.error?.code === 'ECONNREFUSED') return 'refused';
      if (result.outcome === 'matched' && result.data.toString('latin1').startsWith('SSH-2.0-')) return 'ok';
      return `raw:${result.outcome}:${result.error?.code ?? ''}:${JSON.stringify(result.data.toString('latin1').slice(0, 40))}`;
    },
    3000,
    60_000,
  );
  const ssh = clientLoop(
    async () => {
      try {
        const connection = await connectSsh2(target);
        const result = await execSsh2(connection.client, 'echo ok', { timeoutMs: 20_000 }).finally(() => connection.close());
        return result.stdout === 'ok\n' ? 'ok' : `ssh:stdout ${JSON.stringify(result.stdout)}`;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        return code === 'ECONNREFUSED' ? 'refused' : `ssh:${error instanceof Error ? error.message : String(error)}`;
      }
    },
    500,
    60_000,
  );
  const progressed = async (loop: ReturnType<typeof clientLoop>, more: number): Promise<void> => {
    const target = loop.stats.ok + loop.stats.refused + loop.stats.failed.length + more;
    await waitUntilEvent(loop.progress, 'tick', () => loop.stats.ok + loop.stats.refused + loop.stats.failed.length >= target, 30_000, `${more} more iterations`);
  };
  await Promise.all([progressed(raw, 20), progressed(ssh, 2)]);

  // 1. Add server b and a second listener, reweight a.
  await proxy.writeConfig(config([{ name: 'a', sshd: sshdA, weight: 2 }, { name: 'b', sshd: sshdB }], ['ssh', 'second']));
  await reloadAndWait(proxy, 'ok', 1);
  await proxy.waitForLog((line) => line.event === 'listening' && line.listener === 'second', 5000);
  const viaSecond = await rawExchange({ port: proxy.port('second'), until: untilLine, timeoutMs: 5000 });
  assert.equal(viaSecond.outcome, 'matched');
  await Promise.all([progressed(raw, 20), progressed(ssh, 2)]);

  // 2. Invalid configs: YAML syntax, then a schema error. Both rejected, nothing changes.
  await proxy.writeConfig('listeners: [ { name: ssh, bind: "127.0.0.1:0"\n');
  await reloadAndWait(proxy, 'invalid', 1);
  await proxy.writeConfig({ ...config([{ name: 'b', sshd: sshdB }], ['ssh']), listners: [] });
  await reloadAndWait(proxy, 'invalid', 2);
  assert.ok(proxy.logs.filter((line) => line.event === 'config-reload' && line.outcome === 'invalid').every((line) => line.level === 50));
  await Promise.all([progressed(raw, 20), progressed(ssh, 2)]);

  // 3. Remove server a (it carries the held sessions) and the second listener.
  await proxy.writeConfig(config([{ name: 'b', sshd: sshdB }], ['ssh']));
  await reloadAndWait(proxy, 'ok', 2);
  await Promise.all([progressed(raw, 20), progressed(ssh, 2)]);

  await Promise.all([raw.stop(), ssh.stop()]);
  if (process.env.SBP_DEBUG_LOGS) await writeFile(process.env.SBP_DEBUG_LOGS, proxy.logs.map((line) => JSON.stringify(line)).join('\n'));
  t.diagnostic(`during 3 reloads (2 ok, 2 invalid): ${raw.stats.ok} banner clients, ${ssh.stats.ok} ssh sessions, ${raw.stats.refused + ssh.stats.refused} refused`);
  assert.deepEqual(raw.stats.failed, [], 'raw clients: every connection got a banner');
  assert.deepEqual(ssh.stats.failed, [], 'ssh clients: every session ran its command');
  assert.equal(raw.stats.refused + ssh.stats.refused, 0, 'no connection refused');
  assert.ok(raw.stats.ok >= 80 && ssh.stats.ok >= 8, `loops ran: raw ${raw.stats.ok}, ssh ${ssh.stats.ok}`);

  // The held sessions (on the removed server a) survived all three reloads.
  assert.equal((await longCommand).stdout, 'survived\n');
  for (const connection of held) assert.equal((await execSsh2(connection.client, 'echo alive', { timeoutMs: 10_000 })).stdout, 'alive\n');
  assert.equal(proxy.logs.filter((line) => line.event === 'listening' && line.listener === 'ssh').length, 1, 'the ssh listener never reopened');
  assert.equal(proxy.port('ssh'), port);
  const serverA = proxy.logs.find((line) => line.event === 'server-state' && line.server === 'a' && line.to === 'DRAINING');
  assert.ok(serverA, 'server a went DRAINING when removed');
  // A finished ssh exec ends with either side closing first (CLIENT_CLOSED or SERVER_CLOSED, a race
  // between the client's and sshd's close); a drop would be a reset or a proxy-side close.
  const dropped = proxy.logs.filter((line) => line.event === 'session' && line.spliced === true && !['CLIENT_CLOSED', 'SERVER_CLOSED'].includes(String(line.reason)));
  assert.deepEqual(dropped.map((line) => line.reason), [], 'no spliced session ended by a reset or by the proxy');

  assert.equal(await metric(proxy, /^sshproxy_config_reloads_total\{outcome="ok"\} (\d+)/m), 2);
  assert.equal(await metric(proxy, /^sshproxy_config_reloads_total\{outcome="invalid"\} (\d+)/m), 2);

  for (const connection of held) await connection.close();
  proxy.signal('SIGTERM');
  assert.deepEqual(await proxy.exited, { code: 0, signal: null });
});

test('serve --watch reloads when the file changes; an invalid edit is rejected and the old config kept', { skip, timeout: 60_000 }, async (t) => {
  const sshd = await startSshd();
  t.after(() => sshd.stop());
  const proxy = await startServeProcess(config([{ name: 'a', sshd }], ['ssh']), { args: ['--watch'] });
  t.after(() => proxy.kill());
  await proxy.writeConfig(config([{ name: 'a', sshd }], ['ssh', 'watched']));
  await proxy.waitForLog((line) => line.event === 'config-reload' && line.source === 'watch' && line.outcome === 'ok', 10_000, 'watch reload');
  await proxy.waitForLog((line) => line.event === 'listening' && line.listener === 'watched', 5000);
  await proxy.writeConfig('pools: nope\n');
  await proxy.waitForLog((line) => line.event === 'config-reload' && line.source === 'watch' && line.outcome === 'invalid', 10_000, 'invalid watch reload');
  for (const listener of ['ssh', 'watched']) {
    const result = await rawExchange({ port: proxy.port(listener), until: untilLine, timeoutMs: 5000 });
    assert.equal(result.outcome, 'matched', `${listener} still serves`);
  }
  proxy.signal('SIGTERM');
  assert.deepEqual(await proxy.exited, { code: 0, signal: null });
});
