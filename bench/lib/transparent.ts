/**
 * `npm run bench -- --alt-transparent`: what pools[].source: transparent costs. A sidecar
 * namespace of the benchmark's own (test/fixtures/net/sidecar-namespace.ts) holds the C sink
 * backend on an address of its lo and two proxies built from dist/, one connecting from its
 * own address and one from each client's (`transparent setup` makes the return route). The
 * C client runs on this side, so every connection crosses the veth to both proxies alike.
 * Runs alternate between the two, several times; medians side by side, and the ratios.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createSidecarNamespace } from '../../test/fixtures/net/sidecar-namespace.js';
import { spawnLines, type LineProcess } from './proc.js';
import { median } from './report.js';
import { rate, type Counts, type Figures } from './workloads.js';

type Mode = 'proxy' | 'transparent';
const MODES: readonly Mode[] = ['proxy', 'transparent'];

export type TransparentCounts = Pick<Counts, 'rateConcurrency' | 'rateTotal' | 'latencyTotal'> & { readonly runs: number };

export async function compareTransparent(cli: string, backendBinary: string, client: string, resultsDir: string, counts: TransparentCounts): Promise<string> {
  const ns = createSidecarNamespace();
  const processes: LineProcess[] = [];
  const inNs = (command: string, args: readonly string[]): LineProcess => {
    const started = spawnLines(ns.proxyExec[0] ?? '', [...ns.proxyExec.slice(1), command, ...args]);
    processes.push(started);
    return started;
  };
  try {
    // The proxies' backend connections end in TIME_WAIT inside the namespace (ours to tune).
    execFileSync(ns.proxyExec[0] ?? '', [...ns.proxyExec.slice(1), 'sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1']);
    const backend = inNs(backendBinary, ['sink', ns.sshdAddress.v4]);
    const backendPort = Number(await backend.nextLine(5000));
    const setup = inNs(process.execPath, [cli, 'transparent', 'setup', '--backend', ns.sshdAddress.v4]);
    await new Promise<void>((resolve) => setup.child.once('exit', () => resolve()));
    if (setup.child.exitCode !== 0) throw new Error('transparent setup failed in the benchmark namespace');
    const ports = new Map<Mode, number>([
      ['proxy', 2300],
      ['transparent', 2301],
    ]);
    for (const mode of MODES) {
      const file = path.join(resultsDir, `transparent-${mode}.json`);
      writeFileSync(
        file,
        JSON.stringify({
          listeners: [{ name: 'bench', bind: `${ns.proxyAddress.v4}:${ports.get(mode) ?? 0}`, pool: 'sink' }],
          pools: [{ name: 'sink', source: mode, verify: 'banner', servers: [{ name: 'sink', address: `${ns.sshdAddress.v4}:${backendPort}` }], handshake: { endsAt: 'splice' } }],
          penalties: 'off',
          limits: { perSourceConnections: 0, perSourceRate: 0 },
          log: { level: 'info' },
        }),
      );
      const proxy = inNs(process.execPath, ['--max-semi-space-size=16', cli, 'serve', '-c', file]);
      for (;;) {
        const line = JSON.parse(await proxy.nextLine(30_000)) as { event?: string };
        if (line.event === 'listening') break;
      }
    }
    process.env.BENCH_TARGET_HOST = ns.proxyAddress.v4;
    const samples = new Map<string, Figures[]>();
    const add = (key: string, figures: Figures): void => void samples.set(key, [...(samples.get(key) ?? []), figures]);
    for (let run = 0; run < counts.runs; run += 1) {
      // Alternate which mode goes first: a noisy moment falls on both alike.
      for (const mode of run % 2 === 0 ? MODES : [...MODES].reverse()) {
        const port = ports.get(mode) ?? 0;
        add(`rate:${mode}`, await rate(client, port, counts.rateConcurrency, counts.rateTotal));
        add(`latency:${mode}`, await rate(client, port, 1, counts.latencyTotal));
      }
    }
    return report(samples, counts);
  } finally {
    delete process.env.BENCH_TARGET_HOST;
    for (const started of processes) await started.stop(5000);
    ns.remove();
  }
}

function report(samples: ReadonlyMap<string, readonly Figures[]>, counts: TransparentCounts): string {
  const pick = (key: string, field: keyof Figures): number => median((samples.get(key) ?? []).map((figures) => Number(figures[field] ?? 0))) ?? 0;
  const failed = [...samples.values()].flat().reduce((total, figures) => total + Number(figures.failed ?? 0), 0);
  const rows = [
    [`connections/s (${counts.rateConcurrency} at once)`, pick('rate:proxy', 'perSecond'), pick('rate:transparent', 'perSecond')],
    ['time to banner p50, µs (1 at once)', pick('latency:proxy', 'p50Us'), pick('latency:transparent', 'p50Us')],
    ['time to banner p99, µs (1 at once)', pick('latency:proxy', 'p99Us'), pick('latency:transparent', 'p99Us')],
    [`time to banner p50, µs (${counts.rateConcurrency} at once)`, pick('rate:proxy', 'p50Us'), pick('rate:transparent', 'p50Us')],
    [`time to banner p99, µs (${counts.rateConcurrency} at once)`, pick('rate:proxy', 'p99Us'), pick('rate:transparent', 'p99Us')],
  ] as const;
  const lines = rows.map(([name, own, transparent]) => `| ${name} | ${Math.round(own)} | ${Math.round(transparent)} | ${own === 0 ? '-' : (transparent / own).toFixed(2)} |`);
  return [
    `source: proxy vs source: transparent, sidecar namespace, medians of ${counts.runs} runs (rate ${counts.rateTotal} connections, latency ${counts.latencyTotal}); failed connections: ${failed}`,
    '',
    '| | source: proxy | source: transparent | transparent / proxy |',
    '|---|---|---|---|',
    ...lines,
  ].join('\n');
}
