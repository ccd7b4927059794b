import type { Argv } from 'yargs';
import { formatDistribution, formatProbe } from '../diagnose/format.js';
import { probeMany } from '../diagnose/probe-many.js';
import { probe, type ProbeOptions } from '../diagnose/probe.js';
import { isHealthyVerdict } from '../diagnose/verdicts.js';
import { parseHostPort } from '../net/address.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import type { CliCommand } from './main.js';

interface ProbeArgs {
  target: string;
  timeout: number;
  connectTimeout: number;
  slow: number;
  count: number;
  concurrency: number;
  hostkey: boolean;
  kexinit: boolean;
  json: boolean;
}

export const probeCommand: CliCommand = {
  register(cli, setExitCode) {
    return cli.command(
      'probe <target>',
      'Connect like an SSH client and explain what the server sends (verdict, evidence, hint)',
      (command: Argv) =>
        command
          .positional('target', { type: 'string', demandOption: true, describe: 'HOST[:PORT] (port 22 by default)' })
          .option('timeout', { type: 'number', default: 10_000, describe: 'Banner timeout in ms (connect to identification)' })
          .option('connect-timeout', { type: 'number', default: 5_000, describe: 'TCP connect timeout in ms' })
          .option('slow', { type: 'number', default: 2_000, describe: 'A banner later than this (ms) is slow-banner' })
          .option('count', { alias: 'n', type: 'number', default: 1, describe: 'Probe this many times and print the distribution' })
          .option('concurrency', { type: 'number', default: 1, describe: 'Probes in flight at once with --count' })
          .option('hostkey', { type: 'boolean', default: false, describe: 'Complete key exchange and print the host key fingerprint' })
          .option('kexinit', { type: 'boolean', default: true, describe: 'Read and report the server\'s offered algorithms (--no-kexinit to skip)' })
          .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object' })
          .example('$0 probe 10.0.0.5', 'why does "ssh 10.0.0.5" fail?')
          .example('$0 probe 10.0.0.5:22 --count 20 --concurrency 10', 'how often is it throttled?')
          .check((args) => {
            for (const name of ['timeout', 'connect-timeout', 'slow', 'count', 'concurrency'] as const) {
              const value = args[name];
              if (typeof value !== 'number' || !Number.isFinite(value) || value < (name === 'slow' ? 0 : 1)) {
                throw new Error(`--${name} must be a number${name === 'slow' ? ' >= 0' : ' >= 1'}`);
              }
            }
            if ((args.count as number) > 100_000) throw new Error('--count is capped at 100000');
            return true;
          }),
      (args) => setExitCode(runProbe(args as unknown as ProbeArgs)),
    );
  },
};

async function runProbe(args: ProbeArgs): Promise<number> {
  const target = parseHostPort(String(args.target), 22);
  if (typeof target === 'string') {
    process.stderr.write(`ssh-banner-proxy probe: ${target}\n`);
    return EXIT_USAGE;
  }
  const options: ProbeOptions = {
    host: target.host,
    port: target.port,
    connectTimeoutMs: args.connectTimeout,
    timeoutMs: args.timeout,
    slowMs: args.slow,
    kexinit: args.kexinit,
    hostKey: args.hostkey,
  };
  if (args.count > 1) {
    const distribution = await probeMany(options, Math.floor(args.count), Math.floor(args.concurrency));
    if (args.json) {
      const { results, ...summary } = distribution;
      // Examples carry the full evidence; the per-probe list stays compact.
      const compact = results.map((result) => ({
        verdict: result.verdict,
        code: result.code,
        latencyMs: result.latencyMs,
        identification: result.identification,
        notice: result.notice,
        protocol: result.protocol,
      }));
      process.stdout.write(`${JSON.stringify({ ...summary, results: compact }, null, 2)}\n`);
    } else {
      process.stdout.write(formatDistribution(distribution));
    }
    return distribution.results.every((result) => isHealthyVerdict(result.verdict)) ? EXIT_OK : EXIT_FAILURE;
  }
  const result = await probe(options);
  process.stdout.write(args.json ? `${JSON.stringify(result, null, 2)}\n` : formatProbe(result));
  return isHealthyVerdict(result.verdict) ? EXIT_OK : EXIT_FAILURE;
}
