/**
 * 16, 100 and 1,000 idle sockets (connect, send nothing), from one source and from 100,
 * then 12 real `ssh` logins at once: through the proxy vs straight to a stock sshd, in
 * the same run. The proxy must never be easier to deny than the sshd it protects.
 */
import net from 'node:net';
import { runSsh } from '../../test/fixtures/clients.js';
import { startProxy } from '../../test/fixtures/proxy.js';
import { startSshd, type SshdHandle } from '../../test/fixtures/sshd.js';
import { measured, sourceAddress, type FaultResult } from './harness.js';

const LOGINS = 12;

async function openIdle(port: number, count: number, sources: number): Promise<net.Socket[]> {
  const sockets = await Promise.all(
    Array.from({ length: count }, (_, index) =>
      new Promise<net.Socket>((resolve) => {
        const socket = net.connect({ host: '127.0.0.1', port, localAddress: sourceAddress(index, sources) });
        socket.on('error', () => {});
        socket.on('data', () => {});
        socket.once('connect', () => resolve(socket));
        socket.once('close', () => resolve(socket));
      }),
    ),
  );
  return sockets;
}

async function logins(port: number, sshd: SshdHandle): Promise<number> {
  const results = await Promise.all(
    Array.from({ length: LOGINS }, () => runSsh({ host: '127.0.0.1', port, user: sshd.user, identityFile: sshd.identityFile, command: 'true', timeoutMs: 30_000 })),
  );
  return results.filter((result) => result.code === 0).length;
}

async function underFlood(port: number, sshd: SshdHandle, idle: number, sources: number): Promise<number> {
  const sockets = await openIdle(port, idle, sources);
  try {
    return await logins(port, sshd);
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}

export async function idleFlood(quick: boolean): Promise<FaultResult[]> {
  const results: FaultResult[] = [];
  const counts = quick ? [16, 100] : [16, 100, 1000];
  for (const sources of [1, 100]) {
    for (const idle of counts) {
      results.push(
        await measured(`idle-flood-${idle}x${sources}`, `${idle} idle sockets from ${sources} source(s), then ${LOGINS} ssh logins: proxy vs stock sshd`, async () => {
          const direct = await startSshd();
          const behind = await startSshd();
          const proxy = await startProxy({ servers: [{ name: 'sshd', host: '127.0.0.1', port: behind.port }], logLevel: 'info' });
          try {
            const directOk = await underFlood(direct.port, direct, idle, sources);
            const proxyOk = await underFlood(proxy.port, behind, idle, sources);
            const silentCut = proxy.sessions().filter((line) => line.reason === 'CLIENT_SILENT').length;
            return {
              sessionsLost: Math.max(0, directOk - proxyOk),
              streamsChecked: 0,
              streamsCorrupt: 0,
              accountingOk: proxy.runtime.server.pools.get('main')?.servers[0]?.silentHandshakes !== undefined,
              figures: { directLogins: `${directOk}/${LOGINS}`, proxyLogins: `${proxyOk}/${LOGINS}`, silentCut },
            };
          } finally {
            await proxy.stop();
            await direct.stop();
            await behind.stop();
          }
        }),
      );
    }
  }
  return results;
}
