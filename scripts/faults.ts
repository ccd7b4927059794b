/**
 * `npm run faults`: the standing fault and abuse suite, against real sshd, fixture
 * backends and real `serve` processes. Bounded to a few minutes; prints one row per
 * case and writes bench/results/faults.json. docs/reliability.md holds the figures.
 *   npm run faults                 every case
 *   npm run faults -- --quick      fewer idle sockets, 2·10^4 fuzz inputs
 *   npm run faults -- --only idle-flood,signal-storms
 * Cases: proxy-protocol-fuzz, backend-killed, backend-sigstop, stalled-readers, client-link-cut,
 * fd-exhaustion-reload, signal-storms, worker-kills, idle-flood, big-streams, store-restarts,
 * worker-killed-mid-stream, admin-flood, penalty-table.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { backendFrozen, backendKilled } from './faults/backend-faults.js';
import { adminFlood, bigStreams, penaltyTable, storeRestarts, workerKilledMidStream } from './faults/campaign-faults.js';
import type { FaultResult } from './faults/harness.js';
import { idleFlood } from './faults/idle-flood.js';
import { linkCut, stalledReaders } from './faults/peer-faults.js';
import { descriptorExhaustion, signalStorms, workerKills } from './faults/process-faults.js';
import { proxyFuzz } from './faults/proxy-fuzz.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } });
const quick = values.quick;
const only = values.only?.split(',');

const cases: { readonly name: string; readonly run: () => Promise<FaultResult | FaultResult[] | undefined> }[] = [
  { name: 'proxy-protocol-fuzz', run: () => proxyFuzz(quick ? 20_000 : 100_000) },
  { name: 'backend-killed', run: backendKilled },
  { name: 'backend-sigstop', run: backendFrozen },
  { name: 'stalled-readers', run: stalledReaders },
  { name: 'client-link-cut', run: linkCut },
  { name: 'fd-exhaustion-reload', run: descriptorExhaustion },
  { name: 'signal-storms', run: signalStorms },
  { name: 'worker-kills', run: workerKills },
  { name: 'idle-flood', run: () => idleFlood(quick) },
  { name: 'big-streams', run: () => bigStreams(quick) },
  { name: 'store-restarts', run: () => storeRestarts(quick) },
  { name: 'worker-killed-mid-stream', run: workerKilledMidStream },
  { name: 'admin-flood', run: () => adminFlood(quick) },
  { name: 'penalty-table', run: () => penaltyTable(quick) },
];

const results: FaultResult[] = [];
for (const entry of cases) {
  if (only && !only.includes(entry.name)) continue;
  const started = performance.now();
  const outcome = await entry.run();
  if (outcome === undefined) {
    console.log(`${entry.name}: skipped (needs root and network namespaces)`);
    continue;
  }
  for (const result of Array.isArray(outcome) ? outcome : [outcome]) {
    results.push(result);
    console.log(
      `${result.ok ? 'ok  ' : 'FAIL'} ${result.name.padEnd(24)} lost ${result.sessionsLost}, streams ${result.streamsChecked - result.streamsCorrupt}/${result.streamsChecked} intact, fds ${result.fdsBefore}→${result.fdsAfter}, rss ${result.rssBeforeMiB}→${result.rssAfterMiB} MiB, accounting ${result.accountingOk ? 'ok' : 'WRONG'}  ${JSON.stringify(result.figures)}`,
    );
  }
  console.log(`  (${entry.name}: ${Math.round((performance.now() - started) / 1000)} s)`);
}
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/faults.json', `${JSON.stringify({ at: new Date().toISOString(), node: process.version, cpus: os.cpus().length, quick, results }, null, 2)}\n`);
const failed = results.filter((result) => !result.ok);
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed`);
process.exitCode = failed.length > 0 ? 1 : 0;
