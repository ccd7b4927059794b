/**
 * Records real SSH logins as the handshake judge sees them, for its unit tests
 * (test/unit/handshake-judge.test.ts replays them): each session through a relay, every
 * chunk either way; the cleartext part (up to both NEWKEYS) byte for byte, after it only
 * the chunk sizes (encrypted: their content tells the judge nothing).
 *   npm run record-flights   (writes test/fixtures/flights/*.json; needs sshd, ssh, paramiko)
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NewKeysWatcher } from '../src/protocol/ssh-packets.js';
import { runSsh } from '../test/fixtures/clients/clients.js';
import { runParamiko } from '../test/fixtures/clients/paramiko-client.js';
import { FLIGHT_RECORDING_VERSION, type FlightRecording, type RecordedChunk } from '../test/fixtures/flights/recording.js';
import { generateEd25519 } from '../test/fixtures/sshd/ssh-keys.js';
import { sshdAvailable, startSshd, type SshdHandle, type SshdVersion } from '../test/fixtures/sshd/sshd.js';

const OUT = fileURLToPath(new URL('../test/fixtures/flights/', import.meta.url));

/** One session through a relay to `target`: what went by, once both sides have closed. */
async function recordOne(target: SshdHandle, run: (port: number) => Promise<boolean>): Promise<{ chunks: RecordedChunk[]; serverIdentification: string; succeeded: boolean }> {
  const chunks: RecordedChunk[] = [];
  let serverIdentification = '';
  let identPending = Buffer.alloc(0);
  const watchers = { c: new NewKeysWatcher({ identLine: 'skip' }), s: new NewKeysWatcher({ identLine: 'none' }) };
  const note = (side: 'c' | 's', chunk: Buffer): void => {
    let data = chunk;
    if (side === 's' && serverIdentification === '') {
      // The server's identification is what the proxy waits for before the splice: kept apart.
      identPending = Buffer.concat([identPending, data]);
      const end = identPending.indexOf('\n');
      if (end === -1) return;
      serverIdentification = identPending.subarray(0, end + 1).toString('latin1');
      data = identPending.subarray(end + 1);
      if (data.length === 0) return;
    }
    const cleartext = watchers.c.state !== 'newkeys' || watchers.s.state !== 'newkeys';
    if (cleartext) watchers[side].push(Buffer.from(data));
    chunks.push(cleartext ? [side, data.toString('base64')] : [side, data.length]);
  };
  let closed: () => void = () => {};
  const done = new Promise<void>((resolve) => (closed = resolve));
  const relay = net.createServer((client) => {
    const server = net.connect(target.port, target.host);
    let open = 2;
    const ended = (): void => {
      open -= 1;
      if (open === 0) closed();
    };
    client.on('data', (chunk: Buffer) => {
      note('c', chunk);
      server.write(chunk);
    });
    server.on('data', (chunk: Buffer) => {
      note('s', chunk);
      client.write(chunk);
    });
    client.on('close', () => (server.destroy(), ended()));
    server.on('close', () => (client.destroy(), ended()));
    client.on('error', () => {});
    server.on('error', () => {});
  });
  relay.listen(0, '127.0.0.1');
  await new Promise((resolve) => relay.once('listening', resolve));
  const succeeded = await run((relay.address() as net.AddressInfo).port);
  await done;
  relay.close();
  return { chunks, serverIdentification, succeeded };
}

interface Scenario {
  readonly name: string;
  readonly client: string;
  readonly expected: 'ok' | 'authfail';
  readonly run: (port: number, sshd: SshdHandle, wrongKeys: readonly string[]) => Promise<boolean>;
}

const ssh = (identities: (sshd: SshdHandle, wrong: readonly string[]) => string[]) => async (port: number, sshd: SshdHandle, wrong: readonly string[]): Promise<boolean> => {
  const [first, ...more] = identities(sshd, wrong);
  const result = await runSsh({ host: '127.0.0.1', port, user: sshd.user, identityFile: first as string, command: 'true', timeoutMs: 20_000, extraOptions: more.map((file) => `IdentityFile=${file}`) });
  return result.code === 0;
};

const SCENARIOS: readonly Scenario[] = [
  { name: 'ssh-key', client: 'OpenSSH ssh', expected: 'ok', run: ssh((sshd) => [sshd.identityFile]) },
  { name: 'ssh-two-wrong-keys-then-right', client: 'OpenSSH ssh', expected: 'ok', run: ssh((sshd, wrong) => [...wrong, sshd.identityFile]) },
  { name: 'ssh-wrong-keys', client: 'OpenSSH ssh', expected: 'authfail', run: ssh((_sshd, wrong) => [...wrong]) },
  {
    name: 'paramiko-key',
    client: 'paramiko',
    expected: 'ok',
    run: async (port, sshd) => (await runParamiko({ host: '127.0.0.1', port, user: sshd.user, identityFile: sshd.identityFile, command: 'true', timeoutMs: 20_000 })).ok,
  },
  {
    name: 'paramiko-wrong-key',
    client: 'paramiko',
    expected: 'authfail',
    run: async (port, sshd, wrong) => (await runParamiko({ host: '127.0.0.1', port, user: sshd.user, identityFile: wrong[0] as string, command: 'true', timeoutMs: 20_000 })).ok,
  },
];

async function main(): Promise<void> {
  await mkdir(OUT, { recursive: true });
  const keys = await mkdtemp(path.join(os.tmpdir(), 'sbp-flights-'));
  try {
    const wrongKeys = [path.join(keys, 'wrong1'), path.join(keys, 'wrong2')];
    for (const file of wrongKeys) await generateEd25519(file, 'not authorised');
    for (const version of [9, 10] as const satisfies readonly SshdVersion[]) {
      if (!sshdAvailable(version)) {
        console.log(`sshd ${version}: not installed, skipped`);
        continue;
      }
      const sshd = await startSshd({ version });
      try {
        for (const scenario of SCENARIOS) {
          const recorded = await recordOne(sshd, (port) => scenario.run(port, sshd, wrongKeys));
          if (recorded.succeeded !== (scenario.expected === 'ok')) throw new Error(`${scenario.name} on sshd ${version}: the login ${recorded.succeeded ? 'succeeded' : 'failed'}`);
          const recording: FlightRecording = {
            version: FLIGHT_RECORDING_VERSION,
            scenario: scenario.name,
            client: scenario.client,
            serverIdentification: recorded.serverIdentification.trimEnd(),
            expected: scenario.expected,
            chunks: recorded.chunks,
          };
          const file = path.join(OUT, `sshd${version}-${scenario.name}.json`);
          await writeFile(file, `${JSON.stringify(recording, null, 1)}\n`);
          console.log(`${path.relative(process.cwd(), file)}: ${recorded.chunks.length} chunks`);
        }
      } finally {
        await sshd.stop();
      }
    }
  } finally {
    await rm(keys, { recursive: true, force: true });
  }
}

await main();
