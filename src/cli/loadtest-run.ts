import { readFile } from 'node:fs/promises';
import { progressLine } from '../loadtest/progress.js';
import { buildReport, formatCsv, formatReport } from '../loadtest/report.js';
import { runLoadTest, type LoadTarget } from '../loadtest/runner.js';
import { formatHostPort, parseHostPort } from '../net/address.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import type { LoadtestArgs } from './loadtest.js';


function targetOf(text: string): LoadTarget | string {
  const parsed = parseHostPort(text, 22);
  if (typeof parsed === 'string') return parsed;
  return { ...parsed, label: formatHostPort(parsed) };
}

export async function runLoadtest(args: LoadtestArgs): Promise<number> {
  const targets: LoadTarget[] = [];
  for (const text of [args.target, args.compare]) {
    if (text === undefined) continue;
    const target = targetOf(String(text));
    if (typeof target === 'string') {
      process.stderr.write(`ssh-banner-proxy loadtest: ${target}\n`);
      return EXIT_USAGE;
    }
    targets.push(targets.some((other) => other.label === target.label) ? { ...target, label: `${target.label} (2)` } : target);
  }
  let privateKey: Buffer | undefined;
  if (args.identity !== undefined) {
    try {
      privateKey = await readFile(args.identity);
    } catch (error) {
      process.stderr.write(`ssh-banner-proxy loadtest: cannot read --identity ${args.identity}: ${(error as NodeJS.ErrnoException).code ?? String(error)}\n`);
      return EXIT_USAGE;
    }
  }
  const clients = args.rate === undefined ? Math.floor(args.clients ?? 10) : undefined;
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  const progress = args.json || args.csv ? undefined : progressLine(process.stderr);
  try {
    const run = await runLoadTest({
      targets,
      mode: args.mode,
      ...(clients === undefined ? {} : { clients }),
      ...(args.rate === undefined ? {} : { rate: args.rate }),
      total: Math.floor(args.total),
      durationMs: args.duration,
      maxInFlight: Math.floor(args.maxInFlight),
      connectTimeoutMs: args.connectTimeout,
      bannerTimeoutMs: args.timeout,
      handshakeTimeoutMs: args.handshakeTimeout,
      ...(args.user === undefined ? {} : { username: args.user }),
      ...(privateKey === undefined ? {} : { privateKey }),
      ...(args.command === undefined ? {} : { command: args.command }),
      holdMs: args.hold,
      signal: abort.signal,
      ...(progress === undefined ? {} : { onProgress: progress.update }),
    });
    progress?.clear();
    const report = buildReport(run, targets, { mode: args.mode, clients, rate: args.rate });
    if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else if (args.csv) process.stdout.write(formatCsv(run.records));
    else process.stdout.write(formatReport(report));
    const worst = Math.max(...report.targets.map((target) => (target.attempts === 0 ? 0 : (target.failures / target.attempts) * 100)));
    const nothingWorked = report.targets.some((target) => target.successes === 0);
    return nothingWorked || worst > args.failOn ? EXIT_FAILURE : EXIT_OK;
  } finally {
    progress?.clear();
    process.off('SIGINT', onSignal);
  }
}
