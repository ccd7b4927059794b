/**
 * 16, 100 and 1,000 sockets that never identify, then 12 real `ssh` logins at once:
 * through the proxy vs straight to a stock sshd, in the same run. The proxy must never be
 * easier to deny than the sshd it protects. The sockets are `silent` (connect, send
 * nothing; from one source and from 100), send `one-byte` (`S`, then nothing), or
 * `trickle` an identification one byte a second, its end never sent (issue 24, defect 1).
 */
import net from 'node:net';
import { runSsh } from '../../test/fixtures/clients/clients.js';
import { startProxy } from '../../test/fixtures/proxy/proxy.js';
import { startSshd, type SshdHandle } from '../../test/fixtures/sshd/sshd.js';
import { measured, sourceAddress, type FaultResult } from './harness.js';

const LOGINS = 12;

type FloodMode = 'silent' | 'one-byte' | 'trickle';

const TRICKLED_LINE = 'SSH-2.0-trickle_never_ending_';

async function openIdle(port: number, count: number, sources: number, mode: FloodMode): Promise<net.Socket[]> {
  const sockets = await Promise.all(
    Array.from({ length: count }, (_, index) =>
      new Promise<net.Socket>((resolve) => {
        const socket = net.connect({ host: '127.0.0.1', port, localAddress: sourceAddress(index, sources) });
        socket.on('error', () => {});
        socket.on('data', () => {});
        socket.once('connect', () => {
          if (mode !== 'silent') socket.write('S');
          resolve(socket);
        });
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

async function underFlood(port: number, sshd: SshdHandle, idle: number, sources: number, mode: FloodMode): Promise<number> {
  const sockets = await openIdle(port, idle, sources, mode);
  // One timer for every trickling socket: the next byte of the line each second, never its end.
  let sent = 1;
  const trickle = mode === 'trickle' ? setInterval(() => {
    const byte = TRICKLED_LINE[sent % TRICKLED_LINE.length] ?? 'x';
    sent += 1;
    for (const socket of sockets) if (!socket.destroyed) socket.write(byte);
  }, 1000) : undefined;
  try {
    return await logins(port, sshd);
  } finally {
    clearInterval(trickle);
    for (const socket of sockets) socket.destroy();
  }
}

export async function idleFlood(quick: boolean): Promise<FaultResult[]> {
  const results: FaultResult[] = [];
  const counts = quick ? [16, 100] : [16, 100, 1000];
  const floods: { readonly mode: FloodMode; readonly sources: number }[] = [
    { mode: 'silent', sources: 1 },
    { mode: 'silent', sources: 100 },
    { mode: 'one-byte', sources: 1 },
    { mode: 'trickle', sources: 1 },
  ];
  for (const { mode, sources } of floods) {
    for (const idle of counts) {
      const name = mode === 'silent' ? `idle-flood-${idle}x${sources}` : `${mode}-flood-${idle}x${sources}`;
      results.push(
        await measured(name, `${idle} ${mode} sockets from ${sources} source(s), then ${LOGINS} ssh logins: proxy vs stock sshd`, async () => {
          const direct = await startSshd();
          const behind = await startSshd();
          const proxy = await startProxy({ servers: [{ name: 'sshd', host: '127.0.0.1', port: behind.port }], logLevel: 'info' });
          try {
            const directOk = await underFlood(direct.port, direct, idle, sources, mode);
            const proxyOk = await underFlood(proxy.port, behind, idle, sources, mode);
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
