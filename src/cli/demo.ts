import pino from 'pino';
import type { Argv } from 'yargs';
import { demoInstructions, startDemo, type Demo } from '../demo/demo.js';
import type { MaxStartups } from '../demo/ssh-backend.js';
import { parseHostPort } from '../net/address.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import type { CliCommand } from './main.js';

interface DemoArgs {
  listen: string;
  admin: string;
  bannerDelay: number;
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
          .option('banner-delay', { type: 'number', default: 20, describe: 'Seconds the slow backend waits before its identification' })
          .option('max-startups', { type: 'string', default: '2:50:4', describe: 'The throttling backend\'s MaxStartups start:rate:full' })
          .option('log-level', { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'silent'], default: 'info', describe: 'Proxy log level (logs go to stderr)' }),
      (args) => setExitCode(runDemo(args as unknown as DemoArgs)),
    );
  },
};

function parseMaxStartups(text: string): MaxStartups | undefined {
  const match = /^(\d+)(?::(\d+):(\d+))?$/.exec(text.trim());
  if (!match) return undefined;
  const start = Number(match[1]);
  if (match[2] === undefined) return { start, rate: 100, full: start };
  const rate = Number(match[2]);
  const full = Number(match[3]);
  if (rate > 100 || full < start || start < 1) return undefined;
  return { start, rate, full };
}

async function runDemo(args: DemoArgs): Promise<number> {
  const listen = parseHostPort(args.listen);
  const admin = args.admin === 'off' ? undefined : parseHostPort(args.admin);
  const maxStartups = parseMaxStartups(args.maxStartups);
  const problem = typeof listen === 'string' ? `--listen ${listen}` : typeof admin === 'string' ? `--admin ${admin}` : maxStartups === undefined ? `--max-startups "${args.maxStartups}" is not start or start:rate:full` : undefined;
  if (problem !== undefined || typeof listen === 'string' || typeof admin === 'string' || maxStartups === undefined) {
    process.stderr.write(`ssh-banner-proxy demo: ${problem ?? 'invalid arguments'}\n`);
    return EXIT_USAGE;
  }
  if (!Number.isFinite(args.bannerDelay) || args.bannerDelay < 0) {
    process.stderr.write('ssh-banner-proxy demo: --banner-delay must be a number of seconds >= 0\n');
    return EXIT_USAGE;
  }
  const logger = pino({ level: args.logLevel, base: null }, pino.destination(2));
  let demo: Demo;
  try {
    demo = await startDemo({
      listen: args.listen,
      admin: args.admin === 'off' ? undefined : args.admin,
      bannerDelayMs: args.bannerDelay * 1000,
      maxStartups,
      logger,
    });
  } catch (error) {
    process.stderr.write(`ssh-banner-proxy demo: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_FAILURE;
  }
  process.stdout.write(demoInstructions(demo, listen.host));
  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (): void => {
      signals += 1;
      if (signals > 1) {
        resolve(EXIT_FAILURE);
        process.exit(EXIT_FAILURE);
      }
      process.stdout.write('stopping the demo...\n');
      void demo.stop().then(() => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        resolve(EXIT_OK);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
