import type { Argv } from 'yargs';
import { durationFlag } from './duration-flag.js';
import type { CliCommand } from './main.js';

export interface ProbeArgs {
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
          .option('timeout', { type: 'string', default: '10s', coerce: durationFlag('timeout', 'ms', { min: 1 }), describe: 'Banner timeout, connect to identification (e.g. 10s; bare number: ms)' })
          .option('connect-timeout', { type: 'string', default: '5s', coerce: durationFlag('connect-timeout', 'ms', { min: 1 }), describe: 'TCP connect timeout (bare number: ms)' })
          .option('slow', { type: 'string', default: '2s', coerce: durationFlag('slow', 'ms'), describe: 'A banner later than this is slow-banner (bare number: ms)' })
          .option('count', { alias: 'n', type: 'number', default: 1, describe: 'Probe this many times and print the distribution' })
          .option('concurrency', { type: 'number', default: 1, describe: 'Probes in flight at once with --count' })
          .option('hostkey', { type: 'boolean', default: false, describe: 'Complete key exchange and print the host key fingerprint' })
          .option('kexinit', { type: 'boolean', default: true, describe: 'Read and report the server\'s offered algorithms (--no-kexinit to skip)' })
          .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object' })
          .example('$0 probe 10.0.0.5', 'why does "ssh 10.0.0.5" fail?')
          .example('$0 probe 10.0.0.5:22 --count 20 --concurrency 10', 'how often is it throttled?')
          .check((args) => {
            for (const name of ['count', 'concurrency'] as const) {
              const value = args[name];
              if (typeof value !== 'number' || !Number.isFinite(value) || value < 1) throw new Error(`--${name} must be a number >= 1`);
            }
            if ((args.count as number) > 100_000) throw new Error('--count is capped at 100000');
            return true;
          }),
      (args) => setExitCode(import('./probe-run.js').then((run) => run.runProbe(args as unknown as ProbeArgs))),
    );
  },
};
