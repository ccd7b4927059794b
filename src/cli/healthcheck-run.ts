import { request } from 'node:http';
import { loadConfigFile } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { formatHostPort, type HostPort } from '../net/address.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import type { HealthcheckArgs } from './healthcheck.js';

export async function healthcheck(args: HealthcheckArgs): Promise<number> {
  let bind: HostPort | undefined;
  try {
    bind = (await loadConfigFile(args.config, { admin: args.admin })).admin?.bind;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return EXIT_USAGE;
  }
  if (bind === undefined) {
    // Nothing to ask: an unhealthy verdict would restart a proxy that is fine.
    process.stdout.write('admin endpoint is off (admin: omitted or --admin off): nothing to check\n');
    return EXIT_OK;
  }
  const target = { host: reachableHost(bind.host), port: bind.port };
  const status = await getStatus(target, args.timeout);
  if (status === 200) return EXIT_OK;
  process.stderr.write(`http://${formatHostPort(target)}/healthz: ${typeof status === 'number' ? `HTTP ${status}` : status}\n`);
  return EXIT_FAILURE;
}

/** A wildcard bind is reached on loopback of its family. */
export function reachableHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

function getStatus(target: HostPort, timeoutMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: target.host, port: target.port, path: '/healthz', method: 'GET', timeout: timeoutMs }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(`no answer within ${timeoutMs}ms`);
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}
