/**
 * What the benchmark measures against: C backends (sink, source, echo), the proxy
 * under test (built dist/, one listener per backend), and HAProxy configured the
 * same way (mode tcp, banner health check). Everything on 127.0.0.1.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawnLines, waitForExit, type LineProcess } from './proc.js';

export const BENCH_DIR = path.resolve(import.meta.dirname, '..');
export const REPO_DIR = path.resolve(BENCH_DIR, '..');
export const BUILD_DIR = path.join(BENCH_DIR, 'build');
/** Node flags for the memory workload: SIGUSR2 then runs a full GC (bench/reference/collect-on-signal.mjs). */
export const COLLECT_ON_SIGNAL_FLAGS: readonly string[] = ['--expose-gc', '--import', pathToFileURL(path.join(BENCH_DIR, 'reference', 'collect-on-signal.mjs')).href];
export const HAPROXY = '/usr/sbin/haproxy';
/** The Dockerfile's Node flags (its ENTRYPOINT): the proxy is measured as it is shipped. */
export const IMAGE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];
/** The Dockerfile's MALLOC_TRIM_THRESHOLD_: the proxy is measured as it is shipped. */
export const IMAGE_MALLOC_TRIM_THRESHOLD = '268435456';

export type BackendMode = 'sink' | 'source' | 'echo' | 'sshd';
/** `pipe` is a bare Node pipe() proxy (bench/reference/pipe-proxy.mjs), measured with `--pipe`. */
/** `proxy-alt`: the same proxy on another Node (`--alt-node`), side by side; `pipe-alt` likewise. */
export type TargetName = 'direct' | 'proxy' | 'haproxy' | 'pipe' | 'proxy-alt' | 'pipe-alt';
export const TARGETS: readonly TargetName[] = ['direct', 'proxy', 'haproxy'];

/** Compiles the C helpers into bench/build/ (gitignored). */
export function compileNative(): { backend: string; client: string } {
  mkdirSync(BUILD_DIR, { recursive: true });
  const out = { backend: path.join(BUILD_DIR, 'backend'), client: path.join(BUILD_DIR, 'client') };
  for (const name of ['backend', 'client'] as const) {
    execFileSync('gcc', ['-O2', '-Wall', '-o', out[name], path.join(BENCH_DIR, 'native', `${name}.c`)], { stdio: 'inherit' });
  }
  return out;
}

/** Builds dist/ (tsc emits even when another file has a type error; we only need the JS). */
export function buildProxy(): string {
  try {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_DIR, stdio: 'ignore' });
  } catch {
    // Type errors elsewhere do not stop emit; the existence check below is what matters.
  }
  return builtCli(REPO_DIR);
}

/** A checkout's built CLI (another build to compare with: `--alt-build`). */
export function builtCli(checkout: string): string {
  const cli = path.join(checkout, 'dist', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} missing: run npm run build in ${checkout}`);
  return cli;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something on `port` sends a line (the identification), bounded. */
export async function waitForBanner(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      const timer = setTimeout(() => done(false), 1000);
      function done(result: boolean): void {
        clearTimeout(timer);
        socket.destroy();
        resolve(result);
      }
      socket.on('data', (chunk) => done(chunk.includes(10)));
      socket.on('error', () => done(false));
      socket.on('close', () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing answered with a banner on port ${port} within ${timeoutMs}ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface Backend {
  readonly mode: BackendMode;
  readonly port: number;
  stop(): Promise<void>;
}

export async function startBackend(binary: string, mode: Exclude<BackendMode, 'sshd'>): Promise<Backend> {
  const process: LineProcess = spawnLines(binary, [mode]);
  const port = Number(await process.nextLine(5000));
  return { mode, port, stop: () => process.stop() };
}

export interface ServedTarget {
  readonly pid: number;
  /** The proxy's admin port (metrics), when it has one. */
  readonly adminPort?: number;
  /** Frontend port per backend mode. */
  readonly ports: ReadonlyMap<BackendMode, number>;
  stop(): Promise<void>;
}

export interface ProxyOptions {
  readonly workers: number | 'auto';
  /** Extra node flags, e.g. --cpu-prof. */
  readonly nodeFlags: readonly string[];
  readonly resultsDir: string;
  /** The node binary (default: this one). */
  readonly node?: string;
  /** `reusePort` of the config (workers: a socket each, or one shared). */
  readonly reusePort?: 'auto' | 'off';
  /** Distinguishes the config files of two proxies started side by side. */
  readonly label?: string;
  /** A shared store (cluster.store, redis://...): every handshake slot is also taken there. */
  readonly store?: string;
  /** pools[].prefetch.perServer: banner-verified backend connections kept ready. */
  readonly prefetch?: number;
  /** pools[].verify (default kexinit): how far a backend must get before the splice. */
  readonly verify?: 'kexinit' | 'banner';
  /** Backends by the host name `localhost` (a DNS set, IPv4 only) instead of 127.0.0.1: the cost of a name. */
  readonly byName?: boolean;
}

/** Starts `node dist/cli.js serve` with one listener + pool per backend. */
export async function startProxy(cli: string, backends: readonly Backend[], options: ProxyOptions): Promise<ServedTarget> {
  const ports = new Map<BackendMode, number>();
  for (const backend of backends) ports.set(backend.mode, await freePort());
  const adminPort = await freePort();
  const config = {
    listeners: backends.map((backend) => ({
      name: backend.mode,
      bind: `127.0.0.1:${ports.get(backend.mode)}`,
      pool: backend.mode,
    })),
    pools: backends.map((backend) => ({
      name: backend.mode,
      servers: [{ name: backend.mode, address: `${options.byName === true ? 'localhost' : '127.0.0.1'}:${backend.port}` }],
      // The handshake-slot limit protects a real sshd; the C backend needs none, and
      // HAProxy has no such limit, so it is lifted out of the way here.
      handshake: { maxStartups: 100000 },
      queue: { maxLength: 100000 },
      ...(options.prefetch === undefined ? {} : { prefetch: { perServer: options.prefetch } }),
      // The C backends write an identification and no key exchange: banner-only for them.
      verify: backend.mode === 'sshd' ? (options.verify ?? 'kexinit') : 'banner',
    })),
    limits: { maxConnections: 100000 },
    // Every bench client shares loopback and leaves without authenticating: exempt, as a
    // load balancer's address would be. The lookups at accept and close still run.
    penalties: { exempt: ['127.0.0.0/8'] },
    // Per-session log lines are off for both proxies (HAProxy has no `log` either).
    log: { level: 'warn' },
    workers: options.workers,
    reusePort: options.reusePort ?? 'auto',
    // Metrics only (the heap part of the memory figure); nothing scrapes it during the other workloads.
    admin: { bind: `127.0.0.1:${adminPort}` },
    ...(options.byName === true ? { dns: { family: 'ipv4' } } : {}),
    ...(options.store === undefined ? {} : { cluster: { store: options.store, prefix: `bench-${options.label ?? 'proxy'}:` } }),
  };
  const configPath = path.join(options.resultsDir, `proxy-config${options.label === undefined ? '' : `-${options.label}`}.yaml`);
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const child = spawn(options.node ?? process.execPath, [...IMAGE_NODE_FLAGS, ...options.nodeFlags, cli, 'serve', '--config', configPath], {
    cwd: options.resultsDir,
    stdio: ['ignore', 'inherit', 'inherit'],
    // As the image ships it (Dockerfile): glibc keeps freed read buffers mapped (docs/deploy.md).
    env: { ...process.env, MALLOC_TRIM_THRESHOLD_: IMAGE_MALLOC_TRIM_THRESHOLD },
  });
  await waitUntilServing(child, [...ports.values()]);
  return { pid: child.pid as number, adminPort, ports, stop: () => stopChild(child, 'SIGTERM') };
}

/** V8 heap in use across the proxy's processes (sum of nodejs_heap_size_used_bytes), from its admin endpoint. */
export async function heapUsedBytes(adminPort: number): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  const text = await response.text();
  let total = 0;
  for (const match of text.matchAll(/^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/gm)) total += Number(match[1]);
  return total;
}

/** Starts HAProxy (default threads = cores) with a banner health check per backend. */
export async function startHaproxy(backends: readonly Backend[], resultsDir: string): Promise<ServedTarget> {
  const ports = new Map<BackendMode, number>();
  for (const backend of backends) ports.set(backend.mode, await freePort());
  const sections = backends.map((backend) =>
    [
      `frontend f_${backend.mode}`,
      `  bind 127.0.0.1:${ports.get(backend.mode)}`,
      `  default_backend b_${backend.mode}`,
      `backend b_${backend.mode}`,
      '  option tcp-check',
      '  tcp-check expect rstring ^SSH-2\\.0-',
      `  server s_${backend.mode} 127.0.0.1:${backend.port} check inter 5s`,
    ].join('\n'),
  );
  const text = [
    'global',
    '  # maxconn left unset: HAProxy derives it from the file-descriptor limit',
    'defaults',
    '  mode tcp',
    '  timeout connect 3s',
    '  timeout client 1h',
    '  timeout server 1h',
    ...sections,
    '',
  ].join('\n');
  const configPath = path.join(resultsDir, 'haproxy.cfg');
  writeFileSync(configPath, text);
  execFileSync(HAPROXY, ['-c', '-q', '-f', configPath], { stdio: 'inherit' });
  const child = spawn(HAPROXY, ['-db', '-f', configPath], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitUntilServing(child, [...ports.values()]);
  return { pid: child.pid as number, ports, stop: () => stopChild(child, 'SIGUSR1') };
}

/** Starts the bare pipe() proxy in front of the same backends (no banner check). */
export async function startPipeProxy(backends: readonly Backend[], node: string = process.execPath, nodeFlags: readonly string[] = []): Promise<ServedTarget> {
  const ports = new Map<BackendMode, number>();
  for (const backend of backends) ports.set(backend.mode, await freePort());
  const pairs = backends.map((backend) => `${ports.get(backend.mode)}:${backend.port}`);
  const child = spawn(node, [...nodeFlags, path.join(BENCH_DIR, 'reference', 'pipe-proxy.mjs'), ...pairs], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitUntilServing(child, [...ports.values()]);
  return { pid: child.pid as number, ports, stop: () => stopChild(child, 'SIGTERM') };
}

async function waitUntilServing(child: ChildProcess, ports: readonly number[]): Promise<void> {
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`exited early (code ${code})`))));
  exited.catch(() => undefined);
  // Health checks must have marked servers UP before anything is measured.
  await Promise.race([Promise.all(ports.map((port) => waitForBanner(port, 15_000))), exited]);
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  child.kill(signal);
  await waitForExit(child, 10_000);
}
