/** Child-process helpers for the benchmark: spawn, read JSON lines, RSS of a process tree. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

export interface LineProcess {
  readonly child: ChildProcess;
  /** Resolves with the next stdout line (rejects after `timeoutMs` or if the process exits first). */
  nextLine(timeoutMs: number): Promise<string>;
  /** Closes stdin and waits for exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns a helper that talks in stdout lines; stdin stays open as its lifeline. */
export function spawnLines(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): LineProcess {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'], env: options.env ?? process.env });
  const lines: string[] = [];
  const waiters: ((line: string | undefined) => void)[] = [];
  let exited = false;
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter(line);
    else lines.push(line);
  });
  const exitedPromise = new Promise<void>((resolve) => {
    child.on('exit', () => {
      exited = true;
      for (const waiter of waiters.splice(0)) waiter(undefined);
      resolve();
    });
  });
  child.on('error', () => undefined);
  child.stdin?.on('error', () => undefined);
  return {
    child,
    nextLine(timeoutMs) {
      const ready = lines.shift();
      if (ready !== undefined) return Promise.resolve(ready);
      if (exited) return Promise.reject(new Error(`${command} exited (code ${child.exitCode})`));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const index = waiters.indexOf(onLine);
          if (index >= 0) waiters.splice(index, 1);
          reject(new Error(`${command} ${args.join(' ')}: no output within ${timeoutMs}ms`));
        }, timeoutMs);
        const onLine = (line: string | undefined): void => {
          clearTimeout(timer);
          if (line === undefined) reject(new Error(`${command} exited (code ${child.exitCode})`));
          else resolve(line);
        };
        waiters.push(onLine);
      });
    },
    async stop(graceMs = 5000) {
      if (exited) return;
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
}

/** Runs a helper to completion and parses the one JSON object it prints. */
export function runJson<T>(command: string, args: readonly string[], timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        const parsed = JSON.parse(out.trim().split('\n').at(-1) ?? '') as T & { error?: string };
        if (parsed.error !== undefined) reject(new Error(`${command} ${args.join(' ')}: ${parsed.error}`));
        else resolve(parsed);
      } catch {
        reject(new Error(`${command} ${args.join(' ')} exited ${code} with output ${JSON.stringify(out)}`));
      }
    });
  });
}

/** A process and all its descendants, from /proc (gone ones left out). */
export function treePids(pid: number): number[] {
  const pids: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const current = stack.pop() as number;
    try {
      const children = readFileSync(`/proc/${current}/task/${current}/children`, 'utf8').trim();
      pids.push(current);
      if (children !== '') stack.push(...children.split(/\s+/).map(Number));
    } catch {
      // The process is gone.
    }
  }
  return pids;
}

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/** CPU time (user + system, ms) used so far by a process and all its descendants, from /proc. */
export function treeCpuMs(pid: number): number {
  let ticks = 0;
  for (const each of treePids(pid)) {
    try {
      // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
      const stat = readFileSync(`/proc/${each}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // The process is gone: its time is no longer counted.
    }
  }
  return (ticks * 1000) / USER_HZ;
}

/** Resident set size (bytes) of a process and all its descendants, from /proc. */
export function treeRssBytes(pid: number): number {
  let total = 0;
  for (const each of treePids(pid)) {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${each}/status`, 'utf8'));
      if (match) total += Number(match[1]) * 1024;
    } catch {
      // The process is gone: it contributes nothing.
    }
  }
  return total;
}

export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
