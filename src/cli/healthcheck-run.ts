import { loadConfigFile } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { formatHostPort, type HostPort } from '../net/address.js';
import { callAdmin, reachableHost } from './admin-http.js';
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
  const answer = await callAdmin(target, { method: 'GET', path: '/healthz' }, args.timeout);
  if (typeof answer !== 'string' && answer.status === 200) return EXIT_OK;
  process.stderr.write(`http://${formatHostPort(target)}/healthz: ${typeof answer === 'string' ? answer : `HTTP ${answer.status}`}\n`);
  return EXIT_FAILURE;
}
