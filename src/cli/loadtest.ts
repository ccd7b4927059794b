import type { Argv } from 'yargs';
import { LOAD_MODES, type LoadMode } from '../loadtest/modes.js';
import { durationFlag } from './duration-flag.js';
import type { CliCommand } from './main.js';

export interface LoadtestArgs {
  target: string;
  compare: string | undefined;
  mode: LoadMode;
  clients: number | undefined;
  rate: number | undefined;
  total: number;
  /** Milliseconds (durationFlag). */
  duration: number;
  user: string | undefined;
  identity: string | undefined;
  command: string | undefined;
  /** Milliseconds (durationFlag). */
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
          .option('clients', { type: 'number', describe: 'Closed loop: concurrent clients per target (default 10)' })
          .option('rate', { alias: 'r', type: 'number', describe: 'Open loop: attempts started per second per target' })
          .option('total', { alias: 'n', type: 'number', default: 100, describe: 'Attempts per target at most' })
          .option('duration', { alias: 'd', type: 'string', default: '60s', coerce: durationFlag('duration', 's', { min: 1 }), describe: 'Start no attempt after this (e.g. 30s, 2m; bare number: s)' })
          .option('user', { alias: 'u', type: 'string', describe: 'auth mode: user name' })
          .option('identity', { alias: 'i', type: 'string', describe: 'auth mode: private key file' })
          .option('command', { type: 'string', describe: 'auth mode: run this command (must exit 0)' })
          .option('hold', { type: 'string', default: '0', coerce: durationFlag('hold', 's'), describe: 'auth mode: keep each session open this long (e.g. 5s; bare number: s)' })
          .option('timeout', { type: 'string', default: '10s', coerce: durationFlag('timeout', 'ms', { min: 1 }), describe: 'Banner timeout (bare number: ms)' })
          .option('connect-timeout', { type: 'string', default: '5s', coerce: durationFlag('connect-timeout', 'ms', { min: 1 }), describe: 'TCP connect timeout (bare number: ms)' })
          .option('handshake-timeout', { type: 'string', default: '20s', coerce: durationFlag('handshake-timeout', 'ms', { min: 1 }), describe: 'kex/auth: everything after the identification (bare number: ms)' })
          .option('max-in-flight', { type: 'number', default: 1024, describe: 'Open loop: attempts running at once at most' })
          .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON' })
          .option('csv', { type: 'boolean', default: false, describe: 'Print one CSV row per attempt' })
          .option('fail-on', { type: 'number', default: 100, describe: 'Exit 1 when more than this percentage of attempts failed on any target' })
          .conflicts('clients', 'rate')
          .check((args) => {
            if (args.json === true && args.csv === true) throw new Error('--json and --csv are mutually exclusive');
            if (args.mode === 'auth' && (args.user === undefined || args.identity === undefined)) throw new Error('--mode auth needs --user and --identity');
            if ((args.command !== undefined || (args.hold as number) > 0) && args.mode !== 'auth') throw new Error('--command and --hold need --mode auth');
            for (const name of ['clients', 'rate', 'total', 'max-in-flight'] as const) {
              const value = args[name];
              if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)) throw new Error(`--${name} must be a positive number`);
            }
            return true;
          })
          .example('$0 loadtest 127.0.0.1:22 --compare 127.0.0.1:2222 --clients 20 --total 200', 'direct vs through the proxy')
          .example('$0 loadtest host:22 --mode auth -u me -i ~/.ssh/id_ed25519 --rate 20 --duration 30s', 'open loop, full logins'),
      (args) => setExitCode(import('./loadtest-run.js').then((run) => run.runLoadtest(args as unknown as LoadtestArgs))),
    );
  },
};

