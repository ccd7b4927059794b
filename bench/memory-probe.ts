/**
 * What one idle spliced session keeps alive, from inside the proxy process:
 *   node --import tsx bench/memory-probe.ts [sessions]
 * Starts the C echo backend and an in-process ProxyRuntime, holds N sessions with the
 * C client, and prints heap/external growth per session and the heap-snapshot diff by
 * constructor (self size per session). Needs bench/build/ and dist/ (`npm run bench` once, `npm run build`).
 */

import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import pino from 'pino';
import type { validateConfig as ValidateConfig } from '../src/config/load.js';
import type { ProxyRuntime as Runtime } from '../src/runtime.js';
import { spawnLines } from './lib/proc.js';
import { BUILD_DIR } from './lib/targets.js';

const sessions = Number(process.argv[2] ?? 2000);
// The built dist/ (what `serve` runs): tsx's transform adds a `name` property to every
// function it emits, which gives each per-session closure a 256-byte property array.
const { validateConfig } = (await import(path.join('..', 'dist', 'config', 'load.js'))) as { validateConfig: typeof ValidateConfig };
const { ProxyRuntime } = (await import(path.join('..', 'dist', 'runtime.js'))) as { ProxyRuntime: typeof Runtime };

interface Snapshot {
  readonly snapshot: { readonly meta: { readonly node_fields: string[]; readonly node_types: [string[]] } };
  readonly nodes: number[];
  readonly strings: string[];
}

/** Self size and count by "type:name" from a heap snapshot. */
function bySize(): Map<string, { size: number; count: number }> {
  const file = writeHeapSnapshot(path.join(os.tmpdir(), `probe-${process.pid}-${Date.now()}.heapsnapshot`));
  const data = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  rmSync(file);
  const fields = data.snapshot.meta.node_fields;
  const types = data.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((field) => fields.indexOf(field)) as [number, number, number];
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < data.nodes.length; i += width) {
    const type = types[data.nodes[i + typeAt] as number] ?? '?';
    let name = type === 'string' || type === 'concatenated string' || type === 'sliced string' ? '(string)' : (data.strings[data.nodes[i + nameAt] as number] ?? '?');
    if (type === 'code' || type === 'hidden' || type === 'array') name = `(${type}) ${name.slice(0, 40)}`;
    const key = `${type}:${name.slice(0, 60)}`;
    const entry = out.get(key) ?? { size: 0, count: 0 };
    entry.size += data.nodes[i + sizeAt] as number;
    entry.count += 1;
    out.set(key, entry);
  }
  return out;
}

const backend = spawnLines(path.join(BUILD_DIR, 'backend'), ['echo']);
const backendPort = Number(await backend.nextLine(5000));
const config = validateConfig(
  {
    listeners: [{ name: 'echo', bind: '127.0.0.1:0', pool: 'echo' }],
    penalties: { exempt: ['127.0.0.0/8'] },
    pools: [{ name: 'echo', servers: [{ name: 'echo', address: `127.0.0.1:${backendPort}` }], handshake: { maxStartups: 100000 }, queue: { maxLength: 100000 }, verify: 'banner' }],
    limits: { maxConnections: 100000 },
    log: { level: 'warn' },
  },
  'probe',
);
const runtime = new ProxyRuntime(config, { logger: pino({ level: 'warn' }) });
await runtime.start();
const port = runtime.port('echo');

const hold = async (): Promise<{ stop: () => Promise<void> }> => {
  const holder = spawnLines(path.join(BUILD_DIR, 'client'), ['hold', String(port), String(sessions), '120']);
  await holder.nextLine(60_000);
  holder.child.stdin?.write('check\n');
  await holder.nextLine(60_000);
  // Handshake trackers end after their grace period: wait it out, as an idle session would.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  return { stop: () => holder.stop(30_000) };
};

// Warm-up pass so code, pools and caches exist before the measured one.
await (await hold()).stop();
await new Promise((resolve) => setTimeout(resolve, 500));
globalThis.gc?.();
const before = process.memoryUsage();
const heapBefore = bySize();
const held = await hold();
globalThis.gc?.();
// PROBE_SNAPSHOT=<file>: also keep a snapshot of the held state (e.g. for a retainer search).
if (process.env.PROBE_SNAPSHOT) writeHeapSnapshot(process.env.PROBE_SNAPSHOT);
const after = process.memoryUsage();
const heapAfter = bySize();
const per = (a: number, b: number): string => `${((b - a) / sessions).toFixed(0)} B`;
process.stdout.write(
  `per session: rss ${per(before.rss, after.rss)}, heapTotal ${per(before.heapTotal, after.heapTotal)}, heapUsed ${per(before.heapUsed, after.heapUsed)}, external ${per(before.external, after.external)}, arrayBuffers ${per(before.arrayBuffers, after.arrayBuffers)}\n`,
);
const diff = [...heapAfter]
  .map(([key, entry]) => [key, entry.size - (heapBefore.get(key)?.size ?? 0), entry.count - (heapBefore.get(key)?.count ?? 0)] as const)
  .sort((a, b) => b[1] - a[1])
  .slice(0, 40);
for (const [key, size, count] of diff) process.stdout.write(`${(size / sessions).toFixed(0).padStart(6)} B  ${(count / sessions).toFixed(2).padStart(6)}/session  ${key}\n`);
await held.stop();
await runtime.stop(0);
await backend.stop();
