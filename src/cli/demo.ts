import type { Argv } from 'yargs';
import { durationFlag } from './duration-flag.js';
import type { CliCommand } from './main.js';

export interface DemoArgs {
  listen: string;
  admin: string;
  /** Milliseconds (durationFlag). */
  bannerDelay: number;
  backendPorts: string;
  maxStartups: string;
  logLevel: string;
}

export const demoCommand: CliCommand = {
  register(cli, setExitCode) {
    return cli.command(
      'demo',
      'Start three embedded SSH backends (healthy, slow banner, throttling) and the proxy in front of them',
      (command: Argv) =>
        command
          .option('listen', { type: 'string', default: '127.0.0.1:2222', describe: 'Proxy listener (loopback; port 0 picks one)' })
          .option('admin', { type: 'string', default: '127.0.0.1:9100', describe: 'Admin endpoint (metrics, status page), or "off"' })
          .option('banner-delay', { type: 'string', default: '20s', coerce: durationFlag('banner-delay', 's'), describe: 'How long the slow backend waits before its identification (e.g. 20s; bare number: s)' })
          .option('backend-ports', { type: 'string', default: '0,0,0', describe: 'Loopback ports of the healthy, slow and throttling backends, comma-separated (0: any free port)' })
          .option('max-startups', { type: 'string', default: '2:50:4', describe: 'The throttling backend\'s MaxStartups start:rate:full' })
          .option('log-level', { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'silent'], default: 'info', describe: 'Proxy log level (logs go to stderr)' }),
      (args) => setExitCode(import('./demo-run.js').then((run) => run.runDemo(args as unknown as DemoArgs))),
    );
  },
};
