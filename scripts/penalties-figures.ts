/**
 * `npm run penalties`: the figures of docs/penalties.md, measured in one run against real
 * OpenSSH 10.0 (PerSourcePenalties on by default) and real clients, all on loopback.
 *   1. A client from 127.0.0.5 tries 10 logins with a wrong key while 20 clients from
 *      127.0.0.6 log in, through the proxy, with both sshd exempting the proxy: how many
 *      good clients succeed, and after how many failures the bad one is refused
 *      (beside: after how many sshd itself refuses it, directly).
 *   2. The same with sshd not exempting the proxy: the lock-out, counted (without the
 *      proxy's own penalties, then with them).
 *   3. The MaxStartups burst of docs/pool.md on 10.0: 40 paramiko clients, 2 sshd at 4:50:8.
 *   4. 200 sequential `ssh … true` logins with a good key: penalties charged.
 * Writes bench/results/penalties.json.
 */
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runSsh } from '../test/fixtures/clients/clients.js';
import { formatBurstResult, runBurstScenario } from '../test/fixtures/clients/burst-scenario.js';
import { scrape } from '../test/fixtures/proxy/prometheus.js';
import { startProxy, type TestProxy } from '../test/fixtures/proxy/proxy.js';
import { runProcess } from '../test/fixtures/run-process.js';
import { generateEd25519 } from '../test/fixtures/sshd/ssh-keys.js';
import { SSHD_DROP_LINE } from '../test/fixtures/sshd/sshd-versions.js';
import { sshdAvailable, startSshd, type SshdHandle } from '../test/fixtures/sshd/sshd.js';

const BAD = '127.0.0.5';
const GOOD = '127.0.0.6';

const { values } = parseArgs({ options: { logins: { type: 'string', default: '200' }, 'skip-burst': { type: 'boolean', default: false } } });

if (!sshdAvailable(10)) {
  console.error('OpenSSH 10.0 is not unpacked: run scripts/unpack-openssh10.sh (as root) first');
  process.exit(1);
}

interface LoginOutcome {
  readonly ok: boolean;
  /** reached sshd and was refused there (Permission denied), or refused before (by the proxy or sshd's listener) */
  readonly result: 'ok' | 'auth-refused' | 'connection-refused' | 'other';
}

function classify(code: number | null, stderr: string): LoginOutcome {
  if (code === 0) return { ok: true, result: 'ok' };
  if (/Permission denied/.test(stderr)) return { ok: false, result: 'auth-refused' };
  if (/kex_exchange_identification|Connection closed|Connection reset/.test(stderr)) return { ok: false, result: 'connection-refused' };
  return { ok: false, result: 'other' };
}

async function login(target: { host: string; port: number }, sshd: SshdHandle, from: string, identityFile: string): Promise<LoginOutcome> {
  const run = await runSsh({ ...sshd, host: target.host, port: target.port, identityFile, command: 'true', timeoutMs: 30_000, extraOptions: [`BindAddress=${from}`] });
  return classify(run.code, run.stderr);
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'sbp-penalty-figures-'));
const wrongKey = (await generateEd25519(path.join(dir, 'wrong'), 'not authorized')).privateKeyPath;

/** Two sshd 10.0 that accept the same client key. */
async function twoSshd(exemptLoopback: boolean, maxStartups?: string): Promise<SshdHandle[]> {
  const options = { version: 10, exemptLoopback, ...(maxStartups === undefined ? {} : { maxStartups }) } as const;
  const [a, b] = [await startSshd(options), await startSshd(options)];
  await appendFile(`${b.dir}/authorized_keys`, await readFile(`${a.identityFile}.pub`, 'utf8'));
  return [a, b];
}

async function proxyFor(servers: readonly SshdHandle[], penalties: boolean): Promise<TestProxy> {
  return startProxy({
    servers: servers.map((server, index) => ({ name: `sshd${index + 1}`, host: server.host, port: server.port })),
    pool: { healthCheck: { enabled: true, interval: '5s', timeout: '3s' } },
    config: { penalties: penalties ? {} : 'off', admin: { bind: '127.0.0.1:0' } },
    logLevel: 'info',
  });
}

/**
 * One bad client's 10 tries; after its 8th, 20 good clients at once while it keeps trying.
 * Eight: two backends under round-robin each see four, enough for each sshd to penalise.
 */
async function mixedLogins(proxy: TestProxy, sshd: SshdHandle) {
  const target = { host: proxy.host, port: proxy.port };
  const bad: LoginOutcome[] = [];
  let eighthTry: () => void = () => {};
  const triedEightTimes = new Promise<void>((resolve) => (eighthTry = resolve));
  const badLoop = (async () => {
    for (let attempt = 0; attempt < 10; attempt += 1) {
      bad.push(await login(target, sshd, BAD, wrongKey));
      if (bad.length === 8) eighthTry();
    }
  })();
  await triedEightTimes;
  const good = await Promise.all(Array.from({ length: 20 }, () => login(target, sshd, GOOD, sshd.identityFile)));
  await badLoop;
  return { bad, good };
}

async function rejected(proxy: TestProxy): Promise<{ penalized: number; charged: number; episodes: number }> {
  const metrics = await scrape(proxy.runtime.adminPort);
  return {
    penalized: metrics.sum('sshproxy_connections_rejected_total', { reason: 'PENALIZED' }),
    charged: metrics.sum('sshproxy_penalties_charged_total'),
    episodes: metrics.sum('sshproxy_backend_penalty_episodes_total'),
  };
}

const figures: Record<string, unknown> = { machine: { cpus: os.availableParallelism(), node: process.version }, at: new Date().toISOString() };

// 1–2. The bad client among good ones: with both sshd exempting the proxy (the proxy carries
// the penalties), then without the exemption, without and with the proxy's own penalties.
const SETUPS = [
  { name: 'exempted', exemptLoopback: true, proxyPenalties: true },
  { name: 'notExemptedNoProxyPenalties', exemptLoopback: false, proxyPenalties: false },
  { name: 'notExemptedWithProxyPenalties', exemptLoopback: false, proxyPenalties: true },
] as const;
for (const setup of SETUPS) {
  const servers = await twoSshd(setup.exemptLoopback);
  const proxy = await proxyFor(servers, setup.proxyPenalties);
  const { bad, good } = await mixedLogins(proxy, servers[0] as SshdHandle);
  const counts = await rejected(proxy);
  const sessions = proxy.sessions();
  const goodSessions = sessions.filter((line) => line.client === GOOD);
  const attempts = (lines: typeof sessions): number => lines.reduce((total, line) => total + (Array.isArray(line.attempts) ? line.attempts.length : 0), 0);
  const sshdLogs = (await Promise.all(servers.map((server) => server.readLog()))).join('');
  figures[setup.name] = {
    goodSucceeded: good.filter((outcome) => outcome.ok).length,
    goodClients: good.length,
    badResults: bad.map((outcome) => outcome.result),
    badFailuresBeforeRefusal: bad.findIndex((outcome) => outcome.result === 'connection-refused'),
    proxyPenalized: counts.penalized,
    penaltiesCharged: counts.charged,
    charges: sessions.filter((line) => line.penaltyCharged === true).map((line) => `${String(line.client)} ${String(line.auth)} ${String(line.reason)}`),
    sshdPenaltyActivations: sshdLogs.match(/activating .* penalty|new .* active penalty/g)?.length ?? 0,
    backendPenaltyEpisodes: counts.episodes,
    backendAttemptsForGoodClients: attempts(goodSessions),
    goodSessionReasons: Object.fromEntries(
      [...new Set(goodSessions.map((line) => String(line.reason)))].map((reason) => [reason, goodSessions.filter((line) => line.reason === reason).length]),
    ),
    hintLogged: proxy.logs.some((line) => line.event === 'backend-penalty' && line.phase === 'started'),
  };
  await proxy.stop();
  await Promise.all(servers.map((server) => server.stop()));
}

// Beside them: the same bad client straight at sshd 10.0, which penalises it itself.
{
  const sshd = await startSshd({ version: 10, exemptLoopback: false });
  const results: LoginOutcome[] = [];
  for (let attempt = 0; attempt < 10; attempt += 1) results.push(await login(sshd, sshd, BAD, wrongKey));
  figures.sshdDirect = { badResults: results.map((outcome) => outcome.result), failuresBeforeRefusal: results.findIndex((outcome) => outcome.result === 'connection-refused') };
  await sshd.stop();
}

// 3. The burst of docs/pool.md on OpenSSH 10.0 (penalties on in the proxy).
if (!values['skip-burst']) {
  const burst = await runBurstScenario({ sshdMaxStartups: '4:50:8', clients: 40, holdSec: 5, directBoth: true, sshdVersion: 10, timeoutMs: 180_000 });
  console.log(formatBurstResult(burst));
  figures.burst = burst.phases.map((phase) => ({ label: phase.label, failed: phase.summary.failed, clients: phase.summary.clients, sshdDrops: phase.sshdDrops }));
}

// 5. The end of the handshake with several keys offered: 60 OpenSSH clients at once, 2 sshd
// 10.0 at MaxStartups 4:50:8, each client offering two wrong keys before the right one (and,
// beside it, one key). sshd must never have to drop a connection the proxy let through.
for (const keys of [1, 3]) {
  const servers = await twoSshd(true, '4:50:8');
  const proxy = await startProxy({
    servers: servers.map((server, index) => ({ name: `sshd${index + 1}`, host: server.host, port: server.port })),
    pool: { balance: 'leastconn', handshake: { maxStartups: 4 }, healthCheck: { enabled: true, interval: '2s', timeout: '2s' }, queue: { timeout: '20s', maxLength: 1000 } },
    config: { penalties: {}, admin: { bind: '127.0.0.1:0' } },
    logLevel: 'info',
  });
  const sshd = servers[0] as SshdHandle;
  const wrong2 = (await generateEd25519(path.join(dir, `wrong-b-${keys}`), 'not authorized either')).privateKeyPath;
  const identities = keys === 1 ? [sshd.identityFile] : [wrongKey, wrong2, sshd.identityFile];
  const dropsBefore = (await Promise.all(servers.map((server) => server.readLog()))).join('').match(SSHD_DROP_LINE)?.length ?? 0;
  const runs = await Promise.all(
    Array.from({ length: 60 }, () =>
      runProcess('/usr/bin/ssh', [
        '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'IdentitiesOnly=yes',
        ...identities.flatMap((key) => ['-i', key]),
        '-p', String(proxy.port), `${sshd.user}@${proxy.host}`, 'sleep 2',
      ], { timeoutMs: 60_000 }),
    ),
  );
  const sessions = await proxy.waitForSessions(60, 30_000);
  const drops = ((await Promise.all(servers.map((server) => server.readLog()))).join('').match(SSHD_DROP_LINE)?.length ?? 0) - dropsBefore;
  const releases: Record<string, number> = {};
  for (const line of sessions) releases[String(line.slotRelease)] = (releases[String(line.slotRelease)] ?? 0) + 1;
  figures[`sshBurst${keys}Keys`] = {
    clients: 60,
    keysOffered: keys,
    failed: runs.filter((run) => run.code !== 0).length,
    sshdDrops: drops,
    sessionsRetried: sessions.filter((line) => Array.isArray(line.attempts) && line.attempts.length > 1).length,
    slotReleases: releases,
  };
  await proxy.stop();
  await Promise.all(servers.map((server) => server.stop()));
}

// 4. Sequential good logins: none may be charged.
{
  const servers = [await startSshd({ version: 10 })];
  const proxy = await proxyFor(servers, true);
  const sshd = servers[0] as SshdHandle;
  const logins = Number(values.logins);
  let failed = 0;
  for (let index = 0; index < logins; index += 1) if (!(await login({ host: proxy.host, port: proxy.port }, sshd, '127.0.0.1', sshd.identityFile)).ok) failed += 1;
  const counts = await rejected(proxy);
  const metrics = await scrape(proxy.runtime.adminPort);
  figures.sequential = {
    logins,
    failed,
    penaltiesCharged: counts.charged,
    proxyPenalized: counts.penalized,
    authOk: metrics.sum('sshproxy_auth_outcomes_total', { outcome: 'ok' }),
    slotReleasedAtAuth: metrics.sum('sshproxy_slot_releases_total', { how: 'auth' }),
  };
  await proxy.stop();
  await Promise.all(servers.map((server) => server.stop()));
}

await rm(dir, { recursive: true, force: true });
const out = new URL('../bench/results/penalties.json', import.meta.url);
await mkdir(new URL('.', out), { recursive: true });
await writeFile(out, `${JSON.stringify(figures, null, 2)}\n`);
console.log(JSON.stringify(figures, null, 2));
