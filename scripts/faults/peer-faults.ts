/**
 * Peers that vanish or stop reading: 5 clients in a network namespace whose link is
 * cut (TCP keepalive must find them), and stalled readers on each side (the write
 * stall must end them). Every session must end with the reason that says what
 * happened, and every descriptor must come back.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { startFixtureBackend } from '../../test/fixtures/backends/hostile-backends.js';
import { createLinkedNamespace, netnsUnavailable } from '../../test/fixtures/net/netns.js';
import { startProxy } from '../../test/fixtures/proxy/proxy.js';
import { measured, type FaultResult } from './harness.js';

export async function linkCut(): Promise<FaultResult | undefined> {
  if (netnsUnavailable() !== undefined) return undefined;
  return measured('client-link-cut', '5 clients in a network namespace, link cut after their banner: TCP keepalive (1 s) must end each as CLIENT_LOST', async () => {
    const echo = await startFixtureBackend('ssh-echo');
    const ns = createLinkedNamespace();
    const proxy = await startProxy({
      servers: [{ name: 'echo', host: echo.host, port: echo.port }],
      pool: { handshake: { endsAt: 'splice' } },
      listener: { bind: `${ns.hostAddress}:0` },
      config: { timeouts: { tcpKeepalive: '1s' } },
      logLevel: 'info',
    });
    const script = `
      let ready = 0;
      for (let i = 0; i < 5; i += 1) {
        const socket = require('node:net').connect({ host: ${JSON.stringify(ns.hostAddress)}, port: ${proxy.port} });
        socket.on('error', () => {});
        socket.write('SSH-2.0-LinkCut_1.0\\r\\n');
        let seen = '';
        // READY after the kernel's delayed ACK (40 ms) is surely out: nothing left in flight.
        socket.on('data', (chunk) => { seen += chunk; if (seen.includes('LinkCut') && (ready += 1) === 5) setTimeout(() => console.log('READY'), 200); });
      }
      setTimeout(() => process.exit(0), 60000);`;
    const [command = 'ip', ...args] = [...ns.exec, process.execPath, '-e', script];
    const client = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => client.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('READY') && resolve()));
      const cutAt = performance.now();
      ns.cutLink();
      const summaries = await proxy.waitForSessions(5, 40_000);
      const lost = summaries.filter((line) => line.reason === 'CLIENT_LOST').length;
      await echo.waitForClosed(5, 5000);
      return {
        sessionsLost: 0,
        streamsChecked: 0,
        streamsCorrupt: 0,
        accountingOk: lost === 5 && proxy.runtime.server.activeConnections === 0,
        figures: { endedClientLost: `${lost}/5`, noticedAfterSeconds: Math.round((performance.now() - cutAt) / 100) / 10 },
      };
    } finally {
      client.kill('SIGKILL');
      await proxy.stop();
      await echo.close();
      ns.remove();
    }
  });
}

export async function stalledReaders(): Promise<FaultResult> {
  return measured('stalled-readers', 'a backend that never reads (client sends 32 MiB) and a client that never reads (backend floods): both ended by writeStall 1 s', async () => {
    const stall = await startFixtureBackend('ssh-stall');
    const flood = await startFixtureBackend('ssh-echo');
    const proxy = await startProxy({
      servers: [{ name: 'stall', host: stall.host, port: stall.port }],
      pool: { handshake: { endsAt: 'splice' } },
      config: { timeouts: { writeStall: '1s' } },
      logLevel: 'info',
    });
    const echoProxy = await startProxy({
      servers: [{ name: 'echo', host: flood.host, port: flood.port }],
      pool: { handshake: { endsAt: 'splice' } },
      config: { timeouts: { writeStall: '1s' } },
      logLevel: 'info',
    });
    try {
      // Toward a backend that reads nothing.
      const toStall = net.connect({ host: '127.0.0.1', port: proxy.port });
      toStall.on('error', () => {});
      toStall.once('data', () => {
        toStall.write(Buffer.alloc(32 * 1024 * 1024, 1));
        toStall.end();
      });
      // A client that reads nothing, while the echo backend sends its 32 MiB back.
      const nonReader = net.connect({ host: '127.0.0.1', port: echoProxy.port });
      nonReader.on('error', () => {});
      nonReader.write('SSH-2.0-NonReader_1.0\r\n');
      nonReader.write(Buffer.alloc(32 * 1024 * 1024, 2));
      nonReader.pause();
      const [serverStall] = await proxy.waitForSessions(1, 20_000);
      const [clientStall] = await echoProxy.waitForSessions(1, 20_000);
      toStall.destroy();
      nonReader.destroy();
      return {
        sessionsLost: 0,
        streamsChecked: 0,
        streamsCorrupt: 0,
        accountingOk: serverStall?.reason === 'SERVER_WRITE_STALL' && (clientStall?.reason === 'CLIENT_WRITE_STALL' || clientStall?.reason === 'SERVER_WRITE_STALL'),
        figures: { backendThatStopsReading: serverStall?.reason, clientThatStopsReading: clientStall?.reason },
      };
    } finally {
      await proxy.stop();
      await echoProxy.stop();
      await stall.close();
      await flood.close();
    }
  });
}
