import type { Argv } from 'yargs';
import { parseDurationMs } from '../config/duration.js';
import { LOAD_MODES, type LoadMode } from '../loadtest/modes.js';
import type { CliCommand } from './main.js';

export interface LoadtestArgs {
  target: string;
  compare: string | undefined;
  mode: LoadMode;
  clients: number | undefined;
  rate: number | undefined;
  total: number;
  duration: string;
  user: string | undefined;
  identity: string | undefined;
  command: string | undefined;
  hold: number;
  timeout: number;
  connectTimeout: number;
  handshakeTimeout: number;
  maxInFlight: number;
  json: boolean;
  csv: boolean;
  failOn: number;
}

export const loadtestCommand: CliCommand = {
  register(cli, setExitCode) {
    return cli.command(
      'loadtest <target>',
      'Many concurrent SSH clients against a server or the proxy, bounded by count and time',
      (command: Argv) =>
        command
          .positional('target', { type: 'string', demandOption: true, describe: 'HOST[:PORT] (port 22 by default)' })
          .option('compare', { type: 'string', describe: 'A second HOST:PORT run interleaved, reported side by side' })
          .option('mode', { type: 'string', choices: LOAD_MODES, default: 'banner', describe: 'banner: identification only; kex: key exchange; auth: kex + public-key auth' })
          .option('clients', { alias: 'c', type: 'number', describe: 'Closed loop: concurrent clients per target (default 10)' })
          .option('rate', { alias: 'r', type: 'number', describe: 'Open loop: attempts started per second per target' })
          .option('total', { alias: 'n', type: 'number', default: 100, describe: 'Attempts per target at most' })
          .option('duration', { alias: 'd', type: 'string', default: '60s', describe: 'Start no attempt after this (e.g. 30s, 2m)' })
          .option('user', { alias: 'u', type: 'string', describe: 'auth mode: user name' })
          .option('identity', { alias: 'i', type: 'string', describe: 'auth mode: private key file' })
          .option('command', { type: 'string', describe: 'auth mode: run this command (must exit 0)' })
          .option('hold', { type: 'number', default: 0, describe: 'auth mode: keep each session open this many seconds' })
          .option('timeout', { type: 'number', default: 10_000, describe: 'Banner timeout in ms' })
          .option('connect-timeout', { type: 'number', default: 5_000, describe: 'TCP connect timeout in ms' })
          .option('handshake-timeout', { type: 'number', default: 20_000, describe: 'kex/auth: ms for everything after the identification' })
          .option('max-in-flight', { type: 'number', default: 1024, describe: 'Open loop: attempts running at once at most' })
          .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON' })
          .option('csv', { type: 'boolean', default: false, describe: 'Print one CSV row per attempt' })
          .option('fail-on', { type: 'number', default: 100, describe: 'Exit 1 when more than this percentage of attempts failed on any target' })
          .conflicts('clients', 'rate')
          .check((args) => {
            if (args.json === true && args.csv === true) throw new Error('--json and --csv are mutually exclusive');
            if (args.mode === 'auth' && (args.user === undefined || args.identity === undefined)) throw new Error('--mode auth needs --user and --identity');
            if ((args.command !== undefined || (args.hold as number) > 0) && args.mode !== 'auth') throw new Error('--command and --hold need --mode auth');
            for (const name of ['clients', 'rate', 'total', 'timeout', 'connect-timeout', 'handshake-timeout', 'max-in-flight'] as const) {
              const value = args[name];
              if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)) throw new Error(`--${name} must be a positive number`);
            }
            if (!Number.isFinite(args.hold) || (args.hold as number) < 0) throw new Error('--hold must be a number of seconds >= 0');
            if (durationArgMs(args.duration) === undefined) throw new Error(`--duration "${String(args.duration)}" is not a duration (e.g. 30s, 2m, 1500ms)`);
            return true;
          })
          .example('$0 loadtest 127.0.0.1:22 --compare 127.0.0.1:2222 --clients 20 --total 200', 'direct vs through the proxy')
          .example('$0 loadtest host:22 --mode auth -u me -i ~/.ssh/id_ed25519 --rate 20 --duration 30s', 'open loop, full logins'),
      (args) => setExitCode(import('./loadtest-run.js').then((run) => run.runLoadtest(args as unknown as LoadtestArgs))),
    );
  },
};

/** `30s`, `2m`, `1500ms`; a bare number means seconds here. */
export function durationArgMs(value: unknown): number | undefined {
  const text = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const ms = parseDurationMs(text);
  return ms === undefined || ms <= 0 ? undefined : ms;
}
