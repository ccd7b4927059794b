import { createLogger } from '../observe/log.js';
import { logIdentity } from '../observe/log-identity.js';
import pino from 'pino';
import { demoInstructions, startDemo, type Demo } from '../demo/demo.js';
import type { MaxStartups } from '../demo/ssh-backend.js';
import { isLoopbackHost, parseHostPort } from '../net/address.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import type { DemoArgs } from './demo.js';

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

export async function runDemo(args: DemoArgs): Promise<number> {
  const listen = parseHostPort(args.listen);
  const admin = args.admin === 'off' ? undefined : parseHostPort(args.admin);
  const maxStartups = parseMaxStartups(args.maxStartups);
  const ports = args.backendPorts.split(',').map((text) => Number(text.trim()));
  const problem =
    typeof listen === 'string'
      ? `--listen ${listen}`
      : !isLoopbackHost(listen.host)
        ? `--listen ${args.listen}: the demo's backends accept any login, so it listens on loopback only (127.0.0.1, ::1, localhost)`
        : typeof admin === 'string'
          ? `--admin ${admin}`
          : maxStartups === undefined
            ? `--max-startups "${args.maxStartups}" is not start or start:rate:full`
            : ports.length !== 3 || !ports.every((port) => Number.isInteger(port) && port >= 0 && port <= 65535)
              ? `--backend-ports "${args.backendPorts}" is not three ports (e.g. 2201,2202,2203, or 0 for any)`
              : undefined;
  if (problem !== undefined || typeof listen === 'string' || typeof admin === 'string' || maxStartups === undefined) {
    process.stderr.write(`ssh-banner-proxy demo: ${problem ?? 'invalid arguments'}\n`);
    return EXIT_USAGE;
  }
  // The same logger as serve's (ISO time, service, replica), to stderr: stdout carries the instructions.
  const logger = createLogger({ level: args.logLevel, pretty: false }, logIdentity(undefined), pino.destination(2));
  let demo: Demo;
  try {
    demo = await startDemo({
      listen: args.listen,
      admin: args.admin === 'off' ? undefined : args.admin,
      bannerDelayMs: args.bannerDelay,
      maxStartups,
      logger,
      backendPorts: [ports[0] ?? 0, ports[1] ?? 0, ports[2] ?? 0],
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
