import { formatDistribution, formatProbe } from '../diagnose/format.js';
import { probeMany } from '../diagnose/probe-many.js';
import { probe, type ProbeOptions } from '../diagnose/probe.js';
import { isHealthyVerdict } from '../diagnose/verdicts.js';
import { parseHostPort } from '../net/address.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import type { ProbeArgs } from './probe.js';

export async function runProbe(args: ProbeArgs): Promise<number> {
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
