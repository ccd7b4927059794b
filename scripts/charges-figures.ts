/**
 * `npm run charges`: how many successful logins the proxy would charge a penalty for
 * (issue 24, defect 10; docs/penalties.md). Bursts of real logins that all succeed,
 * through the proxy to two real sshd, with sshd 9.2 and 10.0 and with paramiko and
 * OpenSSH's `ssh`; every session summary that says `penaltyCharged: true` for a client
 * that logged in is a wrong charge. Each login opens the sftp subsystem (sshd's internal-sftp)
 * and lists a directory: a real session that runs no shell. Prints one row per combination, the outcome counts and
 * every wrongly charged session line, and writes bench/results/charges.json.
 *   npm run charges                               10,000 logins, 60 at a time
 *   npm run charges -- --logins 2000 --concurrency 40
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { runSsh } from '../test/fixtures/clients/clients.js';
import { runParamikoBurst } from '../test/fixtures/clients/paramiko-burst.js';
import { startProxy, type LogLine } from '../test/fixtures/proxy/proxy.js';
import { sshdAvailable, startSshd, type SshdHandle, type SshdVersion } from '../test/fixtures/sshd/sshd.js';

const { values } = parseArgs({
  options: {
    logins: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '60' },
    clients: { type: 'string', default: 'paramiko,ssh' },
    sshd: { type: 'string', default: '9,10' },
  },
});
const totalLogins = Number(values.logins);
const concurrency = Number(values.concurrency);

type ClientKind = 'paramiko' | 'ssh';

interface ComboResult {
  readonly sshd: string;
  readonly client: ClientKind;
  readonly logins: number;
  readonly clientFailures: number;
  readonly sessions: number;
  readonly charged: number;
  /** Charged sessions in rounds where every client logged in: certainly wrong. */
  readonly wronglyCharged: number;
  readonly outcomes: Record<string, number>;
  readonly slotReleases: Record<string, number>;
  readonly wrongLines: readonly LogLine[];
}

async function round(kind: ClientKind, proxyPort: number, sshd: SshdHandle, clients: number): Promise<number> {
  if (kind === 'paramiko') {
    const summary = await runParamikoBurst({ targets: [{ host: '127.0.0.1', port: proxyPort }], user: sshd.user, identityFile: sshd.identityFile, clients, command: 'true', subsystem: 'sftp', timeoutMs: 120_000 });
    return summary.failed;
  }
  const runs = await Promise.all(
    Array.from({ length: clients }, () => runSsh({ host: '127.0.0.1', port: proxyPort, user: sshd.user, identityFile: sshd.identityFile, command: 'sftp', extraOptions: ['SessionType=subsystem'], stdin: '', timeoutMs: 60_000 })),
  );
  return runs.filter((run) => run.code !== 0).length;
}

function count(lines: readonly LogLine[], field: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of lines) {
    const value = String(line[field] ?? '-');
    counts[value] = (counts[value] ?? 0) + 1;
  }
  return counts;
}

async function combo(version: SshdVersion, kind: ClientKind, logins: number): Promise<ComboResult> {
  // internal-sftp: a login that runs no shell (a root shell's rc files would make the run CPU-bound here).
  const extraConfig = ['Subsystem sftp internal-sftp'];
  const a = await startSshd({ version, extraConfig });
  const b = await startSshd({ version, extraConfig });
  await appendFile(`${b.dir}/authorized_keys`, await readFile(`${a.identityFile}.pub`, 'utf8'));
  const proxy = await startProxy({
    servers: [a, b].map((server, index) => ({ name: `sshd${index + 1}`, host: server.host, port: server.port })),
    pool: { verify: 'kexinit', balance: 'leastconn', queue: { timeout: '20s', maxLength: 10_000 } },
    config: { limits: { maxConnections: 10_000 } },
    logLevel: 'info',
  });
  let clientFailures = 0;
  let wronglyCharged = 0;
  const wrongLines: LogLine[] = [];
  try {
    for (let done = 0; done < logins; ) {
      const clients = Math.min(concurrency, logins - done);
      const before = proxy.sessions().length;
      const failed = await round(kind, proxy.port, a, clients);
      const lines = (await proxy.waitForSessions(before + clients, 30_000)).slice(before);
      const charged = lines.filter((line) => line.penaltyCharged === true);
      clientFailures += failed;
      // Rounds with a failed client cannot say which charge was right: only their excess counts.
      const wrong = failed === 0 ? charged : charged.slice(failed);
      wronglyCharged += wrong.length;
      wrongLines.push(...wrong);
      done += clients;
      process.stderr.write(`\r${version === 10 ? '10.0' : '9.2'} ${kind}: ${done}/${logins}, wrongly charged ${wronglyCharged}, client failures ${clientFailures}   `);
    }
    process.stderr.write('\n');
    const sessions = proxy.sessions();
    return {
      sshd: version === 10 ? '10.0' : '9.2',
      client: kind,
      logins,
      clientFailures,
      sessions: sessions.length,
      charged: sessions.filter((line) => line.penaltyCharged === true).length,
      wronglyCharged,
      outcomes: count(sessions, 'auth'),
      slotReleases: count(sessions, 'slotRelease'),
      wrongLines,
    };
  } finally {
    await proxy.stop();
    await a.stop();
    await b.stop();
  }
}

const versions = values.sshd.split(',').map(Number).filter((version): version is SshdVersion => version === 9 || version === 10);
if (versions.includes(10) && !sshdAvailable(10)) throw new Error('OpenSSH 10.0 is not unpacked: run scripts/unpack-openssh10.sh (as root) first');
const kinds = values.clients.split(',').filter((kind): kind is ClientKind => kind === 'paramiko' || kind === 'ssh');
const perCombo = Math.ceil(totalLogins / (versions.length * kinds.length));
const results: ComboResult[] = [];
for (const version of versions) {
  for (const kind of kinds) results.push(await combo(version, kind, perCombo));
}
for (const result of results) {
  console.log(
    `sshd ${result.sshd} ${result.client.padEnd(8)} logins ${result.logins}, client failures ${result.clientFailures}, charged ${result.charged}, wrongly charged ${result.wronglyCharged}; outcomes ${JSON.stringify(result.outcomes)}; slot releases ${JSON.stringify(result.slotReleases)}`,
  );
  for (const line of result.wrongLines) console.log(`  wrong: ${JSON.stringify(line)}`);
}
const wrong = results.reduce((sum, result) => sum + result.wronglyCharged, 0);
const logins = results.reduce((sum, result) => sum + result.logins, 0);
console.log(`\n${wrong} wrongly charged in ${logins} logins`);
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/charges.json', `${JSON.stringify({ at: new Date().toISOString(), node: process.version, concurrency, results }, null, 2)}\n`);
process.exitCode = wrong > 0 ? 1 : 0;
